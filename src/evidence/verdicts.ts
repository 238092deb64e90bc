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
import { hash } from 'node:crypto';
import type { Lru } from './lru.js';

/** A cache of signatures that verified: a key present means "this key signed these bytes". */
export type SignatureVerdicts = Lru<string, true>;

/**
 * The key of one verdict: SHA-256 over the parts, each preceded by its length (u32be), so that no
 * two different lists of parts give the same input. In base64 (44 characters).
 *
 * Every verification of new evidence pays for this (a miss), so it is one copy into one buffer
 * and one one-shot crypto.hash() call: a Hash object with an update per part and a separate
 * length buffer cost several native calls and objects more (about 1 µs of a ~1.3 KiB input).
 */
export function signatureKey(...parts: Uint8Array[]): string {
  let size = 0;
  for (const part of parts) size += 4 + part.length;
  // Fully written below before it is read.
  const input = Buffer.allocUnsafe(size);
  let at = 0;
  for (const part of parts) {
    at = input.writeUInt32BE(part.length, at);
    input.set(part, at);
    at += part.length;
  }
  return hash('sha256', input, 'base64');
}
