/** Property tests: the OVMF footer and SEV metadata parser on arbitrary and mutated images. */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import { GUIDS, guidBytes, guidText, parseFooterTable, parseOvmf } from '../../src/measure/ovmf.js';
import { snpLaunchDigest } from '../../src/measure/snp.js';
import { file } from './vectors.js';

const AMDSEV = new Uint8Array(readFileSync(file('ovmf_AmdSev_suffix.bin')));

/** Runs `f`; anything thrown must be an AttestationError with ERR_INVALID_ARGUMENT. */
function typedOrOk<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (err) {
    expect(err).toBeInstanceOf(AttestationError);
    expect((err as AttestationError).code).toBe('ERR_INVALID_ARGUMENT');
    return undefined;
  }
}

/** An image whose top holds a footer table of `entries` (each data ‖ u16 len ‖ GUID) and the trailer. */
function imageWith(entries: Array<{ guid: Uint8Array; data: Uint8Array }>, size = 8192): Uint8Array {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const len = Buffer.alloc(2);
    len.writeUInt16LE(e.data.length + 18);
    parts.push(Buffer.from(e.data), len, Buffer.from(e.guid));
  }
  const body = Buffer.concat(parts);
  const trailer = Buffer.alloc(18);
  trailer.writeUInt16LE(body.length + 18);
  trailer.set(guidBytes(GUIDS.footerTable), 2);
  const img = Buffer.alloc(size);
  const end = size - 32;
  trailer.copy(img, end - 18);
  body.copy(img, end - 18 - body.length);
  return new Uint8Array(img);
}

describe('OVMF parser properties', () => {
  it('arbitrary bytes: a result or ERR_INVALID_ARGUMENT, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 9000 }), (bytes) => {
        typedOrOk(() => parseOvmf(bytes));
      }),
      { numRuns: 500 },
    );
  });

  it('the real image with any bytes of its top 1 KiB changed: a result or ERR_INVALID_ARGUMENT', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.integer({ min: AMDSEV.length - 1024, max: AMDSEV.length - 1 }),
            fc.integer({ min: 0, max: 255 }),
          ),
          {
            minLength: 1,
            maxLength: 8,
          },
        ),
        (edits) => {
          const img = AMDSEV.slice();
          for (const [at, v] of edits) img[at] = v;
          typedOrOk(() => parseOvmf(img));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('mutated real images measure or fail with ERR_INVALID_ARGUMENT (never another error)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(
            fc.integer({ min: AMDSEV.length - 1024, max: AMDSEV.length - 1 }),
            fc.integer({ min: 0, max: 255 }),
          ),
          {
            minLength: 1,
            maxLength: 4,
          },
        ),
        fc.boolean(),
        async (edits, withKernel) => {
          const img = AMDSEV.slice();
          for (const [at, v] of edits) img[at] = v;
          try {
            await snpLaunchDigest({
              ovmf: img,
              vcpus: 2,
              vcpuType: 'EPYC-v4',
              vmmType: 'qemu',
              ...(withKernel ? { kernel: new Uint8Array(0) } : {}),
            });
          } catch (err) {
            expect(err).toBeInstanceOf(AttestationError);
            expect((err as AttestationError).code).toBe('ERR_INVALID_ARGUMENT');
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a table built from arbitrary entries parses back to them (the lowest entry of a GUID wins)', () => {
    const guid = fc.uint8Array({ minLength: 16, maxLength: 16 });
    fc.assert(
      fc.property(
        fc.array(fc.record({ guid, data: fc.uint8Array({ maxLength: 200 }) }), { maxLength: 12 }),
        (entries) => {
          const img = imageWith(entries);
          const table = parseFooterTable(img, img.length);
          const want = new Map<string, Uint8Array>();
          // Written in order, the first entry sits lowest; the walk from the trailer meets it last.
          for (const e of [...entries].reverse()) want.set(guidText(e.guid), e.data);
          expect(new Map([...table].map(([k, v]) => [k, Buffer.from(v).toString('hex')]))).toEqual(
            new Map([...want].map(([k, v]) => [k, Buffer.from(v).toString('hex')])),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('GUID text and bytes round-trip', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
        expect(Buffer.from(guidBytes(guidText(b))).equals(Buffer.from(b))).toBe(true);
      }),
    );
    expect(Buffer.from(guidBytes(GUIDS.footerTable)).toString('hex')).toBe(
      'de82b596b21ff745baeaa366c55a082d',
    );
  });

  it('refuses malformed tables and metadata with a reason', () => {
    const bad = (img: Uint8Array, re: RegExp) => expect(() => parseOvmf(img)).toThrow(re);
    bad(new Uint8Array(8192), /no SEV metadata/);
    // An entry shorter than its own header.
    const short = imageWith([{ guid: guidBytes(GUIDS.sevMetadata), data: new Uint8Array(4) }]);
    short[short.length - 32 - 18 - 18] = 5;
    bad(short, /below 18/);
    // A table longer than the image.
    const l = Buffer.from(imageWith([], 4096));
    l.writeUInt16LE(0xffff, 4096 - 32 - 18);
    bad(new Uint8Array(l), /starts before the image/);
    // Metadata offset pointing outside the image, and a header that is not ASEV.
    const off = (n: number) => {
      const d = Buffer.alloc(4);
      d.writeUInt32LE(n);
      return imageWith([{ guid: guidBytes(GUIDS.sevMetadata), data: d }]);
    };
    bad(off(100000), /outside the image/);
    bad(off(4096), /wrong signature/);
    // A valid header whose sections do not fit its length.
    const img = Buffer.from(off(4096));
    img.write('ASEV', 4096, 'latin1');
    img.writeUInt32LE(16 + 12, 4096 + 4);
    img.writeUInt32LE(1, 4096 + 8);
    img.writeUInt32LE(2, 4096 + 12);
    bad(new Uint8Array(img), /2 sections in 28 bytes/);
    img.writeUInt32LE(2, 4096 + 8);
    bad(new Uint8Array(img), /version 2/);
  });
});
