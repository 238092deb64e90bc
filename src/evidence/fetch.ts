/**
 * The HTTP core shared by the collateral clients (AMD KDS in snp/kds.ts, Intel PCS in tdx/).
 *
 *   const f = new CollateralFetcher({ baseUrl: 'https://kdsintf.amd.com', cacheDir: '.cache' });
 *   const { body, headers } = await f.get('/vcek/v1/Milan/cert_chain', { signal });
 *
 * What it guarantees, because collateral sits on the verification path of every connection:
 * - every attempt is bounded by `timeoutMs` (and the caller's signal, which aborts with ERR_ABORTED);
 * - 429, 5xx, network errors and timeouts are retried `retries` times with exponential backoff
 *   (a Retry-After header is honoured up to `maxRetryAfterMs`); any other non-2xx status (404 in
 *   particular) fails at once with ERR_COLLATERAL_UNAVAILABLE;
 * - responses are cached in memory (bounded, oldest evicted first) and, with `cacheDir`, on disk
 *   (atomic rename; file names are hashes of the URL, never derived from untrusted text);
 * - concurrent requests for the same URL share one fetch;
 * - `offline: true` never touches the network: it answers from the caches, stale entries
 *   included (the verifiers check the validity of what they get at their own `now`), or fails
 *   with ERR_COLLATERAL_UNAVAILABLE.
 * Failures are AttestationErrors with details { url, status? }.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AttestationError, signalArg } from '../errors.js';
import { type CacheStats, Lru } from './lru.js';
import type { CollateralFetchOptions } from './types.js';

export interface CollateralFetcherOptions extends CollateralFetchOptions {
  /** Never touch the network (see the file comment). Default false. */
  offline?: boolean;
  /** Longest wait a Retry-After header may impose, in ms (default 10 000). */
  maxRetryAfterMs?: number;
  /** First backoff delay in ms; doubles on each retry (default 250). */
  backoffMs?: number;
  /** How long a response is fresh when it has no Cache-Control max-age, in ms (default 1 hour). */
  ttlMs?: number;
  /** Largest body accepted, in bytes (default 4 MiB). */
  maxBodyBytes?: number;
  /** Most entries held in memory (default 256). */
  maxEntries?: number;
  /** Clock for cache freshness only (tests); certificate validity always uses the verifier's `now`. */
  clock?: () => number;
}

export interface FetchResult {
  body: Uint8Array;
  /** Response headers, names lower-cased. */
  headers: Record<string, string>;
  /** True when the answer came from the memory or disk cache. */
  fromCache: boolean;
}

export interface GetOptions {
  signal?: AbortSignal;
  /** Overrides the fetcher's `offline` for this call (true only tightens). */
  offline?: boolean;
  /** Overrides `retries` for this call (e.g. 0 for optional collateral such as a CRL). */
  retries?: number;
}

interface Entry {
  body: Uint8Array;
  headers: Record<string, string>;
  expiresAt: number;
}

const DEFAULTS = {
  timeoutMs: 10_000,
  retries: 3,
  maxRetryAfterMs: 10_000,
  backoffMs: 250,
  ttlMs: 3_600_000,
  maxBodyBytes: 4 * 1024 * 1024,
  maxEntries: 256,
};

class RetryableError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

function unavailable(url: string, message: string, extra: Record<string, unknown> = {}, cause?: unknown) {
  return new AttestationError('ERR_COLLATERAL_UNAVAILABLE', `${message} (${url})`, {
    details: { url, ...extra },
    ...(cause === undefined ? {} : { cause }),
  });
}

function aborted(signal: AbortSignal): AttestationError {
  return new AttestationError('ERR_ABORTED', 'collateral fetch aborted', { cause: signal.reason });
}

/** Retry-After is either delta-seconds or an HTTP date. */
function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - nowMs) : undefined;
}

function maxAgeMs(cacheControl: string | undefined): number | undefined {
  const m = cacheControl ? /(?:^|,)\s*max-age=(\d+)/i.exec(cacheControl) : null;
  return m ? Number(m[1]) * 1000 : undefined;
}

/** Waits `ms`, or rejects with ERR_ABORTED as soon as `signal` fires; never leaves a timer behind. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(aborted(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(aborted(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Races a shared promise against one caller's signal without cancelling it for the others. */
function withSignal<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(aborted(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(aborted(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

async function readBody(res: Response, limit: number, url: string): Promise<Uint8Array> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > limit) {
    await res.body?.cancel().catch(() => {});
    throw unavailable(url, `response larger than ${limit} bytes`);
  }
  if (!res.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw unavailable(url, `response larger than ${limit} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let pos = 0;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.byteLength;
  }
  return out;
}

export class CollateralFetcher {
  readonly baseUrl: string;
  readonly offline: boolean;
  private readonly o: typeof DEFAULTS & { cacheDir?: string; clock: () => number };
  /** The memory cache: an LRU of `maxEntries` responses by URL (verifier.stats() reports it). */
  private readonly memory: Lru<string, Entry>;
  private readonly inflight = new Map<string, Promise<FetchResult>>();
  /** @internal Number of HTTP requests actually sent (for tests; not part of the API). */
  requests = 0;

  constructor(options: CollateralFetcherOptions = {}) {
    if (typeof options !== 'object' || options === null)
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'options must be an object');
    if (options.baseUrl === undefined)
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'CollateralFetcher needs a baseUrl');
    let base: URL;
    try {
      base = new URL(options.baseUrl);
    } catch (err) {
      throw new AttestationError('ERR_INVALID_ARGUMENT', `invalid baseUrl ${options.baseUrl}`, {
        cause: err,
      });
    }
    if (base.protocol !== 'https:' && base.protocol !== 'http:')
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'baseUrl must be http(s)');
    this.baseUrl = base.href.replace(/\/+$/, '');
    this.offline = options.offline ?? false;
    const pick = <K extends keyof typeof DEFAULTS>(k: K): number => {
      const v = options[k];
      if (v === undefined) return DEFAULTS[k];
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
        throw new AttestationError('ERR_INVALID_ARGUMENT', `${k} must be a non-negative number`);
      return v;
    };
    this.o = {
      timeoutMs: pick('timeoutMs'),
      retries: Math.floor(pick('retries')),
      maxRetryAfterMs: pick('maxRetryAfterMs'),
      backoffMs: pick('backoffMs'),
      ttlMs: pick('ttlMs'),
      maxBodyBytes: pick('maxBodyBytes'),
      maxEntries: Math.min(Number.MAX_SAFE_INTEGER, Math.max(1, Math.floor(pick('maxEntries')))),
      clock: options.clock ?? Date.now,
      ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
    };
    this.memory = new Lru(this.o.maxEntries);
  }

  /** The absolute URL for a path under baseUrl (query included). */
  url(path: string): string {
    if (typeof path !== 'string') throw new AttestationError('ERR_INVALID_ARGUMENT', 'path must be a string');
    return this.baseUrl + (path.startsWith('/') ? path : `/${path}`);
  }

  /** Fetches `path` (relative to baseUrl, with its query), from a cache when it can. */
  async get(path: string, options: GetOptions = {}): Promise<FetchResult> {
    if (typeof options !== 'object' || options === null)
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'options must be an object');
    const url = this.url(path);
    const signal = signalArg(options.signal, 'CollateralFetcher.get');
    if (signal?.aborted) throw aborted(signal);
    const offline = this.offline || options.offline === true;
    const now = this.o.clock();

    const hit = await this.#lookup(url, offline ? Number.NEGATIVE_INFINITY : now);
    if (hit) return hit;
    if (offline) throw unavailable(url, 'not cached and offline');

    let shared = this.inflight.get(url);
    if (!shared) {
      shared = this.fetchAndStore(url, options.retries ?? this.o.retries).finally(() =>
        this.inflight.delete(url),
      );
      this.inflight.set(url, shared);
    }
    return withSignal(shared, signal);
  }

  /**
   * What the caches hold for `path`, stale entries included, without touching the network;
   * undefined when nothing is cached. For optional collateral, where a miss is no error.
   */
  cached(path: string): Promise<FetchResult | undefined> {
    return this.#lookup(this.url(path), Number.NEGATIVE_INFINITY);
  }

  /**
   * Memory, then disk: an entry that expires after `freshAfter` (a clock value). Not async
   * itself: a memory hit, or a miss without a cache folder (an SNP verification asks for its
   * optional CRL so on every report), settles without the hops of two async frames.
   */
  #lookup(url: string, freshAfter: number): Promise<FetchResult | undefined> {
    const mem = this.memory.get(url);
    if (mem && mem.expiresAt > freshAfter) return Promise.resolve(this.result(mem, true));
    if (!this.o.cacheDir) return Promise.resolve(undefined);
    return this.#lookupDisk(url, freshAfter);
  }

  async #lookupDisk(url: string, freshAfter: number): Promise<FetchResult | undefined> {
    const disk = await this.readDisk(url);
    if (disk && disk.expiresAt > freshAfter) {
      this.remember(url, disk);
      return this.result(disk, true);
    }
    return undefined;
  }

  /** Drops every cached entry (memory only; the disk cache is left as it is). */
  clearMemory(): void {
    this.memory.clear();
  }

  private result(e: Entry, fromCache: boolean): FetchResult {
    return { body: e.body, headers: { ...e.headers }, fromCache };
  }

  private remember(url: string, e: Entry): void {
    this.memory.set(url, e);
  }

  /** Counters of the memory cache (verifier.stats() lists them as `<format>.kds` / `.pcs`). */
  memoryStats(): CacheStats {
    return this.memory.stats();
  }

  private async fetchAndStore(url: string, retries: number): Promise<FetchResult> {
    let lastError: unknown;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) {
        const backoff = this.o.backoffMs * 2 ** (attempt - 1);
        const hinted = lastError instanceof RetryableError ? lastError.retryAfterMs : undefined;
        await sleep(hinted !== undefined ? Math.min(hinted, this.o.maxRetryAfterMs) : backoff);
      }
      try {
        const entry = await this.attempt(url);
        this.remember(url, entry);
        await this.writeDisk(url, entry);
        return this.result(entry, false);
      } catch (err) {
        if (!(err instanceof RetryableError)) throw err;
        lastError = err;
      }
    }
    const last = lastError as RetryableError;
    throw unavailable(
      url,
      `gave up after ${retries + 1} attempts: ${last.message}`,
      last.status === undefined ? {} : { status: last.status },
    );
  }

  private async attempt(url: string): Promise<Entry> {
    this.requests++;
    const timeout = AbortSignal.timeout(this.o.timeoutMs);
    let res: Response;
    try {
      res = await fetch(url, { signal: timeout, redirect: 'follow' });
    } catch (err) {
      throw new RetryableError(timeout.aborted ? `timed out after ${this.o.timeoutMs} ms` : String(err));
    }
    if (res.status === 429 || res.status >= 500) {
      await res.body?.cancel().catch(() => {});
      throw new RetryableError(
        `HTTP ${res.status}`,
        res.status,
        parseRetryAfter(res.headers.get('retry-after'), this.o.clock()),
      );
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      throw unavailable(url, `HTTP ${res.status}`, { status: res.status });
    }
    let body: Uint8Array;
    try {
      body = await readBody(res, this.o.maxBodyBytes, url);
    } catch (err) {
      if (err instanceof AttestationError) throw err;
      // The timeout fired while the body was still arriving (a stalled server).
      throw new RetryableError(timeout.aborted ? `timed out after ${this.o.timeoutMs} ms` : String(err));
    }
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => {
      headers[k.toLowerCase()] = v;
    });
    const ttl = maxAgeMs(headers['cache-control']) ?? this.o.ttlMs;
    return { body, headers, expiresAt: this.o.clock() + ttl };
  }

  private diskPath(url: string): string | undefined {
    if (!this.o.cacheDir) return undefined;
    return join(this.o.cacheDir, `${createHash('sha256').update(url).digest('hex')}.json`);
  }

  private async readDisk(url: string): Promise<Entry | undefined> {
    const file = this.diskPath(url);
    if (!file) return undefined;
    try {
      const text = await readFile(file, 'utf8');
      if (text.length > this.o.maxBodyBytes * 2) return undefined;
      const v = JSON.parse(text) as { url?: unknown; headers?: unknown; expiresAt?: unknown; body?: unknown };
      // A hash collision or a foreign file in the folder must not answer for another URL.
      if (v.url !== url || typeof v.body !== 'string' || typeof v.expiresAt !== 'number') return undefined;
      if (typeof v.headers !== 'object' || v.headers === null) return undefined;
      const headers: Record<string, string> = {};
      for (const [k, h] of Object.entries(v.headers)) if (typeof h === 'string') headers[k] = h;
      return { body: new Uint8Array(Buffer.from(v.body, 'base64')), headers, expiresAt: v.expiresAt };
    } catch {
      // Missing or corrupt cache files are cache misses.
      return undefined;
    }
  }

  private async writeDisk(url: string, e: Entry): Promise<void> {
    const file = this.diskPath(url);
    if (!file || !this.o.cacheDir) return;
    const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(this.o.cacheDir, { recursive: true });
      const json = JSON.stringify({
        url,
        headers: e.headers,
        expiresAt: e.expiresAt,
        body: Buffer.from(e.body).toString('base64'),
      });
      await writeFile(tmp, json, { mode: 0o600 });
      await rename(tmp, file);
    } catch {
      // The disk cache is an optimisation: a read-only or full disk must not fail verification.
      await unlink(tmp).catch(() => {});
    }
  }
}
