/**
 * Batched binders (docs/protocol.md §5.1): the Merkle tree, the path record and the REPORT_DATA
 * a challenger recomputes, checked against the pinned vectors (test/fixtures/protocol/) and against
 * an implementation written here from the formula alone, which shares no code with src/.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BATCH_LABEL,
  batchReportData,
  decodeBatchPath,
  encodeBatchPath,
  expectedBatchReportData,
  MAX_BATCH_SIZE,
  MAX_PATH_LENGTH,
  MERKLE_PATH_MEDIA_TYPE,
  merkleBatch,
  merkleLeaf,
  pathLength,
  rootFromPath,
} from '../../src/channel/batch.js';
import { decodeCmw, MediaType } from '../../src/channel/cmw.js';
import { encodeRequest, parseRequest } from '../../src/channel/frames.js';
import { AttestationError } from '../../src/errors.js';
import { fakeReport } from './helpers.js';

// ---- an independent implementation, from the formula in docs/protocol.md §5.1 ----------------
// Recursive, as RFC 9162 §2.1.1 and §2.1.3.1 define MTH and PATH; it verifies a path by walking
// the same recursion top-down, not with the iterative algorithm of §2.1.3.2 that src/ uses.
const sha512 = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
};
const ref = {
  leaf: (binder: Uint8Array) => sha512(Buffer.of(0), binder),
  node: (l: Uint8Array, r: Uint8Array) => sha512(Buffer.of(1), l, r),
  k: (n: number) => 2 ** Math.ceil(Math.log2(n) - 1),
  mth(leaves: Buffer[]): Buffer {
    if (leaves.length === 1) return leaves[0]!;
    const k = ref.k(leaves.length);
    return ref.node(ref.mth(leaves.slice(0, k)), ref.mth(leaves.slice(k)));
  },
  path(m: number, leaves: Buffer[]): Buffer[] {
    if (leaves.length === 1) return [];
    const k = ref.k(leaves.length);
    return m < k
      ? [...ref.path(m, leaves.slice(0, k)), ref.mth(leaves.slice(k))]
      : [...ref.path(m - k, leaves.slice(k)), ref.mth(leaves.slice(0, k))];
  },
  /** The root from a leaf and its path, by the recursion (the path's last hash is the top sibling). */
  climb(leaf: Buffer, m: number, n: number, path: Buffer[]): Buffer | undefined {
    if (n === 1) return path.length === 0 ? leaf : undefined;
    if (path.length === 0) return undefined;
    const k = ref.k(n);
    const top = path[path.length - 1]!;
    const rest = path.slice(0, -1);
    if (m < k) {
      const left = ref.climb(leaf, m, k, rest);
      return left && ref.node(left, top);
    }
    const right = ref.climb(leaf, m - k, n - k, rest);
    return right && ref.node(top, right);
  },
  reportData(n: number, root: Uint8Array): Buffer {
    const size = Buffer.alloc(4);
    size.writeUInt32BE(n);
    return sha512(Buffer.from('attested-channel/1 batch', 'utf8'), Buffer.of(0), size, root);
  },
  record(m: number, n: number, path: Buffer[]): Buffer {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(m, 0);
    head.writeUInt32BE(n, 4);
    return Buffer.concat([head, ...path]);
  },
  /** A challenger's check, from a record's bytes: REPORT_DATA it expects for `binder`, or undefined. */
  verify(binder: Uint8Array, record: Buffer): Buffer | undefined {
    if (record.length < 8) return undefined;
    const m = record.readUInt32BE(0);
    const n = record.readUInt32BE(4);
    if (n < 1 || n > 4096 || m >= n || (record.length - 8) % 64 !== 0) return undefined;
    const path: Buffer[] = [];
    for (let at = 8; at < record.length; at += 64) path.push(record.subarray(at, at + 64));
    const root = ref.climb(ref.leaf(binder), m, n, path);
    return root && ref.reportData(n, root);
  },
};

const binderOf = (i: number): Uint8Array => {
  const b = Buffer.alloc(64);
  b.writeUInt32BE(i, 0);
  return createHash('sha512').update(b).digest();
};

interface Vector {
  n: number;
  binders: string[];
  leaves: string[];
  root: string;
  reportData: string;
  records: Array<{ index: number; hex: string; b64url: string }>;
}
const vectors: Vector[] = JSON.parse(
  readFileSync(new URL('../fixtures/protocol/batch-vectors.json', import.meta.url), 'utf8'),
).vectors;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const fromHex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));

describe('batched binders: pinned vectors (docs/protocol.md §5.1)', () => {
  it('the vectors cover batches of 1, 2, 3, 5 and 7 (every shape of the RFC 9162 split up to 7)', () => {
    expect(vectors.map((v) => v.n)).toEqual([1, 2, 3, 5, 7]);
    expect(BATCH_LABEL).toBe('attested-channel/1 batch');
    expect(MERKLE_PATH_MEDIA_TYPE).toBe('application/vnd.attested-channel.merkle-path');
  });

  it('docs/protocol.md §5.1 shows the pinned vectors for n = 1 and n = 3, byte for byte', () => {
    const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('### 5.1 Batched binder'), doc.indexOf('## 6. Evidence'));
    for (const v of vectors.filter((x) => x.n === 1 || x.n === 3)) {
      expect(section).toContain(v.root);
      expect(section).toContain(v.reportData);
      for (const r of v.records) expect(section).toContain(r.hex);
    }
    for (const leaf of vectors.find((x) => x.n === 3)!.leaves) expect(section).toContain(leaf);
  });

  for (const v of vectors)
    it(`n = ${v.n}: the library gives the pinned leaves, root, REPORT_DATA and records`, () => {
      const binders = v.binders.map(fromHex);
      const leaves = binders.map(merkleLeaf);
      expect(leaves.map(hex)).toEqual(v.leaves);
      const { root, paths } = merkleBatch(leaves);
      expect(hex(root)).toBe(v.root);
      expect(hex(batchReportData(v.n, root))).toBe(v.reportData);
      v.records.forEach((r, i) => {
        const bytes = encodeBatchPath(i, v.n, paths[i]!);
        expect(hex(bytes)).toBe(r.hex);
        expect(Buffer.from(bytes).toString('base64url')).toBe(r.b64url);
        const decoded = decodeBatchPath(bytes);
        expect(hex(expectedBatchReportData(binders[i]!, decoded)!)).toBe(v.reportData);
      });
    });

  for (const v of vectors)
    it(`n = ${v.n}: the independent implementation gives the same vectors`, () => {
      const leaves = v.binders.map((b) => ref.leaf(fromHex(b)));
      expect(leaves.map(hex)).toEqual(v.leaves);
      const root = ref.mth(leaves);
      expect(hex(root)).toBe(v.root);
      expect(hex(ref.reportData(v.n, root))).toBe(v.reportData);
      v.records.forEach((r, i) => {
        expect(hex(ref.record(i, v.n, ref.path(i, leaves)))).toBe(r.hex);
        expect(hex(ref.verify(fromHex(v.binders[i]!), Buffer.from(r.hex, 'hex'))!)).toBe(v.reportData);
      });
    });
});

describe('batched binders: every index of every batch of 1…300', () => {
  it('verifies with the library and with the independent implementation; paths have the RFC 9162 length', () => {
    let checked = 0;
    for (let n = 1; n <= 300; n++) {
      const binders = Array.from({ length: n }, (_, i) => binderOf(n * 1000 + i));
      const { root, paths } = merkleBatch(binders.map(merkleLeaf));
      const reportData = batchReportData(n, root);
      const refLeaves = binders.map(ref.leaf);
      expect(hex(root), `n=${n}`).toBe(hex(ref.mth(refLeaves)));
      for (let i = 0; i < n; i++) {
        const record = encodeBatchPath(i, n, paths[i]!);
        expect(paths[i]!.length).toBe(pathLength(i, n));
        // Byte for byte as the recursive PATH gives it (quadratic there, so for the smaller batches).
        if (n <= 64) expect(hex(record)).toBe(hex(ref.record(i, n, ref.path(i, refLeaves))));
        const ours = expectedBatchReportData(binders[i]!, decodeBatchPath(record));
        const theirs = ref.verify(binders[i]!, Buffer.from(record));
        if (!ours || !theirs || !Buffer.from(ours).equals(reportData) || !theirs.equals(reportData))
          throw new Error(`n=${n} index=${i} does not verify`);
        // Another batch member's binder never fits this path.
        if (n > 1) {
          const other = binders[(i + 1) % n]!;
          expect(
            Buffer.from(expectedBatchReportData(other, decodeBatchPath(record))!).equals(reportData),
          ).toBe(false);
        }
        checked++;
      }
    }
    expect(checked).toBe((300 * 301) / 2);
  }, 120_000);
});

describe('batched binders: tampering', () => {
  /** Every bit of the record (index, n, path) flipped in turn: refused, by the parser or the root. */
  function flipAll(n: number, indices: number[]): number {
    const binders = Array.from({ length: n }, (_, i) => binderOf(i + 7));
    const { root, paths } = merkleBatch(binders.map(merkleLeaf));
    const reportData = Buffer.from(batchReportData(n, root));
    let flips = 0;
    for (const i of indices) {
      const record = encodeBatchPath(i, n, paths[i]!);
      for (let bit = 0; bit < record.length * 8; bit++) {
        const bad = Uint8Array.from(record);
        bad[bit >> 3]! ^= 0x80 >> (bit & 7);
        let got: Uint8Array | undefined;
        try {
          got = expectedBatchReportData(binders[i]!, decodeBatchPath(bad));
        } catch (err) {
          expect((err as AttestationError).code).toBe('ERR_EVIDENCE_MALFORMED');
          flips++;
          continue;
        }
        if (got && reportData.equals(got))
          throw new Error(`n=${n} index=${i}: bit ${bit} flipped still verifies`);
        // The independent check agrees that nothing matches.
        const theirs = ref.verify(binders[i]!, Buffer.from(bad));
        expect(theirs === undefined || !theirs.equals(reportData)).toBe(true);
        flips++;
      }
    }
    return flips;
  }

  it('any flipped bit of index, n or path is refused (n = 1, 2, 3, 7, 8, 9, 300)', () => {
    let flips = 0;
    flips += flipAll(1, [0]);
    flips += flipAll(2, [0, 1]);
    flips += flipAll(3, [0, 1, 2]);
    flips += flipAll(7, [0, 3, 4, 6]);
    flips += flipAll(8, [0, 5, 7]);
    flips += flipAll(9, [0, 7, 8]);
    flips += flipAll(300, [0, 137, 255, 256, 299]);
    expect(flips).toBeGreaterThan(20_000);
  });

  it('a flipped bit of the binder, of REPORT_DATA or of n in REPORT_DATA gives another REPORT_DATA', () => {
    const binders = Array.from({ length: 5 }, (_, i) => binderOf(i));
    const { root, paths } = merkleBatch(binders.map(merkleLeaf));
    const good = Buffer.from(batchReportData(5, root));
    const batch = decodeBatchPath(encodeBatchPath(2, 5, paths[2]!));
    for (let bit = 0; bit < 512; bit++) {
      const b = Uint8Array.from(binders[2]!);
      b[bit >> 3]! ^= 1 << (bit & 7);
      expect(good.equals(expectedBatchReportData(b, batch)!)).toBe(false);
    }
    expect(good.equals(batchReportData(4, root))).toBe(false);
    expect(good.equals(batchReportData(6, root))).toBe(false);
  });

  it('a batch REPORT_DATA is never the plain binder of its only leaf (n = 1 is still domain-separated)', () => {
    const binder = binderOf(1);
    const { root } = merkleBatch([merkleLeaf(binder)]);
    expect(hex(root)).toBe(hex(ref.leaf(binder)));
    expect(hex(batchReportData(1, root))).not.toBe(hex(binder));
    expect(hex(batchReportData(1, root))).not.toBe(hex(root));
  });
});

describe('batched binders: path record parser', () => {
  it('bounds: n = 0, n over 4 096, index ≥ n, a path one hash short or long are refused', () => {
    const refuse = (bytes: Uint8Array, why: RegExp) => {
      try {
        decodeBatchPath(bytes);
      } catch (err) {
        expect(err).toBeInstanceOf(AttestationError);
        expect((err as AttestationError).code).toBe('ERR_EVIDENCE_MALFORMED');
        expect((err as Error).message).toMatch(why);
        return;
      }
      throw new Error('accepted');
    };
    const head = (m: number, n: number, hashes = 0) => {
      const b = Buffer.alloc(8 + hashes * 64);
      b.writeUInt32BE(m, 0);
      b.writeUInt32BE(n, 4);
      return new Uint8Array(b);
    };
    refuse(head(0, 0), /batch size 0/);
    refuse(head(0, MAX_BATCH_SIZE + 1), /batch size 4097/);
    refuse(head(0, 0xffffffff, 12), /batch size 4294967295/);
    refuse(head(0, MAX_BATCH_SIZE + 1, 13), /840 bytes/);
    refuse(head(5, 5, 2), /index 5/);
    refuse(head(0xffffffff, 7, 3), /index 4294967295/);
    refuse(head(0, 5, 2), /exactly 3 hashes/);
    refuse(head(0, 5, 4), /exactly 3 hashes/);
    refuse(head(4, 5, 2), /exactly 1 hashes/);
    refuse(head(0, 1, 1), /exactly 0 hashes/);
    refuse(new Uint8Array(7), /7 bytes/);
    refuse(head(0, 4096, MAX_PATH_LENGTH + 1), /bytes/);
    refuse(new Uint8Array(8 + 64 * 12 + 1), /bytes/);
    // The longest legal path is refused only for a batch whose shape does not need it.
    expect(decodeBatchPath(head(0, 4096, 12)).path).toHaveLength(12);
    expect(pathLength(4095, 4096)).toBe(MAX_PATH_LENGTH);
    expect(pathLength(4096, 4097)).toBe(1);
  });

  it('a huge record is refused from its size, before any hashing (cheaply)', () => {
    const huge = new Uint8Array(64 * 1024 * 1024);
    const t = performance.now();
    for (let i = 0; i < 1000; i++) expect(() => decodeBatchPath(huge)).toThrow(AttestationError);
    expect(performance.now() - t).toBeLessThan(500);
  });

  it('property: arbitrary bytes give a path of exactly pathLength(index, n) hashes or ERR_EVIDENCE_MALFORMED', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 900 }), (bytes) => {
        let parsed: ReturnType<typeof decodeBatchPath>;
        try {
          parsed = decodeBatchPath(bytes);
        } catch (err) {
          return err instanceof AttestationError && err.code === 'ERR_EVIDENCE_MALFORMED';
        }
        return (
          parsed.size >= 1 &&
          parsed.size <= MAX_BATCH_SIZE &&
          parsed.index < parsed.size &&
          parsed.path.length === pathLength(parsed.index, parsed.size) &&
          bytes.length === 8 + 64 * parsed.path.length
        );
      }),
      { numRuns: 2000 },
    );
  });

  it('property: a well-formed header with random hashes parses, and the independent parser agrees on the fields', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: MAX_BATCH_SIZE }).chain((n) => fc.tuple(fc.constant(n), fc.nat(n - 1))),
        fc.uint8Array({ minLength: 64 * 12, maxLength: 64 * 12 }),
        ([n, m], pool) => {
          const len = pathLength(m, n);
          const path = Array.from({ length: len }, (_, i) => pool.subarray(i * 64, (i + 1) * 64));
          const bytes = encodeBatchPath(m, n, path);
          const parsed = decodeBatchPath(bytes);
          expect([parsed.index, parsed.size, parsed.path.map(hex)]).toEqual([m, n, path.map(hex)]);
          // Random hashes lead to a root no binder of ours gives.
          const leaf = merkleLeaf(binderOf(m));
          const root = rootFromPath(leaf, m, n, parsed.path);
          expect(root).toBeDefined();
          expect(
            hex(
              ref.climb(
                Buffer.from(leaf),
                m,
                n,
                parsed.path.map((p) => Buffer.from(p)),
              )!,
            ),
          ).toBe(hex(root!));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rootFromPath refuses a path that does not fit (index, n) even if the caller skipped the length check', () => {
    const leaf = merkleLeaf(binderOf(0));
    const h = new Uint8Array(64);
    expect(rootFromPath(leaf, 0, 5, [h, h])).toBeUndefined(); // one short
    expect(rootFromPath(leaf, 0, 5, [h, h, h, h])).toBeUndefined(); // one long
    expect(rootFromPath(leaf, 5, 5, [h, h, h])).toBeUndefined(); // index out of range
    expect(rootFromPath(leaf, 4, 4, [h, h])).toBeUndefined(); // index = n, though the walk would end at a root
    expect(rootFromPath(leaf, 0, 1, [])).toEqual(leaf);
  });
});

describe('batched binders: REQUEST "batch"', () => {
  const ctx = new Uint8Array(32).fill(7);
  const payload = (o: Record<string, unknown>) =>
    new Uint8Array(
      Buffer.from(
        JSON.stringify({ v: 1, context: Buffer.from(ctx).toString('base64url'), accept: [], ...o }),
      ),
    );

  it('is sent only when asked, as the last member, and read back', () => {
    const on = encodeRequest(ctx, ['a/b'], { batch: true });
    expect(Buffer.from(on.subarray(5)).toString()).toBe(
      `{"v":1,"context":"${Buffer.from(ctx).toString('base64url')}","accept":["a/b"],"batch":true}`,
    );
    expect(parseRequest(on.subarray(5)).batch).toBe(true);
    const off = encodeRequest(ctx, ['a/b']);
    expect(Buffer.from(off.subarray(5)).toString()).not.toContain('batch');
    expect(parseRequest(off.subarray(5)).batch).toBe(false);
    expect(Buffer.from(encodeRequest(ctx, [], { batch: false }).subarray(5)).toString()).not.toContain(
      'batch',
    );
  });

  it('true or false is read; any other JSON type is ERR_PROTOCOL; unknown members beside it are ignored', () => {
    expect(parseRequest(payload({ batch: false })).batch).toBe(false);
    expect(parseRequest(payload({ batch: true, later: ['x'], future: 1 })).batch).toBe(true);
    for (const batch of [1, 'true', null, [], {}])
      expect(() => parseRequest(payload({ batch }))).toThrow(
        expect.objectContaining({ code: 'ERR_PROTOCOL' }),
      );
  });
});

describe('batched binders: the CMW "batch" record', () => {
  const accept = [MediaType.SNP_REPORT];
  const report = Buffer.from(fakeReport(new Uint8Array(64))).toString('base64url');
  const record = Buffer.from(encodeBatchPath(0, 1, [])).toString('base64url');

  it('is taken only when this side asked for batches; else ERR_EVIDENCE_MALFORMED', () => {
    const cmw = { report: [MediaType.SNP_REPORT, report], batch: [MERKLE_PATH_MEDIA_TYPE, record] };
    expect(decodeCmw(cmw, accept, { batch: true }).batch).toEqual({ index: 0, size: 1, path: [] });
    for (const options of [{}, { batch: false }]) {
      try {
        decodeCmw(cmw, accept, options);
        throw new Error('accepted');
      } catch (err) {
        expect((err as AttestationError).code).toBe('ERR_EVIDENCE_MALFORMED');
        expect((err as Error).message).toMatch(/did not ask for batches/);
      }
    }
    expect(
      decodeCmw({ report: [MediaType.SNP_REPORT, report] }, accept, { batch: true }).batch,
    ).toBeUndefined();
  });

  it('an over-long value is refused from its text, before it is decoded', () => {
    try {
      decodeCmw(
        { report: [MediaType.SNP_REPORT, report], batch: [MERKLE_PATH_MEDIA_TYPE, 'A'.repeat(4_000_000)] },
        accept,
        { batch: true },
      );
      throw new Error('accepted');
    } catch (err) {
      expect((err as AttestationError).code).toBe('ERR_EVIDENCE_MALFORMED');
      expect((err as AttestationError).details).toEqual({ label: 'batch', limit: 776 });
    }
  });

  it('a wrong media type, a bad value or an over-long value is ERR_EVIDENCE_MALFORMED', () => {
    for (const batch of [
      [MediaType.JSON, record],
      [MERKLE_PATH_MEDIA_TYPE, `${record}=`],
      [MERKLE_PATH_MEDIA_TYPE, 'A'.repeat(1_000_000)],
      [MERKLE_PATH_MEDIA_TYPE],
      'x',
    ]) {
      try {
        decodeCmw({ report: [MediaType.SNP_REPORT, report], batch }, accept, { batch: true });
        throw new Error('accepted');
      } catch (err) {
        expect((err as AttestationError).code, JSON.stringify(batch).slice(0, 80)).toBe(
          'ERR_EVIDENCE_MALFORMED',
        );
      }
    }
  });
});
