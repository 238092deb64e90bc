/**
 * src/evidence/offload.ts: signatures made and checked on the threadpool answer as the synchronous
 * forms do, and whatever node:crypto refuses (at once or in its callback) is a false verdict or a
 * rejection, never an exception thrown out of a callback.
 */
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signOffThread, verifyOffThread } from '../src/evidence/offload.js';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const scheme = { key: publicKey, dsaEncoding: 'ieee-p1363' } as const;
const data = new Uint8Array(randomBytes(0x2a0));
const signature = new Uint8Array(sign('sha384', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }));

describe('verifyOffThread', () => {
  it('accepts a valid signature', async () => {
    expect(await verifyOffThread('sha384', data, scheme, signature)).toBe(true);
  });

  it('refuses a flipped byte of the data or of the signature', async () => {
    for (const offset of [0, 0x50, 0x29f]) {
      const d = data.slice();
      d[offset]! ^= 1;
      expect(await verifyOffThread('sha384', d, scheme, signature)).toBe(false);
    }
    for (const offset of [0, 47, 48, 95]) {
      const s = signature.slice();
      s[offset]! ^= 1;
      expect(await verifyOffThread('sha384', data, scheme, s)).toBe(false);
    }
  });

  it('refuses a signature under another key, another hash or of the wrong length', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey;
    expect(await verifyOffThread('sha384', data, { key: other, dsaEncoding: 'ieee-p1363' }, signature)).toBe(
      false,
    );
    expect(await verifyOffThread('sha256', data, scheme, signature)).toBe(false);
    expect(await verifyOffThread('sha384', data, scheme, signature.subarray(0, 95))).toBe(false);
  });

  it('is false, not an exception, for what node:crypto refuses at once or in its callback', async () => {
    // An X25519 key cannot verify: node:crypto reports it through the callback.
    const x25519 = generateKeyPairSync('x25519').publicKey;
    expect(await verifyOffThread('sha384', data, x25519, signature)).toBe(false);
    // An unknown digest is refused before any job is made (thrown at once).
    expect(await verifyOffThread('no-such-digest', data, scheme, signature)).toBe(false);
    // The synchronous form agrees that these are not valid signatures (it throws for both).
    expect(() => verify('no-such-digest', data, scheme, signature)).toThrow();
  });

  it('copies its inputs: bytes changed after the call do not change the verdict', async () => {
    const d = data.slice();
    const pending = verifyOffThread('sha384', d, scheme, signature);
    d.fill(0);
    expect(await pending).toBe(true);
  });
});

describe('signOffThread', () => {
  it('makes a signature the synchronous verify accepts', async () => {
    const sig = await signOffThread('sha384', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    expect(sig.length).toBe(96);
    expect(verify('sha384', data, scheme, sig)).toBe(true);
  });

  it("rejects with node:crypto's error for a key that cannot sign", async () => {
    const x25519 = generateKeyPairSync('x25519').privateKey;
    await expect(signOffThread('sha384', data, x25519)).rejects.toBeInstanceOf(Error);
    await expect(signOffThread('no-such-digest', data, privateKey)).rejects.toBeInstanceOf(Error);
  });
});
