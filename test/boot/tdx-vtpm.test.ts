/**
 * Two boot logs in one evidence collection, as a Google Cloud TDX VM sends them
 * (combine(configfsTsm(), gceVtpm())): the CCEL checked against the quote's RTMRs (`claims.boot`),
 * the vTPM's log against its quoted PCRs (`claims.vtpm.boot`), and the policy's boot section split
 * between them: `rtmrs` → the CCEL, `pcrs` → the vTPM log, single-event pins → each log.
 *
 * The TDX quote is simulated with the RTMRs of the real cos-113 CCEL; the vTPM evidence is the
 * real Google Cloud attestation of test/fixtures/gce-vtpm (COS 85: its AK key, quote, PCRs, log
 * and instance-identity extension), its AK certificate re-issued by a test CA valid at the
 * simulated quote's time (Google's expired in 2022, before the simulator's PCK certificates). The
 * two come from different machines (no public capture has both): what is tested is that each log
 * is held to its own registers and each pin to the logs it names.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseEventLog } from '../../src/evidence/eventlog/index.js';
import { GCE_INSTANCE_INFO_OID } from '../../src/evidence/gce/vtpm.js';
import type { Policy } from '../../src/evidence/policy.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { akFromTpmPublic } from '../../src/evidence/tpm/quote.js';
import type { EvidenceInput, TdxClaims } from '../../src/evidence/types.js';
import { createVerifier } from '../../src/evidence/verifier.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import {
  basicConstraints,
  buildCertificate,
  keyUsage,
  type NameSpec,
} from '../../src/evidence/x509/build.js';
import { parseCertificate } from '../../src/evidence/x509/cert.js';
import { fixture } from '../eventlog/fixtures.js';
import { errorOf } from '../tdx/fixtures.js';

const AT = new Date('2026-01-15T00:00:00Z');
const RD = new Uint8Array(64).fill(5);
const cos = fixture('go-eventlog__cos-113-intel-tdx');
const gce = fixture('go-tpm-tools__gce-cos-85-nonce9009');
const DIR = new URL('../fixtures/gce-vtpm/go-tpm-tools__gce-cos-85-nonce9009/', import.meta.url);
const file = (n: string) => new Uint8Array(readFileSync(new URL(n, DIR)));
const pcrs = JSON.parse(readFileSync(new URL('pcrs.json', DIR), 'utf8'));
const P4 = gce.meta.pcrs!.sha256!['4']!;

/** A test EK/AK CA (root → intermediate) and the real AK key certified under it. */
function testCa() {
  const ca = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const mid = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rootName: NameSpec = [['CN', 'test vTPM root']];
  const midName: NameSpec = [['CN', 'test vTPM intermediate']];
  const window = { notBefore: new Date('2025-01-01T00:00:00Z'), notAfter: new Date('2030-01-01T00:00:00Z') };
  const caExt = [
    { oid: '2.5.29.19', value: basicConstraints(true), critical: true },
    { oid: '2.5.29.15', value: keyUsage([5, 6]), critical: true },
  ];
  const base = { ...window, algorithm: 'ecdsa-sha256' as const };
  const root = buildCertificate({
    ...base,
    subject: rootName,
    issuer: rootName,
    serial: Uint8Array.of(1),
    publicKey: ca.publicKey,
    signingKey: ca.privateKey,
    extensions: caExt,
  });
  const intermediate = buildCertificate({
    ...base,
    subject: midName,
    issuer: rootName,
    serial: Uint8Array.of(2),
    publicKey: mid.publicKey,
    signingKey: ca.privateKey,
    extensions: caExt,
  });
  const ext = parseCertificate(file('ak-cert.der')).extensions.get(GCE_INSTANCE_INFO_OID)!.value;
  const akCert = buildCertificate({
    ...base,
    subject: [['CN', 'ak']],
    issuer: midName,
    serial: Uint8Array.of(3),
    publicKey: akFromTpmPublic(file('ak-public.tpmt')),
    signingKey: mid.privateKey,
    extensions: [
      { oid: '2.5.29.19', value: basicConstraints(false), critical: true },
      { oid: '2.5.29.15', value: keyUsage([0]), critical: true },
      { oid: GCE_INSTANCE_INFO_OID, value: ext },
    ],
  });
  return { roots: { anchors: [root], intermediates: [intermediate] }, akCert };
}
const CA = testCa();

function vtpm(log: Uint8Array | undefined): NonNullable<EvidenceInput['vtpm']> {
  return {
    akCert: CA.akCert,
    akPublic: file('ak-public.tpmt'),
    tpm: { quote: file('quote-sha256.msg'), signature: file('quote-sha256.sig'), pcrs },
    ...(log ? { eventLog: { log } } : {}),
  };
}

async function both(
  o: { ccel?: Uint8Array | null; tpmLog?: Uint8Array | null } = {},
): Promise<EvidenceInput> {
  const ev = await simulated.tdx({ now: AT, rtmrs: cos.meta.rtmrs! }).getEvidence(RD);
  const ccel = o.ccel === null ? undefined : (o.ccel ?? cos.log);
  return {
    ...ev,
    ...(ccel ? { eventLog: { log: ccel, ccel: true, ccelTable: cos.table! } } : {}),
    vtpm: vtpm(o.tpmLog === null ? undefined : (o.tpmLog ?? gce.log)),
  };
}

function verify(input: EvidenceInput, policy?: Policy) {
  return verifyEvidence(input, {
    now: AT,
    trustAnchors: simulated.trustAnchors(),
    vtpmRoots: CA.roots,
    offline: true,
    ...(policy ? { policy } : {}),
  }) as Promise<TdxClaims>;
}

/** One byte flipped in the digest of the bank the quote covers (SHA-384 for a CCEL, SHA-256 for the vTPM) of the first event extending a register. */
function tampered(f: typeof cos, bank: string): Uint8Array {
  const bytes = new Uint8Array(f.log);
  const e = parseEventLog(bytes, f.options).events.find((x) => x.digestCheck !== 'not-extended')!;
  const digest = e.digests[bank]!;
  const at = Buffer.from(bytes.subarray(e.offset, e.offset + e.length)).indexOf(Buffer.from(digest));
  expect(at).toBeGreaterThan(0);
  bytes[e.offset + at]! ^= 1;
  return bytes;
}

describe('a TDX quote with its CCEL and a vTPM with its log', () => {
  it('both logs are replayed, each to its own registers, and the claims carry both', async () => {
    const c = await verify(await both());
    expect(c.boot).toMatchObject({ source: 'ccel', rtmrs: cos.meta.rtmrs, secureBoot: false, events: 43 });
    expect(c.vtpm!.boot).toMatchObject({ source: 'tpm', secureBoot: true });
    expect(c.vtpm!.boot!.pcrs!.sha256!['4']).toBe(P4);
  });

  it('the CCEL tampered alone is refused', async () => {
    const err = await errorOf(async () => verify(await both({ ccel: tampered(cos, 'sha384') })));
    expect(err.code).toBe('ERR_EVENTLOG_MISMATCH');
  });

  it('the vTPM log tampered alone is refused', async () => {
    const err = await errorOf(async () => verify(await both({ tpmLog: tampered(gce, 'sha256') })));
    expect(err.code).toBe('ERR_EVENTLOG_MISMATCH');
  });

  it('the logs swapped are refused', async () => {
    const ev = await both();
    const swapped = { ...ev, eventLog: { log: gce.log }, vtpm: vtpm(cos.log) };
    expect((await errorOf(() => verify(swapped))).code).toBe('ERR_EVENTLOG_MISMATCH');
  });
});

describe('policy boot with two logs', () => {
  const rtmr1 = { '1': [cos.meta.rtmrs![1]!] };

  it('rtmrs binds the CCEL and pcrs the vTPM log: both right passes and pins the workload', async () => {
    const c = await verify(await both(), { boot: { rtmrs: rtmr1, pcrs: { sha256: { '4': [P4] } } } });
    expect(c.workloadPinned).toBe(true);
    expect(c.vtpm!.workloadPinned).toBe(true);
  });

  it('rtmrs alone does not pin the vTPM (its PCRs are not listed)', async () => {
    const c = await verify(await both(), { boot: { rtmrs: rtmr1 } });
    expect(c.workloadPinned).toBe(true);
    expect(c.vtpm!.workloadPinned).toBe(false);
  });

  it('a wrong RTMR is refused, a wrong PCR is refused', async () => {
    const badRtmr = await errorOf(async () =>
      verify(await both(), { boot: { rtmrs: { '1': ['00'.repeat(48)] }, pcrs: { sha256: { '4': [P4] } } } }),
    );
    expect(badRtmr.details.field).toBe('boot.rtmrs');
    const badPcr = await errorOf(async () =>
      verify(await both(), { boot: { rtmrs: rtmr1, pcrs: { sha256: { '4': ['11'.repeat(32)] } } } }),
    );
    expect(badPcr.details.field).toBe('boot.pcrs');
  });

  it('rtmrs without a CCEL is refused; pcrs without a vTPM log is refused', async () => {
    const noCcel = await errorOf(async () => verify(await both({ ccel: null }), { boot: { rtmrs: rtmr1 } }));
    expect(noCcel.code).toBe('ERR_EVIDENCE_POLICY');
    expect(noCcel.details.field).toBe('boot.rtmrs');
    const noTpmLog = await errorOf(async () =>
      verify(await both({ tpmLog: null }), { boot: { pcrs: { sha256: { '4': [P4] } } } }),
    );
    expect(noTpmLog.code).toBe('ERR_EVIDENCE_POLICY');
    const none = await errorOf(async () =>
      verify(await both({ ccel: null, tpmLog: null }), {
        boot: { acceptAnomalies: ['duplicate-separator'] },
      }),
    );
    expect(none.details.field).toBe('boot');
  });

  it('single-event pins hold for each log: one log’s command line listed is not enough', async () => {
    const { boot, vtpm: v } = await verify(await both());
    const lines = [boot!.kernelCmdline!, v!.boot!.kernelCmdline!];
    expect(lines[0]).not.toBe(lines[1]);
    await verify(await both(), { boot: { kernelCmdlines: lines } });
    for (const line of lines) {
      const err = await errorOf(async () => verify(await both(), { boot: { kernelCmdlines: [line] } }));
      expect(err.details.field).toBe('boot.kernelCmdlines');
    }
    // Secure Boot is off in the CCEL and on in the vTPM log: neither value passes both.
    for (const secureBoot of [true, false]) {
      const err = await errorOf(async () => verify(await both(), { boot: { secureBoot } }));
      expect(err.details.field).toBe('boot.secureBoot');
    }
  });

  it('without a CCEL, single-event pins are the vTPM log’s alone', async () => {
    await verify(await both({ ccel: null }), { boot: { secureBoot: true } });
  });
});

describe('vtpmRoots owned by the Verifier', () => {
  it('createVerifier({ vtpmRoots }) verifies under them; without them the pinned roots refuse', async () => {
    const mine = createVerifier({
      trustAnchors: simulated.trustAnchors(),
      offline: true,
      vtpmRoots: CA.roots,
    });
    expect(mine.anchors.vtpmRoots).toHaveLength(1);
    const c = await mine.verify(await both(), { now: AT });
    expect(c.vtpm!.gce.zone).toBe('us-central1-a');
    const pinned = createVerifier({ trustAnchors: simulated.trustAnchors(), offline: true });
    expect(pinned.anchors.vtpmRoots).toBeUndefined();
    expect((await errorOf(async () => pinned.verify(await both(), { now: AT }))).code).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
  });

  it('a call’s vtpmRoots replace the Verifier’s', async () => {
    const other = testCa().roots;
    const stranger = createVerifier({
      trustAnchors: simulated.trustAnchors(),
      offline: true,
      vtpmRoots: other,
    });
    expect((await errorOf(async () => stranger.verify(await both(), { now: AT }))).code).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
    await stranger.verify(await both(), { now: AT, vtpmRoots: CA.roots });
    const mine = createVerifier({
      trustAnchors: simulated.trustAnchors(),
      offline: true,
      vtpmRoots: CA.roots,
    });
    const err = await errorOf(async () => mine.verify(await both(), { now: AT, vtpmRoots: other }));
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('the Verifier keeps its own copy of the roots', async () => {
    const roots = {
      anchors: [new Uint8Array(CA.roots.anchors[0]!)],
      intermediates: [...CA.roots.intermediates],
    };
    const mine = createVerifier({ trustAnchors: simulated.trustAnchors(), offline: true, vtpmRoots: roots });
    roots.anchors[0]!.fill(0);
    await mine.verify(await both(), { now: AT });
  });

  it('malformed vtpmRoots are ERR_INVALID_ARGUMENT at creation and per call', async () => {
    for (const bad of [
      {},
      { anchors: [] },
      { anchors: [1] },
      { anchors: [new Uint8Array(1)], intermediates: 'x' },
    ])
      expect(() => createVerifier({ vtpmRoots: bad as never })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
      );
    const v = createVerifier({ trustAnchors: simulated.trustAnchors(), offline: true });
    const err = await errorOf(async () => v.verify(await both(), { now: AT, vtpmRoots: { anchors: [] } }));
    expect(err.code).toBe('ERR_INVALID_ARGUMENT');
  });
});
