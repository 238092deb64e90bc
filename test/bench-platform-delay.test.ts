/**
 * The bench's latency-modelling platform (bench/platform-delay.ts): admission, FIFO order, the
 * off-CPU wait and the host throttle, driven by a manual clock (nothing here waits for real time).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type DelayClock, type LatencyProfile, PROFILES, platformDelay } from '../bench/platform-delay.js';
import type { EvidenceInput, EvidenceProvider } from '../src/evidence/types.js';

/** A clock that moves only when told to, firing due timers in order. */
function manualClock(): DelayClock & { advance(ms: number): Promise<void>; timers(): number } {
  let t = 0;
  let seq = 0;
  const timers: Array<{ at: number; seq: number; fire: () => void }> = [];
  const settle = async () => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  };
  return {
    now: () => t,
    sleep(ms, signal) {
      return new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason);
        const timer = { at: t + ms, seq: seq++, fire: resolve };
        timers.push(timer);
        signal?.addEventListener(
          'abort',
          () => {
            const i = timers.indexOf(timer);
            if (i >= 0) timers.splice(i, 1);
            reject(signal.reason);
          },
          { once: true },
        );
      });
    },
    async advance(ms) {
      const end = t + ms;
      await settle();
      for (;;) {
        timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
        const next = timers[0];
        if (!next || next.at > end) break;
        timers.shift();
        t = next.at;
        next.fire();
        await settle();
      }
      t = end;
      await settle();
    },
    timers: () => timers.length,
  };
}

/** A provider that records when it was called and how many calls overlapped; it may burn clock time. */
function recordingProvider(clock: DelayClock, burnMs = 0) {
  const calls: Array<{ at: number; data: number }> = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const provider: EvidenceProvider & { calls: typeof calls; maxInFlight: () => number } = {
    format: 'sev-snp',
    calls,
    maxInFlight: () => maxInFlight,
    async getEvidence(reportData: Uint8Array): Promise<EvidenceInput> {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      calls.push({ at: clock.now(), data: reportData[0]! });
      // Stands for the CPU the simulated signer spends: the clock moves while it works.
      if (burnMs > 0) await clock.sleep(burnMs);
      inFlight--;
      return { report: reportData };
    },
  };
  return provider;
}

const flat = (latencyMs: number): LatencyProfile => ({
  name: `flat-${latencyMs}`,
  platform: 'snp',
  latencyMs,
  models: 'test',
});

/** Issues a request and records when it settled and how. */
function track(clock: DelayClock, p: Promise<EvidenceInput>) {
  const out: { at?: number; ok?: boolean; error?: unknown; value?: EvidenceInput } = {};
  p.then(
    (value) => Object.assign(out, { at: clock.now(), ok: true, value }),
    (error) => Object.assign(out, { at: clock.now(), ok: false, error }),
  );
  return out;
}

describe('platformDelay (bench)', () => {
  it('admits one request at a time, first come first served, each holding the platform for its latency', async () => {
    const clock = manualClock();
    const inner = recordingProvider(clock);
    const p = platformDelay(inner, flat(8), clock);
    const results = [1, 2, 3].map((i) => track(clock, p.getEvidence(Uint8Array.of(i))));
    await clock.advance(0);
    expect(inner.calls).toEqual([{ at: 0, data: 1 }]);
    expect(p.stats.pending).toBe(3);
    await clock.advance(7);
    expect(results[0]!.at).toBeUndefined();
    await clock.advance(1);
    expect(results.map((r) => r.at)).toEqual([8, undefined, undefined]);
    await clock.advance(16);
    expect(results.map((r) => r.at)).toEqual([8, 16, 24]);
    expect(results.map((r) => r.value?.report[0])).toEqual([1, 2, 3]);
    expect(inner.calls.map((c) => c.at)).toEqual([0, 8, 16]);
    expect(inner.maxInFlight()).toBe(1);
    expect(p.stats).toMatchObject({ requests: 3, reports: 3, pending: 0, refused: 0 });
  });

  it("counts the simulated signer's own time as part of the latency", async () => {
    const clock = manualClock();
    const inner = recordingProvider(clock, 3);
    const p = platformDelay(inner, flat(8), clock);
    const a = track(clock, p.getEvidence(Uint8Array.of(1)));
    const b = track(clock, p.getEvidence(Uint8Array.of(2)));
    await clock.advance(100);
    expect([a.at, b.at]).toEqual([8, 16]);
  });

  it('a signer slower than the latency is not padded', async () => {
    const clock = manualClock();
    const p = platformDelay(recordingProvider(clock, 12), flat(8), clock);
    const a = track(clock, p.getEvidence(Uint8Array.of(1)));
    await clock.advance(100);
    expect(a.at).toBe(12);
  });

  it('a request aborted while queued leaves without reaching the platform, and the queue moves on', async () => {
    const clock = manualClock();
    const inner = recordingProvider(clock);
    const p = platformDelay(inner, flat(8), clock);
    const abort = new AbortController();
    const a = track(clock, p.getEvidence(Uint8Array.of(1)));
    const b = track(clock, p.getEvidence(Uint8Array.of(2), { signal: abort.signal }));
    const c = track(clock, p.getEvidence(Uint8Array.of(3)));
    await clock.advance(2);
    abort.abort(new Error('gone'));
    await clock.advance(0);
    expect(b).toMatchObject({ at: 2, ok: false });
    // The third still waits for the first: no two requests are ever in flight together.
    await clock.advance(100);
    expect([a.at, c.at]).toEqual([8, 16]);
    expect(inner.calls.map((x) => x.data)).toEqual([1, 3]);
    expect(inner.maxInFlight()).toBe(1);
    expect(p.stats).toMatchObject({ requests: 3, reports: 2, aborted: 1, pending: 0 });
  });

  it('an aborted request that holds the platform still runs to the end before the next starts', async () => {
    const clock = manualClock();
    const inner = recordingProvider(clock);
    const p = platformDelay(inner, flat(8), clock);
    const abort = new AbortController();
    track(clock, p.getEvidence(Uint8Array.of(1), { signal: abort.signal }));
    const b = track(clock, p.getEvidence(Uint8Array.of(2)));
    await clock.advance(1);
    abort.abort(new Error('gone'));
    await clock.advance(100);
    expect(inner.calls.map((x) => x.at)).toEqual([0, 8]);
    expect(b.at).toBe(16);
  });

  it('GCP throttle: 10 reports per 10 s; the 11th is refused, resent every 2 s, and served once the window has run out', async () => {
    const clock = manualClock();
    const inner = recordingProvider(clock);
    const p = platformDelay(inner, PROFILES['snp-gcp']!, clock);
    const results = Array.from({ length: 12 }, (_, i) => track(clock, p.getEvidence(Uint8Array.of(i))));
    await clock.advance(9_999);
    expect(results.slice(0, 10).map((r) => r.at)).toEqual([8, 16, 24, 32, 40, 48, 56, 64, 72, 80]);
    expect(results[10]!.at).toBeUndefined();
    // Refused at 80, resent at 2 080 … 8 080 (still inside the window that opened at 0), then at
    // 10 080, past it: served at 10 088. The 12th follows in the new window at once.
    await clock.advance(200);
    expect(results[10]!.at).toBe(10_088);
    expect(results[11]!.at).toBe(10_096);
    expect(inner.calls[10]!.at).toBe(10_080);
    expect(p.stats).toMatchObject({ reports: 12, refused: 5, failed: 0 });
  });

  it('the throttle window restarts only after it has run out (a request at its very end is refused)', async () => {
    const clock = manualClock();
    const profile: LatencyProfile = {
      ...flat(0),
      throttle: { intervalMs: 100, burst: 1, retryMs: 100, giveUpMs: 1_000 },
    };
    const p = platformDelay(recordingProvider(clock), profile, clock);
    const a = track(clock, p.getEvidence(Uint8Array.of(1)));
    const b = track(clock, p.getEvidence(Uint8Array.of(2)));
    await clock.advance(150);
    // At 0: admitted. At 0 (refused), resent at 100 = window start + interval: still refused;
    // at 200, past it: admitted.
    expect(a.at).toBe(0);
    expect(b.at).toBeUndefined();
    await clock.advance(100);
    expect(b.at).toBe(200);
    expect(p.stats.refused).toBe(2);
  });

  it('the driver gives up after 60 s of refusals, and the next request gets its turn', async () => {
    const clock = manualClock();
    const profile: LatencyProfile = {
      ...flat(8),
      throttle: { intervalMs: 1e9, burst: 1, retryMs: 2_000, giveUpMs: 60_000 },
    };
    const inner = recordingProvider(clock);
    const p = platformDelay(inner, profile, clock);
    const a = track(clock, p.getEvidence(Uint8Array.of(1)));
    const b = track(clock, p.getEvidence(Uint8Array.of(2)));
    const c = track(clock, p.getEvidence(Uint8Array.of(3)));
    await clock.advance(59_000);
    expect(a.at).toBe(8);
    expect(b.at).toBeUndefined();
    await clock.advance(2_000);
    expect(b).toMatchObject({ at: 60_008, ok: false });
    expect((b.error as { code?: string }).code).toBe('ETIMEDOUT');
    // The third is refused at once and retries in turn; it never overlapped the second.
    expect(c.at).toBeUndefined();
    expect(inner.calls).toHaveLength(1);
    expect(p.stats).toMatchObject({ failed: 1, reports: 1, pending: 1 });
  });

  it('a request waiting to be resent leaves when aborted; the host window is unchanged by it', async () => {
    const clock = manualClock();
    const profile: LatencyProfile = {
      ...flat(8),
      throttle: { intervalMs: 10_000, burst: 1, retryMs: 2_000, giveUpMs: 60_000 },
    };
    const p = platformDelay(recordingProvider(clock), profile, clock);
    const abort = new AbortController();
    track(clock, p.getEvidence(Uint8Array.of(1)));
    const b = track(clock, p.getEvidence(Uint8Array.of(2), { signal: abort.signal }));
    const c = track(clock, p.getEvidence(Uint8Array.of(3)));
    await clock.advance(3_000);
    abort.abort(new Error('gone'));
    await clock.advance(0);
    expect(b).toMatchObject({ at: 3_000, ok: false });
    // The third takes the turn at once and is refused too: the window that opened at 0 still holds
    // (resent at 5 000, 7 000, 9 000; admitted at 11 000).
    await clock.advance(7_999);
    expect(c.at).toBeUndefined();
    await clock.advance(100);
    expect(c.at).toBe(11_008);
    expect(p.stats).toMatchObject({ aborted: 1, reports: 2 });
  });

  it('idle() resolves once every request has left, including ones issued while it waited', async () => {
    const clock = manualClock();
    const p = platformDelay(recordingProvider(clock), flat(8), clock);
    track(clock, p.getEvidence(Uint8Array.of(1)));
    let idleAt: number | undefined;
    p.idle().then(() => {
      idleAt = clock.now();
    });
    await clock.advance(4);
    track(clock, p.getEvidence(Uint8Array.of(2)));
    await clock.advance(100);
    expect(idleAt).toBe(16);
    expect(clock.timers()).toBe(0);
  });

  it('the profiles are those of issue 17', () => {
    expect(Object.keys(PROFILES)).toEqual(['snp-8ms', 'snp-gcp', 'tdx-39ms', 'tdx-kvm']);
    expect(Object.values(PROFILES).map((p) => [p.platform, p.latencyMs])).toEqual([
      ['snp', 8],
      ['snp', 8],
      ['tdx', 39],
      ['tdx', 1_000],
    ]);
    expect(PROFILES['snp-gcp']!.throttle).toEqual({
      intervalMs: 10_000,
      burst: 10,
      retryMs: 2_000,
      giveUpMs: 60_000,
    });
  });

  it('is bench-only: no module of the package imports anything from bench/', () => {
    const src = new URL('../src/', import.meta.url);
    const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(50);
    const offenders = files.filter((f) =>
      /from\s+'[^']*\bbench\//.test(readFileSync(new URL(f, src), 'utf8')),
    );
    expect(offenders).toEqual([]);
  });
});
