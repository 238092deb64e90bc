/**
 * DER reading and writing: the one place that knows TLV framing, INTEGERs and OBJECT IDENTIFIERs.
 * The reader serves the fields @peculiar/asn1-x509 does not model (PSS parameters, AMD's raw hwID,
 * Intel's SGX extension sequence); the writer serves the builders (build.ts), which must emit the
 * vendors' extension shapes byte for byte. Knows no vendor.
 */
import { AttestationError, type ErrorCode } from '../../errors.js';

// ---------------------------------------------------------------------------------------------
// Reading

export interface Tlv {
  tag: number;
  /** Offset of the value within the buffer that was read. */
  start: number;
  end: number;
  value: Uint8Array;
}

/** Reads one TLV at `offset`; throws ERR_EVIDENCE_MALFORMED on anything out of bounds. */
export function readTlv(buf: Uint8Array, offset = 0, code: ErrorCode = 'ERR_EVIDENCE_MALFORMED'): Tlv {
  const fail = (why: string) => new AttestationError(code, `DER: ${why} at offset ${offset}`);
  if (offset + 2 > buf.length) throw fail('truncated header');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw fail('multi-byte tags are not supported');
  let len = buf[offset + 1]!;
  let pos = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw fail('unsupported length');
    if (pos + n > buf.length) throw fail('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + i]!;
    pos += n;
  }
  if (pos + len > buf.length) throw fail('value runs past the end');
  return { tag, start: pos, end: pos + len, value: buf.subarray(pos, pos + len) };
}

/** Reads all TLVs inside a constructed value. */
export function readChildren(value: Uint8Array, code: ErrorCode = 'ERR_EVIDENCE_MALFORMED'): Tlv[] {
  const out: Tlv[] = [];
  let pos = 0;
  while (pos < value.length) {
    const t = readTlv(value, pos, code);
    out.push(t);
    pos = t.end;
  }
  return out;
}

/** Decodes a DER INTEGER value (non-negative, up to 2^53). */
export function derUint(value: Uint8Array): number {
  let n = 0;
  for (const b of value) n = n * 256 + b;
  if (!Number.isSafeInteger(n)) throw new AttestationError('ERR_EVIDENCE_MALFORMED', 'DER integer too large');
  return n;
}

/** Decodes an OBJECT IDENTIFIER TLV value into dotted form (the inverse of derOid). */
export function decodeOid(value: Uint8Array): string {
  const parts: number[] = [];
  let acc = 0;
  for (const [i, b] of value.entries()) {
    acc = acc * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      if (parts.length === 0) {
        parts.push(acc < 80 ? Math.floor(acc / 40) : 2, acc < 80 ? acc % 40 : acc - 80);
      } else parts.push(acc);
      acc = 0;
    } else if (i === value.length - 1) {
      throw new AttestationError('ERR_EVIDENCE_MALFORMED', 'DER: truncated OID');
    }
  }
  return parts.join('.');
}

// ---------------------------------------------------------------------------------------------
// Writing

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

/** Encodes a dotted OBJECT IDENTIFIER as a TLV (the inverse of decodeOid). */
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
