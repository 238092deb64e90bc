/**
 * The key-continuity proof (docs/protocol.md §4.7): instead of new hardware evidence, an attester
 * whose challenger already holds a report it produced for this very TLS key signs, with that key,
 *
 *   proofInput = "attested-channel/1 key-proof" || 0x00 || R || 0x00 || SHA-256(SPKI_R)
 *                || reportDigest || exporter
 *   exporter   = TLS-Exporter("EXPORTER-attested-channel-v1-" || R, REQUEST.context, 32)
 *
 * The exporter and context tie the proof to this connection and exchange (a proof from another
 * connection is refused), R to the role, the SPKI hash to the key that completed this handshake,
 * and reportDigest to the one report the challenger named. The label differs from the binder's
 * ("attested-channel/1" then 0x00) and from TLS 1.3 CertificateVerify input (64 × 0x20 first), so
 * no other signature or binder of the protocol can stand in for a proof.
 */
import { constants, createHash, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { AttestationError } from '../errors.js';
import type { ProofKey } from '../evidence/reuse.js';
import { EXPORTER_LENGTH } from './binder.js';
import type { Role } from './options.js';

export const KEY_PROOF_LABEL = 'attested-channel/1 key-proof';
/** A report digest (SHA-256) is this many bytes. */
export const REPORT_DIGEST_SIZE = 32;

/** What REQUEST `known` names: SHA-256 of the bytes of the evidence's `report` record. */
export function reportDigest(report: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(report).digest());
}

/** The bytes a key proof signs (pure, so a second implementation can be checked against it). */
export function keyProofInput(
  role: Role,
  spki: Uint8Array,
  digest: Uint8Array,
  exporter: Uint8Array,
): Uint8Array {
  if (exporter.length !== EXPORTER_LENGTH)
    throw new AttestationError('ERR_PROTOCOL', 'exporter must be 32 bytes');
  if (digest.length !== REPORT_DIGEST_SIZE)
    throw new AttestationError('ERR_PROTOCOL', 'a report digest is 32 bytes');
  const spkiHash = createHash('sha256').update(spki).digest();
  return new Uint8Array(
    Buffer.concat([
      Buffer.from(KEY_PROOF_LABEL, 'utf8'),
      Buffer.of(0),
      Buffer.from(role, 'utf8'),
      Buffer.of(0),
      spkiHash,
      digest,
      exporter,
    ]),
  );
}

/**
 * The signature scheme is fixed by the key's type, so nothing about it is negotiated: ECDSA
 * P-256 with SHA-256 and P-384 with SHA-384 (IEEE P1363 r || s), Ed25519, RSA-PSS with SHA-256 and
 * a 32-byte salt. Undefined for any other key (no proof is made or accepted for it).
 */
function schemeOf(
  key: KeyObject,
):
  | { hash: string | null; options: { dsaEncoding?: 'ieee-p1363'; padding?: number; saltLength?: number } }
  | undefined {
  const type = key.asymmetricKeyType;
  if (type === 'ed25519') return { hash: null, options: {} };
  if (type === 'rsa')
    return { hash: 'sha256', options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } };
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return { hash: 'sha256', options: { dsaEncoding: 'ieee-p1363' } };
    if (curve === 'secp384r1') return { hash: 'sha384', options: { dsaEncoding: 'ieee-p1363' } };
  }
  return undefined;
}

/** This side's proof, or undefined when its key has no fixed scheme. */
export function signKeyProof(key: KeyObject, input: Uint8Array): Uint8Array | undefined {
  const scheme = schemeOf(key);
  if (!scheme) return undefined;
  return new Uint8Array(sign(scheme.hash, input, { key, ...scheme.options }));
}

/** The key of an SPKI (DER) with its scheme, or undefined when it is none or has no fixed scheme. */
export function proofKeyOf(spki: Uint8Array): ProofKey | undefined {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch {
    return undefined;
  }
  const scheme = schemeOf(key);
  return scheme && { spki: new Uint8Array(spki), key, hash: scheme.hash, options: scheme.options };
}

/**
 * Whether `signature` is the peer's proof over `input` under the SPKI it presented (DER), or under
 * that SPKI's key as proofKeyOf() made it.
 */
export function verifyKeyProof(
  spki: Uint8Array | ProofKey,
  input: Uint8Array,
  signature: Uint8Array,
): boolean {
  const key = spki instanceof Uint8Array ? proofKeyOf(spki) : spki;
  if (!key) return false;
  try {
    return verify(key.hash, input, { key: key.key, ...key.options }, signature);
  } catch {
    return false;
  }
}
