/**
 * The KDS client and the online paths of the verifier against a real HTTP server on 127.0.0.1
 * that serves the fixture certificates (and test CRLs) at AMD KDS paths.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { KdsClient } from '../../src/evidence/snp/kds.js';
import { parseSnpReport } from '../../src/evidence/snp/report.js';
import type { EvidenceInput, SnpClaims } from '../../src/evidence/types.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { parseCertificate } from '../../src/evidence/x509/cert.js';
import { derToPem } from '../../src/evidence/x509/pem.js';
import { codeOf, errorOf, loadFixture, root } from './fixtures.js';

const milan = loadFixture('ms-tav__milan-v3');
const turin = loadFixture('ms-tav__turin-v5');
const milanReport = parseSnpReport(milan.report);
const turinReport = parseSnpReport(turin.report);

type Route = (
  hit: number,
) => { status: number; body?: Uint8Array | string; headers?: Record<string, string> } | 'stall';

let server: Server;
let base: string;
const routes = new Map<string, Route>();
const hits = new Map<string, number>();

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? '';
    const n = (hits.get(path) ?? 0) + 1;
    hits.set(path, n);
    const route = routes.get(path);
    if (!route) {
      res.writeHead(404);
      res.end();
      return;
    }
    const r = route(n);
    if (r === 'stall') return;
    res.writeHead(r.status, r.headers ?? {});
    res.end(r.body ?? '');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((ok) => server.close(() => ok()));
});

const ok = (body: Uint8Array | string) => () => ({ status: 200, body });
let seq = 0;
/** A fresh client (own cache) on a fresh path prefix, so tests do not share hits or caches. */
function client(extra: ConstructorParameters<typeof KdsClient>[0] = {}) {
  const prefix = `/t${++seq}`;
  return { kds: new KdsClient({ baseUrl: base + prefix, backoffMs: 1, ...extra }), prefix };
}

describe('KDS paths', () => {
  it('VCEK path: Milan/Genoa use the 64-byte hwid, Turin the 8-byte one with fmcSPL first', () => {
    expect(KdsClient.vcekPath('Milan', milanReport.raw.chipId, milanReport.reportedTcb)).toBe(
      `/vcek/v1/Milan/${milan.meta.fields.chip_id}?blSPL=4&teeSPL=0&snpSPL=24&ucodeSPL=219`,
    );
    expect(KdsClient.vcekPath('Turin', turinReport.raw.chipId, turinReport.reportedTcb)).toBe(
      `/vcek/v1/Turin/${turin.meta.vek_hwid}?fmcSPL=1&blSPL=1&teeSPL=1&snpSPL=4&ucodeSPL=81`,
    );
    expect(KdsClient.chainPath('Genoa', 'vlek')).toBe('/vlek/v1/Genoa/cert_chain');
    expect(KdsClient.crlPath('Turin', 'vcek')).toBe('/vcek/v1/Turin/crl');
  });

  it('cert_chain: two PEM certificates, ASK then ARK', async () => {
    const { kds, prefix } = client();
    routes.set(
      `${prefix}/vcek/v1/Milan/cert_chain`,
      ok(derToPem(root('milan_ask.der')) + derToPem(root('milan_ark.der'))),
    );
    const [ask, ark] = await kds.getCertChain('Milan', 'vcek');
    expect(parseCertificate(ask!).subject.CN).toBe('SEV-Milan');
    expect(parseCertificate(ark!).subject.CN).toBe('ARK-Milan');
    routes.set(`${prefix}/vlek/v1/Milan/cert_chain`, ok(derToPem(root('milan_asvk.der'))));
    expect(await codeOf(kds.getCertChain('Milan', 'vlek'))).toBe('ERR_COLLATERAL_UNAVAILABLE');
  });
});

describe('verifier fetching the VCEK from KDS', () => {
  const vcekPath = (prefix: string, f = milan, r = milanReport) =>
    prefix + KdsClient.vcekPath(f.product, r.raw.chipId, r.reportedTcb);

  it('200: the fetched VCEK verifies the report (Milan and Turin URLs)', async () => {
    for (const [f, r] of [
      [milan, milanReport],
      [turin, turinReport],
    ] as const) {
      const { kds, prefix } = client();
      routes.set(vcekPath(prefix, f, r), ok(f.vek));
      const claims = (await verifyEvidence({ report: f.report }, { now: f.at, kds })) as SnpClaims;
      expect(claims.measurement).toBe(f.meta.fields.measurement);
      expect(hits.get(vcekPath(prefix, f, r))).toBe(1);
    }
  });

  it('kds given as options (baseUrl) works too', async () => {
    const prefix = `/opts${++seq}`;
    routes.set(vcekPath(prefix), ok(milan.vek));
    await expect(
      verifyEvidence(
        { report: milan.report },
        { now: milan.at, kds: { baseUrl: base + prefix, retries: 0 } },
      ),
    ).resolves.toBeTruthy();
  });

  it('404 → ERR_COLLATERAL_UNAVAILABLE without retries', async () => {
    const { kds, prefix } = client({ retries: 3 });
    expect(await codeOf(verifyEvidence({ report: milan.report }, { now: milan.at, kds }))).toBe(
      'ERR_COLLATERAL_UNAVAILABLE',
    );
    expect(hits.get(vcekPath(prefix))).toBe(1);
  });

  it('429 then 200 succeeds', async () => {
    const { kds, prefix } = client({ retries: 2 });
    routes.set(vcekPath(prefix), (n) =>
      n === 1 ? { status: 429, headers: { 'Retry-After': '0' } } : { status: 200, body: milan.vek },
    );
    await expect(verifyEvidence({ report: milan.report }, { now: milan.at, kds })).resolves.toBeTruthy();
    expect(hits.get(vcekPath(prefix))).toBe(2);
  });

  it('a stalled response hits the timeout', async () => {
    const { kds, prefix } = client({ timeoutMs: 100, retries: 0 });
    routes.set(vcekPath(prefix), () => 'stall');
    expect(await codeOf(verifyEvidence({ report: milan.report }, { now: milan.at, kds }))).toBe(
      'ERR_COLLATERAL_UNAVAILABLE',
    );
  });

  it('a cache hit needs no server, and offline uses it', async () => {
    const { kds, prefix } = client();
    routes.set(vcekPath(prefix), ok(milan.vek));
    await verifyEvidence({ report: milan.report }, { now: milan.at, kds });
    routes.delete(vcekPath(prefix));
    await expect(verifyEvidence({ report: milan.report }, { now: milan.at, kds })).resolves.toBeTruthy();
    await expect(
      verifyEvidence({ report: milan.report }, { now: milan.at, kds, offline: true }),
    ).resolves.toBeTruthy();
    expect(hits.get(vcekPath(prefix))).toBe(1);
  });

  it('disk cache: a new client answers offline from the folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ac-kds-'));
    try {
      const { kds, prefix } = client({ cacheDir: dir });
      routes.set(vcekPath(prefix), ok(milan.vek));
      await verifyEvidence({ report: milan.report }, { now: milan.at, kds });
      const again = new KdsClient({ baseUrl: base + prefix, cacheDir: dir });
      await expect(
        verifyEvidence({ report: milan.report }, { now: milan.at, kds: again, offline: true }),
      ).resolves.toBeTruthy();
      expect(hits.get(vcekPath(prefix))).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('concurrent verifications fetch the VCEK once', async () => {
    const { kds, prefix } = client();
    routes.set(vcekPath(prefix), ok(milan.vek));
    await Promise.all(
      [1, 2, 3, 4].map(() => verifyEvidence({ report: milan.report }, { now: milan.at, kds })),
    );
    expect(hits.get(vcekPath(prefix))).toBe(1);
  });

  it('offline never asks the server', async () => {
    const { kds, prefix } = client();
    routes.set(vcekPath(prefix), ok(milan.vek));
    expect(
      await codeOf(verifyEvidence({ report: milan.report }, { now: milan.at, kds, offline: true })),
    ).toBe('ERR_COLLATERAL_UNAVAILABLE');
    expect(hits.get(vcekPath(prefix))).toBeUndefined();
  });

  it('a fetched VCEK of the wrong chip is refused', async () => {
    const { kds, prefix } = client();
    routes.set(vcekPath(prefix), ok(loadFixture('oak__milan-v3-oc-release').vek));
    expect(['ERR_EVIDENCE_SIGNATURE', 'ERR_EVIDENCE_CHAIN']).toContain(
      await codeOf(verifyEvidence({ report: milan.report }, { now: milan.at, kds })),
    );
  });

  it('an aborted signal rejects with ERR_ABORTED', async () => {
    const { kds, prefix } = client();
    routes.set(vcekPath(prefix), () => 'stall');
    const ac = new AbortController();
    const p = verifyEvidence({ report: milan.report }, { now: milan.at, kds, signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    expect(await codeOf(p)).toBe('ERR_ABORTED');
  });
});

describe('CRLs (simulated ARK-signed CRLs served at the KDS CRL path)', () => {
  const anchors = simulated.trustAnchors();
  const ask = parseCertificate(simulated.amdChain('Milan').ask);
  const askSerial = Buffer.from(ask.serialHex, 'hex');
  let ev: EvidenceInput;
  let vlekEv: EvidenceInput;
  beforeAll(async () => {
    ev = await simulated.snp({ product: 'Milan' }).getEvidence(new Uint8Array(64));
    vlekEv = await simulated.snp({ product: 'Milan', signer: 'vlek' }).getEvidence(new Uint8Array(64));
  });
  const crlPath = (prefix: string, signer: 'vcek' | 'vlek' = 'vcek') => `${prefix}/${signer}/v1/Milan/crl`;

  it('a CRL that revokes nothing is used and the evidence verifies', async () => {
    const { kds, prefix } = client();
    routes.set(crlPath(prefix), ok(simulated.amdCrl({ product: 'Milan' })));
    await expect(
      verifyEvidence(ev, { kds, trustAnchors: anchors, policy: { snp: { requireCrl: true } } }),
    ).resolves.toBeTruthy();
    expect(hits.get(crlPath(prefix))).toBe(1);
  });

  it('a revoked ASK is refused online, and offline from the cached CRL', async () => {
    const { kds, prefix } = client();
    routes.set(crlPath(prefix), ok(simulated.amdCrl({ product: 'Milan', revoked: [askSerial] })));
    const err = await errorOf(verifyEvidence(ev, { kds, trustAnchors: anchors }));
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    expect(err.message).toMatch(/revoked/);
    routes.delete(crlPath(prefix));
    expect(await codeOf(verifyEvidence(ev, { kds, trustAnchors: anchors, offline: true }))).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
  });

  it('a revoked ASVK is refused via the VLEK CRL', async () => {
    const { kds, prefix } = client();
    const asvk = parseCertificate(simulated.amdChain('Milan').asvk);
    routes.set(
      crlPath(prefix, 'vlek'),
      ok(simulated.amdCrl({ product: 'Milan', revoked: [Buffer.from(asvk.serialHex, 'hex')] })),
    );
    expect(await codeOf(verifyEvidence(vlekEv, { kds, trustAnchors: anchors }))).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('a revoked VEK serial is refused', async () => {
    const { kds, prefix } = client();
    const vekSerial = Buffer.from(parseCertificate(ev.vek!).serialHex, 'hex');
    routes.set(crlPath(prefix), ok(simulated.amdCrl({ product: 'Milan', revoked: [vekSerial] })));
    expect(await codeOf(verifyEvidence(ev, { kds, trustAnchors: anchors }))).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('a CRL signed by another ARK is refused', async () => {
    const { kds, prefix } = client();
    routes.set(crlPath(prefix), ok(simulated.amdCrl({ product: 'Genoa' })));
    expect(await codeOf(verifyEvidence(ev, { kds, trustAnchors: anchors }))).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('requireCrl: no CRL (404) or an expired CRL is ERR_COLLATERAL_UNAVAILABLE; without it, verification goes on', async () => {
    const a = client();
    const required = { snp: { requireCrl: true } };
    expect(await codeOf(verifyEvidence(ev, { kds: a.kds, trustAnchors: anchors, policy: required }))).toBe(
      'ERR_COLLATERAL_UNAVAILABLE',
    );
    await expect(verifyEvidence(ev, { kds: a.kds, trustAnchors: anchors })).resolves.toBeTruthy();
    const b = client();
    const expired = simulated.amdCrl({
      product: 'Milan',
      thisUpdate: new Date('2024-01-01T00:00:00Z'),
      nextUpdate: new Date('2024-02-01T00:00:00Z'),
      revoked: [askSerial],
    });
    routes.set(crlPath(b.prefix), ok(expired));
    expect(await codeOf(verifyEvidence(ev, { kds: b.kds, trustAnchors: anchors, policy: required }))).toBe(
      'ERR_COLLATERAL_UNAVAILABLE',
    );
    // Within its window the same CRL revokes the ASK.
    expect(
      await codeOf(
        verifyEvidence(ev, { kds: b.kds, trustAnchors: anchors, now: new Date('2024-01-15T00:00:00Z') }),
      ),
    ).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('the claims say which CRL was checked, from where, or why none was', async () => {
    const { kds, prefix } = client();
    const crl = simulated.amdCrl({ product: 'Milan' });
    routes.set(crlPath(prefix), ok(crl));
    const fetched = (await verifyEvidence(ev, { kds, trustAnchors: anchors })) as SnpClaims;
    expect(fetched.revocation).toMatchObject({ checked: true, source: 'kds' });
    expect(fetched.revocation.crls).toHaveLength(1);
    expect(fetched.revocation.crls[0]!.issuer).toBe('ARK-Milan');
    expect(Date.parse(fetched.revocation.crls[0]!.thisUpdate)).toBeLessThanOrEqual(Date.now());
    const cached = (await verifyEvidence(ev, { kds, trustAnchors: anchors })) as SnpClaims;
    expect(cached.revocation).toMatchObject({ checked: true, source: 'cache' });
    const none = client();
    const unchecked = (await verifyEvidence(ev, { kds: none.kds, trustAnchors: anchors })) as SnpClaims;
    expect(unchecked.revocation).toMatchObject({ checked: false, source: 'none', crls: [] });
    expect(unchecked.revocation.reason).toMatch(/HTTP 404/);
    const offline = (await verifyEvidence(ev, {
      kds: none.kds,
      trustAnchors: anchors,
      offline: true,
    })) as SnpClaims;
    expect(offline.revocation).toMatchObject({ checked: false, reason: 'offline, and no CRL is cached' });
  });

  describe('stale-if-error: a cached CRL valid at now is used when the fetch fails', () => {
    // max-age=0: the cached CRL is stale at once, so every verification asks KDS again.
    const revoking = () => ({
      status: 200,
      body: simulated.amdCrl({ product: 'Milan', revoked: [askSerial] }),
      headers: { 'cache-control': 'max-age=0' },
    });

    for (const status of [503, 429, 500, 404]) {
      it(`KDS answering ${status} after a revoking CRL: the cached CRL still refuses the ASK`, async () => {
        const { kds, prefix } = client();
        routes.set(crlPath(prefix), (n) => (n === 1 ? revoking() : { status }));
        expect(await codeOf(verifyEvidence(ev, { kds, trustAnchors: anchors }))).toBe('ERR_EVIDENCE_CHAIN');
        const err = await errorOf(verifyEvidence(ev, { kds, trustAnchors: anchors }));
        expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
        expect(err.message).toMatch(/revoked/);
        expect(err.details.crlSource).toBe('cache');
        expect(hits.get(crlPath(prefix))).toBe(2);
      });
    }

    it('KDS refusing connections after a revoking CRL: still refused', async () => {
      const kdsServer = createServer((_req, res) => {
        const r = revoking();
        res.writeHead(r.status, r.headers);
        res.end(r.body);
      });
      await new Promise<void>((done) => kdsServer.listen(0, '127.0.0.1', done));
      const url = `http://127.0.0.1:${(kdsServer.address() as AddressInfo).port}`;
      const kds = new KdsClient({ baseUrl: url, backoffMs: 1 });
      expect(await codeOf(verifyEvidence(ev, { kds, trustAnchors: anchors }))).toBe('ERR_EVIDENCE_CHAIN');
      kdsServer.closeAllConnections();
      await new Promise<void>((done) => kdsServer.close(() => done()));
      const err = await errorOf(verifyEvidence(ev, { kds, trustAnchors: anchors }));
      expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
      expect(err.message).toMatch(/revoked/);
    });

    it('a restarted verifier (new client, same cacheDir) still refuses when KDS answers 503', async () => {
      const cacheDir = mkdtempSync(join(tmpdir(), 'ac-crl-cache-'));
      try {
        const prefix = `/disk${++seq}`;
        routes.set(crlPath(prefix), (n) => (n === 1 ? revoking() : { status: 503 }));
        const first = new KdsClient({ baseUrl: base + prefix, backoffMs: 1, cacheDir });
        expect(await codeOf(verifyEvidence(ev, { kds: first, trustAnchors: anchors }))).toBe(
          'ERR_EVIDENCE_CHAIN',
        );
        const restarted = new KdsClient({ baseUrl: base + prefix, backoffMs: 1, cacheDir });
        const err = await errorOf(verifyEvidence(ev, { kds: restarted, trustAnchors: anchors }));
        expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
        expect(err.message).toMatch(/revoked/);
        expect(hits.get(crlPath(prefix))).toBe(2);
      } finally {
        rmSync(cacheDir, { recursive: true, force: true });
      }
    });

    it('a cached CRL that revokes nothing stands in, and the claims name it with the failure', async () => {
      const { kds, prefix } = client();
      const clean = simulated.amdCrl({ product: 'Milan' });
      routes.set(crlPath(prefix), (n) =>
        n === 1 ? { status: 200, body: clean, headers: { 'cache-control': 'max-age=0' } } : { status: 503 },
      );
      await verifyEvidence(ev, { kds, trustAnchors: anchors });
      const claims = (await verifyEvidence(ev, {
        kds,
        trustAnchors: anchors,
        policy: { snp: { requireCrl: true } },
      })) as SnpClaims;
      expect(claims.revocation).toMatchObject({ checked: true, source: 'cache' });
      expect(claims.revocation.reason).toMatch(/HTTP 503.*cached CRL was used/);
    });

    it('a cached CRL outside its window at now does not stand in', async () => {
      const { kds, prefix } = client();
      const old = simulated.amdCrl({
        product: 'Milan',
        thisUpdate: new Date('2024-01-01T00:00:00Z'),
        nextUpdate: new Date('2024-02-01T00:00:00Z'),
        revoked: [askSerial],
      });
      routes.set(crlPath(prefix), (n) =>
        n === 1 ? { status: 200, body: old, headers: { 'cache-control': 'max-age=0' } } : { status: 503 },
      );
      const at = new Date('2024-01-15T00:00:00Z');
      expect(await codeOf(verifyEvidence(ev, { kds, trustAnchors: anchors, now: at }))).toBe(
        'ERR_EVIDENCE_CHAIN',
      );
      // At the wall clock the cached CRL has expired: revocation is reported as not checked.
      const claims = (await verifyEvidence(ev, { kds, trustAnchors: anchors })) as SnpClaims;
      expect(claims.revocation.checked).toBe(false);
      expect(claims.revocation.reason).toMatch(/cached CRL .* is not valid at/);
    });
  });

  it("real AMD report: a CRL not signed by AMD's ARK is refused", async () => {
    const { kds, prefix } = client();
    routes.set(`${prefix}/vcek/v1/Milan/crl`, ok(simulated.amdCrl({ product: 'Milan' })));
    expect(
      await codeOf(verifyEvidence({ report: milan.report, vek: milan.vek }, { now: milan.at, kds })),
    ).toBe('ERR_EVIDENCE_CHAIN');
  });
});
