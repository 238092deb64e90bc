/**
 * The batch scheduler alone (src/channel/batch-scheduler.ts): single flight, group commit, a lone
 * exchange answered plainly, maxSize, withdrawal, provider failure, pacing.
 */
import { describe, expect, it } from 'vitest';
import {
  batchReportData,
  decodeBatchPath,
  encodeBatchPath,
  expectedBatchReportData,
} from '../../src/channel/batch.js';
import { BatchScheduler, createBatchScheduler } from '../../src/channel/batch-scheduler.js';
import { AttestationError } from '../../src/errors.js';
import type { EvidenceInput, EvidenceProvider } from '../../src/evidence/types.js';

/** A provider whose every call waits for release(); it records what it was given and when. */
function manual(options: { heedAbort?: boolean } = {}) {
  const calls: Array<{
    reportData: Uint8Array;
    at: number;
    signal: AbortSignal | undefined;
    overlap: boolean | undefined;
  }> = [];
  const pending: Array<{
    reportData: Uint8Array;
    resolve: (v: EvidenceInput) => void;
    reject: (e: unknown) => void;
  }> = [];
  const provider: EvidenceProvider = {
    format: 'sev-snp',
    getEvidence(reportData, opts) {
      calls.push({ reportData, at: performance.now(), signal: opts?.signal, overlap: opts?.overlap });
      return new Promise<EvidenceInput>((resolve, reject) => {
        pending.push({ reportData, resolve, reject });
        if (options.heedAbort !== false)
          opts?.signal?.addEventListener('abort', () => reject(opts.signal!.reason), { once: true });
      });
    },
  };
  return {
    provider,
    calls,
    /** Answers the oldest call with a report carrying its REPORT_DATA. */
    release() {
      const p = pending.shift()!;
      p.resolve({ report: p.reportData });
    },
    fail(error: unknown) {
      pending.shift()!.reject(error);
    },
  };
}

const binder = (i: number) => new Uint8Array(64).fill(i);
const tick = () => new Promise((r) => setImmediate(r));

describe('BatchScheduler', () => {
  it("a lone exchange's report gets its overlap; a batch's is always overlap: true", async () => {
    const m = manual();
    const s = createBatchScheduler(m.provider);
    const lone = s.submit(binder(1), new AbortController().signal, false);
    const rest = [2, 3].map((i) => s.submit(binder(i), new AbortController().signal, false));
    await tick();
    m.release();
    await lone;
    await tick();
    m.release();
    await Promise.all(rest);
    expect(m.calls.map((c) => c.overlap)).toEqual([false, true]);
    const mutual = s.submit(binder(4), new AbortController().signal, true);
    await tick();
    m.release();
    await mutual;
    expect(m.calls.map((c) => c.overlap)).toEqual([false, true, true]);
  });

  it('one request in flight; everything that waits meanwhile goes into the next report', async () => {
    const m = manual();
    const s = createBatchScheduler(m.provider);
    const a = s.submit(binder(1), new AbortController().signal);
    await tick();
    expect(m.calls).toHaveLength(1);
    const rest = [2, 3, 4].map((i) => s.submit(binder(i), new AbortController().signal));
    await tick();
    expect(m.calls).toHaveLength(1); // single flight
    expect(s.stats().queued).toBe(3);
    m.release();
    const first = await a;
    // Alone in its report: the plain binder, no leaf.
    expect(first.leaf).toBeUndefined();
    expect(first.reportData).toEqual(binder(1));
    await tick();
    expect(m.calls).toHaveLength(2);
    m.release();
    const batch = await Promise.all(rest);
    expect(batch.map((b) => [b.leaf?.index, b.leaf?.size])).toEqual([
      [0, 3],
      [1, 3],
      [2, 3],
    ]);
    // Each exchange's own binder and path give the REPORT_DATA the provider was given.
    batch.forEach((b, i) => {
      expect(b.reportData).toEqual(m.calls[1]!.reportData);
      const leaf = b.leaf!;
      const path = decodeBatchPath(encodeBatchPath(leaf.index, leaf.size, leaf.path));
      expect(expectedBatchReportData(binder(i + 2), path)).toEqual(b.reportData);
    });
    expect(s.stats()).toEqual({ reports: 2, leaves: 4, plain: 1, largest: 3, queued: 0 });
  });

  it('a provider failure fails every exchange of that batch, and the next batch still runs', async () => {
    const m = manual();
    const s = createBatchScheduler(m.provider);
    const a = s.submit(binder(1), new AbortController().signal);
    await tick();
    const b = s.submit(binder(2), new AbortController().signal);
    const c = s.submit(binder(3), new AbortController().signal);
    m.release();
    await a;
    await tick();
    const boom = new AttestationError('ERR_PROVIDER_UNAVAILABLE', 'no PSP');
    m.fail(boom);
    await expect(b).rejects.toBe(boom);
    await expect(c).rejects.toBe(boom);
    const d = s.submit(binder(4), new AbortController().signal);
    await tick();
    m.release();
    expect((await d).reportData).toEqual(binder(4));
  });

  it('an exchange withdrawn while it waits leaves the batch; the others are served', async () => {
    const m = manual();
    const s = createBatchScheduler(m.provider);
    const a = s.submit(binder(1), new AbortController().signal);
    await tick();
    const gone = new AbortController();
    const b = s.submit(binder(2), gone.signal);
    const c = s.submit(binder(3), new AbortController().signal);
    gone.abort(new AttestationError('ERR_CONNECTION_CLOSED', 'closed'));
    await expect(b).rejects.toMatchObject({ code: 'ERR_CONNECTION_CLOSED' });
    expect(s.stats().queued).toBe(1);
    m.release();
    await a;
    await tick();
    m.release();
    // Alone in the next report: the plain binder.
    expect((await c).reportData).toEqual(binder(3));
    expect(m.calls[1]!.reportData).toEqual(binder(3));
  });

  it('a report nobody waits for any more is abandoned (aborted), even if the provider ignores the abort', async () => {
    const m = manual({ heedAbort: false });
    const s = createBatchScheduler(m.provider);
    const blocker = s.submit(binder(0), new AbortController().signal);
    await tick();
    const x = new AbortController();
    const y = new AbortController();
    const a = s.submit(binder(1), x.signal);
    const b = s.submit(binder(2), y.signal);
    m.release();
    await blocker;
    await tick();
    expect(m.calls).toHaveLength(2); // [a, b] in flight
    x.abort(new AttestationError('ERR_ABORTED', 'x'));
    await expect(a).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(m.calls[1]!.signal?.aborted).toBe(false); // b still wants it
    y.abort(new AttestationError('ERR_ABORTED', 'y'));
    await expect(b).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(m.calls[1]!.signal?.aborted).toBe(true);
    // The provider never answered: the next exchange is not held up behind it.
    const c = s.submit(binder(3), new AbortController().signal);
    await tick();
    expect(m.calls).toHaveLength(3);
    m.release(); // the abandoned call answers late: ignored
    m.release();
    expect((await c).reportData).toEqual(binder(3));
  });

  it('an already-aborted signal is refused at once', async () => {
    const s = createBatchScheduler(manual().provider);
    const c = new AbortController();
    c.abort(new AttestationError('ERR_ABORTED', 'early'));
    await expect(s.submit(binder(1), c.signal)).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(s.stats().reports).toBe(0);
  });

  it('maxSize caps a batch; the rest waits for the next report', async () => {
    const m = manual();
    const s = createBatchScheduler(m.provider, { maxSize: 2 });
    const all = [1, 2, 3, 4, 5].map((i) => s.submit(binder(i), new AbortController().signal));
    for (let i = 0; i < 3; i++) {
      await tick();
      m.release();
    }
    const got = await Promise.all(all);
    expect(got.map((g) => g.leaf?.size)).toEqual([undefined, 2, 2, 2, 2]);
    expect(m.calls).toHaveLength(3);
  });

  it('pacing: reportsPerSecond and burst space the reports out (a token bucket)', async () => {
    const m = manual();
    // 20 per second, burst 2: two reports at once, then one every 50 ms.
    const s = new BatchScheduler(m.provider, { reportsPerSecond: 20, burst: 2 });
    const start = performance.now();
    for (let round = 0; round < 5; round++) {
      const p = s.submit(binder(round), new AbortController().signal);
      for (let i = 0; i < 200 && m.calls.length <= round; i++) await new Promise((r) => setTimeout(r, 2));
      m.release();
      await p;
    }
    const at = m.calls.map((c) => c.at - start);
    // Lower bounds only (a loaded machine is slow, never fast): rounds 3..5 wait for tokens.
    expect(at[2]! - at[0]!).toBeGreaterThanOrEqual(40);
    expect(at[3]! - at[2]!).toBeGreaterThanOrEqual(40);
    expect(at[4]! - at[3]!).toBeGreaterThanOrEqual(40);
    expect(at[1]! - at[0]!).toBeLessThan(at[4]! - at[3]! + 40); // the burst did not wait a full interval
  });

  it('pacing keeps no timer once nothing waits', async () => {
    const m = manual();
    const s = new BatchScheduler(m.provider, { reportsPerSecond: 1 });
    const a = s.submit(binder(1), new AbortController().signal);
    await tick();
    m.release();
    await a;
    const gone = new AbortController();
    const b = s.submit(binder(2), gone.signal); // waits ~1 s for a token
    await tick();
    expect(m.calls).toHaveLength(1);
    const timers = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    gone.abort(new AttestationError('ERR_ABORTED', 'gone'));
    await expect(b).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(timers - 1);
  });

  it('REPORT_DATA is the batch formula over the leaves (not a binder)', async () => {
    const m = manual();
    const s = createBatchScheduler(m.provider);
    const blocker = s.submit(binder(1), new AbortController().signal);
    await tick();
    const a = s.submit(binder(9), new AbortController().signal);
    const b = s.submit(binder(8), new AbortController().signal);
    m.release();
    await blocker;
    await tick();
    m.release();
    const got = await a;
    expect(got.reportData).not.toEqual(binder(9));
    expect(got.leaf).toEqual({ index: 0, size: 2, path: [expect.any(Uint8Array)] });
    expect(expectedBatchReportData(binder(9), { index: 0, size: 2, path: got.leaf!.path })).toEqual(
      got.reportData,
    );
    expect(batchReportData(2, new Uint8Array(64))).not.toEqual(got.reportData);
    expect((await b).reportData).toEqual(got.reportData);
  });

  it('a lone exchange gets a plain report yet occupies the provider: what arrives meanwhile batches behind it', async () => {
    const m = manual();
    const s = createBatchScheduler(m.provider);
    const lone = new AbortController();
    const a = s.submit(binder(1), lone.signal);
    await tick();
    // The provider is given the binder itself, and the exchange's own signal (no batch controller).
    expect(m.calls[0]!.reportData).toEqual(binder(1));
    expect(m.calls[0]!.signal).toBe(lone.signal);
    const later = [2, 3].map((i) => s.submit(binder(i), new AbortController().signal));
    await tick();
    expect(m.calls).toHaveLength(1); // still single flight
    m.release();
    expect(await a).toEqual({ input: { report: binder(1) }, reportData: binder(1) });
    await tick();
    m.release();
    expect((await Promise.all(later)).map((g) => g.leaf?.size)).toEqual([2, 2]);
    expect(s.stats()).toEqual({ reports: 2, leaves: 3, plain: 1, largest: 2, queued: 0 });
  });

  it('a lone exchange withdrawn while its provider ignores the abort does not hold up the next', async () => {
    const m = manual({ heedAbort: false });
    const s = createBatchScheduler(m.provider);
    const gone = new AbortController();
    const a = s.submit(binder(1), gone.signal);
    await tick();
    gone.abort(new AttestationError('ERR_ABORTED', 'gone'));
    await expect(a).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    const b = s.submit(binder(2), new AbortController().signal);
    await tick();
    expect(m.calls).toHaveLength(2);
    m.release(); // the withdrawn exchange's report answers late: ignored
    m.release();
    expect((await b).reportData).toEqual(binder(2));
  });
});
