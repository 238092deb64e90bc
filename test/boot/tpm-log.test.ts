/**
 * Measured boot against a TPM quote: the real Google Cloud vTPM quote (verified with its AK) and
 * its firmware log, through bootClaims() and the policy's boot section.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { AttestationError } from '../../src/errors.js';
import { appraiseBoot, type BootClaims, bootClaims } from '../../src/evidence/boot.js';
import { parseEventLog, replayEventLog } from '../../src/evidence/eventlog/index.js';
import { parsePolicy } from '../../src/evidence/policy.js';
import { akFromTpmPublic, type PcrValues, verifyTpmQuote } from '../../src/evidence/tpm/quote.js';
import { buildLog, fixture, SEPARATOR, text } from '../eventlog/fixtures.js';
import { thrownCode as code } from '../helpers/codes.js';

const DIR = new URL('../fixtures/gce-vtpm/go-tpm-tools__gce-cos-85-nonce9009/', import.meta.url);
const file = (n: string) => new Uint8Array(readFileSync(new URL(n, DIR)));
const gce = fixture('go-tpm-tools__gce-cos-85-nonce9009');
const ak = akFromTpmPublic(file('ak-public.tpmt'));
const allPcrs = JSON.parse(readFileSync(new URL('pcrs.json', DIR), 'utf8')) as PcrValues;

function quoted(bank: 'sha1' | 'sha256' | 'sha384') {
  return verifyTpmQuote(
    { message: file(`quote-${bank}.msg`), signature: file(`quote-${bank}.sig`), pcrs: allPcrs },
    ak,
  ).claims.pcrs;
}

function fieldOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return (err as AttestationError).details.field;
  }
  return undefined;
}

describe('the GCE log against its verified quotes', () => {
  it.each(['sha256', 'sha384'] as const)('replays to the %s quote: boot.pcrs = the quoted PCR0-9', (bank) => {
    const boot = bootClaims({ log: gce.log }, { pcrs: quoted(bank) });
    expect(Object.keys(boot.pcrs!)).toEqual([bank]);
    expect(boot.pcrs![bank]).toEqual(gce.meta.pcrs![bank]);
    expect(boot.unexplained).toEqual([`${bank}:PCR10`]);
    expect(boot).toMatchObject({ source: 'tpm', secureBoot: true, events: 44, interpreted: true });
    expect(boot.efiApps!.length).toBe(3);
    expect(boot.efiApps![0]!.digest.length).toBe(bank === 'sha256' ? 64 : 96);
  });

  it('one byte changed in any event digest of PCR0-9 is refused (ERR_EVENTLOG_MISMATCH)', () => {
    const pcrs = quoted('sha256');
    const log = parseEventLog(gce.log);
    for (const e of log.events.filter((x) => x.digestCheck !== 'not-extended')) {
      const bytes = new Uint8Array(gce.log);
      // The SHA-256 digest: after index, type, count, the SHA-1 entry (2 + 20) and its alg id.
      bytes[e.offset + 12 + 22 + 2]! ^= 1;
      expect(code(() => bootClaims({ log: bytes }, { pcrs }))).toBe('ERR_EVENTLOG_MISMATCH');
    }
  });

  it('the last event removed is refused', () => {
    const log = parseEventLog(gce.log);
    const last = log.events.at(-1)!;
    const bytes = gce.log.subarray(0, last.offset);
    expect(code(() => bootClaims({ log: bytes }, { pcrs: quoted('sha256') }))).toBe('ERR_EVENTLOG_MISMATCH');
  });

  it('a quote over other PCR values is refused', () => {
    const other = fixture('go-tpm-tools__cos-101-amd-sev');
    expect(code(() => bootClaims({ log: other.log }, { pcrs: quoted('sha256') }))).toBe(
      'ERR_EVENTLOG_MISMATCH',
    );
  });

  it('a CCEL against TPM PCRs is refused', () => {
    const cos = fixture('go-eventlog__cos-113-intel-tdx');
    expect(code(() => bootClaims({ log: cos.log, ccel: true }, { pcrs: quoted('sha256') }))).toBe(
      'ERR_EVENTLOG_MISMATCH',
    );
  });
});

describe('policy boot.pcrs and the others on a TPM log', () => {
  const boot = () => bootClaims({ log: gce.log }, { pcrs: quoted('sha256') });
  const appraise = (b: BootClaims, policy: unknown) => appraiseBoot(b, parsePolicy({ boot: policy }).boot);

  it('pcrs: the quoted value passes, another value or a PCR the log does not explain is refused', () => {
    const b = boot();
    appraise(b, { pcrs: { sha256: { '4': [gce.meta.pcrs!.sha256!['4']!] } } });
    expect(fieldOf(() => appraise(b, { pcrs: { sha256: { '4': [gce.meta.pcrs!.sha256!['5']!] } } }))).toBe(
      'boot.pcrs',
    );
    expect(fieldOf(() => appraise(b, { pcrs: { sha256: { '10': ['00'.repeat(32)] } } }))).toBe('boot.pcrs');
    expect(fieldOf(() => appraise(b, { pcrs: { sha384: { '4': ['00'.repeat(48)] } } }))).toBe('boot.pcrs');
    expect(fieldOf(() => appraise(b, { rtmrs: { '1': ['00'.repeat(48)] } }))).toBe('boot.rtmrs');
  });

  it('secureBoot: true passes (the COS 85 variable is 01), false is refused', () => {
    const b = boot();
    appraise(b, { secureBoot: true });
    expect(fieldOf(() => appraise(b, { secureBoot: false }))).toBe('boot.secureBoot');
  });

  it('kernelCmdlines and efiAppDigests on the sha256 bank', () => {
    const b = boot();
    appraise(b, { kernelCmdlines: [b.kernelCmdline!], efiAppDigests: b.efiApps!.map((a) => a.digest) });
    expect(fieldOf(() => appraise(b, { kernelCmdlines: ['console=ttyS0'] }))).toBe('boot.kernelCmdlines');
    expect(fieldOf(() => appraise(b, { efiAppDigests: b.efiApps!.slice(1).map((a) => a.digest) }))).toBe(
      'boot.efiAppDigests',
    );
  });

  it('requireDigestsVerified refuses a log with a digest that does not match its data', () => {
    const action = text('Calling EFI Application from Boot Option');
    const events = (bad: boolean) => [
      ...[0, 1, 2, 3, 4, 5, 6, 7].map((pcr) => ({ pcr, type: 4, data: SEPARATOR })),
      {
        pcr: 4,
        type: 0x80000007,
        data: action,
        ...(bad ? { digests: { sha256: new Uint8Array(32).fill(1) } } : {}),
      },
    ];
    const good = buildLog(['sha256'], events(false));
    const bad = buildLog(['sha256'], events(true));
    const pcrsOf = (log: Uint8Array) => {
      const r = replayEventLog(parseEventLog(log));
      return Object.fromEntries(
        Object.entries(r.pcrs.sha256!).map(([i, v]) => [i, Buffer.from(v).toString('hex')]),
      );
    };
    const g = bootClaims({ log: good }, { pcrs: { sha256: pcrsOf(good) } });
    appraise(g, { requireDigestsVerified: true });
    const m = bootClaims({ log: bad }, { pcrs: { sha256: pcrsOf(bad) } });
    expect(m.digestMismatches).toBe(1);
    expect(fieldOf(() => appraise(m, { requireDigestsVerified: true }))).toBe('boot.requireDigestsVerified');
    // A log that records no EFI application passes no efiAppDigests list.
    expect(fieldOf(() => appraise(g, { efiAppDigests: ['00'.repeat(32)] }))).toBe('boot.efiAppDigests');
    // Register pins alone do not read single events.
    appraise(m, { pcrs: { sha256: { '4': [m.pcrs!.sha256!['4']!] } } });
  });

  it('policy parsing refuses malformed boot sections', () => {
    for (const bad of [
      { pcrs: { sha256: { '4': ['00'] } } },
      { pcrs: { md5: { '4': ['00'.repeat(16)] } } },
      { pcrs: { sha256: { '24': ['00'.repeat(32)] } } },
      { pcrs: { sha256: { '4': [] } } },
      { pcrs: {} },
      { rtmrs: { '4': ['00'.repeat(48)] } },
      { secureBoot: 'yes' },
      { kernelCmdlines: [1] },
      { efiAppDigests: ['zz'] },
      { acceptAnomalies: ['something'] },
      { unknown: true },
    ])
      expect(code(() => parsePolicy({ boot: bad }))).toBe('ERR_POLICY_INVALID');
  });
});
