/**
 * The TDX verifier keeps the last PCK chain text, PCK chain, collateral and attestation key it
 * accepted. Each case verifies a real quote first, then something that shares those but differs
 * in one thing a verdict depends on: it must come out as if seen for the first time.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Lru } from '../../src/evidence/lru.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import {
  type CollateralCache,
  normaliseCollateral,
  verifyCollateral,
} from '../../src/evidence/tdx/collateral.js';
import { parseTdxQuote } from '../../src/evidence/tdx/quote.js';
import { intelRoots } from '../../src/evidence/tdx/roots.js';
import { pckChainOf } from '../../src/evidence/tdx/verify.js';
import type { TdxCollateral, VerifyOptions } from '../../src/evidence/types.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import type { ParsedCert } from '../../src/evidence/x509/cert.js';
import { derToPem } from '../../src/evidence/x509/pem.js';
import { codeOf, loadVector } from './fixtures.js';

const v = loadVector('dcap-qvl__quote');
const collateral = v.collateral!;
const options: VerifyOptions = { now: v.now, offline: true };

async function accepted(): Promise<void> {
  await expect(verifyEvidence({ report: v.quote, collateral }, options)).resolves.toMatchObject({
    tcbStatus: 'UpToDate',
  });
}

/** A quote of another platform (other QE, key and PCK chain) verified at its own time. */
async function otherPlatform(): Promise<void> {
  const o = loadVector('go-tdx-guest__quote_v5');
  await verifyEvidence(
    { report: o.quote, collateral: o.collateral! },
    { now: o.now, offline: true, policy: { tdx: { acceptTcbStatus: ['UpToDate', 'OutOfDate'] } } },
  ).catch(() => undefined);
}

describe('TDX verdicts kept for the last chain, collateral and key', () => {
  it('the same quote and collateral once the collateral has expired are refused', async () => {
    await accepted();
    const later = new Date(v.now.getTime() + 60 * 86_400_000);
    expect(
      await codeOf(() => verifyEvidence({ report: v.quote, collateral }, { ...options, now: later })),
    ).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('the same quote once its PCK certificate has expired is refused', async () => {
    await accepted();
    const late = new Date('2053-01-01T00:00:00Z');
    expect(
      await codeOf(() => verifyEvidence({ report: v.quote, collateral }, { ...options, now: late })),
    ).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('the same quote under other roots (the simulated one) is refused', async () => {
    await accepted();
    const anchors = simulated.trustAnchors();
    expect(
      await codeOf(() =>
        verifyEvidence({ report: v.quote, collateral }, { ...options, trustAnchors: anchors }),
      ),
    ).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('collateral with one member changed is checked again and refused', async () => {
    await accepted();
    // One character of the signed text changed: no longer what Intel signed.
    const changed: TdxCollateral = {
      ...collateral,
      tcb_info: collateral.tcb_info.replace('"version":3', '"version":4'),
    };
    expect(changed.tcb_info).not.toBe(collateral.tcb_info);
    expect(await codeOf(() => verifyEvidence({ report: v.quote, collateral: changed }, options))).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
  });

  it('quotes of two platforms one after the other each verify with their own chain and key', async () => {
    const other = loadVector('go-tdx-guest__quote_v5');
    for (const x of [v, other, v, other]) {
      const claims = await verifyEvidence(
        { report: x.quote, collateral: x.collateral! },
        { now: x.now, offline: true, policy: { tdx: { acceptTcbStatus: ['UpToDate', 'OutOfDate'] } } },
      ).catch((err: { code?: string }) => err.code);
      expect(claims).not.toBe('ERR_EVIDENCE_SIGNATURE');
      expect(claims).not.toBe('ERR_EVIDENCE_CHAIN');
    }
    expect(parseTdxQuote(other.quote).pckChain[0]).not.toEqual(parseTdxQuote(v.quote).pckChain[0]);
  });

  it('a quote Buffer changed in place after it verified is checked again (PCK chain text, QE report)', async () => {
    const q = parseTdxQuote(v.quote);
    const pemAt = v.quote.length - 200; // inside the PEM PCK chain, the quote's last section
    const sigAt = q.qeReportSignature.byteOffset - v.quote.byteOffset;
    for (const at of [pemAt, sigAt]) {
      await otherPlatform(); // so that what is kept next comes from `buf`
      const buf = Buffer.from(v.quote);
      await expect(verifyEvidence({ report: buf, collateral }, options)).resolves.toMatchObject({
        tcbStatus: 'UpToDate',
      });
      buf[at]! ^= 0x01;
      expect(await codeOf(() => verifyEvidence({ report: buf, collateral }, options))).not.toBe('accepted');
    }
  });

  it('a QE report signature, QE report, auth data or PCK that differs from the last one is checked again', async () => {
    const q = parseTdxQuote(v.quote);
    const offsetOf = (part: Uint8Array) => part.byteOffset - v.quote.byteOffset;
    const parts = [q.qeReportSignature, q.qeReport.raw.subarray(0, 16), q.qeAuthData];
    expect(q.qeAuthData.length).toBeGreaterThan(0);
    for (const part of parts) {
      await accepted();
      const changed = new Uint8Array(v.quote);
      changed[offsetOf(part)]! ^= 0x01;
      expect(await codeOf(() => verifyEvidence({ report: changed, collateral }, options))).toBe(
        'ERR_EVIDENCE_SIGNATURE',
      );
    }
  });

  it("a QE report that verified under one platform's PCK is checked again under another's", async () => {
    await accepted();
    // The same quote with another platform's (genuine) PCK chain in its certification data: the
    // quote signature does not cover it, the QE report signature does not verify under that PCK.
    const other = parseTdxQuote(loadVector('go-tdx-guest__quote').quote);
    const pem = Buffer.from(other.pckChain.map((d) => derToPem(d)).join(''), 'latin1');
    const q = parseTdxQuote(v.quote);
    const sigLenAt = q.signedData.length;
    const sigEnd = sigLenAt + 4 + new DataView(v.quote.buffer, v.quote.byteOffset).getUint32(sigLenAt, true);
    const innerSize = new DataView(v.quote.buffer, v.quote.byteOffset).getUint32(
      q.qeAuthData.byteOffset - v.quote.byteOffset + q.qeAuthData.length + 2,
      true,
    );
    const pemAt = sigEnd - innerSize;
    const swapped = Buffer.concat([v.quote.subarray(0, pemAt), pem]);
    const delta = pem.length - innerSize;
    const view = new DataView(swapped.buffer, swapped.byteOffset);
    const bump = (at: number) => view.setUint32(at, view.getUint32(at, true) + delta, true);
    bump(sigLenAt); // signature data length
    bump(sigLenAt + 4 + 64 + 64 + 2); // certification data size
    bump(pemAt - 4); // PCK chain size
    expect(parseTdxQuote(swapped).pckChain[0]).toEqual(other.pckChain[0]);
    expect(await codeOf(() => verifyEvidence({ report: swapped, collateral }, options))).toBe(
      'ERR_EVIDENCE_SIGNATURE',
    );
  });

  it('a genuine QE report with another attestation key (that signed the quote) is refused', async () => {
    await accepted();
    // The attack the QE report binding stops: keep the QE's report, bring one's own key.
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const raw = Buffer.concat([Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
    const forged = new Uint8Array(v.quote);
    const q = parseTdxQuote(forged);
    const at = q.signedData.length + 4;
    forged.set(raw, at + 64);
    forged.set(sign('sha256', q.signedData, { key: privateKey, dsaEncoding: 'ieee-p1363' }), at);
    expect(await codeOf(() => verifyEvidence({ report: forged, collateral }, options))).toBe(
      'ERR_EVIDENCE_SIGNATURE',
    );
  });

  it("a caller changing a parsed quote's PCK chain does not change the next parse", () => {
    const first = parseTdxQuote(v.quote);
    const original = first.pckChain[0]!.slice();
    first.pckChain[0]![10]! ^= 0xff;
    expect(parseTdxQuote(v.quote).pckChain[0]).toEqual(original);
  });
});

describe('TDX chain and collateral verdicts, step by step', () => {
  const ders = parseTdxQuote(v.quote).pckChain;
  const intel = intelRoots(undefined);
  const simulatedRoots = intelRoots(simulated.trustAnchors());
  const late = new Date('2053-01-01T00:00:00Z');
  const c = normaliseCollateral(collateral);

  it('a PCK chain accepted at one time is checked again at another, and under other roots', async () => {
    // One kept entry, as a Verifier's tdx.chains cache holds it, and one certificate cache.
    const kept = { ders };
    const certs = new Lru<string, ParsedCert>(16);
    expect(pckChainOf(kept, intel, v.now, certs).ca).toBe('platform');
    expect(await codeOf(() => pckChainOf(kept, intel, late, certs))).toBe('ERR_EVIDENCE_CHAIN');
    expect(pckChainOf(kept, intel, v.now, certs).ca).toBe('platform');
    expect(await codeOf(() => pckChainOf(kept, intel, new Date('2000-01-01T00:00:00Z'), certs))).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
    expect(pckChainOf(kept, intel, v.now, certs).ca).toBe('platform');
    expect(await codeOf(() => pckChainOf(kept, simulatedRoots, v.now, certs))).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('collateral accepted under the Intel root is checked again under other roots', async () => {
    const cache: CollateralCache = { entries: new Lru(4) };
    expect(verifyCollateral(c, intel, v.now, cache).root).toBe(intel[0]);
    expect(cache.entries.stats().size).toBe(1);
    expect(await codeOf(() => verifyCollateral(c, simulatedRoots, v.now, cache))).toBe('ERR_EVIDENCE_CHAIN');
    expect(verifyCollateral(c, intel, v.now, cache).root).toBe(intel[0]);
    expect(cache.entries.stats().hits).toBeGreaterThan(0);
  });
});
