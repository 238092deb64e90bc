/**
 * Measured boot on TDX: the CCEL checked against RTMR0-3 of a verified quote (simulated quotes
 * carrying the RTMRs of the real cos-113 log), and the policy's boot section on the result.
 */
import { describe, expect, it } from 'vitest';
import type { Policy } from '../../src/evidence/policy.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import type { EvidenceInput, TdxClaims } from '../../src/evidence/types.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { fixture } from '../eventlog/fixtures.js';
import { errorOf } from '../tdx/fixtures.js';

const NOW = new Date('2026-01-15T00:00:00Z');
const RD = new Uint8Array(64).fill(7);
const cos = fixture('go-eventlog__cos-113-intel-tdx');
const dupe = fixture('go-eventlog__cos-113-intel-tdx-dupe-separator');
const gce = fixture('go-tpm-tools__gce-cos-85-nonce9009');
const COS_CMDLINE_START = '/syslinux/vmlinuz.A init=/usr/lib/systemd/systemd rootwait ro noresume';

async function tdxWith(rtmrs: string[], log?: EvidenceInput['eventLog']): Promise<EvidenceInput> {
  const ev = await simulated.tdx({ now: NOW, rtmrs }).getEvidence(RD);
  return log ? { ...ev, eventLog: log } : ev;
}
const ccel = (f = cos, bytes = f.log) => ({
  log: bytes,
  ccel: true,
  ...(f.table ? { ccelTable: f.table } : {}),
});
function verify(input: EvidenceInput, policy?: Policy) {
  return verifyEvidence(input, {
    now: NOW,
    trustAnchors: simulated.trustAnchors(),
    offline: true,
    ...(policy ? { policy } : {}),
  }) as Promise<TdxClaims>;
}

describe('TDX + CCEL', () => {
  it('a CCEL that replays to the quote RTMRs gives claims.boot', async () => {
    const c = await verify(await tdxWith(cos.meta.rtmrs!, ccel()));
    expect(c.boot).toMatchObject({
      source: 'ccel',
      rtmrs: cos.meta.rtmrs,
      secureBoot: false,
      digestsVerified: '31/43',
      events: 43,
      anomalies: [],
      interpreted: true,
    });
    expect(c.boot!.kernelCmdline!.startsWith(COS_CMDLINE_START)).toBe(true);
    expect(c.boot!.efiApps!.map((a) => a.digest)).toEqual([
      '5a10026c9ad41d1f90dc9cfe88bcabe1842ccfd85495c81b1a1ab926a9ef23b5d2e60eefeba0415bbe5c8c328a899a0a',
      'b1fb7f4c0689f5a920b800b2607075f4906f8c8282d44e56fc991ec01f1adac176d2040a26f1453df112d7c4f4293fc9',
    ]);
    expect(c.workloadPinned).toBe(false);
  });

  it('evidence without a log has no boot claims', async () => {
    const c = await verify(await tdxWith(cos.meta.rtmrs!));
    expect(c.boot).toBeUndefined();
  });

  it('a quote with other RTMRs is refused (ERR_EVENTLOG_MISMATCH)', async () => {
    const other = [...cos.meta.rtmrs!];
    other[1] = dupe.meta.rtmrs![1]!;
    const err = await errorOf(async () => verify(await tdxWith(other, ccel())));
    expect(err.code).toBe('ERR_EVENTLOG_MISMATCH');
    expect(err.details.register).toBe('RTMR1');
  });

  it('one byte changed in an event digest of the log is refused', async () => {
    const bytes = new Uint8Array(cos.log);
    const log = (await import('../../src/evidence/eventlog/index.js')).parseEventLog(bytes, cos.options);
    const e = log.events[5]!;
    // The digest sits after index(4) type(4) count(4) alg(2).
    bytes[e.offset + 14]! ^= 1;
    const err = await errorOf(async () => verify(await tdxWith(cos.meta.rtmrs!, ccel(cos, bytes))));
    expect(err.code).toBe('ERR_EVENTLOG_MISMATCH');
  });

  it('an unparseable log is ERR_EVIDENCE_MALFORMED', async () => {
    const err = await errorOf(async () =>
      verify(await tdxWith(cos.meta.rtmrs!, { log: new Uint8Array(Buffer.from('not a log')), ccel: true })),
    );
    expect(err.code).toBe('ERR_EVIDENCE_MALFORMED');
  });

  it('a TPM log against a TDX quote is refused', async () => {
    const err = await errorOf(async () => verify(await tdxWith(cos.meta.rtmrs!, { log: gce.log })));
    expect(err.code).toBe('ERR_EVENTLOG_MISMATCH');
  });

  it('raw SNP evidence with a log is refused (nothing to check it against)', async () => {
    const ev = await simulated.snp().getEvidence(RD);
    const err = await errorOf(() =>
      verifyEvidence(
        { ...ev, eventLog: { log: gce.log } },
        { now: NOW, trustAnchors: simulated.trustAnchors(), offline: true },
      ),
    );
    expect(err.code).toBe('ERR_EVIDENCE_MALFORMED');
  });
});

describe('policy boot on TDX', () => {
  const cmdline = async () => (await verify(await tdxWith(cos.meta.rtmrs!, ccel()))).boot!.kernelCmdline!;

  it('a boot section with evidence that carries no log is refused', async () => {
    const err = await errorOf(async () =>
      verify(await tdxWith(cos.meta.rtmrs!), { boot: { rtmrs: { '1': [cos.meta.rtmrs![1]!] } } }),
    );
    expect(err.code).toBe('ERR_EVIDENCE_POLICY');
    expect(err.details.field).toBe('boot');
  });

  it('a gce section with raw evidence (no vTPM AK certificate) is refused', async () => {
    const err = await errorOf(async () =>
      verify(await tdxWith(cos.meta.rtmrs!, ccel()), { gce: { zones: ['us-central1-a'] } }),
    );
    expect(err.code).toBe('ERR_EVIDENCE_POLICY');
    expect(err.details.field).toBe('gce');
  });

  it('rtmrs: the right value passes and pins the workload; another is refused', async () => {
    const ev = await tdxWith(cos.meta.rtmrs!, ccel());
    const c = await verify(ev, {
      boot: { rtmrs: { '1': [cos.meta.rtmrs![1]!], '2': [cos.meta.rtmrs![2]!] } },
    });
    expect(c.workloadPinned).toBe(true);
    const err = await errorOf(() => verify(ev, { boot: { rtmrs: { '1': [dupe.meta.rtmrs![1]!] } } }));
    expect(err.code).toBe('ERR_EVIDENCE_POLICY');
    expect(err.details.field).toBe('boot.rtmrs');
  });

  it('pcrs on a CCEL is refused', async () => {
    const err = await errorOf(async () =>
      verify(await tdxWith(cos.meta.rtmrs!, ccel()), {
        boot: { pcrs: { sha384: { '0': ['00'.repeat(48)] } } },
      }),
    );
    expect(err.details.field).toBe('boot.pcrs');
  });

  it('kernelCmdlines: exact line passes and pins; another line is refused', async () => {
    const line = await cmdline();
    const ev = await tdxWith(cos.meta.rtmrs!, ccel());
    const c = await verify(ev, { boot: { kernelCmdlines: [line] } });
    expect(c.workloadPinned).toBe(true);
    const err = await errorOf(() => verify(ev, { boot: { kernelCmdlines: [`${line} `, line.slice(1)] } }));
    expect(err.details.field).toBe('boot.kernelCmdlines');
  });

  it('efiAppDigests: all listed passes; one missing is refused', async () => {
    const ev = await tdxWith(cos.meta.rtmrs!, ccel());
    const apps = (await verify(ev)).boot!.efiApps!.map((a) => a.digest);
    const c = await verify(ev, { boot: { efiAppDigests: apps } });
    expect(c.workloadPinned).toBe(true);
    const err = await errorOf(() => verify(ev, { boot: { efiAppDigests: [apps[0]!] } }));
    expect(err.details.field).toBe('boot.efiAppDigests');
  });

  it('secureBoot: true is refused on this log (Secure Boot off), false passes; not a workload pin', async () => {
    const ev = await tdxWith(cos.meta.rtmrs!, ccel());
    const err = await errorOf(() => verify(ev, { boot: { secureBoot: true } }));
    expect(err.details.field).toBe('boot.secureBoot');
    const c = await verify(ev, { boot: { secureBoot: false } });
    expect(c.workloadPinned).toBe(false);
  });

  describe('a log with anomalies (both separators in RTMR0)', () => {
    const ev = () => tdxWith(dupe.meta.rtmrs!, ccel(dupe));
    const kinds = ['duplicate-separator', 'missing-separator', 'ccel-log-area-size'];

    it('replays and reports them; register pins are unaffected', async () => {
      const c = await verify(await ev(), { boot: { rtmrs: { '0': [dupe.meta.rtmrs![0]!] } } });
      expect(c.boot!.anomalies.map((a) => a.kind)).toEqual(kinds);
      expect(c.boot!.interpreted).toBe(false);
      expect(c.boot!.kernelCmdline).toBeNull();
      expect(c.boot!.efiApps).toBeNull();
    });

    it.each([
      ['kernelCmdlines', 'line'],
      ['efiAppDigests', 'apps'],
      ['secureBoot', 'sb'],
    ])('%s is refused unless the anomalies are accepted', async (field) => {
      const good = await verify(await tdxWith(cos.meta.rtmrs!, ccel()));
      const value =
        field === 'kernelCmdlines'
          ? [good.boot!.kernelCmdline!]
          : field === 'efiAppDigests'
            ? good.boot!.efiApps!.map((a) => a.digest)
            : false;
      const e = await ev();
      const err = await errorOf(() => verify(e, { boot: { [field]: value } }));
      expect(err.code).toBe('ERR_EVIDENCE_POLICY');
      expect(err.details.anomalies).toEqual(kinds);
      const partial = await errorOf(() =>
        verify(e, { boot: { [field]: value, acceptAnomalies: ['duplicate-separator'] } }),
      );
      expect(partial.code).toBe('ERR_EVIDENCE_POLICY');
      const c = await verify(e, { boot: { [field]: value, acceptAnomalies: kinds } });
      expect(c.boot!.interpreted).toBe(true);
    });
  });
});
