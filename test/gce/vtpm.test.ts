/**
 * Google Cloud vTPM evidence: the real attestation of test/fixtures/gce-vtpm (COS 85, nonce 9009)
 * verified at its verify_at under Google's pinned roots, and refused when any link is wrong.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import { parseEventLog } from '../../src/evidence/eventlog/index.js';
import {
  checkGceVtpmBinding,
  GCE_INSTANCE_INFO_OID,
  type GceVtpmInput,
  type GceVtpmVerifyOptions,
  gceVtpmQuoteNonce,
  parseGceInstanceInfo,
  splitTpmRoots,
  verifyGceVtpm,
} from '../../src/evidence/gce/vtpm.js';
import { GOOGLE_VTPM_INTERMEDIATES, GOOGLE_VTPM_ROOTS } from '../../src/evidence/gce/vtpm-roots.js';
import { akFromTpmPublic } from '../../src/evidence/tpm/quote.js';
import {
  basicConstraints,
  buildCertificate,
  keyUsage,
  type NameSpec,
} from '../../src/evidence/x509/build.js';
import { parseCertificate } from '../../src/evidence/x509/cert.js';
import { fixture } from '../eventlog/fixtures.js';

const DIR = new URL('../fixtures/gce-vtpm/go-tpm-tools__gce-cos-85-nonce9009/', import.meta.url);
const ROOTS = new URL('../fixtures/gce-vtpm/roots/', import.meta.url);
const file = (n: string) => new Uint8Array(readFileSync(new URL(n, DIR)));
const root = (n: string) => new Uint8Array(readFileSync(new URL(n, ROOTS)));
const log = fixture('go-tpm-tools__gce-cos-85-nonce9009');
const AT = new Date('2021-12-22T00:00:00Z');
const NONCE = new Uint8Array(Buffer.from('9009', 'hex'));
const pcrs = JSON.parse(readFileSync(new URL('pcrs.json', DIR), 'utf8'));

function input(bank = 'sha256', o: Partial<GceVtpmInput> = {}): GceVtpmInput {
  return {
    akCert: file('ak-cert.der'),
    akPublic: file('ak-public.tpmt'),
    tpm: { quote: file(`quote-${bank}.msg`), signature: file(`quote-${bank}.sig`), pcrs },
    eventLog: { log: log.log },
    ...o,
  };
}
const opts = (o: Partial<GceVtpmVerifyOptions> = {}): GceVtpmVerifyOptions => ({
  now: AT,
  expectedExtraData: NONCE,
  ...o,
});
function err(fn: () => unknown): AttestationError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AttestationError);
    return e as AttestationError;
  }
  throw new Error('did not throw');
}

describe('Google vTPM roots', () => {
  it('are the fixtures’ certificates, pinned by their SHA-256', () => {
    for (const c of [...GOOGLE_VTPM_ROOTS, ...GOOGLE_VTPM_INTERMEDIATES]) {
      const der = Buffer.from(c.der, 'base64');
      expect(createHash('sha256').update(der).digest('hex')).toBe(c.sha256);
      expect(der.equals(root(c.name))).toBe(true);
    }
    expect(GOOGLE_VTPM_ROOTS.map((r) => r.sha256)).toEqual([
      '9bd5285f8fb18502a7947e621ffd470266f49fcd3b73e19a190f690ad32a7caf',
      '594759594b9b61524f6c8ef668f7177f7b9066bc0674f2f49fe9e052be78beb2',
    ]);
  });
});

describe('the real GCE attestation', () => {
  it.each(['sha256', 'sha384'])('verifies at verify_at with its nonce (%s quote)', (bank) => {
    const c = verifyGceVtpm(input(bank), opts());
    expect(c.format).toBe('gce-vtpm');
    expect(c.tpm.extraData).toBe('9009');
    expect(c.gce).toEqual({
      zone: 'us-central1-a',
      projectNumber: '117478743145',
      projectId: 'google.com:wuale-gcp-testing',
      instanceId: BigInt('0x5e53e3fbbf8306c5').toString(),
      instanceName: 'cos-test',
      securityVersion: 0,
      isProduction: true,
    });
    expect(c.akCertificate.rootSha256).toBe(GOOGLE_VTPM_ROOTS[0]!.sha256);
    expect(c.boot!.pcrs![bank]).toEqual(log.meta.pcrs![bank]);
    expect(c.boot!.secureBoot).toBe(true);
    expect(c.workloadPinned).toBe(false);
  });

  it('another nonce is ERR_BINDING_MISMATCH', () => {
    expect(
      err(() => verifyGceVtpm(input(), opts({ expectedExtraData: new Uint8Array([0x90, 0x10]) }))).code,
    ).toBe('ERR_BINDING_MISMATCH');
  });

  it('one byte changed in the log is refused', () => {
    const parsed = parseEventLog(log.log);
    const bytes = new Uint8Array(log.log);
    bytes[parsed.events[3]!.offset + 12 + 22 + 2]! ^= 0x80;
    expect(err(() => verifyGceVtpm(input('sha256', { eventLog: { log: bytes } }), opts())).code).toBe(
      'ERR_EVENTLOG_MISMATCH',
    );
  });

  it('another boot’s log is refused', () => {
    const other = fixture('go-tpm-tools__cos-101-amd-sev');
    expect(err(() => verifyGceVtpm(input('sha256', { eventLog: { log: other.log } }), opts())).code).toBe(
      'ERR_EVENTLOG_MISMATCH',
    );
  });

  it('a quote over other PCR values (PCR4 changed) is refused', () => {
    const changed = structuredClone(pcrs);
    changed.sha256['4'] = '00'.repeat(32);
    const e = err(() => verifyGceVtpm(input('sha256', { tpm: { ...input().tpm, pcrs: changed } }), opts()));
    expect(e.code).toBe('ERR_EVIDENCE_SIGNATURE');
  });

  it('a changed quote signature is refused', () => {
    const sig = file('quote-sha256.sig');
    sig[100]! ^= 1;
    const e = err(() => verifyGceVtpm(input('sha256', { tpm: { ...input().tpm, signature: sig } }), opts()));
    expect(e.code).toBe('ERR_EVIDENCE_SIGNATURE');
  });

  it('an AK certificate from another CA is refused (only the newer root trusted)', () => {
    const e = err(() =>
      verifyGceVtpm(
        input(),
        opts({
          roots: {
            anchors: [root('gcp_ek_ak_ca_root.crt')],
            intermediates: [root('tpm_ek_intermediate_2.crt'), root('gcp_ek_ak_ca_intermediate_v3.crt')],
          },
        }),
      ),
    );
    expect(e.code).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('a CA certificate in the AK position is refused', () => {
    const e = err(() =>
      verifyGceVtpm(
        input('sha256', { akCert: root('tpm_ek_intermediate_2.crt'), akPublic: undefined as never }),
        opts(),
      ),
    );
    expect(['ERR_EVIDENCE_CHAIN', 'ERR_EVIDENCE_SIGNATURE']).toContain(e.code);
  });

  it('before and after the AK validity: ERR_EVIDENCE_CHAIN', () => {
    for (const now of [new Date('2021-08-01T00:00:00Z'), new Date('2051-09-01T00:00:00Z')])
      expect(err(() => verifyGceVtpm(input(), opts({ now }))).code).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('the folder as --tpm-roots gives the same result (self-signed = anchors)', () => {
    const all = readdirSync(ROOTS)
      .filter((n) => /\.(cer|crt)$/.test(n))
      .map(root);
    const roots = splitTpmRoots(all);
    expect(roots.anchors.length).toBe(2);
    const c = verifyGceVtpm(input(), opts({ roots }));
    expect(c.gce.instanceName).toBe('cos-test');
  });

  it('an AK public area that is not the certificate key is refused', () => {
    const other = file('ak-public.tpmt');
    other[other.length - 10]! ^= 1;
    expect(err(() => verifyGceVtpm(input('sha256', { akPublic: other }), opts())).code).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
  });
});

describe('policy gce and boot on vTPM evidence', () => {
  it('projectIds, instanceIds, zones: listed passes, others refused', () => {
    verifyGceVtpm(
      input(),
      opts({ policy: { gce: { projectIds: ['google.com:wuale-gcp-testing'], zones: ['us-central1-a'] } } }),
    );
    for (const [field, value] of [
      ['projectIds', 'other-project'],
      ['instanceIds', '1'],
      ['zones', 'europe-west4-a'],
    ] as const) {
      const e = err(() => verifyGceVtpm(input(), opts({ policy: { gce: { [field]: [value] } } })));
      expect(e.code).toBe('ERR_EVIDENCE_POLICY');
      expect(e.details.field).toBe(`gce.${field}`);
    }
  });

  it('boot.pcrs pins the workload; a wrong value is refused; a boot section without a log is refused', () => {
    const p4 = log.meta.pcrs!.sha256!['4']!;
    const c = verifyGceVtpm(input(), opts({ policy: { boot: { pcrs: { sha256: { '4': [p4] } } } } }));
    expect(c.workloadPinned).toBe(true);
    expect(
      err(() =>
        verifyGceVtpm(input(), opts({ policy: { boot: { pcrs: { sha256: { '4': ['11'.repeat(32)] } } } } })),
      ).details.field,
    ).toBe('boot.pcrs');
    const sb = verifyGceVtpm(
      input(),
      opts({ policy: { boot: { secureBoot: true }, gce: { zones: ['us-central1-a'] } } }),
    );
    expect(sb.workloadPinned).toBe(false);
    const noLog = input();
    delete noLog.eventLog;
    expect(
      err(() => verifyGceVtpm(noLog, opts({ policy: { boot: { secureBoot: true } } }))).details.field,
    ).toBe('boot');
  });
});

describe('AK certificates under a test CA (the real AK key and quote)', () => {
  const ca = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const mid = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rootName: NameSpec = [['CN', 'test root']];
  const midName: NameSpec = [['CN', 'test intermediate']];
  const window = { notBefore: new Date('2021-01-01T00:00:00Z'), notAfter: new Date('2022-01-01T00:00:00Z') };
  const caExt = [
    { oid: '2.5.29.19', value: basicConstraints(true), critical: true },
    { oid: '2.5.29.15', value: keyUsage([5, 6]), critical: true },
  ];
  const root = buildCertificate({
    subject: rootName,
    issuer: rootName,
    serial: Uint8Array.of(1),
    ...window,
    publicKey: ca.publicKey,
    signingKey: ca.privateKey,
    algorithm: 'ecdsa-sha256',
    extensions: caExt,
  });
  const intermediate = buildCertificate({
    subject: midName,
    issuer: rootName,
    serial: Uint8Array.of(2),
    ...window,
    publicKey: mid.publicKey,
    signingKey: ca.privateKey,
    algorithm: 'ecdsa-sha256',
    extensions: caExt,
  });
  const realExt = parseCertificate(file('ak-cert.der')).extensions.get(GCE_INSTANCE_INFO_OID)!.value;
  const akCert = (ext: Array<{ oid: string; value: Uint8Array; critical?: boolean }>) =>
    buildCertificate({
      subject: [['CN', 'ak']],
      issuer: midName,
      serial: Uint8Array.of(3),
      ...window,
      publicKey: akFromTpmPublic(file('ak-public.tpmt')),
      signingKey: mid.privateKey,
      algorithm: 'ecdsa-sha256',
      extensions: ext,
    });
  const leafExt = [
    { oid: '2.5.29.19', value: basicConstraints(false), critical: true },
    { oid: '2.5.29.15', value: keyUsage([0]), critical: true },
  ];
  const roots = { anchors: [root], intermediates: [intermediate] };

  it('with the extension: verifies; without it: ERR_EVIDENCE_MALFORMED', () => {
    const good = verifyGceVtpm(
      input('sha256', { akCert: akCert([...leafExt, { oid: GCE_INSTANCE_INFO_OID, value: realExt }]) }),
      opts({ roots }),
    );
    expect(good.gce.instanceName).toBe('cos-test');
    expect(err(() => verifyGceVtpm(input('sha256', { akCert: akCert(leafExt) }), opts({ roots }))).code).toBe(
      'ERR_EVIDENCE_MALFORMED',
    );
  });

  it('an AK certificate that is a CA, or lacks digitalSignature, is refused', () => {
    const asCa = akCert([
      { oid: '2.5.29.19', value: basicConstraints(true), critical: true },
      { oid: '2.5.29.15', value: keyUsage([0]), critical: true },
      { oid: GCE_INSTANCE_INFO_OID, value: realExt },
    ]);
    const noSig = akCert([
      { oid: '2.5.29.19', value: basicConstraints(false), critical: true },
      { oid: '2.5.29.15', value: keyUsage([5]), critical: true },
      { oid: GCE_INSTANCE_INFO_OID, value: realExt },
    ]);
    for (const c of [asCa, noSig])
      expect(err(() => verifyGceVtpm(input('sha256', { akCert: c }), opts({ roots }))).code).toBe(
        'ERR_EVIDENCE_CHAIN',
      );
  });
});

describe('the instance-identity extension', () => {
  it('refuses truncated or re-typed fields with ERR_EVIDENCE_MALFORMED', () => {
    const good = Buffer.from(
      '306A0C0D75732D63656E7472616C312D6102051B5A475C690C1C676F6F676C652E636F6D3A7775616C652D6763702D74657374696E6702085E53E3FBBF8306C50C08636F732D74657374A020301EA003020100A1030101FFA203010100A303010100A403010100A503010100',
      'hex',
    );
    expect(parseGceInstanceInfo(new Uint8Array(good)).zone).toBe('us-central1-a');
    for (let n = 0; n < good.length; n += 7)
      expect(err(() => parseGceInstanceInfo(new Uint8Array(good.subarray(0, n)))).code).toBe(
        'ERR_EVIDENCE_MALFORMED',
      );
    const retyped = Buffer.from(good);
    retyped[2] = 0x04; // zone as an OCTET STRING
    expect(err(() => parseGceInstanceInfo(new Uint8Array(retyped))).code).toBe('ERR_EVIDENCE_MALFORMED');
  });
});

describe('parseGceInstanceInfo properties', () => {
  const real = new Uint8Array(
    parseCertificate(file('ak-cert.der')).extensions.get(GCE_INSTANCE_INFO_OID)!.value,
  );
  const typedOnly = (bytes: Uint8Array) => {
    try {
      parseGceInstanceInfo(bytes);
    } catch (e) {
      expect(e).toBeInstanceOf(AttestationError);
      expect((e as AttestationError).code).toBe('ERR_EVIDENCE_MALFORMED');
    }
  };
  it('arbitrary bytes: a result or ERR_EVIDENCE_MALFORMED', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => typedOnly(b)),
      { numRuns: 2000 },
    );
  });
  it('the real extension with bytes changed: a result or ERR_EVIDENCE_MALFORMED', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(real.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        (edits) => {
          const b = new Uint8Array(real);
          for (const [i, v] of edits) b[i] = v;
          typedOnly(b);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('channel binding', () => {
  it('extraData must be SHA-384 of the binder', () => {
    const binder = new Uint8Array(64).fill(3);
    const hex = Buffer.from(gceVtpmQuoteNonce(binder)).toString('hex');
    checkGceVtpmBinding({ tpm: { extraData: hex } as never }, binder);
    expect(err(() => checkGceVtpmBinding({ tpm: { extraData: '9009' } as never }, binder)).code).toBe(
      'ERR_BINDING_MISMATCH',
    );
  });
});
