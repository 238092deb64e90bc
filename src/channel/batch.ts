/**
 * Batched binders (docs/protocol.md §5.1; issue 17): one
 * hardware report whose REPORT_DATA commits to a Merkle tree over the binders of every exchange
 * that waited for it, and the audit path that lets each challenger recompute that REPORT_DATA from
 * its own binder.
 *
 *   leaf_i      = SHA-512(0x00 || binder_i)
 *   node(l, r)  = SHA-512(0x01 || l || r)
 *   root        = RFC 9162 §2.1.1 tree hash over leaf_0..leaf_{n-1} (split at k, the largest power
 *                 of two smaller than n)
 *   REPORT_DATA = SHA-512("attested-channel/1 batch" || 0x00 || u32be(n) || root)
 *   path record = u32be(index) || u32be(n) || sibling hashes in RFC 9162 §2.1.3.1 order (the leaf's
 *                 sibling first, the root's child last)
 *
 * The 0x00/0x01 prefixes keep a leaf from passing as a node (RFC 9162 §2.1.1), so the root commits
 * to the exact list of leaves; n in REPORT_DATA fixes the tree's shape; the label keeps a batch
 * REPORT_DATA apart from a plain binder (§5), whose hash input starts "attested-channel/1" 0x00.
 * Pure: no I/O, no clock, so the test vectors and an independent implementation can check it.
 */
import { createHash } from 'node:crypto';
import { AttestationError } from '../errors.js';

/** The media type of the `batch` CMW record. */
export const MERKLE_PATH_MEDIA_TYPE = 'application/vnd.attested-channel.merkle-path';
export const BATCH_LABEL = 'attested-channel/1 batch';
/**
 * Largest batch a challenger accepts, and an attester builds. 4 096 exchanges waiting for one
 * report is far beyond what one CVM holds open at once (maxPendingConnections defaults to 1 000);
 * its path is 12 hashes, so a record is at most 8 + 12 × 64 = 776 bytes.
 */
export const MAX_BATCH_SIZE = 4096;
export const HASH_SIZE = 64;
/** The longest audit path in a batch of MAX_BATCH_SIZE: ⌈log2 4096⌉. */
export const MAX_PATH_LENGTH = 12;
/** The largest record value: index, n and MAX_PATH_LENGTH hashes. */
export const MAX_PATH_RECORD_SIZE = 8 + MAX_PATH_LENGTH * HASH_SIZE;

export function merkleLeaf(binder: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha512').update(Buffer.of(0)).update(binder).digest());
}

function node(left: Uint8Array, right: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha512').update(Buffer.of(1)).update(left).update(right).digest());
}

/** The largest power of two smaller than n (n ≥ 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** REPORT_DATA for a batch of n whose tree hash is `root`. */
export function batchReportData(n: number, root: Uint8Array): Uint8Array {
  const size = Buffer.alloc(4);
  size.writeUInt32BE(n);
  return new Uint8Array(
    createHash('sha512').update(BATCH_LABEL, 'utf8').update(Buffer.of(0)).update(size).update(root).digest(),
  );
}

/**
 * The length of the audit path of leaf `index` in a tree of n leaves (RFC 9162 §2.1.3.1: one hash
 * per level the leaf's subtree is split on). O(log n).
 */
export function pathLength(index: number, n: number): number {
  let length = 0;
  while (n > 1) {
    const k = splitPoint(n);
    if (index < k) n = k;
    else {
      index -= k;
      n -= k;
    }
    length++;
  }
  return length;
}

export interface MerkleBatch {
  root: Uint8Array;
  /** paths[i]: the audit path of leaf i, the leaf's sibling first. */
  paths: Uint8Array[][];
}

/** The tree over `leaves` (1 ≤ n ≤ MAX_BATCH_SIZE): its root and every leaf's path. O(n log n). */
export function merkleBatch(leaves: readonly Uint8Array[]): MerkleBatch {
  const n = leaves.length;
  if (!(n >= 1 && n <= MAX_BATCH_SIZE))
    throw new AttestationError('ERR_INVALID_ARGUMENT', `a batch holds 1..${MAX_BATCH_SIZE} leaves`);
  const paths: Uint8Array[][] = leaves.map(() => []);
  // Siblings are appended after the subtrees below them are done, so each path runs leaf → root.
  const subtree = (from: number, size: number): Uint8Array => {
    if (size === 1) return leaves[from]!;
    const k = splitPoint(size);
    const left = subtree(from, k);
    const right = subtree(from + k, size - k);
    for (let i = from; i < from + k; i++) paths[i]!.push(right);
    for (let i = from + k; i < from + size; i++) paths[i]!.push(left);
    return node(left, right);
  };
  return { root: subtree(0, n), paths };
}

/**
 * The root a path leads to from `leaf` (RFC 9162 §2.1.3.2), or undefined when the path does not
 * fit (index, n): the caller has already checked its length, so undefined means a bug or a forged
 * length, and is refused either way.
 */
export function rootFromPath(
  leaf: Uint8Array,
  index: number,
  n: number,
  path: readonly Uint8Array[],
): Uint8Array | undefined {
  if (!(index >= 0 && index < n)) return undefined;
  let fn = index;
  let sn = n - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return undefined;
    if (fn % 2 === 1 || fn === sn) {
      r = node(p, r);
      // A right edge without a sibling at this level: climb until this node is a right child.
      while (fn % 2 === 0 && fn !== 0) [fn, sn] = [fn >>> 1, sn >>> 1];
    } else r = node(r, p);
    [fn, sn] = [fn >>> 1, sn >>> 1];
  }
  return sn === 0 ? r : undefined;
}

export interface BatchPath {
  index: number;
  size: number;
  path: Uint8Array[];
}

/** The `batch` record's value for leaf `index` of a batch of `size`. */
export function encodeBatchPath(index: number, size: number, path: readonly Uint8Array[]): Uint8Array {
  const out = Buffer.alloc(8 + path.length * HASH_SIZE);
  out.writeUInt32BE(index, 0);
  out.writeUInt32BE(size, 4);
  path.forEach((h, i) => {
    out.set(h, 8 + i * HASH_SIZE);
  });
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/**
 * Parses a `batch` record's value; ERR_EVIDENCE_MALFORMED unless 1 ≤ n ≤ MAX_BATCH_SIZE,
 * index < n and the value holds exactly pathLength(index, n) hashes. Constant work before the
 * length check, O(log n) after.
 */
export function decodeBatchPath(bytes: Uint8Array): BatchPath {
  const malformed = (why: string) => new AttestationError('ERR_EVIDENCE_MALFORMED', `CMW: "batch" ${why}`);
  if (bytes.length < 8 || bytes.length > MAX_PATH_RECORD_SIZE)
    throw malformed(`is ${bytes.length} bytes (8..${MAX_PATH_RECORD_SIZE})`);
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const index = view.readUInt32BE(0);
  const size = view.readUInt32BE(4);
  if (size < 1 || size > MAX_BATCH_SIZE) throw malformed(`batch size ${size} is not in 1..${MAX_BATCH_SIZE}`);
  if (index >= size) throw malformed(`index ${index} is not below the batch size ${size}`);
  const expected = pathLength(index, size);
  if (bytes.length !== 8 + expected * HASH_SIZE)
    throw malformed(`path must hold exactly ${expected} hashes for index ${index} of ${size}`);
  const path: Uint8Array[] = [];
  for (let i = 0; i < expected; i++) path.push(bytes.subarray(8 + i * HASH_SIZE, 8 + (i + 1) * HASH_SIZE));
  return { index, size, path };
}

/**
 * REPORT_DATA a challenger expects for a batched answer: recomputed from its own binder (never a
 * leaf the peer sent) and the path. Undefined when the path leads nowhere (cannot happen after
 * decodeBatchPath; refused as a mismatch if it does).
 */
export function expectedBatchReportData(binder: Uint8Array, batch: BatchPath): Uint8Array | undefined {
  const root = rootFromPath(merkleLeaf(binder), batch.index, batch.size, batch.path);
  return root === undefined ? undefined : batchReportData(batch.size, root);
}
