/**
 * The key-proof input of docs/protocol.md §4.7, pinned as data: the vectors below are what the page
 * prints, recomputed here by plain concatenation from the formula (not through the library), then
 * compared with the library's keyProofInput; and the signature schemes fixed by key type.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { keyProofInput, signKeyProof, verifyKeyProof } from '../../src/channel/key-proof.js';

const spki = Buffer.from(
  `3059301306072a8648ce3d020106082a8648ce3d03010703420004${'11'.repeat(32)}${'22'.repeat(32)}`,
  'hex',
);
const exporter = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const digest = Buffer.from(Array.from({ length: 32 }, (_, i) => 0x20 + i));

const VECTORS = {
  server:
    '61747465737465642d6368616e6e656c2f31206b65792d70726f6f66007365727665720026504e614ebe557a1d50c50c2df990dce212afd6a577f85eaf35a5feced90374202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
  client:
    '61747465737465642d6368616e6e656c2f31206b65792d70726f6f6600636c69656e740026504e614ebe557a1d50c50c2df990dce212afd6a577f85eaf35a5feced90374202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
};
/** Ed25519, private key seed 32 × 0x01 (RFC 8032 keys are deterministic, and so are its signatures). */
const ED_SEED = Buffer.alloc(32, 0x01);
const ED_SPKI = '302a300506032b65700321008a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c';
const ED_INPUT =
  '61747465737465642d6368616e6e656c2f31206b65792d70726f6f660073657276657200fd110d301d2f077de1414b8f99f441b1403fab207b2052fbd2c065e4ee8e7dc2202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
const ED_SIGNATURE =
  'a5bb4d6ba6c4d73325f2665419734dfdf749d81bcc6796efdcd545ba50ce115a34381cf60ac9c87f937c6e02baf42a2f324163030f640e9061623612a4503500';

/** The formula of §4.7, written out again. */
function independent(role: string, spkiDer: Buffer): string {
  return Buffer.concat([
    Buffer.from('attested-channel/1 key-proof', 'ascii'),
    Buffer.from([0x00]),
    Buffer.from(role, 'ascii'),
    Buffer.from([0x00]),
    createHash('sha256').update(spkiDer).digest(),
    digest,
    exporter,
  ]).toString('hex');
}

describe('key-proof input (docs/protocol.md §4.7)', () => {
  it('the vectors are the formula, the library computes them, and the page prints them', () => {
    const page = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
    for (const role of ['server', 'client'] as const) {
      expect(independent(role, spki)).toBe(VECTORS[role]);
      expect(Buffer.from(keyProofInput(role, spki, digest, exporter)).toString('hex')).toBe(VECTORS[role]);
      expect(page).toContain(VECTORS[role]);
    }
    expect(VECTORS.server.length / 2).toBe(28 + 1 + 6 + 1 + 32 + 32 + 32);
    for (const v of [ED_SPKI, ED_INPUT, ED_SIGNATURE]) expect(page).toContain(v);
  });

  it('the Ed25519 vector: its signature verifies (node:crypto alone), and the library makes and checks it', () => {
    const key = createPrivateKey({
      key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), ED_SEED]),
      format: 'der',
      type: 'pkcs8',
    });
    const edSpki = createPublicKey(key).export({ format: 'der', type: 'spki' });
    expect(edSpki.toString('hex')).toBe(ED_SPKI);
    expect(independent('server', edSpki)).toBe(ED_INPUT);
    const input = Buffer.from(ED_INPUT, 'hex');
    const sig = Buffer.from(ED_SIGNATURE, 'hex');
    expect(verify(null, input, createPublicKey(key), sig)).toBe(true);
    expect(Buffer.from(signKeyProof(key, input)!).toString('hex')).toBe(ED_SIGNATURE);
    expect(verifyKeyProof(edSpki, input, sig)).toBe(true);
    const flipped = Buffer.from(sig);
    flipped[0]! ^= 1;
    expect(verifyKeyProof(edSpki, input, flipped)).toBe(false);
    expect(verifyKeyProof(edSpki, Buffer.from(VECTORS.server, 'hex'), sig)).toBe(false);
  });

  it.each([
    ['ECDSA P-256 (SHA-256, P1363)', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }), 'sha256', 64],
    ['ECDSA P-384 (SHA-384, P1363)', () => generateKeyPairSync('ec', { namedCurve: 'P-384' }), 'sha384', 96],
    ['RSA-PSS SHA-256', () => generateKeyPairSync('rsa', { modulusLength: 2048 }), 'sha256', 256],
  ] as const)('%s: the scheme is fixed by the key', (_name, make, hash, size) => {
    const { privateKey, publicKey } = make();
    const der = publicKey.export({ format: 'der', type: 'spki' });
    const input = Buffer.from(VECTORS.client, 'hex');
    const sig = signKeyProof(privateKey, input)!;
    expect(sig.length).toBe(size);
    expect(verifyKeyProof(der, input, sig)).toBe(true);
    // The same scheme, checked by node:crypto with the parameters §4.7 names.
    const options =
      publicKey.asymmetricKeyType === 'rsa'
        ? { key: publicKey, padding: 6, saltLength: 32 }
        : { key: publicKey, dsaEncoding: 'ieee-p1363' as const };
    expect(verify(hash, input, options, sig)).toBe(true);
    expect(verifyKeyProof(der, Buffer.from(VECTORS.server, 'hex'), sig)).toBe(false);
  });

  it('a key of any other type neither makes nor passes a proof; a bad SPKI passes nothing', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
    const input = Buffer.from(VECTORS.server, 'hex');
    expect(signKeyProof(privateKey, input)).toBeUndefined();
    expect(verifyKeyProof(publicKey.export({ format: 'der', type: 'spki' }), input, new Uint8Array(64))).toBe(
      false,
    );
    expect(verifyKeyProof(new Uint8Array([0x30, 0x00]), input, new Uint8Array(64))).toBe(false);
  });
});
