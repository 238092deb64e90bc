import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AttestationError } from '../src/errors.js';
import { CollateralFetcher } from '../src/evidence/fetch.js';
import { rejectionCode as codeOf } from './helpers/codes.js';

type Handler = (req: IncomingMessage, res: ServerResponse, hit: number) => void;

interface TestServer {
  url: string;
  hits: Map<string, number>;
  close: () => Promise<void>;
}

const servers: TestServer[] = [];
const dirs: string[] = [];

async function serve(handler: Handler): Promise<TestServer> {
  const hits = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const n = (hits.get(req.url ?? '') ?? 0) + 1;
    hits.set(req.url ?? '', n);
    handler(req, res, n);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const s: TestServer = {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  servers.push(s);
  return s;
}

afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const BODY = new Uint8Array([1, 2, 3, 250]);

describe('CollateralFetcher', () => {
  it('returns body and lower-cased headers on 200', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'X-Issuer-Chain': 'abc' });
      res.end(BODY);
    });
    const f = new CollateralFetcher({ baseUrl: s.url });
    const r = await f.get('/a/b?x=1');
    expect(r.body).toEqual(BODY);
    expect(r.headers['x-issuer-chain']).toBe('abc');
    expect(r.fromCache).toBe(false);
    expect(s.hits.get('/a/b?x=1')).toBe(1);
  });

  it('404 fails at once with ERR_COLLATERAL_UNAVAILABLE and no retry', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(404);
      res.end();
    });
    const f = new CollateralFetcher({ baseUrl: s.url, retries: 3, backoffMs: 1 });
    const err = await f.get('/missing').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AttestationError);
    expect((err as AttestationError).code).toBe('ERR_COLLATERAL_UNAVAILABLE');
    expect((err as AttestationError).details.status).toBe(404);
    expect(s.hits.get('/missing')).toBe(1);
  });

  it('retries 429 honouring Retry-After, then succeeds', async () => {
    const s = await serve((_req, res, hit) => {
      if (hit === 1) {
        res.writeHead(429, { 'Retry-After': '0' });
        res.end();
        return;
      }
      res.writeHead(200);
      res.end(BODY);
    });
    const f = new CollateralFetcher({ baseUrl: s.url, retries: 2, backoffMs: 5_000 });
    const t0 = Date.now();
    const r = await f.get('/x');
    // Retry-After: 0 replaces the 5 s backoff; a missing Retry-After handling would make this slow.
    expect(Date.now() - t0).toBeLessThan(4_000);
    expect(r.body).toEqual(BODY);
    expect(s.hits.get('/x')).toBe(2);
  });

  it('caps a long Retry-After at maxRetryAfterMs', async () => {
    const s = await serve((_req, res, hit) => {
      if (hit === 1) {
        res.writeHead(503, { 'Retry-After': '3600' });
        res.end();
        return;
      }
      res.writeHead(200);
      res.end(BODY);
    });
    const f = new CollateralFetcher({ baseUrl: s.url, retries: 1, maxRetryAfterMs: 20 });
    expect((await f.get('/y')).body).toEqual(BODY);
    expect(s.hits.get('/y')).toBe(2);
  });

  it('gives up after the retries on 5xx', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(500);
      res.end();
    });
    const f = new CollateralFetcher({ baseUrl: s.url, retries: 2, backoffMs: 1 });
    const err = (await f.get('/z').catch((e: unknown) => e)) as AttestationError;
    expect(err.code).toBe('ERR_COLLATERAL_UNAVAILABLE');
    expect(err.details.status).toBe(500);
    expect(s.hits.get('/z')).toBe(3);
  });

  it('a stalled response hits the timeout', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': '100' });
      res.write(new Uint8Array(10)); // and never the rest
    });
    const f = new CollateralFetcher({ baseUrl: s.url, timeoutMs: 150, retries: 1, backoffMs: 1 });
    const t0 = Date.now();
    expect(await codeOf(f.get('/stall'))).toBe('ERR_COLLATERAL_UNAVAILABLE');
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(s.hits.get('/stall')).toBe(2);
  });

  it('a server that never answers headers hits the timeout', async () => {
    const s = await serve(() => {});
    const f = new CollateralFetcher({ baseUrl: s.url, timeoutMs: 100, retries: 0 });
    expect(await codeOf(f.get('/silent'))).toBe('ERR_COLLATERAL_UNAVAILABLE');
  });

  it('network errors are retried and then reported', async () => {
    const s = await serve(() => {});
    const url = s.url;
    await s.close();
    servers.length = 0;
    const f = new CollateralFetcher({ baseUrl: url, retries: 1, backoffMs: 1 });
    expect(await codeOf(f.get('/gone'))).toBe('ERR_COLLATERAL_UNAVAILABLE');
    expect(f.requests).toBe(2);
  });

  it('answers from memory with the server gone', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200);
      res.end(BODY);
    });
    const f = new CollateralFetcher({ baseUrl: s.url });
    await f.get('/c');
    await s.close();
    servers.length = 0;
    const r = await f.get('/c');
    expect(r.fromCache).toBe(true);
    expect(r.body).toEqual(BODY);
  });

  it('refetches an expired entry (max-age) and serves it stale only offline', async () => {
    let clock = 1_000_000;
    const s = await serve((_req, res, hit) => {
      res.writeHead(200, { 'Cache-Control': 'max-age=10' });
      res.end(new Uint8Array([hit]));
    });
    const f = new CollateralFetcher({ baseUrl: s.url, clock: () => clock });
    expect((await f.get('/e')).body).toEqual(new Uint8Array([1]));
    clock += 5_000;
    expect((await f.get('/e')).body).toEqual(new Uint8Array([1]));
    clock += 6_000;
    expect((await f.get('/e', { offline: true })).body).toEqual(new Uint8Array([1]));
    expect((await f.get('/e')).body).toEqual(new Uint8Array([2]));
  });

  it('disk cache survives a new fetcher and the server going away', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ac-fetch-'));
    dirs.push(dir);
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'X-Chain': 'c' });
      res.end(BODY);
    });
    await new CollateralFetcher({ baseUrl: s.url, cacheDir: dir }).get('/d?q=1');
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^[0-9a-f]{64}\.json$/);
    await s.close();
    servers.length = 0;
    const again = await new CollateralFetcher({ baseUrl: s.url, cacheDir: dir, offline: true }).get('/d?q=1');
    expect(again.body).toEqual(BODY);
    expect(again.headers['x-chain']).toBe('c');
    expect(again.fromCache).toBe(true);
  });

  it('ignores a corrupt or foreign disk cache file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ac-fetch-'));
    dirs.push(dir);
    const s = await serve((_req, res) => {
      res.writeHead(200);
      res.end(BODY);
    });
    const f = new CollateralFetcher({ baseUrl: s.url, cacheDir: dir });
    await f.get('/k');
    const [file] = readdirSync(dir);
    writeFileSync(
      join(dir, file!),
      JSON.stringify({ url: 'http://elsewhere/k', body: 'AAAA', expiresAt: 9e15, headers: {} }),
    );
    const fresh = new CollateralFetcher({ baseUrl: s.url, cacheDir: dir, offline: true });
    expect(await codeOf(fresh.get('/k'))).toBe('ERR_COLLATERAL_UNAVAILABLE');
    writeFileSync(join(dir, file!), '{not json');
    expect(await codeOf(fresh.get('/k'))).toBe('ERR_COLLATERAL_UNAVAILABLE');
  });

  it('never sends the same request twice concurrently', async () => {
    const s = await serve((_req, res) => {
      setTimeout(() => {
        res.writeHead(200);
        res.end(BODY);
      }, 50);
    });
    const f = new CollateralFetcher({ baseUrl: s.url });
    const results = await Promise.all([f.get('/same'), f.get('/same'), f.get('/same')]);
    for (const r of results) expect(r.body).toEqual(BODY);
    expect(s.hits.get('/same')).toBe(1);
    expect(f.requests).toBe(1);
  });

  it('one caller aborting does not cancel the shared fetch for the others', async () => {
    const s = await serve((_req, res) => {
      setTimeout(() => {
        res.writeHead(200);
        res.end(BODY);
      }, 80);
    });
    const f = new CollateralFetcher({ baseUrl: s.url });
    const ac = new AbortController();
    const a = f.get('/shared', { signal: ac.signal });
    const b = f.get('/shared');
    ac.abort();
    expect(await codeOf(a)).toBe('ERR_ABORTED');
    expect((await b).body).toEqual(BODY);
    expect(s.hits.get('/shared')).toBe(1);
  });

  it('offline never touches the network', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200);
      res.end(BODY);
    });
    const f = new CollateralFetcher({ baseUrl: s.url, offline: true });
    expect(await codeOf(f.get('/o'))).toBe('ERR_COLLATERAL_UNAVAILABLE');
    expect(f.requests).toBe(0);
    expect(s.hits.size).toBe(0);
  });

  it('cached() answers from memory or disk, stale included, and never from the network', async () => {
    let clock = 1_000_000;
    const dir = mkdtempSync(join(tmpdir(), 'ac-fetch-'));
    dirs.push(dir);
    const s = await serve((_req, res, hit) => {
      res.writeHead(200, { 'Cache-Control': 'max-age=10' });
      res.end(new Uint8Array([hit]));
    });
    const f = new CollateralFetcher({ baseUrl: s.url, cacheDir: dir, clock: () => clock });
    expect(await f.cached('/m')).toBeUndefined();
    expect(f.requests).toBe(0);
    await f.get('/m');
    clock += 60_000; // long expired
    expect((await f.cached('/m'))?.body).toEqual(new Uint8Array([1]));
    const other = new CollateralFetcher({ baseUrl: s.url, cacheDir: dir, clock: () => clock });
    const fromDisk = await other.cached('/m');
    expect(fromDisk?.body).toEqual(new Uint8Array([1]));
    expect(fromDisk?.fromCache).toBe(true);
    expect(other.requests).toBe(0);
    expect(s.hits.get('/m')).toBe(1);
  });

  it('refuses bodies over maxBodyBytes', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200);
      res.end(new Uint8Array(5000));
    });
    const f = new CollateralFetcher({ baseUrl: s.url, maxBodyBytes: 1000 });
    expect(await codeOf(f.get('/big'))).toBe('ERR_COLLATERAL_UNAVAILABLE');
  });

  it('validates its options', () => {
    expect(() => new CollateralFetcher({})).toThrow(AttestationError);
    expect(() => new CollateralFetcher({ baseUrl: 'ftp://x' })).toThrow(AttestationError);
    expect(() => new CollateralFetcher({ baseUrl: 'http://x', timeoutMs: -1 })).toThrow(AttestationError);
  });
});
