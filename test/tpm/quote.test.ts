/** Generic TPM 2.0 quote parsing and verification: real Azure vTPM quotes, and quotes signed here. */
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseTpmsAttest, parseTpmtSignature } from '../../src/evidence/tpm/attest.js';
import { TPM_ALG, TpmWriter } from '../../src/evidence/tpm/marshal.js';
import { parseTpm2bPublic, parseTpmtPublic, tpmName, tpmPublicToKey } from '../../src/evidence/tpm/public.js';
import {
  akFromJwk,
  akFromSpki,
  akFromTpmPublic,
  akSha256,
  type PcrValues,
  verifyTpmQuote,
} from '../../src/evidence/tpm/quote.js';
import { AZURE_DIR, akOfReport } from '../azure/fixtures.js';
import { pcrBank, signQuote } from '../azure/synthetic.js';
import { thrownCode as code } from '../helpers/codes.js';

const dir = `${AZURE_DIR}trustee__snp-hcl-report/`;
const real = {
  message: new Uint8Array(readFileSync(`${dir}tpm-quote.msg`)),
  signature: new Uint8Array(readFileSync(`${dir}tpm-quote.sig`)),
  pcrs: JSON.parse(readFileSync(`${dir}pcrs.json`, 'utf8')) as PcrValues,
  ak: akOfReport(new Uint8Array(readFileSync(`${dir}hcl-report.bin`))),
};

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const nonce = new Uint8Array(48).fill(0x5a);

describe('TPMS_ATTEST and TPMT_SIGNATURE of a real Azure vTPM quote', () => {
  it('parses every field', () => {
    const a = parseTpmsAttest(real.message);
    expect(Buffer.from(a.extraData).toString()).toBe('challenge');
    expect(a.clock).toBe(2167057n);
    expect([a.resetCount, a.restartCount, a.safe]).toEqual([3, 0, true]);
    expect(a.firmwareVersion).toBe(0x2020031200120003n);
    expect(a.pcrSelect).toEqual([{ hash: TPM_ALG.SHA256, pcrs: [...Array(24).keys()] }]);
    expect(Buffer.from(a.qualifiedSigner).toString('hex')).toBe(
      '000b96f6ef2a64ed155e38183fc0f0f240b2e63e4feb4c2ac230f14684fbe93f5f25',
    );
    expect(Buffer.from(a.pcrDigest).toString('hex')).toBe(
      '0daff74c2fca14910b1e9b54a384707434c3365db9f163cc73a39a9f7500833f',
    );
    const s = parseTpmtSignature(real.signature);
    expect(s.sigAlg).toBe(TPM_ALG.RSASSA);
    expect(s.hash).toBe(TPM_ALG.SHA256);
  });

  it('verifies with HCLAkPub and reports the claims', () => {
    const q = verifyTpmQuote(real, real.ak);
    expect(q.claims.extraData).toBe('6368616c6c656e6765');
    expect(q.claims.clock).toBe(2167057);
    expect(q.claims.akSha256).toBe('a9e7621f8df1350f9849400335086249f310962eab3b93019b9e5ba7b9ad0388');
    expect(q.claims.pcrs.sha256?.['0']).toBe(
      'f3a7e99a5f819a034386bce753a48a73cfdaa0bea0ecfc124bedbf5a8c4799be',
    );
  });

  it('every single-byte change of the message or signature is refused', () => {
    for (let i = 0; i < real.message.length; i++) {
      const m = new Uint8Array(real.message);
      m[i]! ^= 0x01;
      expect(['ERR_EVIDENCE_MALFORMED', 'ERR_EVIDENCE_SIGNATURE']).toContain(
        code(() => verifyTpmQuote({ ...real, message: m }, real.ak)),
      );
    }
    for (let i = 0; i < real.signature.length; i++) {
      const s = new Uint8Array(real.signature);
      s[i]! ^= 0x80;
      expect(['ERR_EVIDENCE_MALFORMED', 'ERR_EVIDENCE_SIGNATURE']).toContain(
        code(() => verifyTpmQuote({ ...real, signature: s }, real.ak)),
      );
    }
  });

  it('every truncation and any trailing byte is malformed', () => {
    for (let n = 0; n < real.message.length; n++)
      expect(code(() => parseTpmsAttest(real.message.subarray(0, n)))).toBe('ERR_EVIDENCE_MALFORMED');
    expect(code(() => parseTpmsAttest(Uint8Array.of(...real.message, 0)))).toBe('ERR_EVIDENCE_MALFORMED');
    expect(code(() => parseTpmtSignature(Uint8Array.of(...real.signature, 0)))).toBe(
      'ERR_EVIDENCE_MALFORMED',
    );
  });

  it('PCR values: a changed one fails the digest, a missing or mis-sized one is malformed', () => {
    const pcrs = structuredClone(real.pcrs);
    pcrs.sha256!['7'] = '00'.repeat(32);
    expect(code(() => verifyTpmQuote({ ...real, pcrs }, real.ak))).toBe('ERR_EVIDENCE_SIGNATURE');
    const missing = structuredClone(real.pcrs);
    delete missing.sha256!['23'];
    expect(() => verifyTpmQuote({ ...real, pcrs: missing }, real.ak)).toThrow(
      /PCR 23 is selected by the quote but not supplied/,
    );
    expect(code(() => verifyTpmQuote({ ...real, pcrs: missing }, real.ak))).toBe('ERR_EVIDENCE_MALFORMED');
    const short = structuredClone(real.pcrs);
    short.sha256!['1'] = '00';
    expect(code(() => verifyTpmQuote({ ...real, pcrs: short }, real.ak))).toBe('ERR_EVIDENCE_MALFORMED');
    const odd = structuredClone(real.pcrs);
    odd.sha256!['2'] = `${odd.sha256!['2']}0`;
    expect(code(() => verifyTpmQuote({ ...real, pcrs: odd }, real.ak))).toBe('ERR_EVIDENCE_MALFORMED');
    const bytesShort = structuredClone(real.pcrs);
    bytesShort.sha256!['4'] = new Uint8Array(31);
    expect(code(() => verifyTpmQuote({ ...real, pcrs: bytesShort }, real.ak))).toBe('ERR_EVIDENCE_MALFORMED');
    const asBytes = structuredClone(real.pcrs);
    asBytes.sha256!['4'] = new Uint8Array(Buffer.from(asBytes.sha256!['4'] as string, 'hex'));
    expect(code(() => verifyTpmQuote({ ...real, pcrs: asBytes }, real.ak))).toBe('accepted');
    expect(code(() => verifyTpmQuote({ ...real, pcrs: { sha1: {} } }, real.ak))).toBe(
      'ERR_EVIDENCE_MALFORMED',
    );
    expect(
      code(() => verifyTpmQuote({ ...real, pcrs: { ...real.pcrs, md5: {} } as PcrValues }, real.ak)),
    ).toBe('ERR_EVIDENCE_MALFORMED');
  });

  it('another key is refused', () => {
    expect(code(() => verifyTpmQuote(real, rsa.publicKey))).toBe('ERR_EVIDENCE_SIGNATURE');
    expect(code(() => verifyTpmQuote(real, p256.publicKey))).toBe('ERR_EVIDENCE_SIGNATURE');
  });
});

describe('quotes signed here', () => {
  const pcrs = pcrBank(24);
  const cases: Array<[string, KeyObject, KeyObject, number, number]> = [
    ['RSASSA SHA-256', rsa.privateKey, rsa.publicKey, TPM_ALG.RSASSA, TPM_ALG.SHA256],
    ['RSASSA SHA-384', rsa.privateKey, rsa.publicKey, TPM_ALG.RSASSA, TPM_ALG.SHA384],
    ['RSAPSS SHA-256', rsa.privateKey, rsa.publicKey, TPM_ALG.RSAPSS, TPM_ALG.SHA256],
    ['RSAPSS SHA-384', rsa.privateKey, rsa.publicKey, TPM_ALG.RSAPSS, TPM_ALG.SHA384],
    ['ECDSA P-256 SHA-256', p256.privateKey, p256.publicKey, TPM_ALG.ECDSA, TPM_ALG.SHA256],
  ];
  for (const [name, priv, pub, sigAlg, hash] of cases) {
    it(`${name} verifies; the digest uses the signature's hash; another key or PCR fails`, () => {
      const q = signQuote(priv, { extraData: nonce, pcrs, sigAlg, hash });
      const input = { message: q.message, signature: q.signature, pcrs: { sha256: pcrs } };
      expect(verifyTpmQuote(input, pub).claims.pcrs.sha256).toEqual(pcrs);
      const other =
        sigAlg === TPM_ALG.ECDSA
          ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
          : generateKeyPairSync('rsa', { modulusLength: 2048 });
      expect(code(() => verifyTpmQuote(input, other.publicKey))).toBe('ERR_EVIDENCE_SIGNATURE');
      const changed = { ...pcrs, '3': 'ff'.repeat(32) };
      expect(code(() => verifyTpmQuote({ ...input, pcrs: { sha256: changed } }, pub))).toBe(
        'ERR_EVIDENCE_SIGNATURE',
      );
    });
  }

  it('a pcrDigest made with another hash than the signature hash is refused', () => {
    const wrong = new Uint8Array(
      createHash('sha256')
        .update(Buffer.concat(Object.values(pcrs).map((h) => Buffer.from(h, 'hex'))))
        .digest(),
    );
    const q = signQuote(rsa.privateKey, {
      extraData: nonce,
      pcrs,
      hash: TPM_ALG.SHA384,
      digestOverride: wrong,
    });
    expect(
      code(() =>
        verifyTpmQuote({ message: q.message, signature: q.signature, pcrs: { sha256: pcrs } }, rsa.publicKey),
      ),
    ).toBe('ERR_EVIDENCE_SIGNATURE');
  });

  it('a SHA-1 signature and a signature of the wrong key type are refused', () => {
    const sha1 = signQuote(rsa.privateKey, { extraData: nonce, pcrs, hash: TPM_ALG.SHA1 });
    expect(code(() => verifyTpmQuote({ ...sha1, pcrs: { sha256: pcrs } }, rsa.publicKey))).toBe(
      'ERR_EVIDENCE_SIGNATURE',
    );
    const ec = signQuote(p256.privateKey, { extraData: nonce, pcrs, sigAlg: TPM_ALG.ECDSA });
    expect(code(() => verifyTpmQuote({ ...ec, pcrs: { sha256: pcrs } }, rsa.publicKey))).toBe(
      'ERR_EVIDENCE_SIGNATURE',
    );
    const r = signQuote(rsa.privateKey, { extraData: nonce, pcrs });
    expect(code(() => verifyTpmQuote({ ...r, pcrs: { sha256: pcrs } }, p256.publicKey))).toBe(
      'ERR_EVIDENCE_SIGNATURE',
    );
    expect(() => verifyTpmQuote({ ...r, pcrs: { sha256: pcrs } }, p256.publicKey)).toThrow(
      /attestation key is ec/,
    );
    expect(() => verifyTpmQuote({ ...ec, pcrs: { sha256: pcrs } }, rsa.publicKey)).toThrow(
      /not P-256 or P-384/,
    );
  });

  it('an RSA attestation key under 2048 bits is refused', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const q = signQuote(small.privateKey, { extraData: nonce, pcrs });
    expect(() => verifyTpmQuote({ ...q, pcrs: { sha256: pcrs } }, small.publicKey)).toThrow(
      /RSA-1024, smaller than 2048/,
    );
  });

  it('a SHA-1 bank is digested with the signature hash (as vTPMs do)', () => {
    const sha1 = pcrBank(8, 'x', 20);
    const q = signQuote(rsa.privateKey, { extraData: nonce, pcrs: sha1, bank: TPM_ALG.SHA1 });
    expect(verifyTpmQuote({ ...q, pcrs: { sha1 } }, rsa.publicKey).claims.pcrs.sha1).toEqual(sha1);
  });

  it('a signed structure that is not a well-formed quote is malformed, even with a good signature', () => {
    const q = signQuote(rsa.privateKey, { extraData: nonce, pcrs });
    // Re-sign edited bytes: the parser must refuse what the signature would accept.
    const set = (at: number, v: number) => (m: Uint8Array) => {
      m[at] = v;
      return m;
    };
    const resign = (edit: (m: Uint8Array) => Uint8Array) => {
      const m = edit(new Uint8Array(q.message));
      const sig = new Uint8Array(q.signature);
      sig.set(sign('sha256', m, rsa.privateKey), 6);
      return code(() =>
        verifyTpmQuote({ message: m, signature: sig, pcrs: { sha256: pcrs } }, rsa.publicKey),
      );
    };
    expect(resign((m) => m)).toBe('accepted');
    expect(resign(set(0, 0x00))).toBe('ERR_EVIDENCE_MALFORMED'); // magic
    expect(resign(set(5, 0x17))).toBe('ERR_EVIDENCE_MALFORMED'); // TPM_ST_ATTEST_CERTIFY
    expect(resign(set(8, 0x0c))).toBe('ERR_EVIDENCE_MALFORMED'); // nameAlg SHA-384 with a 32-byte digest
    const safeAt = 6 + 2 + 34 + 2 + nonce.length + 16;
    expect(resign(set(safeAt, 2))).toBe('ERR_EVIDENCE_MALFORMED'); // clockInfo.safe
    expect(resign((m) => Uint8Array.of(...m, 0))).toBe('ERR_EVIDENCE_MALFORMED'); // trailing byte
  });

  it('PCRs the quote does not select are left out of the claims', () => {
    const some = { '0': pcrs['0']!, '7': pcrs['7']! };
    const q = signQuote(rsa.privateKey, { extraData: nonce, pcrs: some });
    expect(verifyTpmQuote({ ...q, pcrs: { sha256: pcrs } }, rsa.publicKey).claims.pcrs).toEqual({
      sha256: some,
    });
  });
});

/** A TPMT_PUBLIC for an RSA or P-256 signing key, marshalled per Part 2 §12.2.4. */
function tpmtPublic(key: KeyObject): Uint8Array {
  const jwk = key.export({ format: 'jwk' });
  const w = new TpmWriter();
  const attrs = 0x00050072; // fixedTPM fixedParent sensitiveDataOrigin userWithAuth restricted sign
  if (jwk.kty === 'RSA') {
    const n = Buffer.from(jwk.n!, 'base64url');
    w.u16(TPM_ALG.RSA).u16(TPM_ALG.SHA256).u32(attrs).u16(0);
    w.u16(TPM_ALG.NULL)
      .u16(TPM_ALG.RSASSA)
      .u16(TPM_ALG.SHA256)
      .u16(n.length * 8)
      .u32(0)
      .tpm2b(n);
  } else {
    w.u16(TPM_ALG.ECC).u16(TPM_ALG.SHA256).u32(attrs).u16(0);
    w.u16(TPM_ALG.NULL).u16(TPM_ALG.ECDSA).u16(TPM_ALG.SHA256).u16(0x0003).u16(TPM_ALG.NULL);
    w.tpm2b(Buffer.from(jwk.x!, 'base64url')).tpm2b(Buffer.from(jwk.y!, 'base64url'));
  }
  return w.finish();
}

describe('TPMT_PUBLIC', () => {
  for (const [name, key] of [
    ['RSA', rsa.publicKey],
    ['P-256', p256.publicKey],
  ] as const) {
    it(`${name}: parses to the same key; TPM2B form; name = nameAlg ‖ SHA-256(TPMT_PUBLIC)`, () => {
      const t = tpmtPublic(key);
      const spki = key.export({ format: 'der', type: 'spki' });
      expect(akFromTpmPublic(t).export({ format: 'der', type: 'spki' })).toEqual(spki);
      const t2b = Uint8Array.of(t.length >> 8, t.length & 0xff, ...t);
      expect(akFromTpmPublic(t2b, 'tpm2b').export({ format: 'der', type: 'spki' })).toEqual(spki);
      const pub = parseTpm2bPublic(t2b);
      expect(Buffer.from(tpmName(pub)).toString('hex')).toBe(
        `000b${createHash('sha256').update(t).digest('hex')}`,
      );
      expect(akSha256(tpmPublicToKey(pub))).toBe(akSha256(key));
      expect(code(() => parseTpmtPublic(Uint8Array.of(...t, 0)))).toBe('ERR_EVIDENCE_MALFORMED');
      for (let n = 0; n < t.length; n++)
        expect(code(() => parseTpmtPublic(t.subarray(0, n)))).toBe('ERR_EVIDENCE_MALFORMED');
    });
  }

  it('JWK and SPKI forms of the AK', () => {
    expect(akFromJwk(rsa.publicKey.export({ format: 'jwk' })).equals(rsa.publicKey)).toBe(true);
    expect(akFromSpki(rsa.publicKey.export({ format: 'der', type: 'spki' })).equals(rsa.publicKey)).toBe(
      true,
    );
    expect(
      akFromSpki(p256.publicKey.export({ format: 'pem', type: 'spki' }) as string).equals(p256.publicKey),
    ).toBe(true);
    expect(code(() => akFromJwk({ kty: 'oct', k: 'AA' }))).toBe('ERR_EVIDENCE_MALFORMED');
    expect(code(() => akFromJwk({ kty: 'RSA', n: '!!', e: 'AQAB' }))).toBe('ERR_EVIDENCE_MALFORMED');
    expect(code(() => akFromSpki(new Uint8Array(10)))).toBe('ERR_EVIDENCE_MALFORMED');
  });
});

describe('properties', () => {
  const only = (f: () => unknown, allowed: string[]) => {
    const c = code(f);
    expect(allowed).toContain(c);
  };

  it('arbitrary bytes give ERR_EVIDENCE_MALFORMED from every parser', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (b) => {
        only(() => parseTpmsAttest(b), ['ERR_EVIDENCE_MALFORMED']);
        only(() => parseTpmtSignature(b), ['ERR_EVIDENCE_MALFORMED']);
        only(() => parseTpmtPublic(b), ['ERR_EVIDENCE_MALFORMED']);
        only(() => parseTpm2bPublic(b), ['ERR_EVIDENCE_MALFORMED']);
      }),
      { numRuns: 2000 },
    );
  });

  it('bytes that start like a quote are never accepted', () => {
    const prefix = real.message.subarray(0, 6);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), (tail, sig) => {
        only(
          () =>
            verifyTpmQuote(
              { message: Uint8Array.of(...prefix, ...tail), signature: sig, pcrs: real.pcrs },
              real.ak,
            ),
          ['ERR_EVIDENCE_MALFORMED', 'ERR_EVIDENCE_SIGNATURE'],
        );
      }),
      { numRuns: 500 },
    );
  });

  it('random mutations of the real quote are refused', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        (edits, inSig) => {
          const target = new Uint8Array(inSig ? real.signature : real.message);
          for (const [i, x] of edits) target[i % target.length]! ^= x;
          const input = inSig ? { ...real, signature: target } : { ...real, message: target };
          only(() => verifyTpmQuote(input, real.ak), ['ERR_EVIDENCE_MALFORMED', 'ERR_EVIDENCE_SIGNATURE']);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('structurally valid quotes with random fields parse, and round-trip their fields', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 64 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 23 }), { maxLength: 24 }),
        (extra, indices) => {
          const sel: Record<string, string> = {};
          for (const i of indices) sel[String(i)] = pcrBank(24)[String(i)]!;
          const q = signQuote(rsa.privateKey, { extraData: extra, pcrs: sel });
          const a = parseTpmsAttest(q.message);
          expect(a.extraData).toEqual(extra);
          expect(a.pcrSelect[0]!.pcrs).toEqual([...indices].sort((x, y) => x - y));
        },
      ),
      { numRuns: 50 },
    );
  });
});
