/**
 * Event-log parsing, replay, replay checks and the boot summary, on the real logs of
 * test/fixtures/eventlog/ (each with the register values its source's tests state) and on
 * synthetic logs built to break one rule each.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AttestationError } from '../../src/errors.js';
import {
  bootSummary,
  checkReplay,
  MAX_EVENT_COUNT,
  MAX_EVENT_DATA_SIZE,
  MAX_EVENT_LOG_SIZE,
  parseCcelTable,
  parseEventLog,
  replayEventLog,
} from '../../src/evidence/eventlog/index.js';
import { thrownCode as code } from '../helpers/codes.js';
import { buildLog, fixture, loadEventLogFixtures, SEPARATOR, text, u32 } from './fixtures.js';

const fixtures = loadEventLogFixtures();
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

const expected = (f: (typeof fixtures)[number]) =>
  f.meta.kind === 'ccel' ? { rtmrs: f.meta.rtmrs! } : { pcrs: f.meta.pcrs! };

describe('real logs', () => {
  it('are all here (11 event logs + the GCE attestation log)', () => {
    expect(fixtures.length).toBe(12);
  });

  for (const f of fixtures) {
    describe(f.name, () => {
      const log = parseEventLog(f.log, f.options);

      it('parses with the stated number of events and separators where stated', () => {
        expect(log.kind).toBe(f.meta.kind);
        expect(log.events.length).toBe(f.meta.event_count);
        const seps: Record<string, number[]> = {};
        for (const e of log.events.filter((x) => x.typeName === 'EV_SEPARATOR')) {
          seps[String(e.pcrIndex)] ??= [];
          seps[String(e.pcrIndex)]!.push(e.index);
        }
        expect(seps).toEqual(f.meta.separators);
      });

      it('replays to every value its meta.json gives', () => {
        const r = replayEventLog(log);
        if (f.meta.kind === 'ccel') {
          expect(r.rtmrs!.map(hex)).toEqual(f.meta.rtmrs);
        } else {
          let n = 0;
          for (const [bank, values] of Object.entries(f.meta.pcrs!))
            for (const [i, v] of Object.entries(values)) {
              expect(hex(r.pcrs[bank]![Number(i)]!), `${bank} PCR${i}`).toBe(v);
              n++;
            }
          expect(n).toBeGreaterThanOrEqual(8);
        }
        const check = checkReplay(r, expected(f));
        expect(check.matched.length).toBeGreaterThan(0);
      });

      it('recomputes the digests the independent checker recomputed', () => {
        for (const [what, count] of Object.entries(f.meta.checked.digest_vs_data)) {
          const n = Number(count.split('/')[0]);
          const grub = what === 'EV_IPL (GRUB strings)';
          const verified = log.events.filter(
            (e) =>
              e.digestVerified &&
              (grub
                ? e.decoded?.kind === 'grub-command' || e.decoded?.kind === 'grub-kernel-cmdline'
                : e.typeName === what),
          ).length;
          expect(verified, what).toBe(n);
        }
      });

      if (f.meta.expect === 'ok')
        it('has no anomalies and a summary that matches the stated boot', () => {
          expect(log.anomalies).toEqual([]);
          const s = bootSummary(log);
          expect(s.interpreted).toBe(true);
          expect(s.events).toBe(f.meta.event_count);
          if (f.meta.secure_boot) expect(s.secureBoot).toBe(f.meta.secure_boot.log_says === 'enabled');
          if (f.meta.kernel_cmdline) expect(`${s.kernelCmdline}\0`).toBe(f.meta.kernel_cmdline);
          for (const [bank, list] of Object.entries(f.meta.efi_app_digests ?? {}))
            expect(bootSummary(log, { bank }).efiApps!.map((a) => a.digest)).toEqual(list);
        });
    });
  }
});

describe('the TDX log with a duplicated separator (real firmware)', () => {
  const f = fixture('go-eventlog__cos-113-intel-tdx-dupe-separator');

  it('replays, and reports the duplicate separator as an anomaly', () => {
    const log = parseEventLog(f.log, f.options);
    expect(log.anomalies.map((a) => a.kind).sort()).toEqual([
      'ccel-log-area-size',
      'duplicate-separator',
      'missing-separator',
    ]);
    const dup = log.anomalies.find((a) => a.kind === 'duplicate-separator')!;
    expect(dup).toMatchObject({ register: 'RTMR0', event: 15 });
    expect(dup.message).toMatch(/duplicate separator at event 15/);
    expect(checkReplay(replayEventLog(log), { rtmrs: f.meta.rtmrs! }).matched).toEqual([
      'RTMR0',
      'RTMR1',
      'RTMR2',
    ]);
  });

  it('without its (mismatched) table, only the separator anomalies remain', () => {
    const log = parseEventLog(f.log, { ccel: true });
    expect(log.anomalies.map((a) => a.kind).sort()).toEqual(['duplicate-separator', 'missing-separator']);
  });

  it('bootSummary refuses to interpret its events unless each anomaly is accepted', () => {
    const log = parseEventLog(f.log, { ccel: true });
    const s = bootSummary(log);
    expect(s.interpreted).toBe(false);
    expect(s.rtmrs).toEqual(f.meta.rtmrs);
    for (const k of ['secureBoot', 'kernelCmdline', 'efiApps', 'kernel'] as const)
      expect(s[k]).toBeUndefined();
    expect(bootSummary(log, { acceptAnomalies: ['duplicate-separator'] }).interpreted).toBe(false);
    const ok = bootSummary(log, { acceptAnomalies: ['duplicate-separator', 'missing-separator'] });
    expect(ok.interpreted).toBe(true);
    expect(ok.kernelCmdline).toMatch(/^\/syslinux\/vmlinuz\.A /);
    expect(ok.efiApps!.length).toBe(2);
  });
});

describe('replay check', () => {
  const f = fixture('go-tpm-tools__ubuntu-2404-amd-sevsnp');
  const tdx = fixture('go-eventlog__cos-113-intel-tdx');

  it('catches one changed byte in any extended event digest (every event of two logs)', () => {
    for (const g of [f, tdx]) {
      const log = parseEventLog(g.log, g.options);
      let n = 0;
      for (const e of log.events) {
        if (e.typeName === 'EV_NO_ACTION') continue;
        // The first digest starts after index, type, count and its algorithm id: 14 bytes in.
        const bad = g.log.slice();
        bad[e.offset + 14]! ^= 0x01;
        const again = parseEventLog(bad, g.options);
        expect(
          code(() => checkReplay(replayEventLog(again), expected(g))),
          `event ${e.index}`,
        ).toBe('ERR_EVENTLOG_MISMATCH');
        n++;
      }
      expect(n).toBeGreaterThan(40);
    }
  });

  it('keeps its own copy: changing the input afterwards changes nothing parsed', () => {
    const input = f.log.slice();
    const log = parseEventLog(input);
    const before = hex(log.events[5]!.digests.sha256!);
    input.fill(0);
    expect(hex(log.events[5]!.digests.sha256!)).toBe(before);
    expect(checkReplay(replayEventLog(log), { pcrs: f.meta.pcrs! }).matched.length).toBe(22);
  });

  it('catches a removed last event, and names the register', () => {
    const log = parseEventLog(f.log);
    const last = log.events.at(-1)!;
    const cut = parseEventLog(f.log.subarray(0, last.offset));
    try {
      checkReplay(replayEventLog(cut), { pcrs: f.meta.pcrs! });
      expect.unreachable();
    } catch (err) {
      expect((err as AttestationError).code).toBe('ERR_EVENTLOG_MISMATCH');
      expect((err as AttestationError).details.register).toBe(`sha1:PCR${last.pcrIndex}`);
    }
  });

  it('refuses a log that extends a PCR the expected values leave out', () => {
    const log = parseEventLog(f.log);
    const pcrs = structuredClone(f.meta.pcrs!);
    delete pcrs.sha256!['9'];
    expect(code(() => checkReplay(replayEventLog(log), { pcrs: { sha256: pcrs.sha256! } }))).toBe(
      'ERR_EVENTLOG_MISMATCH',
    );
  });

  it('refuses a log that extends nothing (a header alone)', () => {
    const empty = parseEventLog(buildLog(['sha256'], []));
    expect(empty.events).toEqual([]);
    expect(code(() => checkReplay(replayEventLog(empty), { pcrs: f.meta.pcrs! }))).toBe(
      'ERR_EVENTLOG_MISMATCH',
    );
    const ccel = parseEventLog(buildLog(['sha384'], [], 1), { ccel: true });
    expect(code(() => checkReplay(replayEventLog(ccel), { rtmrs: tdx.meta.rtmrs! }))).toBe(
      'ERR_EVENTLOG_MISMATCH',
    );
  });

  it('refuses a bank the log has no digests for', () => {
    const log = parseEventLog(fixture('go-tpm-tools__debian-10').log);
    expect(code(() => checkReplay(replayEventLog(log), { pcrs: { sha256: { '0': '00'.repeat(32) } } }))).toBe(
      'ERR_EVENTLOG_MISMATCH',
    );
  });

  it('does not compare registers the log does not extend, but lists the unexplained ones', () => {
    const log = parseEventLog(f.log);
    const pcrs = {
      sha256: {
        ...f.meta.pcrs!.sha256!,
        '10': 'ab'.repeat(32),
        '11': '00'.repeat(32),
        '17': 'ff'.repeat(32),
      },
    };
    expect(checkReplay(replayEventLog(log), { pcrs }).unexplained).toEqual(['sha256:PCR10']);
    const rtmrs = [...tdx.meta.rtmrs!];
    rtmrs[3] = 'cd'.repeat(48);
    const r = checkReplay(replayEventLog(parseEventLog(tdx.log, tdx.options)), { rtmrs });
    expect(r.unexplained).toEqual(['RTMR3']);
  });

  it('catches a changed RTMR value', () => {
    const rtmrs = [...tdx.meta.rtmrs!];
    rtmrs[1] = `00${rtmrs[1]!.slice(2)}`;
    expect(code(() => checkReplay(replayEventLog(parseEventLog(tdx.log, tdx.options)), { rtmrs }))).toBe(
      'ERR_EVENTLOG_MISMATCH',
    );
  });

  it('refuses unusable expectations as invalid arguments', () => {
    const r = replayEventLog(parseEventLog(f.log));
    expect(code(() => checkReplay(r, { rtmrs: [] }))).toBe('ERR_INVALID_ARGUMENT');
    expect(code(() => checkReplay(r, { pcrs: {} }))).toBe('ERR_INVALID_ARGUMENT');
    expect(code(() => checkReplay(r, { pcrs: { sha256: { x: '00' } } }))).toBe('ERR_INVALID_ARGUMENT');
    expect(code(() => checkReplay(r, { pcrs: { sha256: { '0': 'zz' } } }))).toBe('ERR_INVALID_ARGUMENT');
    const c = replayEventLog(parseEventLog(tdx.log, tdx.options));
    expect(code(() => checkReplay(c, { pcrs: {} }))).toBe('ERR_INVALID_ARGUMENT');
    expect(code(() => checkReplay(c, { rtmrs: ['00'] }))).toBe('ERR_INVALID_ARGUMENT');
  });
});

describe('replay rules (synthetic logs)', () => {
  const sha256 = (...parts: Uint8Array[]) => {
    const h = createHash('sha256');
    for (const p of parts) h.update(p);
    return new Uint8Array(h.digest());
  };

  it('StartupLocality sets PCR0 start; PCR17-22 start at 0xFF; EV_NO_ACTION is not extended', () => {
    const locality = new Uint8Array([...text('StartupLocality\0'), 3]);
    const log = parseEventLog(
      buildLog(
        ['sha256'],
        [
          { pcr: 0, type: 3, data: locality, digests: { sha256: new Uint8Array(32) } },
          { pcr: 0, type: 4, data: SEPARATOR },
          { pcr: 17, type: 4, data: SEPARATOR },
          { pcr: 5, type: 3, data: text('SP800-155 Event3\0'), digests: { sha256: new Uint8Array(32) } },
        ],
      ),
    );
    const r = replayEventLog(log);
    const start0 = new Uint8Array(32);
    start0[31] = 3;
    expect(hex(r.pcrs.sha256![0]!)).toBe(hex(sha256(start0, sha256(SEPARATOR))));
    expect(hex(r.pcrs.sha256![17]!)).toBe(hex(sha256(new Uint8Array(32).fill(0xff), sha256(SEPARATOR))));
    expect(Object.keys(r.pcrs.sha256!)).toEqual(['0', '17']);
  });

  it('a StartupLocality after PCR0 was extended, or twice, is malformed', () => {
    const locality = {
      pcr: 0,
      type: 3,
      data: new Uint8Array([...text('StartupLocality\0'), 3]),
      digests: { sha256: new Uint8Array(32) },
    };
    const sep = { pcr: 0, type: 4, data: SEPARATOR };
    expect(code(() => parseEventLog(buildLog(['sha256'], [sep, locality])))).toBe('ERR_EVIDENCE_MALFORMED');
    expect(code(() => parseEventLog(buildLog(['sha256'], [locality, locality])))).toBe(
      'ERR_EVIDENCE_MALFORMED',
    );
  });

  it('CCEL: MR index 1..4 are RTMR0..3 from zero; index 0 (MRTD) cannot be extended', () => {
    const log = parseEventLog(buildLog(['sha384'], [{ pcr: 4, type: 0x80000007, data: text('x') }], 1), {
      ccel: true,
    });
    const r = replayEventLog(log);
    expect(r.extendedRtmrs).toEqual([3]);
    const want = createHash('sha384')
      .update(new Uint8Array(48))
      .update(createHash('sha384').update('x').digest())
      .digest('hex');
    expect(hex(r.rtmrs![3]!)).toBe(want);
    expect(hex(r.rtmrs![0]!)).toBe('00'.repeat(48));
    expect(
      code(() =>
        parseEventLog(buildLog(['sha384'], [{ pcr: 0, type: 4, data: SEPARATOR }], 1), { ccel: true }),
      ),
    ).toBe('ERR_EVIDENCE_MALFORMED');
    expect(
      code(() =>
        parseEventLog(buildLog(['sha384'], [{ pcr: 5, type: 4, data: SEPARATOR }], 1), { ccel: true }),
      ),
    ).toBe('ERR_EVIDENCE_MALFORMED');
  });
});

describe('digest verification and anomalies', () => {
  const f = fixture('go-tpm-tools__ubuntu-2404-amd-sevsnp');

  const dataStart = (e: { offset: number; length: number; data: Uint8Array }) =>
    e.offset + e.length - e.data.length;

  it('a changed kernel command line byte is a digest mismatch, and the summary is withheld', () => {
    const log = parseEventLog(f.log);
    const ev = log.events.find((e) => e.decoded?.kind === 'grub-kernel-cmdline')!;
    const bad = f.log.slice();
    bad[dataStart(ev) + Buffer.from(ev.data).indexOf('vmlinuz')]! ^= 0x20;
    const again = parseEventLog(bad);
    // Replay is unchanged (the digests were not touched): only the data check catches this.
    expect(checkReplay(replayEventLog(again), { pcrs: f.meta.pcrs! }).matched.length).toBe(22);
    expect(again.events[ev.index]!.digestCheck).toBe('mismatch');
    expect(again.anomalies).toEqual([expect.objectContaining({ kind: 'digest-mismatch', event: ev.index })]);
    expect(bootSummary(again).interpreted).toBe(false);
    expect(bootSummary(again).kernelCmdline).toBeUndefined();
    expect(bootSummary(again, { acceptAnomalies: ['digest-mismatch'] }).kernelCmdline).toBeNull();
  });

  it('a changed SecureBoot byte is a digest mismatch', () => {
    const log = parseEventLog(f.log);
    const ev = log.events.find((e) => e.decoded?.kind === 'efi-variable' && e.decoded.name === 'SecureBoot')!;
    expect(bootSummary(log).secureBoot).toBe(false);
    const bad = f.log.slice();
    bad[dataStart(ev) + ev.data.length - 1] = 1;
    const again = parseEventLog(bad);
    expect(again.events[ev.index]!.digestCheck).toBe('mismatch');
    expect(bootSummary(again).secureBoot).toBeUndefined();
    expect(bootSummary(again, { acceptAnomalies: ['digest-mismatch'] }).secureBoot).toBeNull();
  });

  it('the EFI applications are not digest-verified (the PE hash is not in the log)', () => {
    const log = parseEventLog(f.log);
    const apps = log.events.filter((e) => e.typeName === 'EV_EFI_BOOT_SERVICES_APPLICATION');
    expect(apps.length).toBe(2);
    for (const a of apps) expect(a.digestCheck).toBe('not-recomputable');
    expect(bootSummary(log).efiApps![0]!.path).toMatch(/\\EFI\\ubuntu\\shimx64\.efi$/);
  });

  it('decodes Secure Boot databases, the Linux stub tag, GPT and boot variables', () => {
    const log = parseEventLog(fixture('go-tpm-tools__rhel8-uefi').log);
    const db = log.events.find((e) => e.decoded?.kind === 'efi-variable' && e.decoded.name === 'db')!;
    expect(db.decoded).toMatchObject({ kind: 'efi-variable', signatures: expect.any(Array) });
    if (db.decoded?.kind === 'efi-variable') {
      expect(db.decoded.signatures!.length).toBeGreaterThan(0);
      expect(db.decoded.signatures![0]!.type).toBe('x509');
    }
    const gpt = log.events.find((e) => e.decoded?.kind === 'gpt')!;
    if (gpt.decoded?.kind === 'gpt') expect(gpt.decoded.partitions.length).toBeGreaterThan(0);
    expect(log.events.some((e) => e.decoded?.kind === 'efi-variable' && e.decoded.bootOrder)).toBe(true);
    const tag = parseEventLog(f.log).events.find((e) => e.decoded?.kind === 'tagged')!;
    expect(tag.decoded).toEqual({
      kind: 'tagged',
      tagId: '0x8f3b22ed',
      description: 'LOADED_IMAGE::LoadOptions',
    });
    expect(tag.digestCheck).toBe('not-recomputable');
  });

  it('reads Secure Boot and the command line only from their registers', () => {
    const seps = [0, 1, 2, 3, 4, 5, 6, 7].map((pcr) => ({ pcr, type: 4, data: SEPARATOR }));
    const sb = new Uint8Array(32 + 20 + 1);
    sb.set(Buffer.from('61dfe48bca93d211aa0d00e098032b8c', 'hex'), 0);
    sb[16] = 10;
    sb.set(Buffer.from('SecureBoot', 'utf16le'), 32);
    sb[24] = 1;
    sb[52] = 1;
    const line = '/vmlinuz root=/dev/sda1';
    const cmd = {
      type: 0xd,
      data: text(`kernel_cmdline: ${line}\0`),
      digests: { sha256: new Uint8Array(createHash('sha256').update(line).digest()) },
    };
    const right = parseEventLog(
      buildLog(['sha256'], [{ pcr: 7, type: 0x80000001, data: sb }, ...seps, { pcr: 8, ...cmd }]),
    );
    const s = bootSummary(right);
    expect(s.secureBoot).toBe(true);
    expect(s.kernelCmdline).toBe('/vmlinuz root=/dev/sda1');
    const wrong = parseEventLog(
      buildLog(['sha256'], [{ pcr: 1, type: 0x80000001, data: sb }, ...seps, { pcr: 14, ...cmd }]),
    );
    expect(bootSummary(wrong)).toMatchObject({ secureBoot: null, kernelCmdline: null });
  });

  it('the Arch log: an empty SecureBoot variable is "off", not malformed', () => {
    const log = parseEventLog(fixture('go-tpm-tools__arch-linux-workstation').log);
    expect(bootSummary(log).secureBoot).toBe(false);
  });

  it('a duplicate or error separator in a TPM log is an anomaly', () => {
    const seps = [0, 1, 2, 3, 4, 5, 6, 7].map((pcr) => ({ pcr, type: 4, data: SEPARATOR }));
    expect(parseEventLog(buildLog(['sha256'], seps)).anomalies).toEqual([]);
    const dup = parseEventLog(buildLog(['sha256'], [...seps, { pcr: 7, type: 4, data: SEPARATOR }]));
    expect(dup.anomalies).toEqual([
      expect.objectContaining({ kind: 'duplicate-separator', register: 'PCR7', event: 8 }),
    ]);
    const err = parseEventLog(
      buildLog(['sha256'], [...seps.slice(1), { pcr: 0, type: 4, data: new Uint8Array([1, 0, 0, 0]) }]),
    );
    expect(err.anomalies.map((a) => a.kind)).toEqual(['separator-error']);
    const missing = parseEventLog(buildLog(['sha256'], seps.slice(1)));
    expect(missing.anomalies).toEqual([
      expect.objectContaining({ kind: 'missing-separator', register: 'PCR0' }),
    ]);
  });
});

describe('must-fail logs: ERR_EVIDENCE_MALFORMED', () => {
  const good = fixture('go-tpm-tools__glinux-alex');
  const tdx = fixture('go-eventlog__cos-113-intel-tdx');
  const malformed = (b: Uint8Array, o: object = {}) => code(() => parseEventLog(b, o));

  it('text, empty, truncated logs', () => {
    expect(malformed(text('This is not a TPM event log, just some ASCII text written by hand.\n'))).toBe(
      'ERR_EVIDENCE_MALFORMED',
    );
    expect(malformed(new Uint8Array(0))).toBe('ERR_EVIDENCE_MALFORMED');
    const log = parseEventLog(good.log);
    for (const e of log.events.slice(1, 6))
      expect(malformed(good.log.subarray(0, e.offset + 20)), `cut in event ${e.index}`).toBe(
        'ERR_EVIDENCE_MALFORMED',
      );
    expect(malformed(good.log.subarray(0, good.log.length - 1))).toBe('ERR_EVIDENCE_MALFORMED');
  });

  it('digest counts or algorithms that disagree with the Spec ID header', () => {
    const log = buildLog(['sha1', 'sha256'], [{ pcr: 0, type: 4, data: SEPARATOR }]);
    const specEnd = 32 + new DataView(log.buffer).getUint32(28, true);
    const count = log.slice();
    count[specEnd + 8] = 1;
    expect(malformed(count)).toBe('ERR_EVIDENCE_MALFORMED');
    const alg = log.slice();
    alg[specEnd + 12] = 0x0c; // sha1 → sha384, not in the header
    expect(malformed(alg)).toBe('ERR_EVIDENCE_MALFORMED');
    const twice = log.slice();
    twice[specEnd + 12] = 0x0b; // two sha256 digests
    expect(malformed(twice)).toBe('ERR_EVIDENCE_MALFORMED');
    // A record that is well-formed but carries fewer digests than the header names.
    const one = buildLog(['sha1'], [{ pcr: 0, type: 4, data: SEPARATOR }]);
    const oneHeader = 32 + new DataView(one.buffer).getUint32(28, true);
    const fewer = new Uint8Array([...log.subarray(0, specEnd), ...one.subarray(oneHeader)]);
    expect(malformed(fewer)).toBe('ERR_EVIDENCE_MALFORMED');
    const unknownAlg = log.slice();
    unknownAlg[32 + 28] = 0x99;
    expect(malformed(unknownAlg)).toBe('ERR_EVIDENCE_MALFORMED');
    const size = log.slice();
    size[32 + 30] = 21; // sha1 digest size 21
    expect(malformed(size)).toBe('ERR_EVIDENCE_MALFORMED');
  });

  it('out-of-range indexes, oversize data, too many events, too large a log', () => {
    expect(malformed(buildLog(['sha256'], [{ pcr: 24, type: 4, data: SEPARATOR }]))).toBe(
      'ERR_EVIDENCE_MALFORMED',
    );
    expect(
      malformed(buildLog(['sha256'], [{ pcr: 0, type: 13, data: new Uint8Array(MAX_EVENT_DATA_SIZE + 1) }])),
    ).toBe('ERR_EVIDENCE_MALFORMED');
    const many = Array.from({ length: MAX_EVENT_COUNT + 1 }, () => ({
      pcr: 8,
      type: 13,
      data: new Uint8Array(1),
    }));
    expect(malformed(buildLog(['sha1'], many))).toBe('ERR_EVIDENCE_MALFORMED');
    expect(parseEventLog(buildLog(['sha1'], many.slice(1))).events.length).toBe(MAX_EVENT_COUNT);
    expect(malformed(new Uint8Array(MAX_EVENT_LOG_SIZE + 1))).toBe('ERR_EVIDENCE_MALFORMED');
  });

  it('a CCEL needs the crypto-agile header with SHA-384; fill must really be fill', () => {
    expect(malformed(fixture('go-tpm-tools__debian-10').log, { ccel: true })).toBe('ERR_EVIDENCE_MALFORMED');
    expect(malformed(good.log, { ccel: true })).toBe('ERR_EVIDENCE_MALFORMED');
    const log = parseEventLog(tdx.log, { ccel: true });
    const junk = tdx.log.slice();
    junk[log.size + 1000] = 0x00;
    expect(malformed(junk, { ccel: true })).toBe('ERR_EVIDENCE_MALFORMED');
    for (const at of [log.size + 63, log.size + 64, log.size + 300, tdx.log.length - 1]) {
      const late = tdx.log.slice();
      late[at] = 0xfe;
      expect(malformed(late, { ccel: true }), `byte ${at}`).toBe('ERR_EVIDENCE_MALFORMED');
    }
    expect(parseEventLog(tdx.log.subarray(0, log.size), { ccel: true }).events.length).toBe(43);
    const zeros = new Uint8Array(log.size + 4096);
    zeros.set(tdx.log.subarray(0, log.size));
    expect(parseEventLog(zeros, { ccel: true }).trailing).toBe(4096);
  });

  it('a CCEL table that is corrupt, not TDX, or smaller than the events', () => {
    const t = tdx.table!;
    expect(parseCcelTable(t)).toMatchObject({ ccType: 2, laml: 0x40000, lasa: '0xbedbf000' });
    const sum = t.slice();
    sum[40]! ^= 1;
    expect(malformed(tdx.log, { ccel: true, ccelTable: sum })).toBe('ERR_EVIDENCE_MALFORMED');
    const fixSum = (b: Uint8Array) => {
      b[9] = 0;
      let n = 0;
      for (const x of b) n = (n + x) & 0xff;
      b[9] = (0x100 - n) & 0xff;
      return b;
    };
    expect(parseCcelTable(fixSum(t.slice())).laml).toBe(0x40000);
    const sev = t.slice();
    sev[36] = 1;
    expect(malformed(tdx.log, { ccel: true, ccelTable: fixSum(sev) })).toBe('ERR_EVIDENCE_MALFORMED');
    const small = t.slice();
    small.set(u32(0x1000), 40);
    expect(malformed(tdx.log, { ccel: true, ccelTable: fixSum(small) })).toBe('ERR_EVIDENCE_MALFORMED');
    expect(malformed(good.log, { ccelTable: t })).toBe('ERR_EVIDENCE_MALFORMED');
    expect(malformed(tdx.log, { ccel: true, ccelTable: t.subarray(0, 40) })).toBe('ERR_EVIDENCE_MALFORMED');
  });
});
