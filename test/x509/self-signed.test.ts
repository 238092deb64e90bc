/**
 * buildSelfSignedCertificate(), the direct writer behind createTlsIdentity(): the same TBS bytes
 * as the schema-driven buildCertificate() for every input it takes, and a certificate node:crypto
 * reads and verifies with its own key.
 */
import { createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildCertificate, buildSelfSignedCertificate } from '../../src/evidence/x509/build.js';
import { readChildren, readTlv } from '../../src/evidence/x509/der.js';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const spki = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }));

/** The TBSCertificate and signatureAlgorithm of a certificate, as tag and hex of the value. */
function parts(cert: Uint8Array): { tbs: string; algorithm: string } {
  const outer = readTlv(cert);
  expect(outer.end).toBe(cert.length);
  const [tbs, algorithm, signature] = readChildren(outer.value);
  expect(signature!.tag).toBe(0x03);
  const text = (t: { tag: number; value: Uint8Array }) => `${t.tag}:${Buffer.from(t.value).toString('hex')}`;
  return { tbs: text(tbs!), algorithm: text(algorithm!) };
}

const serialArb = fc.uint8Array({ minLength: 1, maxLength: 20 }).map((s) => {
  const out = Uint8Array.from(s);
  out[0] = (out[0]! & 0x7f) | 0x01;
  return out;
});
// Whole seconds from 1950 to 2099: both Time forms (UTCTime up to 2049, GeneralizedTime after).
const dateArb = fc
  .integer({ min: Date.UTC(1950, 0, 1) / 1000, max: Date.UTC(2099, 11, 31) / 1000 })
  .map((s) => new Date(s * 1000));

describe('buildSelfSignedCertificate', () => {
  it('writes the TBS buildCertificate() serialises, for any name, serial and validity', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 80 }),
        serialArb,
        dateArb,
        dateArb,
        (cn, serial, a, b) => {
          const common = { serial, notBefore: a, notAfter: b, signingKey: privateKey };
          const fast = buildSelfSignedCertificate({ ...common, commonName: cn, spki });
          const slow = buildCertificate({
            ...common,
            subject: [['CN', cn]],
            issuer: [['CN', cn]],
            publicKey,
            algorithm: 'ecdsa-sha256',
          });
          expect(parts(fast)).toEqual(parts(slow));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('is a certificate node:crypto reads, self-signed with the key whose SPKI it carries', () => {
    const cert = buildSelfSignedCertificate({
      commonName: 'attested-channel',
      serial: Uint8Array.of(0x01, 0x02),
      notBefore: new Date('2026-01-01T00:00:00Z'),
      notAfter: new Date('2051-06-30T12:34:56Z'),
      spki,
      signingKey: privateKey,
    });
    const x = new X509Certificate(cert);
    expect(x.subject).toBe('CN=attested-channel');
    expect(x.issuer).toBe('CN=attested-channel');
    expect(x.validFrom).toBe('Jan  1 00:00:00 2026 GMT');
    expect(x.validTo).toBe('Jun 30 12:34:56 2051 GMT');
    expect(x.verify(createPublicKey(privateKey))).toBe(true);
    expect(x.verify(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey)).toBe(false);
    expect(x.publicKey.export({ format: 'der', type: 'spki' }).equals(spki)).toBe(true);
  });
});
