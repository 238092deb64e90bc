/**
 * Deterministic mutators for the fuzz harness: a seeded PRNG, byte mutations (bit flips, random
 * bytes, "interesting" values in would-be length fields, DER length fields, truncations, extensions,
 * splices of two real inputs) and text mutations (the same on characters, plus JSON tokens).
 */

/** SplitMix32: small, fast and reproducible from one seed (the harness prints it). */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  next(): number {
    this.#s = (this.#s + 0x9e3779b9) >>> 0;
    let z = this.#s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  }
  /** 0 ≤ n < max */
  int(max: number): number {
    return max <= 0 ? 0 : this.next() % max;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() / 0x1_0000_0000 < p;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }
}

/** Values that break length arithmetic: zero, one, sign boundaries, all-ones, near the input size. */
function interesting(rng: Rng, size: number): number {
  return rng.pick([
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x10000,
    0x7fffffff,
    0x80000000,
    0xffffffff,
    size,
    size - 1,
    size + 1,
    size * 2,
    rng.next(),
  ]);
}

/** Where DER length bytes are in `der` (the byte after each tag), walked as far as it parses. */
export function derLengthOffsets(der: Uint8Array): number[] {
  const out: number[] = [];
  const walk = (start: number, end: number, depth: number): void => {
    let p = start;
    while (p + 2 <= end && out.length < 4096) {
      const tag = der[p]!;
      const lenAt = p + 1;
      let len = der[lenAt]!;
      let hdr = 2;
      if (len & 0x80) {
        const n = len & 0x7f;
        if (n === 0 || n > 4 || lenAt + n >= end) return;
        len = 0;
        for (let i = 1; i <= n; i++) len = len * 256 + der[lenAt + i]!;
        hdr = 2 + n;
      }
      out.push(lenAt);
      const valueEnd = p + hdr + len;
      if (valueEnd > end) return;
      // Constructed types (SEQUENCE, SET, [n] constructed) and BIT/OCTET STRINGs that wrap DER.
      if ((tag & 0x20 || tag === 0x04 || tag === 0x03) && depth < 12)
        walk(p + hdr + (tag === 0x03 ? 1 : 0), valueEnd, depth + 1);
      p = valueEnd;
    }
  };
  walk(0, der.length, 0);
  return out;
}

export type ByteMutation =
  | 'bitflip'
  | 'byte'
  | 'interesting'
  | 'der-length'
  | 'truncate'
  | 'extend'
  | 'splice'
  | 'chunk-copy'
  | 'delete';

/** Mutations that keep the length: the only ones used on signed data (a resize is always refused). */
export const IN_PLACE: readonly ByteMutation[] = [
  'bitflip',
  'byte',
  'interesting',
  'der-length',
  'chunk-copy',
];
export const ALL_BYTE: readonly ByteMutation[] = [...IN_PLACE, 'truncate', 'extend', 'splice', 'delete'];

/**
 * One to a few mutations of `seed` (never in place: a fresh array). `others` are further real
 * inputs of the same kind, for splices. `region` limits in-place mutations to [start, end).
 */
export function mutateBytes(
  rng: Rng,
  seed: Uint8Array,
  others: readonly Uint8Array[],
  kinds: readonly ByteMutation[] = ALL_BYTE,
  region: [number, number] = [0, seed.length],
  derOffsets?: readonly number[],
): Uint8Array {
  let out: Uint8Array = seed.slice();
  const rounds = 1 + (rng.chance(0.3) ? rng.int(4) : 0);
  for (let r = 0; r < rounds; r++) {
    const [lo, hi0] = region;
    const hi = Math.min(hi0, out.length);
    const at = lo + rng.int(Math.max(1, hi - lo));
    switch (rng.pick(kinds)) {
      case 'bitflip':
        if (at < out.length) out[at]! ^= 1 << rng.int(8);
        break;
      case 'byte':
        if (at < out.length) out[at] = rng.next() & 0xff;
        break;
      case 'interesting': {
        // A would-be length or count field: 1, 2 or 4 bytes, either byte order.
        const width = rng.pick([1, 2, 4]);
        const v = interesting(rng, out.length);
        const little = rng.chance(0.5);
        for (let i = 0; i < width && at + i < out.length; i++) {
          const shift = 8 * (little ? i : width - 1 - i);
          out[at + i] = (v >>> shift) & 0xff;
        }
        break;
      }
      case 'der-length': {
        const offsets = derOffsets ?? derLengthOffsets(seed);
        if (offsets.length === 0) break;
        const p = rng.pick(offsets);
        if (p >= out.length) break;
        // Short form, long form with 1..4 bytes (non-minimal or huge), or indefinite (0x80).
        const form = rng.int(4);
        if (form === 0) out[p] = rng.next() & 0x7f;
        else if (form === 1) out[p] = 0x80;
        else if (form === 2) out[p] = 0x80 | (1 + rng.int(4));
        else if (p + 1 < out.length) out[p + 1] = rng.next() & 0xff;
        break;
      }
      case 'chunk-copy': {
        // Overwrite a run with bytes from elsewhere in the input (or another input), same length.
        const src = others.length > 0 && rng.chance(0.5) ? rng.pick(others) : out;
        const n = 1 + rng.int(Math.min(64, Math.max(1, hi - at)));
        const from = rng.int(Math.max(1, src.length - n));
        for (let i = 0; i < n && at + i < hi && from + i < src.length; i++) out[at + i] = src[from + i]!;
        break;
      }
      case 'truncate':
        out = out.slice(0, rng.chance(0.2) ? rng.int(16) : rng.int(out.length));
        break;
      case 'extend':
        out = concat(out, rng.chance(0.5) ? new Uint8Array(1 + rng.int(64)) : rng.bytes(1 + rng.int(64)));
        break;
      case 'delete': {
        const n = 1 + rng.int(16);
        out = concat(out.subarray(0, at), out.subarray(Math.min(out.length, at + n)));
        break;
      }
      case 'splice': {
        const other = others.length > 0 ? rng.pick(others) : out;
        const cut = rng.int(out.length + 1);
        const from = rng.int(other.length + 1);
        out = concat(out.subarray(0, cut), other.subarray(from));
        break;
      }
    }
  }
  return out;
}

const JSON_TOKENS = [
  '{',
  '}',
  '[',
  ']',
  '"',
  ',',
  ':',
  'null',
  'true',
  '-1',
  '0',
  '1e309',
  '-0',
  '4294967296',
  '9007199254740993',
  '"__proto__"',
  '"constructor"',
  '"toString"',
  '\\u0000',
  '\\ud800',
  '""',
  '[]',
  '{}',
  ' ',
  '\n',
  '\u2028',
  'é',
  '\u0000',
];

/** Mutations of JSON or PEM text: characters, tokens, numbers, truncation, splices, duplication. */
export function mutateText(rng: Rng, seed: string, others: readonly string[]): string {
  let out = seed;
  const rounds = 1 + (rng.chance(0.3) ? rng.int(4) : 0);
  for (let r = 0; r < rounds; r++) {
    const at = rng.int(out.length + 1);
    switch (rng.int(9)) {
      case 0: // flip a bit of one character
        if (at < out.length)
          out =
            out.slice(0, at) +
            String.fromCharCode(out.charCodeAt(at) ^ (1 << rng.int(7))) +
            out.slice(at + 1);
        break;
      case 1: // insert a JSON token
        out = out.slice(0, at) + rng.pick(JSON_TOKENS) + out.slice(at);
        break;
      case 2: // delete a run
        out = out.slice(0, at) + out.slice(at + 1 + rng.int(8));
        break;
      case 3: {
        // replace a number with a boundary value
        const numbers = [...out.matchAll(/-?\d+(\.\d+)?/g)];
        if (numbers.length === 0) break;
        const m = rng.pick(numbers);
        const v = rng.pick([
          '-1',
          '0',
          '256',
          '65536',
          '4294967295',
          '1e400',
          '0.5',
          '"1"',
          'null',
          String(rng.next()),
        ]);
        out = out.slice(0, m.index) + v + out.slice(m.index + m[0].length);
        break;
      }
      case 4:
        out = out.slice(0, rng.int(out.length + 1));
        break;
      case 5: {
        // splice with another input
        const other = others.length > 0 ? rng.pick(others) : out;
        out = out.slice(0, at) + other.slice(rng.int(other.length + 1));
        break;
      }
      case 6: {
        // duplicate a run (duplicate keys, repeated records)
        const n = 1 + rng.int(200);
        out = out.slice(0, at) + out.slice(at, at + n) + out.slice(at);
        break;
      }
      case 7: {
        // change a hex digit or base64 character (signatures, measurements, certificates)
        const hex = [...out.matchAll(/[0-9a-fA-F+/]{8,}/g)];
        if (hex.length === 0) break;
        const m = rng.pick(hex);
        const p = m.index + rng.int(m[0].length);
        out = out.slice(0, p) + rng.pick([...'0123456789abcdefABCDEF+/=']) + out.slice(p + 1);
        break;
      }
      default: // a random character
        out = out.slice(0, at) + String.fromCharCode(rng.int(0x80) || 0x2028) + out.slice(at);
    }
  }
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
