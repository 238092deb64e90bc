/**
 * Positive signature verdicts. A Verifier keeps one such cache per format whose own report
 * signature is costly (SEV-SNP: P-384; TDX: the quote's P-256), so that the same report seen again
 * — a batch report each connection of the batch brings, remembered evidence verified again for a
 * key proof (docs/protocol.md §4.7) — skips the public-key operation.
 *
 * An entry is found by the signature bytes (as a latin1 string, one character per byte) and
 * holds its own copies of the public key and the signed bytes; it answers only when both are
 * equal, byte for byte, to the ones at hand. So a hit says exactly what a fresh verification
 * would: same key, same bytes, same signature. Only "verified" is kept: a signature that fails
 * is checked again every time. Nothing is hashed: every verification of new evidence pays for
 * the miss and the insert, and a string of the signature and copies of the key and signed bytes
 * cost less than a SHA-256 over them (bench/tdx.ts, "against the quote signature alone").
 */
import type { Lru } from './lru.js';

/**
 * What a verdict was given for: its own copies of the key and of the signed bytes, as latin1
 * strings (one character per byte, so equal strings are equal bytes). A string is copied into
 * V8's heap in one step, where a buffer of its own costs a backing store (about twice as much
 * per entry, measured), and every new quote pays for the insert.
 */
export interface SignatureVerdict {
  readonly key: string;
  readonly signed: string;
}

/** Signatures that verified, by their bytes (signatureId()): "this key signed these bytes". */
export type SignatureVerdicts = Lru<string, SignatureVerdict>;

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
}

/** The cache key of a signature: its bytes in latin1 (parts concatenated, e.g. r then s). */
export function signatureId(...parts: Uint8Array[]): string {
  let id = '';
  for (const part of parts) id += latin1(part);
  return id;
}

/** True when `id` verified before under exactly `key` over exactly `signed` (counted as a hit). */
export function knownSignature(
  cache: SignatureVerdicts,
  id: string,
  key: Uint8Array,
  signed: Uint8Array,
): boolean {
  // The bytes at hand are compared with the entry's only when there is one (a new signature,
  // every new report's case, costs the id and one map lookup).
  return cache.find(id, (v) => v.key === latin1(key) && v.signed === latin1(signed)) !== undefined;
}

/** Remembers that `id` verified under `key` over `signed` (copies both: the caller's may change). */
export function rememberSignature(
  cache: SignatureVerdicts,
  id: string,
  key: Uint8Array,
  signed: Uint8Array,
): void {
  cache.set(id, { key: latin1(key), signed: latin1(signed) });
}
