/**
 * Real event logs from other machines than test/fixtures/eventlog (test/fixtures/eventlog-more/,
 * from google/go-eventlog's and confidential-containers/trustee's testdata): each replays to the
 * register values its source's own tests state — PCR banks for ExtractFirmwareLogState, PCRs read
 * from the TPM for EventLog.Verify, RTMRs for trustee's replay_and_match — with the EFI application
 * digests and command line the source gives, and one changed digest byte is refused.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  bootSummary,
  checkReplay,
  parseEventLog,
  replayEventLog,
} from '../../src/evidence/eventlog/index.js';
import { thrownCode } from '../helpers/codes.js';

const DIR = fileURLToPath(new URL('../fixtures/eventlog-more/', import.meta.url));

interface Meta {
  id: string;
  /** The values the source's test replays the log to (only PCRs the log extends). */
  pcrs?: Record<string, Record<string, string>>;
  /** PCRs read from the machine's TPM (all 24); the log explains those it extends. */
  quoted_pcrs?: Record<string, Record<string, string>>;
  efi_app_digests?: Record<string, string[]>;
  kernel_cmdline?: string;
  expect_anomalies?: string[];
  /** CCEL logs: RTMR0-3 the source's test replays the log to. */
  rtmrs?: string[];
  files: Record<string, { sha256: string; size: number }>;
}

const all = readdirSync(DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name);
const logs = all
  .filter((name) => !name.startsWith('trustee__'))
  .map((name) => ({
    name,
    meta: JSON.parse(readFileSync(`${DIR}${name}/meta.json`, 'utf8')) as Meta,
    bytes: new Uint8Array(readFileSync(`${DIR}${name}/eventlog.bin`)),
  }));

describe('real event logs from go-eventlog’s testdata', () => {
  it('are the six logs the README lists', () => {
    expect(logs.map((l) => l.name).sort()).toEqual([
      'go-eventlog__cos-85-amd-sev',
      'go-eventlog__linux-tpm12',
      'go-eventlog__option-rom',
      'go-eventlog__ubuntu-1804-amd-sev',
      'go-eventlog__ubuntu-2104-no-dbx',
      'go-eventlog__windows-gcp-shielded-vm',
    ]);
  });

  for (const { name, meta, bytes } of logs) {
    describe(name, () => {
      it('is the file its provenance names', async () => {
        const { createHash } = await import('node:crypto');
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(meta.files['eventlog.bin']!.sha256);
      });

      it('replays to the values its source states', () => {
        const log = parseEventLog(bytes);
        const replayed = replayEventLog(log);
        const expected = meta.pcrs ?? meta.quoted_pcrs!;
        if (meta.pcrs) {
          // Every stated value is the replayed one (the source states some of the PCRs the log extends).
          for (const [bank, values] of Object.entries(meta.pcrs))
            for (const [i, v] of Object.entries(values))
              expect(Buffer.from(replayed.pcrs[bank]![Number(i)]!).toString('hex'), `${bank} PCR${i}`).toBe(
                v,
              );
        } else {
          // Every PCR the log extends in the quoted bank is one the TPM's values confirm.
          const { matched } = checkReplay(replayed, { pcrs: expected });
          const bank = Object.keys(meta.quoted_pcrs!)[0]!;
          const extended = new Set(
            log.events.filter((e) => e.digestCheck !== 'not-extended').map((e) => `${bank}:PCR${e.pcrIndex}`),
          );
          expect(matched.sort()).toEqual([...extended].sort());
          expect(matched.length).toBeGreaterThanOrEqual(8);
        }
        expect(log.anomalies.map((a) => a.kind).filter((k) => k === 'unmeasured-records')).toEqual(
          meta.expect_anomalies ?? [],
        );
      });

      if (meta.efi_app_digests || meta.kernel_cmdline)
        it('gives the EFI application digests and command line its source states', () => {
          const log = parseEventLog(bytes);
          for (const [bank, digests] of Object.entries(meta.efi_app_digests ?? {})) {
            const s = bootSummary(log, { bank });
            expect(s.interpreted).toBe(true);
            expect(s.efiApps!.map((a) => a.digest)).toEqual(digests);
          }
          if (meta.kernel_cmdline) expect(`${bootSummary(log).kernelCmdline}\0`).toBe(meta.kernel_cmdline);
        });

      it('one byte changed in an extended event’s digest is refused', () => {
        const expected = meta.pcrs ?? meta.quoted_pcrs!;
        const bank = Object.keys(expected)[0]!;
        const log = parseEventLog(bytes);
        const e = log.events.find(
          (x) => x.digestCheck !== 'not-extended' && expected[bank]![String(x.pcrIndex)] !== undefined,
        )!;
        const digest = e.digests[bank]!;
        const at = Buffer.from(bytes.subarray(e.offset, e.offset + e.length)).indexOf(Buffer.from(digest));
        const bad = new Uint8Array(bytes);
        bad[e.offset + at]! ^= 1;
        const again = replayEventLog(parseEventLog(bad));
        expect(Buffer.from(again.pcrs[bank]![e.pcrIndex]!).toString('hex')).not.toBe(
          expected[bank]![String(e.pcrIndex)],
        );
        if (meta.quoted_pcrs)
          expect(thrownCode(() => checkReplay(again, { pcrs: expected }))).toBe('ERR_EVENTLOG_MISMATCH');
      });
    });
  }
});

describe('real TDX CCEL logs from trustee’s testdata', () => {
  const ccels = all
    .filter((name) => name.startsWith('trustee__'))
    .map((name) => ({
      name,
      meta: JSON.parse(readFileSync(`${DIR}${name}/meta.json`, 'utf8')) as Meta,
      bytes: new Uint8Array(readFileSync(`${DIR}${name}/ccel.bin`)),
    }));

  it('are the five logs the README lists', () => {
    expect(ccels.map((c) => c.name).sort()).toEqual([
      'trustee__ccel-data',
      'trustee__ccel-data-gcp',
      'trustee__ccel-data-grub',
      'trustee__ccel-data-grub-gke',
      'trustee__ccel-data-ovmf',
    ]);
  });

  for (const { name, meta, bytes } of ccels)
    it(`${name}: is its file, replays to the RTMRs its source states, refuses a changed digest`, async () => {
      const { createHash } = await import('node:crypto');
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(meta.files['ccel.bin']!.sha256);
      const log = parseEventLog(bytes, { ccel: true });
      const replayed = replayEventLog(log);
      expect(replayed.rtmrs!.map((r) => Buffer.from(r).toString('hex'))).toEqual(meta.rtmrs);
      checkReplay(replayed, { rtmrs: meta.rtmrs! });
      const e = log.events.find((x) => x.digestCheck !== 'not-extended')!;
      const at = Buffer.from(bytes.subarray(e.offset, e.offset + e.length)).indexOf(
        Buffer.from(e.digests.sha384!),
      );
      const bad = new Uint8Array(bytes);
      bad[e.offset + at]! ^= 1;
      expect(
        thrownCode(() =>
          checkReplay(replayEventLog(parseEventLog(bad, { ccel: true })), { rtmrs: meta.rtmrs! }),
        ),
      ).toBe('ERR_EVENTLOG_MISMATCH');
    });
});

describe('records of index 0xFFFFFFFF after a SHA-1-format log’s events', () => {
  const rom = logs.find((l) => l.name === 'go-eventlog__option-rom')!;
  const cut = rom.bytes.length - 456;

  it('are framed, reported and not read; without them the log is the same events', () => {
    const log = parseEventLog(rom.bytes);
    expect(log.anomalies.at(-1)).toMatchObject({ kind: 'unmeasured-records' });
    const without = parseEventLog(rom.bytes.subarray(0, cut));
    expect(without.events.length).toBe(log.events.length);
    expect(without.anomalies.some((a) => a.kind === 'unmeasured-records')).toBe(false);
  });

  it('an event after them, a truncated one, or one of another type is refused', () => {
    const tail = rom.bytes.subarray(cut);
    const firstEvent = rom.bytes.subarray(
      0,
      32 + new DataView(rom.bytes.buffer, rom.bytes.byteOffset).getUint32(28, true),
    );
    const after = new Uint8Array(Buffer.concat([rom.bytes, firstEvent]));
    expect(thrownCode(() => parseEventLog(after))).toBe('ERR_EVIDENCE_MALFORMED');
    expect(thrownCode(() => parseEventLog(rom.bytes.subarray(0, rom.bytes.length - 1)))).toBe(
      'ERR_EVIDENCE_MALFORMED',
    );
    const typed = new Uint8Array(rom.bytes);
    typed[cut + 4] = 0x0d; // EV_IPL, not EV_NO_ACTION
    expect(thrownCode(() => parseEventLog(typed))).toBe('ERR_EVIDENCE_MALFORMED');
    // Two of them are two records.
    const two = parseEventLog(new Uint8Array(Buffer.concat([rom.bytes, tail])));
    expect(two.anomalies.at(-1)!.message).toMatch(/^2 record/);
  });
});
