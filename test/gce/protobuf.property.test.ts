/** Property tests for the protobuf wire reader and writer. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import { field, message, ProtoMessage, readFields, WIRE } from '../../src/evidence/gce/protobuf.js';

const value = fc.oneof(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.uint8Array({ maxLength: 64 }));

describe('protobuf reader', () => {
  it('reads back what the writer wrote, in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 0x1fffffff }), value), { maxLength: 20 }),
        (fields) => {
          const got = readFields(message(...fields.map(([n, v]) => field(n, v))));
          expect(
            got.map((f) => [
              f.number,
              f.wireType === WIRE.bytes ? Buffer.from(f.bytes!).toString('hex') : f.int,
            ]),
          ).toEqual(
            fields.map(([n, v]) => [n, v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v]),
          );
        },
      ),
      { numRuns: 500 },
    );
  });

  it('arbitrary bytes: fields or ERR_EVIDENCE_MALFORMED, and the fields lie inside the input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          for (const f of readFields(bytes)) {
            expect(f.number).toBeGreaterThan(0);
            if (f.bytes) expect(f.bytes.buffer).toBe(bytes.buffer);
            if (f.int !== undefined) expect(f.int < 1n << 64n).toBe(true);
          }
        } catch (err) {
          expect(err).toBeInstanceOf(AttestationError);
          expect((err as AttestationError).code).toBe('ERR_EVIDENCE_MALFORMED');
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses what a lenient decoder would merge or truncate', () => {
    const bad = (b: number[] | Uint8Array, re: RegExp) =>
      expect(() => readFields(Uint8Array.from(b))).toThrow(re);
    bad([0x08], /varint runs past/);
    bad([0x08, ...new Array(10).fill(0xff), 0x01], /longer than 10/);
    bad([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], /above 2\^64/);
    bad([0x0a, 0x05, 1, 2], /runs past the end/);
    bad([0x0b], /wire type 3/);
    bad([0x00, 0x00], /field number 0/);
    bad([0x09, 1, 2, 3], /fixed-width/);
    const twice = new ProtoMessage(message(field(1, 1n), field(1, 2n)), 'M');
    expect(() => twice.uint64(1, 'x')).toThrow(/appears 2 times/);
    const wrongType = new ProtoMessage(field(1, 1n), 'M');
    expect(() => wrongType.bytes(1, 'x')).toThrow(/wire type 0, not 2/);
    expect(() => new ProtoMessage(field(1, 1n << 32n), 'M').uint32(1, 'x')).toThrow(/above 2\^32/);
    expect(() => new ProtoMessage(field(1, 2n), 'M').bool(1, 'x')).toThrow(/not a bool/);
    expect(new ProtoMessage(field(1, -5n), 'M').int64(1, 'x')).toBe(-5n);
  });

  it('skips unknown fields, including fixed32 and fixed64 ones', () => {
    const b = message(
      Uint8Array.of(0x0d, 1, 2, 3, 4),
      Uint8Array.of(0x11, 1, 2, 3, 4, 5, 6, 7, 8),
      field(3, Uint8Array.of(9)),
    );
    const msg = new ProtoMessage(b, 'M');
    expect(msg.bytes(3, 'x')).toEqual(Uint8Array.of(9));
    expect(readFields(b).map((f) => f.int)).toEqual([0x04030201n, 0x0807060504030201n, undefined]);
  });
});
