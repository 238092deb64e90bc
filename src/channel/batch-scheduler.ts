/**
 * The attester's batch scheduler (issue 17; docs/protocol.md §5.1): one
 * evidence request in flight per provider ("group commit"). Every exchange that needs evidence
 * while a report is being made waits; when the report returns, all waiting exchanges (up to
 * maxSize) form the next batch, and one report serves them all through a Merkle tree of their
 * binders (batch.ts). An exchange that would be alone in its report (at low load, every one) gets
 * a plain report instead, REPORT_DATA = its binder and no `batch` record (§5.1 lets a challenger
 * that asked for batches take a plain answer): a tree of one leaf would bind exactly as much and
 * cost two more hashes on each side, a record to encode and decode, and an AbortController. It
 * still occupies the provider, so the exchanges that arrive meanwhile batch behind it.
 *
 * The hardware serialises anyway (Linux holds snp_cmd_mutex for a whole SEV-SNP guest request, and
 * the TDX guest driver's quote_lock one quote at a time), so a second request in flight would only
 * queue in the kernel. Optional pacing
 * (reportsPerSecond, burst: a token bucket) keeps a throttled host (GCP SNP: 10 reports per 10 s,
 * then a 2-s retry loop in the guest driver) from stalling every connection.
 *
 * Leaves come only from binders the channel computed from its own TLS sessions (exchange.ts); the
 * scheduler is owned by whoever owns the provider's connections (an AttestedServer, an HTTP agent,
 * or the caller through createBatchScheduler()), never by a module.
 */
import { AttestationError } from '../errors.js';
import type { EvidenceInput, EvidenceProvider } from '../evidence/types.js';
import { batchReportData, MAX_BATCH_SIZE, merkleBatch, merkleLeaf } from './batch.js';

/** Batching settings of an attesting side. */
export interface BatchOptions {
  /** Most exchanges one report serves (1..4 096). Default DEFAULT_BATCH_SIZE (64). */
  maxSize?: number;
  /** At most this many reports per second, on average (token bucket). Default: no pacing. */
  reportsPerSecond?: number;
  /** Reports that may be made at once after an idle spell (bucket size, ≥ 1). Default 1. Needs reportsPerSecond. */
  burst?: number;
}

export const DEFAULT_BATCH_SIZE = 64;

/**
 * What one exchange gets back: the report, and its leaf's place in the batch's tree — or no
 * `leaf` when the exchange was alone in its report, which then carries its plain binder (§5).
 */
export interface BatchedEvidence {
  input: EvidenceInput;
  /** The REPORT_DATA the provider was given: the batch's (docs/protocol.md §5.1), or the binder. */
  reportData: Uint8Array;
  leaf?: { index: number; size: number; path: Uint8Array[] };
}

interface Entry {
  binder: Uint8Array;
  signal: AbortSignal;
  /** The exchange's channel has other work meanwhile (EvidenceRequestOptions.overlap). */
  overlap: boolean;
  resolve: (value: BatchedEvidence) => void;
  reject: (error: unknown) => void;
  onAbort: () => void;
  /** Set once the entry is in a batch whose report is being made. */
  batch?: Batch;
}

interface Batch {
  live: number;
  /** Aborts the provider's call; none for a lone exchange, whose own signal the provider is given. */
  controller: AbortController | undefined;
  /** Every exchange withdrew: the next batch may start without waiting for this report. */
  abandoned: boolean;
}

/** Counters for tests and benchmarks. */
export interface BatchStats {
  /** Reports asked of the provider. */
  reports: number;
  /** Exchanges served (in all reports, including those whose channel closed meanwhile). */
  leaves: number;
  /** Reports that served one exchange alone, with its plain binder (no tree, no `batch` record). */
  plain: number;
  /** Most exchanges one report has served so far. */
  largest: number;
  /** Exchanges waiting now. */
  queued: number;
}

function checkBatchOptions(options: BatchOptions, who: string): Required<Pick<BatchOptions, 'maxSize'>> {
  const proto = typeof options === 'object' && options !== null ? Object.getPrototypeOf(options) : undefined;
  if (proto !== Object.prototype && proto !== null)
    throw new AttestationError('ERR_INVALID_ARGUMENT', `${who}: batch must be false or a plain object`);
  for (const key of Object.keys(options))
    if (!['maxSize', 'reportsPerSecond', 'burst'].includes(key))
      throw new AttestationError('ERR_INVALID_ARGUMENT', `${who}: batch.${key} is not a batch option`);
  const { maxSize = DEFAULT_BATCH_SIZE, reportsPerSecond, burst } = options;
  if (!(Number.isSafeInteger(maxSize) && maxSize >= 1 && maxSize <= MAX_BATCH_SIZE))
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      `${who}: batch.maxSize must be an integer in 1..${MAX_BATCH_SIZE}`,
    );
  if (reportsPerSecond !== undefined && !(Number.isFinite(reportsPerSecond) && reportsPerSecond > 0))
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      `${who}: batch.reportsPerSecond must be a positive number`,
    );
  if (burst !== undefined) {
    if (!(Number.isSafeInteger(burst) && burst >= 1))
      throw new AttestationError('ERR_INVALID_ARGUMENT', `${who}: batch.burst must be a positive integer`);
    if (reportsPerSecond === undefined)
      throw new AttestationError('ERR_INVALID_ARGUMENT', `${who}: batch.burst needs batch.reportsPerSecond`);
  }
  return { maxSize };
}

/** Single-flight batching of evidence requests to one provider. Made by createBatchScheduler(). */
export class BatchScheduler {
  readonly provider: EvidenceProvider;
  readonly maxSize: number;
  readonly #rate: number | undefined;
  readonly #burst: number;
  #tokens: number;
  #refilledAt: number;
  /** Waiting entries, oldest first (a Set: an aborted entry leaves in O(1)). */
  readonly #queue = new Set<Entry>();
  #inFlight = false;
  #timer: NodeJS.Timeout | undefined;
  #reports = 0;
  #leaves = 0;
  #plain = 0;
  #largest = 0;

  /** @internal Use createBatchScheduler(). */
  constructor(provider: EvidenceProvider, options: BatchOptions = {}, who = 'createBatchScheduler') {
    if (typeof provider?.getEvidence !== 'function')
      throw new AttestationError('ERR_INVALID_ARGUMENT', `${who}: provider must be an EvidenceProvider`);
    this.maxSize = checkBatchOptions(options, who).maxSize;
    this.provider = provider;
    this.#rate = options.reportsPerSecond;
    this.#burst = options.burst ?? 1;
    this.#tokens = this.#burst;
    this.#refilledAt = performance.now();
  }

  stats(): BatchStats {
    return {
      reports: this.#reports,
      leaves: this.#leaves,
      plain: this.#plain,
      largest: this.#largest,
      queued: this.#queue.size,
    };
  }

  /**
   * @internal Evidence for an exchange whose binder is `binder` (computed by the channel from its
   * own TLS session): resolves when the batch it joins has its report. `signal` withdraws it;
   * `overlap` is passed on to the provider for a report of this exchange alone.
   */
  submit(binder: Uint8Array, signal: AbortSignal, overlap = false): Promise<BatchedEvidence> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<BatchedEvidence>((resolve, reject) => {
      const entry: Entry = {
        binder,
        signal,
        overlap,
        resolve,
        reject,
        onAbort: () => this.#withdraw(entry),
      };
      signal.addEventListener('abort', entry.onAbort, { once: true });
      this.#queue.add(entry);
      this.#pump();
    });
  }

  #withdraw(entry: Entry): void {
    entry.reject(entry.signal.reason);
    if (this.#queue.delete(entry)) {
      if (this.#queue.size === 0 && this.#timer) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
      return;
    }
    // In flight: the report is only abandoned when no exchange of the batch still wants it.
    const batch = entry.batch;
    if (batch && --batch.live === 0) {
      batch.abandoned = true;
      // A lone exchange's provider call heard its own signal already.
      batch.controller?.abort(
        new AttestationError('ERR_ABORTED', 'every exchange of the batch was withdrawn'),
      );
      // A provider that does not heed the abort must not hold up every later exchange.
      this.#inFlight = false;
      this.#pump();
    }
  }

  /** Starts the next batch when none is in flight, something waits, and pacing allows it. */
  #pump(): void {
    if (this.#inFlight || this.#timer || this.#queue.size === 0) return;
    if (this.#rate !== undefined) {
      const now = performance.now();
      this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#refilledAt) * this.#rate) / 1000);
      this.#refilledAt = now;
      if (this.#tokens < 1) {
        this.#timer = setTimeout(
          () => {
            this.#timer = undefined;
            this.#pump();
          },
          Math.ceil(((1 - this.#tokens) * 1000) / this.#rate),
        );
        return;
      }
      this.#tokens -= 1;
    }
    const entries: Entry[] = [];
    for (const entry of this.#queue) {
      entries.push(entry);
      if (entries.length === this.maxSize) break;
    }
    for (const entry of entries) this.#queue.delete(entry);
    this.#inFlight = true;
    void this.#issue(entries);
  }

  async #issue(entries: Entry[]): Promise<void> {
    const lone = entries.length === 1 ? entries[0]! : undefined;
    const batch: Batch = {
      live: entries.length,
      controller: lone ? undefined : new AbortController(),
      abandoned: false,
    };
    for (const entry of entries) entry.batch = batch;
    this.#reports++;
    this.#leaves += entries.length;
    this.#largest = Math.max(this.#largest, entries.length);
    try {
      if (lone) {
        this.#plain++;
        const input = await this.provider.getEvidence(lone.binder, {
          signal: lone.signal,
          overlap: lone.overlap,
        });
        lone.resolve({ input, reportData: lone.binder });
        return;
      }
      const { root, paths } = merkleBatch(entries.map((e) => merkleLeaf(e.binder)));
      const reportData = batchReportData(entries.length, root);
      // A report for many connections: their other work can run while it is made.
      const input = await this.provider.getEvidence(reportData, {
        signal: batch.controller!.signal,
        overlap: true,
      });
      const size = entries.length;
      entries.forEach((entry, index) => {
        entry.resolve({ input, reportData, leaf: { index, size, path: paths[index]! } });
      });
    } catch (err) {
      for (const entry of entries) entry.reject(err);
    } finally {
      for (const entry of entries) entry.signal.removeEventListener('abort', entry.onAbort);
      if (!batch.abandoned) {
        this.#inFlight = false;
        this.#pump();
      }
    }
  }
}

/**
 * A batch scheduler for `provider`, to share between the sides that attest with it in one process
 * (a server and the connections it opens as a client, several servers): pass it as their `batch`
 * option, with the same `evidence`. Without one, each server and HTTP agent has its own.
 */
export function createBatchScheduler(provider: EvidenceProvider, options: BatchOptions = {}): BatchScheduler {
  return new BatchScheduler(provider, options);
}

/** What a side's `batch` option may be. */
export type BatchSetting = false | BatchOptions | BatchScheduler;

/** Validates `batch` against the side's provider; throws ERR_INVALID_ARGUMENT. */
export function checkBatchSetting(batch: unknown, evidence: EvidenceProvider | undefined, who: string): void {
  if (batch === undefined || batch === false) return;
  if (batch instanceof BatchScheduler) {
    if (batch.provider !== evidence)
      throw new AttestationError(
        'ERR_INVALID_ARGUMENT',
        `${who}: batch is a scheduler for another provider than evidence`,
      );
    return;
  }
  checkBatchOptions(batch as BatchOptions, who);
}

/** The scheduler a new owner (server, agent) uses: the shared one given, else its own; none when off. */
export function schedulerFor(
  batch: BatchSetting | undefined,
  evidence: EvidenceProvider | undefined,
): BatchScheduler | undefined {
  if (batch === false || evidence === undefined) return undefined;
  if (batch instanceof BatchScheduler) return batch;
  return new BatchScheduler(evidence, batch ?? {});
}
