/**
 * The endorsement signer's certificate goes through the chain engine like every other vendor's
 * (issue 10 item 11): a non-canonical signer certificate or an outer signatureAlgorithm other than
 * the signed one is refused even though its signature still verifies.
 */
import { createHash } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, Certificate } from '@peculiar/asn1-x509';
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import { verifyLaunchEndorsement } from '../../src/evidence/gce/endorsement.js';
import { OID } from '../../src/evidence/x509/cert.js';
import { readTlv } from '../../src/evidence/x509/der.js';
import { endorsement, golden, makeRoot, makeSigner, pssSign } from './mint.js';

const root = makeRoot();
const signer = makeSigner(root);
const opts = {
  root: root.der,
  rootSha256: createHash('sha256').update(root.der).digest('hex'),
  now: new Date('2026-06-01T00:00:00Z'),
};

function withCert(cert: Uint8Array): Uint8Array {
  const g = golden({ cert });
  return endorsement(g, pssSign(g, signer.key));
}
function outcome(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    if (err instanceof AttestationError) return `${err.code}: ${err.message}`;
    throw err;
  }
  return 'accepted';
}

describe('launch endorsement signer certificate DER', () => {
  it('control: the minted signer is accepted', () => {
    expect(outcome(() => verifyLaunchEndorsement(withCert(signer.der), opts))).toBe('accepted');
  });

  it('a signer whose outer signatureAlgorithm SEQUENCE uses a long-form length is refused', () => {
    const der = signer.der;
    const outer = readTlv(der, 0);
    const tbs = readTlv(der, outer.start);
    const alg = readTlv(der, tbs.end);
    expect(outer.start).toBe(4); // 30 82 hi lo
    expect(alg.value.length).toBeGreaterThanOrEqual(0x30);
    expect(alg.value.length).toBeLessThan(0x80);
    const out = new Uint8Array(der.length + 1);
    out.set(der.subarray(0, tbs.end + 1), 0);
    out[tbs.end + 1] = 0x81;
    out.set(der.subarray(tbs.end + 1), tbs.end + 2);
    const len = outer.end - outer.start + 1;
    out[2] = len >> 8;
    out[3] = len & 0xff;
    expect(outcome(() => verifyLaunchEndorsement(withCert(out), opts))).toMatch(
      /^ERR_EVIDENCE_CHAIN: .*signer is not canonical DER/,
    );
  });

  it('a signer whose outer signatureAlgorithm differs from the signed one is refused', () => {
    const c = AsnConvert.parse(signer.der, Certificate);
    // The same RSASSA-PSS/SHA-256 parameters with the hash AlgorithmIdentifiers' NULL left out.
    const params = Buffer.from(
      '302fa00d300b0609608648016503040201a11a301806092a864886f70d010108300b0609608648016503040201a203020120',
      'hex',
    );
    c.signatureAlgorithm = new AlgorithmIdentifier({
      algorithm: OID.rsaPss,
      parameters: new Uint8Array(params).buffer,
    });
    const edited = new Uint8Array(AsnConvert.serialize(c));
    expect(outcome(() => verifyLaunchEndorsement(withCert(edited), opts))).toMatch(
      /^ERR_EVIDENCE_CHAIN: .*differs from the signed one/,
    );
  });
});
