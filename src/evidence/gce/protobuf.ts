/**
 * A small Protocol Buffers wire-format reader and writer, enough for Google's launch endorsements
 * (protobuf.dev/programming-guides/encoding: varints, length-delimited fields, fixed32/64).
 *
 * The reader is stricter than protobuf libraries, because what it reads is checked against a
 * signature and then trusted: a varint longer than 10 bytes or above 2^64, a length past the end,
 * a group (wire types 3/4), field number 0, or a known singular field given twice is refused
 * (ERR_EVIDENCE_MALFORMED) rather than merged or truncated. Unknown fields are skipped.
 */
import { AttestationError } from '../../errors.js';

export const WIRE = { varint: 0, fixed64: 1, bytes: 2, fixed32: 5 } as const;
export type WireType = (typeof WIRE)[keyof typeof WIRE];

export interface ProtoField {
  number: number;
  wireType: WireType;
  /** varint: the value; fixed32/fixed64: the value, unsigned. */
  int?: bigint;
  /** bytes: the payload (a view into the input). */
  bytes?: Uint8Array;
}

function malformed(message: string): AttestationError {
  return new AttestationError('ERR_EVIDENCE_MALFORMED', `protobuf: ${message}`);
}

function readVarint(b: Uint8Array, at: number): [bigint, number] {
  let value = 0n;
  for (let i = 0; i < 10; i++) {
    if (at + i >= b.length) throw malformed('varint runs past the end');
    const byte = b[at + i]!;
    value |= BigInt(byte & 0x7f) << BigInt(7 * i);
    if ((byte & 0x80) === 0) {
      if (value >= 1n << 64n) throw malformed('varint above 2^64');
      return [value, at + i + 1];
    }
  }
  throw malformed('varint longer than 10 bytes');
}

function readFixed(b: Uint8Array, at: number, n: number): bigint {
  if (at + n > b.length) throw malformed('fixed-width field runs past the end');
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[at + i]!);
  return v;
}

/** Splits one message into its fields, in wire order. Linear in the input. */
export function readFields(b: Uint8Array): ProtoField[] {
  const out: ProtoField[] = [];
  let at = 0;
  while (at < b.length) {
    const [key, next] = readVarint(b, at);
    at = next;
    const wireType = Number(key & 7n);
    const number = key >> 3n;
    if (number === 0n || number > 0x1fffffffn) throw malformed(`field number ${number}`);
    const f = { number: Number(number), wireType } as ProtoField;
    switch (wireType) {
      case WIRE.varint: {
        const [v, n] = readVarint(b, at);
        f.int = v;
        at = n;
        break;
      }
      case WIRE.fixed64:
        f.int = readFixed(b, at, 8);
        at += 8;
        break;
      case WIRE.fixed32:
        f.int = readFixed(b, at, 4);
        at += 4;
        break;
      case WIRE.bytes: {
        const [len, n] = readVarint(b, at);
        if (len > BigInt(b.length - n)) throw malformed('length-delimited field runs past the end');
        f.bytes = b.subarray(n, n + Number(len));
        at = n + Number(len);
        break;
      }
      default:
        throw malformed(`wire type ${wireType} (groups are not supported)`);
    }
    out.push(f);
  }
  return out;
}

/**
 * Typed access to one message's fields: each getter checks the wire type and refuses a singular
 * field given twice.
 */
export class ProtoMessage {
  private readonly byNumber = new Map<number, ProtoField[]>();

  constructor(
    bytes: Uint8Array,
    private readonly name: string,
  ) {
    for (const f of readFields(bytes)) {
      const list = this.byNumber.get(f.number);
      if (list) list.push(f);
      else this.byNumber.set(f.number, [f]);
    }
  }

  private all(number: number, wireType: WireType, field: string): ProtoField[] {
    const list = this.byNumber.get(number) ?? [];
    for (const f of list)
      if (f.wireType !== wireType)
        throw malformed(`${this.name}.${field} has wire type ${f.wireType}, not ${wireType}`);
    return list;
  }

  private one(number: number, wireType: WireType, field: string): ProtoField | undefined {
    const list = this.all(number, wireType, field);
    if (list.length > 1) throw malformed(`${this.name}.${field} appears ${list.length} times`);
    return list[0];
  }

  bytes(number: number, field: string): Uint8Array {
    return this.one(number, WIRE.bytes, field)?.bytes ?? new Uint8Array(0);
  }

  has(number: number): boolean {
    return this.byNumber.has(number);
  }

  repeatedBytes(number: number, field: string): Uint8Array[] {
    return this.all(number, WIRE.bytes, field).map((f) => f.bytes!);
  }

  uint64(number: number, field: string): bigint {
    return this.one(number, WIRE.varint, field)?.int ?? 0n;
  }

  uint32(number: number, field: string): number {
    const v = this.uint64(number, field);
    if (v > 0xffffffffn) throw malformed(`${this.name}.${field} is above 2^32`);
    return Number(v);
  }

  /** int64 / int32 are two's complement in a varint (negative values take 10 bytes). */
  int64(number: number, field: string): bigint {
    return BigInt.asIntN(64, this.uint64(number, field));
  }

  bool(number: number, field: string): boolean {
    const v = this.uint64(number, field);
    if (v > 1n) throw malformed(`${this.name}.${field} is not a bool`);
    return v === 1n;
  }
}

// ---------------------------------------------------------------------------------------------
// Writer (tests, and tools that mint endorsements with their own keys).

function varint(v: bigint): number[] {
  if (v < 0n) v = BigInt.asUintN(64, v);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return out;
}

/** One field on the wire. Numbers and bigints become varints; byte arrays length-delimited. */
export function field(number: number, value: bigint | number | boolean | Uint8Array): Uint8Array {
  if (value instanceof Uint8Array) {
    const head = Uint8Array.from([...varint((BigInt(number) << 3n) | 2n), ...varint(BigInt(value.length))]);
    return new Uint8Array(Buffer.concat([head, value]));
  }
  const v = typeof value === 'boolean' ? (value ? 1n : 0n) : BigInt(value);
  return Uint8Array.from([...varint(BigInt(number) << 3n), ...varint(v)]);
}

/** Concatenates fields into a message. */
export function message(...fields: Array<Uint8Array | undefined>): Uint8Array {
  return new Uint8Array(Buffer.concat(fields.filter((f): f is Uint8Array => f !== undefined)));
}
