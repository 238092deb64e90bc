/**
 * Bench-only: an evidence provider that behaves like real attestation hardware in time, around a
 * simulated one. The simulated platforms sign a report in about a millisecond of CPU; real ones
 * take 8 ms (SEV-SNP) to 1 s (TDX through configfs-tsm on KVM), serve one request at a time, and
 * some hosts throttle. That, not CPU, caps how many attested connections a CVM accepts per second
 * (issue 17), so the `rates` bench needs it modelled.
 *
 * Nothing in src/ imports this file, and it imports only types from src/: the package never loads it.
 */
import { performance } from 'node:perf_hooks';
import type { EvidenceInput, EvidenceProvider, EvidenceRequestOptions } from '../src/evidence/types.js';

/** A host rate limit with the SEV guest driver's retry semantics. */
export interface HostThrottle {
  /** Window of the host's limiter, ms (Linux `__ratelimit` interval). */
  intervalMs: number;
  /** Requests the host serves per window (`__ratelimit` burst). */
  burst: number;
  /** A refused request is sent again after this long (`SNP_REQ_RETRY_DELAY`, 2 s). */
  retryMs: number;
  /** The driver gives up after retrying this long (`SNP_REQ_MAX_RETRY_DURATION`, 60 s). */
  giveUpMs: number;
}

export interface LatencyProfile {
  name: string;
  platform: 'snp' | 'tdx';
  /** Time one request holds the hardware, ms. */
  latencyMs: number;
  throttle?: HostThrottle;
  /** What it models, for the bench's output. */
  models: string;
}

/**
 * The profiles of issue 17. Latencies are medians others measured on real hardware: SNP_GET_REPORT
 * 7.7–8.2 ms on GCP n2d (nikolaichuk7/hatls docs/RUNTIME-COST.md; nikolaichuk7/tacra-est
 * docs/RESULTS.md §4); a TDX quote 39 ms on GCP, fully serialized (flashbots/attested-tls-benchmarks
 * README: 25.6 quotes/s at any concurrency); ~1 s through configfs-tsm on KVM, where the guest
 * driver polls once a second (Linux drivers/virt/coco/tdx-guest/tdx-guest.c,
 * wait_for_quote_completion()). The throttle is GCP's (tacra-est: one report in ten stalls 10.23 s)
 * as the guest driver meets it (Linux commit 72f7754dcf31 "virt/coco/sev-guest: Add throttling
 * awareness": the host answers BUSY, the guest sleeps SNP_REQ_RETRY_DELAY = 2 s and resends the
 * same message, giving up after SNP_REQ_MAX_RETRY_DURATION = 60 s).
 */
export const PROFILES: Readonly<Record<string, LatencyProfile>> = Object.freeze({
  'snp-8ms': { name: 'snp-8ms', platform: 'snp', latencyMs: 8, models: 'SEV-SNP report, one at a time' },
  'snp-gcp': {
    name: 'snp-gcp',
    platform: 'snp',
    latencyMs: 8,
    throttle: { intervalMs: 10_000, burst: 10, retryMs: 2_000, giveUpMs: 60_000 },
    models: 'SEV-SNP on Google Cloud: 10 reports per 10 s, refused ones resent after 2 s',
  },
  'tdx-39ms': { name: 'tdx-39ms', platform: 'tdx', latencyMs: 39, models: 'TDX quote on Google Cloud' },
  'tdx-kvm': {
    name: 'tdx-kvm',
    platform: 'tdx',
    latencyMs: 1_000,
    models: 'TDX quote through configfs-tsm on KVM (1-s poll)',
  },
});

/** Time as the wrapper sees it: injected so tests can drive it without waiting. */
export interface DelayClock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Resolves after `ms` (rejects with the signal's reason if it aborts first, when one is given). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Timers: the wait happens off-CPU, as a request to the PSP or QE does. */
export const realClock: DelayClock = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

export interface DelayStats {
  /** getEvidence calls made. */
  requests: number;
  /** Reports produced (the count the bench reports per second). */
  reports: number;
  /** Times the host refused a request (each costs the requester `retryMs`). */
  refused: number;
  /** Requests that left because their signal aborted (queued, or waiting to be resent). */
  aborted: number;
  /** Requests that failed: the driver gave up, or the inner provider threw. */
  failed: number;
  /** Requests waiting for the hardware, plus the one holding it. */
  pending: number;
}

export interface DelayedProvider extends EvidenceProvider {
  readonly stats: Readonly<DelayStats>;
  /** Resolves once no request is waiting or in flight. */
  idle(): Promise<void>;
}

function abortable(wait: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return wait;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    wait.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/**
 * `inner` behind one FIFO of hardware requests: a request waits for every earlier one, then (with
 * a throttle) for the host to admit it, then holds the hardware `latencyMs` in all, of which the
 * simulated signer's own CPU time is a part (the timer waits for the rest).
 *
 * One deviation from the drivers, to keep bench rounds bounded: a request whose signal aborts
 * leaves the queue, and also its 2-s wait between resends (the guest driver's wait is killable
 * only). The host's limiter state is kept either way, so leaving gains no reports. Once admitted by
 * the host, a request runs to the end, as on the hardware.
 */
export function platformDelay(
  inner: EvidenceProvider,
  profile: LatencyProfile,
  clock: DelayClock = realClock,
): DelayedProvider {
  const stats: DelayStats = { requests: 0, reports: 0, refused: 0, aborted: 0, failed: 0, pending: 0 };
  // Settles when the latest request has left the hardware: each request waits for its predecessor's.
  let tail: Promise<void> = Promise.resolve();
  // Linux lib/ratelimit.c ___ratelimit(): the window opens at the first request and restarts at
  // the first request after it has run out; within it, `burst` requests pass.
  let windowStart: number | undefined;
  let passed = 0;
  const hostAdmits = (t: HostThrottle, now: number): boolean => {
    if (windowStart === undefined || now > windowStart + t.intervalMs) {
      windowStart = now;
      passed = 0;
    }
    if (passed < t.burst) {
      passed++;
      return true;
    }
    return false;
  };

  async function getEvidence(
    reportData: Uint8Array,
    options?: EvidenceRequestOptions,
  ): Promise<EvidenceInput> {
    const signal = options?.signal;
    stats.requests++;
    stats.pending++;
    const previous = tail;
    let leave!: () => void;
    const left = new Promise<void>((resolve) => {
      leave = resolve;
    });
    tail = left;
    let ourTurn = false;
    try {
      await abortable(previous, signal);
      ourTurn = true;
      const throttle = profile.throttle;
      if (throttle) {
        const first = clock.now();
        while (!hostAdmits(throttle, clock.now())) {
          stats.refused++;
          if (clock.now() - first >= throttle.giveUpMs) {
            stats.failed++;
            throw Object.assign(
              new Error(`${profile.name}: the host kept refusing the request (ETIMEDOUT)`),
              {
                code: 'ETIMEDOUT',
              },
            );
          }
          await clock.sleep(throttle.retryMs, signal);
        }
      }
      const start = clock.now();
      let evidence: EvidenceInput;
      try {
        // Real hardware makes the report outside the guest's CPU: the simulated signature goes
        // to the threadpool whatever the caller has to overlap with it.
        evidence = await inner.getEvidence(reportData, { ...(signal ? { signal } : {}), overlap: true });
      } catch (err) {
        stats.failed++;
        throw err;
      }
      await clock.sleep(Math.max(0, profile.latencyMs - (clock.now() - start)));
      stats.reports++;
      return evidence;
    } catch (err) {
      if (signal?.aborted) stats.aborted++;
      throw err;
    } finally {
      stats.pending--;
      // A request that left before its turn still holds its place until its predecessor is done,
      // so the next one never overlaps a request in flight.
      if (ourTurn) leave();
      else previous.then(leave, leave);
    }
  }

  return {
    format: inner.format,
    getEvidence,
    stats,
    async idle() {
      for (let seen = tail; ; seen = tail) {
        await seen;
        if (seen === tail) return;
      }
    },
  };
}
