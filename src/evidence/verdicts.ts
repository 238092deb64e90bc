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
 * the miss, and a latin1 string of 64–144 bytes and a copy of the signed bytes cost less than
 * a SHA-256 over them (bench/tdx.ts, "warm verify vs one P-256 verify").
 */
import type { Lru } from './lru.js';

/**
 * What a verdict was given for: its own copy of the key then the signed bytes, in one buffer of
 * its own (not a slice of Node's shared pool, which an entry would keep alive whole).
 */
export interface SignatureVerdict {
  readonly bytes: Buffer;
  readonly keyLength: number;
}

/** Signatures that verified, by their bytes (signatureId()): "this key signed these bytes". */
export type SignatureVerdicts = Lru<string, SignatureVerdict>;

function view(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** The cache key of a signature: its bytes in latin1 (parts concatenated, e.g. r then s). */
export function signatureId(...parts: Uint8Array[]): string {
  let id = '';
  for (const part of parts) id += view(part).toString('latin1');
  return id;
}

/** True when `id` verified before under exactly `key` over exactly `signed` (counted as a hit). */
export function knownSignature(
  cache: SignatureVerdicts,
  id: string,
  key: Uint8Array,
  signed: Uint8Array,
): boolean {
  const k = key.length;
  const end = k + signed.length;
  // Buffer#compare with offsets reads both ranges in place: no view of either is made.
  const same = (v: SignatureVerdict) =>
    v.keyLength === k &&
    v.bytes.length === end &&
    v.bytes.compare(key, 0, k, 0, k) === 0 &&
    v.bytes.compare(signed, 0, signed.length, k, end) === 0;
  return cache.find(id, same) !== undefined;
}

/** Remembers that `id` verified under `key` over `signed` (copies both: the caller's may change). */
export function rememberSignature(
  cache: SignatureVerdicts,
  id: string,
  key: Uint8Array,
  signed: Uint8Array,
): void {
  const bytes = Buffer.allocUnsafeSlow(key.length + signed.length);
  bytes.set(key, 0);
  bytes.set(signed, key.length);
  cache.set(id, { bytes, keyLength: key.length });
}
