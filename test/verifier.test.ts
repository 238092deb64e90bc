/**
 * createVerifier(): a Verifier owns its anchors (copied and fingerprinted at creation), its
 * collateral clients and its bounded caches; verifyEvidence() is a thin wrapper over it; the
 * channel takes one as `verify.verifier`. And the LRU every cache is.
 */

import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { attestedConnect } from '../src/channel/connect.js';
import { createAttestedServer } from '../src/channel/server.js';
import { AZURE_CACHE_SIZES } from '../src/evidence/azure/format.js';
import { CHAIN_TEXT_CACHE_SIZE } from '../src/evidence/challenger.js';
import { Lru } from '../src/evidence/lru.js';
import { POLICY_CACHE_SIZE } from '../src/evidence/policy-memo.js';
import { simulated } from '../src/evidence/providers/simulated.js';
import { REUSE_ENTRIES } from '../src/evidence/reuse.js';
import { SNP_CACHE_SIZES } from '../src/evidence/snp/format.js';
import { KdsClient } from '../src/evidence/snp/kds.js';
import { TDX_CACHE_SIZES } from '../src/evidence/tdx/format.js';
import { parseTdxQuote } from '../src/evidence/tdx/quote.js';
import { MAX_KEPT_PEM_BYTES } from '../src/evidence/tdx/verify.js';
import type { EvidenceInput } from '../src/evidence/types.js';
import { CERTIFICATE_CACHE_SIZE, createVerifier } from '../src/evidence/verifier.js';
import { DEFAULT_VERIFIERS, defaultVerifierCount, verifyEvidence } from '../src/evidence/verify.js';
import { buildCertificate } from '../src/evidence/x509/build.js';
import { MAX_KEPT_CERT_BYTES, type ParsedCert, parseCertificate } from '../src/evidence/x509/cert.js';
import { closeServer, listen } from './channel/helpers.js';
import { codeOf } from './snp/fixtures.js';
import { loadVector } from './tdx/fixtures.js';

const now = new Date('2030-01-01T00:00:00Z');
const reportData = new Uint8Array(64).fill(3);

async function snpEvidence(product: 'Milan' | 'Genoa' = 'Milan'): Promise<EvidenceInput> {
  return simulated.snp({ product }).getEvidence(reportData);
}

describe('Lru', () => {
  it('holds at most max entries, drops the least recently used, and counts', () => {
    const lru = new Lru<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    expect(lru.get('a')).toBe(1); // a is now the most recent
    lru.set('c', 3); // evicts b
    expect(lru.get('b')).toBeUndefined();
    expect(lru.get('c')).toBe(3);
    expect(lru.stats()).toEqual({ size: 2, max: 2, hits: 2, misses: 1, evictions: 1 });
  });

  it('never exceeds its bound, whatever the sequence of operations (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 20 })), { maxLength: 200 }),
        (max, ops) => {
          const lru = new Lru<number, number>(max);
          const model: number[] = []; // keys, least recent first
          for (const [isSet, key] of ops) {
            const at = model.indexOf(key);
            if (isSet) {
              if (at >= 0) model.splice(at, 1);
              else if (model.length >= max) model.shift();
              model.push(key);
              lru.set(key, key);
            } else {
              expect(lru.get(key)).toBe(at >= 0 ? key : undefined);
              if (at >= 0) model.push(...model.splice(at, 1));
            }
            expect(lru.size).toBe(model.length);
            expect(lru.size).toBeLessThanOrEqual(max);
          }
        },
      ),
    );
  });

  it('refuses a size that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => new Lru(bad)).toThrow(RangeError);
  });
});

describe('createVerifier', () => {
  it('lists every cache with its documented size', () => {
    const stats = createVerifier().stats();
    expect(Object.keys(stats).sort()).toEqual([
      'azure-sev-snp.aks',
      'azure-sev-snp.runtimeClaims',
      'azure-tdx.aks',
      'azure-tdx.runtimeClaims',
      'certificates',
      'channel.chains',
      'policies',
      'reuse.evidence',
      'sev-snp.chains',
      'sev-snp.crls',
      'sev-snp.kds',
      'sev-snp.signatures',
      'tdx.chains',
      'tdx.collateral',
      'tdx.keys',
      'tdx.pcs',
      'tdx.signatures',
    ]);
    expect(stats['sev-snp.kds']!.max).toBe(256);
    expect(stats['tdx.pcs']!.max).toBe(256);
    expect(stats.certificates!.max).toBe(CERTIFICATE_CACHE_SIZE);
    expect(stats['sev-snp.chains']!.max).toBe(SNP_CACHE_SIZES.chains);
    expect(stats['sev-snp.crls']!.max).toBe(SNP_CACHE_SIZES.crls);
    expect(stats['tdx.chains']!.max).toBe(TDX_CACHE_SIZES.chains);
    expect(stats['tdx.collateral']!.max).toBe(TDX_CACHE_SIZES.collateral);
    expect(stats['tdx.keys']!.max).toBe(TDX_CACHE_SIZES.keys);
    expect(stats['sev-snp.signatures']!.max).toBe(SNP_CACHE_SIZES.signatures);
    expect(stats['tdx.signatures']!.max).toBe(TDX_CACHE_SIZES.signatures);
    expect(stats['azure-sev-snp.runtimeClaims']!.max).toBe(AZURE_CACHE_SIZES.runtimeClaims);
    expect(stats['azure-tdx.runtimeClaims']!.max).toBe(AZURE_CACHE_SIZES.runtimeClaims);
    expect(stats['azure-sev-snp.aks']!.max).toBe(AZURE_CACHE_SIZES.aks);
    expect(stats['azure-tdx.aks']!.max).toBe(AZURE_CACHE_SIZES.aks);
    expect(stats['reuse.evidence']!.max).toBe(REUSE_ENTRIES);
    expect(stats['channel.chains']!.max).toBe(CHAIN_TEXT_CACHE_SIZE);
    expect(stats.policies!.max).toBe(POLICY_CACHE_SIZE);
    for (const s of Object.values(stats))
      expect(s).toMatchObject({ size: 0, hits: 0, misses: 0, evictions: 0 });
  });

  it('a second report of the same platform is a hit of the VEK verdict', async () => {
    const verifier = createVerifier({ trustAnchors: simulated.trustAnchors() });
    const ev = await snpEvidence();
    await expect(verifier.verify(ev, { now })).resolves.toMatchObject({ format: 'sev-snp' });
    expect(verifier.stats()['sev-snp.chains']).toMatchObject({ size: 1, hits: 0, misses: 1 });
    await expect(verifier.verify(ev, { now })).resolves.toMatchObject({ format: 'sev-snp' });
    expect(verifier.stats()['sev-snp.chains']).toMatchObject({ size: 1, hits: 1, misses: 1 });
  });

  it('a TDX quote seen before hits the chain, key and collateral caches', async () => {
    const v = loadVector('dcap-qvl__quote');
    const verifier = createVerifier({ offline: true });
    const input = { report: v.quote, collateral: v.collateral! };
    await verifier.verify(input, { now: v.now });
    await verifier.verify(input, { now: v.now });
    const s = verifier.stats();
    for (const name of ['tdx.chains', 'tdx.keys', 'tdx.collateral'])
      expect(s[name]!.hits, name).toBeGreaterThanOrEqual(1);
    expect(s['tdx.chains']!.size).toBe(1);
  });

  it('copies its anchors at creation: the caller changing them later changes nothing', async () => {
    const own = simulated.trustAnchors();
    const verifier = createVerifier({ trustAnchors: own });
    expect(verifier.anchors.amdArks).toEqual(
      own.amdArks.map((d) => createHash('sha256').update(d).digest('hex')),
    );
    const milan = own.amdArks.findIndex((d) => parseCertificate(d).subject.CN === 'ARK-Milan');
    own.amdArks.splice(milan, 1);
    own.intelRoots[0]![10]! ^= 0xff;
    await expect(verifier.verify(await snpEvidence(), { now })).resolves.toMatchObject({ format: 'sev-snp' });
    const tdx = await simulated.tdx().getEvidence(reportData);
    // The simulated TDX collateral is valid around the wall clock.
    await expect(verifier.verify(tdx)).resolves.toMatchObject({ format: 'tdx' });
  });

  it('two Verifiers share nothing', async () => {
    const a = createVerifier({ trustAnchors: simulated.trustAnchors() });
    const b = createVerifier({ trustAnchors: simulated.trustAnchors() });
    await a.verify(await snpEvidence(), { now });
    expect(a.stats()['sev-snp.chains']!.size).toBe(1);
    expect(Object.values(b.stats()).every((s) => s.size === 0 && s.misses === 0)).toBe(true);
  });

  it('without anchors trusts only the vendor roots', async () => {
    expect(await codeOf(createVerifier().verify(await snpEvidence(), { now }))).toBe('ERR_EVIDENCE_CHAIN');
    expect(createVerifier().anchors).toEqual({});
  });

  it('refuses options that are not what they should be', async () => {
    expect(await codeOf(() => createVerifier(null as never))).toBe('ERR_INVALID_ARGUMENT');
    expect(await codeOf(() => createVerifier({ trustAnchors: 5 as never }))).toBe('ERR_INVALID_ARGUMENT');
    expect(await codeOf(() => createVerifier({ kds: { baseUrl: 'ftp://x' } }))).toBe('ERR_INVALID_ARGUMENT');
    const verifier = createVerifier();
    expect(await codeOf(verifier.verify({ report: 'x' as never }))).toBe('ERR_INVALID_ARGUMENT');
    expect(await codeOf(verifier.verify(await snpEvidence(), { now: new Date(Number.NaN) }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });

  it('uses a KDS client instance it is given (shared), and makes its own from settings', async () => {
    const kds = new KdsClient({ baseUrl: 'http://127.0.0.1:9' });
    const verifier = createVerifier({ trustAnchors: simulated.trustAnchors(), kds, offline: true });
    const { vek: _v, ...noVek } = await snpEvidence();
    // Offline, the VCEK is looked up in this client's cache only: it is not there.
    expect(await codeOf(verifier.verify(noVek, { now }))).toBe('ERR_COLLATERAL_UNAVAILABLE');
    expect(kds.fetcher.requests).toBe(0);
  });
});

describe('options in the wrong place are refused, never ignored', () => {
  it('createVerifier() refuses what belongs to one verification, verify() what belongs to the Verifier', async () => {
    for (const key of ['policy', 'now', 'check', 'signal', 'verifier'])
      expect(await codeOf(() => createVerifier({ [key]: {} } as never)), key).toBe('ERR_INVALID_ARGUMENT');
    const verifier = createVerifier({ trustAnchors: simulated.trustAnchors() });
    const ev = await snpEvidence();
    for (const key of ['trustAnchors', 'offline', 'kds', 'pcs', 'verifier'])
      expect(await codeOf(verifier.verify(ev, { now, [key]: {} } as never)), key).toBe(
        'ERR_INVALID_ARGUMENT',
      );
    await expect(verifier.verify(ev, { now, policy: {} })).resolves.toMatchObject({ format: 'sev-snp' });
  });
});

describe('verifyEvidence over Verifiers', () => {
  it('keeps at most DEFAULT_VERIFIERS default Verifiers, one per distinct settings', async () => {
    const ev = await snpEvidence();
    for (let i = 0; i < DEFAULT_VERIFIERS + 4; i++)
      await verifyEvidence(ev, { trustAnchors: simulated.trustAnchors(), now, kds: { timeoutMs: 1000 + i } });
    expect(defaultVerifierCount()).toBe(DEFAULT_VERIFIERS);
  });

  it('options.verifier is used, and its own settings may not be given beside it', async () => {
    const verifier = createVerifier({ trustAnchors: simulated.trustAnchors() });
    const ev = await snpEvidence();
    await expect(verifyEvidence(ev, { verifier, now })).resolves.toMatchObject({ format: 'sev-snp' });
    expect(verifier.stats()['sev-snp.chains']!.misses).toBe(1);
    for (const extra of [
      { trustAnchors: simulated.trustAnchors() },
      { offline: true },
      { kds: {} },
      { pcs: {} },
    ])
      expect(await codeOf(verifyEvidence(ev, { verifier, now, ...extra }))).toBe('ERR_INVALID_ARGUMENT');
    expect(await codeOf(verifyEvidence(ev, { verifier: {} as never, now }))).toBe('ERR_INVALID_ARGUMENT');
  });

  it('default Verifiers are told apart by the anchors’ content, not the array', async () => {
    const ev = await snpEvidence();
    // Equal content in new arrays: accepted; the same array edited to other content: refused.
    await expect(verifyEvidence(ev, { trustAnchors: simulated.trustAnchors(), now })).resolves.toBeTruthy();
    await expect(verifyEvidence(ev, { trustAnchors: simulated.trustAnchors(), now })).resolves.toBeTruthy();
    const own = simulated.trustAnchors();
    await expect(verifyEvidence(ev, { trustAnchors: own, now })).resolves.toBeTruthy();
    for (const d of own.amdArks) d[d.length - 1]! ^= 0x01;
    expect(await codeOf(verifyEvidence(ev, { trustAnchors: own, now }))).toBe('ERR_EVIDENCE_CHAIN');
  });
});

describe('verify.verifier on a channel', () => {
  it('verifies the peer with the Verifier given, and refuses settings of its own beside it', async () => {
    const verifier = createVerifier({ trustAnchors: simulated.trustAnchors() });
    const server = createAttestedServer({ evidence: simulated.snp() }, (ch) => {
      ch.on('error', () => {});
      ch.end();
    });
    const port = await listen(server);
    try {
      const ch = await attestedConnect({ host: '127.0.0.1', port, verify: { verifier } });
      expect(ch.peer?.format).toBe('sev-snp');
      expect(verifier.stats()['sev-snp.chains']!.misses).toBe(1);
      ch.on('error', () => {});
      ch.destroy();
      expect(
        await codeOf(() =>
          attestedConnect({
            host: '127.0.0.1',
            port,
            verify: { verifier, trustAnchors: simulated.trustAnchors() },
          }),
        ),
      ).toBe('ERR_INVALID_ARGUMENT');
      expect(
        await codeOf(() => attestedConnect({ host: '127.0.0.1', port, verify: { verifier: {} as never } })),
      ).toBe('ERR_INVALID_ARGUMENT');
    } finally {
      await closeServer(server);
    }
  });
});

describe('what a cache keeps is bounded by size too', () => {
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const cert = (filler: number) =>
    buildCertificate({
      subject: [['CN', 'big']],
      issuer: [['CN', 'big']],
      serial: Uint8Array.from([1]),
      notBefore: new Date('2020-01-01T00:00:00Z'),
      notAfter: new Date('2040-01-01T00:00:00Z'),
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      algorithm: 'ecdsa-sha256',
      extensions: [
        {
          oid: '1.3.6.1.4.1.99999.1',
          value: Uint8Array.from([0x04, 0x82, filler >> 8, filler & 0xff, ...randomBytes(filler)]),
        },
      ],
    });

  it('a certificate over MAX_KEPT_CERT_BYTES is parsed but not kept; one at the limit is', () => {
    const cache = new Lru<string, ParsedCert>(4);
    const over = cert(MAX_KEPT_CERT_BYTES);
    expect(over.length).toBeGreaterThan(MAX_KEPT_CERT_BYTES);
    expect(parseCertificate(over, undefined, cache).der).toEqual(over);
    expect(cache.size).toBe(0);
    const small = cert(1000);
    parseCertificate(small, undefined, cache);
    expect(cache.size).toBe(1);
  });

  it('a PCK chain text over MAX_KEPT_PEM_BYTES is verified but not kept', async () => {
    const v = loadVector('dcap-qvl__quote');
    const q = parseTdxQuote(v.quote);
    const view = new DataView(v.quote.buffer, v.quote.byteOffset, v.quote.byteLength);
    const sigLenAt = q.signedData.length;
    const innerAt = q.qeAuthData.byteOffset - v.quote.byteOffset + q.qeAuthData.length + 2;
    const innerSize = view.getUint32(innerAt, true);
    const padded = (size: number) => {
      // The chain followed by NULs (which the format allows), and the three lengths around it.
      const out = new Uint8Array(q.size - innerSize + size);
      out.set(v.quote.subarray(0, q.size), 0);
      const w = new DataView(out.buffer);
      const delta = size - innerSize;
      for (const at of [sigLenAt, sigLenAt + 4 + 64 + 64 + 2, innerAt])
        w.setUint32(at, w.getUint32(at, true) + delta, true);
      return out;
    };
    const verifier = createVerifier({ offline: true });
    const call = { now: v.now };
    await expect(
      verifier.verify({ report: padded(MAX_KEPT_PEM_BYTES + 1), collateral: v.collateral! }, call),
    ).resolves.toMatchObject({ format: 'tdx' });
    expect(verifier.stats()['tdx.chains']!.size).toBe(0);
    await expect(
      verifier.verify({ report: padded(MAX_KEPT_PEM_BYTES), collateral: v.collateral! }, call),
    ).resolves.toMatchObject({ format: 'tdx' });
    expect(verifier.stats()['tdx.chains']!.size).toBe(1);
  });
});
