/**
 * Positive signature verdicts, by a digest of everything a verdict depends on: the public key,
 * the signed bytes and the signature. A Verifier keeps one such cache per format whose own report
 * signature is costly (SEV-SNP: P-384; TDX: the quote's P-256), so that the same report seen again
 * — a batch report each connection of the batch brings, remembered evidence verified again for a
 * key proof (docs/protocol.md §4.7) — skips the public-key operation. Only "verified" is kept: a
 * signature that fails is checked again every time, and any byte of key, data or signature that
 * differs gives another key (SHA-256's collision resistance), so a hit says exactly what a fresh
 * verification would.
 */
import { createHash } from 'node:crypto';
import type { Lru } from './lru.js';

/** A cache of signatures that verified: a key present means "this key signed these bytes". */
export type SignatureVerdicts = Lru<string, true>;

/**
 * The key of one verdict: SHA-256 over the parts, each preceded by its length (u32be), so that no
 * two different lists of parts give the same input. In base64 (44 characters).
 */
export function signatureKey(...parts: Uint8Array[]): string {
  const hash = createHash('sha256');
  const length = Buffer.alloc(4);
  for (const part of parts) {
    length.writeUInt32BE(part.length);
    hash.update(length);
    hash.update(part);
  }
  return hash.digest('base64');
}
