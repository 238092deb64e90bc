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
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

export function isAllZero(b: Uint8Array): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

export function base64url(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}

/** Strict base64url decode (no padding, no other alphabet); returns undefined when invalid. */
export function fromBase64url(s: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) return undefined;
  // Reject non-canonical encodings (stray low bits) so one value has one encoding: a final group
  // of 2 (3) characters carries 4 (2) bits that no byte uses, and they must be zero.
  const rest = s.length % 4;
  if (rest === 1) return undefined;
  if (rest !== 0 && (B64URL.indexOf(s[s.length - 1]!) & (rest === 2 ? 0x0f : 0x03)) !== 0) return undefined;
  return new Uint8Array(Buffer.from(s, 'base64url'));
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
