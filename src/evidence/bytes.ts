/** Byte helpers shared by the parsers. Uint8Array everywhere in the public API. */

export function bytesToHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** Decodes hex (either case). Throws TypeError on odd length or a non-hex digit. */
export function hexToBytes(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new TypeError('invalid hex string');
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** Not constant-time (neither is Buffer#equals): for public bytes, never for secrets. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  // Short ones (keys, IDs, names: most calls) in a loop: a Buffer view and a native call cost more.
  if (a.length <= 64) {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  // Buffer.compare takes any Uint8Array: no view of either is made.
  return Buffer.compare(a, b) === 0;
}

export function isAllZero(b: Uint8Array): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

export function base64url(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}

/**
 * Strict base64url decode (no padding, no other alphabet); returns undefined when invalid.
 * A string is accepted iff it is exactly the unpadded base64url encoding of the bytes it decodes
 * to, so one value has one encoding (no stray low bits in a final group of 2 or 3 characters, no
 * '=' or '+/', nothing Node's lenient decoder would skip). Checked by encoding the result again:
 * one decode into our own buffer and one encode cost a third of a pass of a regular expression
 * over the text plus a second copy (the channel decodes ~7 KB of evidence per connect).
 */
export function fromBase64url(s: string): Uint8Array | undefined {
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  const view = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  if (view.write(s, 'base64url') !== out.length || view.toString('base64url') !== s) return undefined;
  return out;
}
