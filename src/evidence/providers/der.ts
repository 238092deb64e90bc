/**
 * A tiny DER writer for the vendor certificate extensions the simulators emit (AMD's KDS
 * extensions, Intel's SGX extension, basic constraints, key usage, CRL distribution points).
 * @peculiar/asn1-x509 models the standard extensions but not these vendor shapes, and the
 * simulators must produce them byte for byte as the vendors do. Writing only; parsing stays in
 * ../x509.ts.
 */

function derLength(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

export function tlv(tag: number, value: Uint8Array): Uint8Array {
  const len = derLength(value.length);
  const out = new Uint8Array(1 + len.length + value.length);
  out[0] = tag;
  out.set(len, 1);
  out.set(value, 1 + len.length);
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** Non-negative INTEGER, minimal form (a leading zero byte when the top bit is set: 219 → 02 02 00 db). */
export function derInteger(n: number, tag = 0x02): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a non-negative integer: ${n}`);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  if (bytes.length === 0 || (bytes[0]! & 0x80) !== 0) bytes.unshift(0);
  return tlv(tag, Uint8Array.from(bytes));
}

export function derEnumerated(n: number): Uint8Array {
  return derInteger(n, 0x0a);
}

export function derBoolean(b: boolean): Uint8Array {
  return tlv(0x01, Uint8Array.of(b ? 0xff : 0x00));
}

export function derOctetString(b: Uint8Array): Uint8Array {
  return tlv(0x04, b);
}

export function derIa5String(s: string): Uint8Array {
  return tlv(0x16, new Uint8Array(Buffer.from(s, 'ascii')));
}

export function derSequence(...items: Uint8Array[]): Uint8Array {
  return tlv(0x30, concat(...items));
}

export function derOid(dotted: string): Uint8Array {
  const parts = dotted.split('.').map((p) => Number.parseInt(p, 10));
  const [a = 0, b = 0, ...rest] = parts;
  const out: number[] = [];
  for (const arc of [a * 40 + b, ...rest]) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Uint8Array.from(out));
}

/** BasicConstraints value: cA and an optional pathLenConstraint. */
export function basicConstraints(ca: boolean, pathLen?: number): Uint8Array {
  if (!ca) return derSequence();
  return derSequence(derBoolean(true), ...(pathLen === undefined ? [] : [derInteger(pathLen)]));
}

/** KeyUsage BIT STRING from bit numbers (0 digitalSignature, 1 nonRepudiation, 5 keyCertSign, 6 cRLSign). */
export function keyUsage(bits: number[]): Uint8Array {
  const max = Math.max(...bits);
  const nBytes = Math.floor(max / 8) + 1;
  const bytes = new Uint8Array(nBytes);
  for (const bit of bits) bytes[Math.floor(bit / 8)]! |= 0x80 >> (bit % 8);
  // Unused trailing bits: DER requires the count of zero bits after the last set bit.
  const unused = nBytes * 8 - 1 - max;
  return tlv(0x03, concat(Uint8Array.of(unused), bytes));
}

/** CRLDistributionPoints with one fullName URI. */
export function crlDistributionPoint(uri: string): Uint8Array {
  const generalName = tlv(0x86, new Uint8Array(Buffer.from(uri, 'ascii')));
  return derSequence(derSequence(tlv(0xa0, tlv(0xa0, generalName))));
}
