/**
 * The file reader behind the launch digests (src/measure/snp.ts openReader): a file read in chunks,
 * the next chunk read while the last is handed on, gives exactly the file's bytes in order, for
 * sizes on and around the chunk boundaries; a callback that throws stops it cleanly.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CHUNK, openReader, sha256Of } from '../../src/measure/snp.js';

const dir = mkdtempSync(join(tmpdir(), 'ac-reader-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fileOf(size: number): { path: string; bytes: Buffer } {
  const bytes = randomBytes(size);
  const path = join(dir, `f${size}`);
  writeFileSync(path, bytes);
  return { path, bytes };
}

describe('openReader(file).chunks', () => {
  for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 4097, 3 * CHUNK - 5]) {
    it(`hands on the ${size} bytes of a file in order, in chunks of at most ${CHUNK}`, async () => {
      const { path, bytes } = fileOf(size);
      const r = await openReader(path, 'file');
      // Copies: each chunk is a view of a buffer the reader fills again two chunks later.
      const got: Buffer[] = [];
      await r.chunks((c) => {
        expect(c.length).toBeGreaterThan(0);
        expect(c.length).toBeLessThanOrEqual(CHUNK);
        got.push(Buffer.from(c));
      });
      await r.close();
      expect(got.length).toBe(Math.ceil(size / CHUNK));
      expect(Buffer.concat(got).equals(bytes)).toBe(true);
    });
  }

  it('gives the same SHA-256 from a multi-chunk file as from its bytes', async () => {
    const { path, bytes } = fileOf(2 * CHUNK + 12345);
    const fromFile = await sha256Of(path, 'file');
    expect(Buffer.from(fromFile).toString('hex')).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('stops at a callback that throws, with its error, and leaves the file closable', async () => {
    const { path } = fileOf(3 * CHUNK);
    const r = await openReader(path, 'file');
    let calls = 0;
    const boom = new Error('stop here');
    await expect(
      r.chunks(() => {
        calls++;
        if (calls === 2) throw boom;
      }),
    ).rejects.toBe(boom);
    expect(calls).toBe(2);
    await expect(r.close()).resolves.toBeUndefined();
  });
});
