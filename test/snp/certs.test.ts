/** VEK shape rules (docs/reference/snp-format.md §4), on VEKs re-issued by the simulated ASK with one thing changed. */
import { createPublicKey } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { Lru } from '../../src/evidence/lru.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { simulatedKey } from '../../src/evidence/providers/simulated-snp.js';
import { SIMULATED_ORGANIZATION } from '../../src/evidence/simulated-marker.js';
import { checkVekShape, VEK_OID, vekExtensions } from '../../src/evidence/snp/certs.js';
import type { EvidenceInput } from '../../src/evidence/types.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { buildCertificate, type NameSpec } from '../../src/evidence/x509/build.js';
import { type ParsedCert, parseCertificate } from '../../src/evidence/x509/cert.js';
import { codeOf } from './fixtures.js';

const name = (cn: string): NameSpec => [
  ['OU', 'Engineering'],
  ['C', 'US'],
  ['L', 'Santa Clara'],
  ['ST', 'CA'],
  ['O', SIMULATED_ORGANIZATION],
  ['CN', cn],
];

let ev: EvidenceInput;
let exts: Array<{ oid: string; value: Uint8Array }>;
const opts = { offline: true, trustAnchors: simulated.trustAnchors() };

beforeAll(async () => {
  ev = await simulated.snp({ product: 'Milan' }).getEvidence(new Uint8Array(64));
  exts = [...parseCertificate(ev.vek!).extensions].map(([oid, e]) => ({ oid, value: e.value }));
});

function vek(edit: (e: typeof exts) => typeof exts, cn = 'SEV-VCEK', issuer = 'SEV-Milan'): Uint8Array {
  return buildCertificate({
    subject: name(cn),
    issuer: name(issuer),
    serial: Uint8Array.of(0),
    notBefore: new Date('2024-01-01T00:00:00Z'),
    notAfter: new Date('2049-01-01T00:00:00Z'),
    publicKey: createPublicKey(simulatedKey('vcek')),
    signingKey: simulatedKey('milanAsk'),
    algorithm: 'rsa-pss-sha384',
    extensions: edit(exts),
  });
}

const without = (oid: string) => (e: typeof exts) => e.filter((x) => x.oid !== oid);
const replaced = (oid: string, value: Uint8Array) => (e: typeof exts) =>
  e.map((x) => (x.oid === oid ? { oid, value } : x));

describe('VEK shape', () => {
  it('a re-issued VEK with unchanged extensions verifies (control)', async () => {
    expect(await codeOf(verifyEvidence({ ...ev, vek: vek((e) => e) }, opts))).toBe('accepted');
  });

  const cases: Array<[string, () => Uint8Array]> = [
    ['missing blSPL', () => vek(without(VEK_OID.blSPL))],
    ['missing ucodeSPL', () => vek(without(VEK_OID.ucodeSPL))],
    ['missing hwID', () => vek(without(VEK_OID.hwID))],
    ['hwID of 8 bytes on Milan', () => vek(replaced(VEK_OID.hwID, new Uint8Array(8)))],
    ['hwID of odd length', () => vek(replaced(VEK_OID.hwID, new Uint8Array(30)))],
    ['SPL not an INTEGER', () => vek(replaced(VEK_OID.snpSPL, Uint8Array.of(0x04, 0x01, 0x05)))],
    ['SPL above 255', () => vek(replaced(VEK_OID.snpSPL, Uint8Array.of(0x02, 0x02, 0x01, 0x00)))],
    [
      'productName of an unknown product',
      () => vek(replaced(VEK_OID.productName, Uint8Array.of(0x16, 0x03, 0x46, 0x6f, 0x6f))),
    ],
    ['fmcSPL on Milan', () => vek((e) => [...e, { oid: VEK_OID.fmcSPL, value: Uint8Array.of(2, 1, 1) }])],
    [
      'cspID on a VCEK',
      () => vek((e) => [...e, { oid: VEK_OID.cspID, value: Uint8Array.of(0x16, 0x01, 0x41) }]),
    ],
    ['subject CN SEV-VLEK for a VCEK-signed report', () => vek((e) => e, 'SEV-VLEK')],
    ['issuer CN of another product', () => vek((e) => e, 'SEV-VCEK', 'SEV-Genoa')],
  ];
  for (const [what, make] of cases) {
    it(`${what} → ERR_EVIDENCE_CHAIN`, async () => {
      expect(await codeOf(verifyEvidence({ ...ev, vek: make() }, opts))).toBe('ERR_EVIDENCE_CHAIN');
    });
  }

  it('an OCTET STRING-wrapped hwID is accepted', async () => {
    const hw = parseCertificate(ev.vek!).extensions.get(VEK_OID.hwID)!.value;
    const wrapped = new Uint8Array([0x04, 0x40, ...hw]);
    expect(await codeOf(verifyEvidence({ ...ev, vek: vek(replaced(VEK_OID.hwID, wrapped)) }, opts))).toBe(
      'accepted',
    );
  });
});

describe('certificate cache', () => {
  it('a caller that reuses its buffer cannot make the cache answer for other bytes', () => {
    const der = vek((e) => e); // never parsed before: RSA-PSS signatures are randomised
    const cache = new Lru<string, ParsedCert>(8); // a Verifier's certificate cache
    const buf = Buffer.from(der);
    const first = parseCertificate(buf, undefined, cache);
    buf[buf.length - 1]! ^= 0x01; // now another certificate (its signature differs)
    const second = parseCertificate(buf, undefined, cache);
    expect(second).not.toBe(first);
    expect(second.signature).not.toEqual(first.signature);
    expect(parseCertificate(der, undefined, cache)).toBe(first);
    expect(first.der).toEqual(der); // its own copy, not the reused buffer
  });
});

describe('VEK shape verdicts', () => {
  it('are kept per signer and product: a VEK accepted as a Milan VCEK is checked again as anything else', () => {
    const cert = parseCertificate(ev.vek!);
    const ext = vekExtensions(cert);
    const shape = (signer: 'vcek' | 'vlek', product: 'Milan' | 'Turin') => () =>
      checkVekShape(cert, ext, signer, product);
    expect(shape('vcek', 'Milan')).not.toThrow();
    expect(shape('vcek', 'Milan')).not.toThrow();
    expect(shape('vlek', 'Milan')).toThrow(/VLEK subject CN/);
    expect(shape('vcek', 'Turin')).toThrow(/hwID of 64 bytes for Turin/);
    expect(shape('vcek', 'Milan')).not.toThrow();
  });
});
