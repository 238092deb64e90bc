import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { base64url, equalBytes, fromBase64url } from '../src/evidence/bytes.js';

/** The definition: a string decodes iff it is exactly the canonical unpadded encoding of its bytes. */
function reference(s: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) return undefined;
  const out = new Uint8Array(Buffer.from(s, 'base64url'));
  return base64url(out) === s ? out : undefined;
}

describe('fromBase64url', () => {
  it('round-trips every byte string', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
        expect(fromBase64url(base64url(b))).toEqual(b);
      }),
    );
  });

  it('accepts exactly the canonical encodings (any string over the alphabet and beyond)', () => {
    const alphabet = fc.constantFrom(
      ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/='.split(''),
    );
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: alphabet, maxLength: 24 }), fc.string({ maxLength: 12 })),
        (s) => {
          expect(fromBase64url(s)).toEqual(reference(s));
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('returns bytes that own their memory (no view of a shared pool)', () => {
    const b = fromBase64url(base64url(Uint8Array.of(1, 2, 3, 4, 5)))!;
    expect(b.byteOffset).toBe(0);
    expect(b.buffer.byteLength).toBe(5);
  });

  it('refuses stray low bits, padding and the other alphabet', () => {
    expect(fromBase64url('AA')).toEqual(Uint8Array.of(0));
    expect(fromBase64url('AB')).toBeUndefined();
    expect(fromBase64url('AAA')).toEqual(Uint8Array.of(0, 0));
    expect(fromBase64url('AAB')).toBeUndefined();
    expect(fromBase64url('AA==')).toBeUndefined();
    expect(fromBase64url('+/')).toBeUndefined();
    expect(fromBase64url('A')).toBeUndefined();
  });
});

describe('equalBytes', () => {
  it('is byte equality, for short arrays (a loop) and long ones (Buffer#equals) alike', () => {
    const bytes = fc.uint8Array({ minLength: 0, maxLength: 130 });
    fc.assert(
      fc.property(bytes, bytes, fc.nat(), fc.nat(), (a, b, at, flip) => {
        expect(equalBytes(a, b)).toBe(Buffer.compare(a, b) === 0);
        expect(equalBytes(a, new Uint8Array(a))).toBe(true);
        if (a.length > 0) {
          const c = new Uint8Array(a);
          c[at % a.length]! ^= (flip % 255) + 1;
          expect(equalBytes(a, c)).toBe(false);
        }
        // Views into a larger buffer compare their own bytes only.
        const outer = new Uint8Array(a.length + 8).fill(7);
        outer.set(a, 4);
        expect(equalBytes(outer.subarray(4, 4 + a.length), a)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
