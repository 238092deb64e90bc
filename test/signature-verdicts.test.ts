/**
 * The Verifier's caches of positive signature verdicts (`sev-snp.signatures`, `tdx.signatures`;
 * src/evidence/verdicts.ts). Each case verifies good evidence first, so that its verdict is
 * cached, then evidence that differs in one part the verdict depends on — a signature byte, a
 * signed byte, the key — and expects the code a Verifier that never saw the good evidence gives.
 * Each part is in the comparison for a reason: with it left out (the signature as the entry's
 * key, or the key or signed bytes as what the entry must equal), its case here is accepted or
 * refused with another code, and the entry cases at the end fail.
 */
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Lru } from '../src/evidence/lru.js';
import { simulated } from '../src/evidence/providers/simulated.js';
import { simulatedKey } from '../src/evidence/providers/simulated-snp.js';
import { parseTdxQuote } from '../src/evidence/tdx/quote.js';
import type { EvidenceInput, VerifierCallOptions } from '../src/evidence/types.js';
import {
  knownSignature,
  rememberSignature,
  type SignatureVerdicts,
  signatureId,
} from '../src/evidence/verdicts.js';
import { createVerifier } from '../src/evidence/verifier.js';
import { codeOf, flipped, loadFixture } from './snp/fixtures.js';
import { loadVector } from './tdx/fixtures.js';

const milan = loadFixture('ms-tav__milan-v3');
// Another Milan chip: its VCEK chains to the same ARK and is valid at milan.at.
const otherMilan = loadFixture('oak__milan-v3-oc-release');
const snpCall: VerifierCallOptions = { now: milan.at };
const snpGood: EvidenceInput = { report: milan.report, vek: milan.vek };

/** The code a Verifier gives `bad` after it verified `good`, and the code a new one gives. */
async function codesAfter(
  good: EvidenceInput,
  bad: EvidenceInput,
  call: VerifierCallOptions,
  cache: string,
): Promise<{ warm: string; cold: string }> {
  const verifier = createVerifier({ offline: true });
  await verifier.verify(good, call);
  expect(verifier.stats()[cache]).toMatchObject({ size: 1, hits: 0, misses: 1 });
  const warm = await codeOf(verifier.verify(bad, call));
  const cold = await codeOf(createVerifier({ offline: true }).verify(bad, call));
  return { warm, cold };
}

describe('sev-snp.signatures', () => {
  it('the same report again is a hit, and verifies', async () => {
    const verifier = createVerifier({ offline: true });
    await verifier.verify(snpGood, snpCall);
    await expect(
      verifier.verify({ ...snpGood, report: new Uint8Array(milan.report) }, snpCall),
    ).resolves.toMatchObject({
      format: 'sev-snp',
    });
    expect(verifier.stats()['sev-snp.signatures']).toMatchObject({ size: 1, hits: 1, misses: 1 });
  });

  it('a report with one flipped signature byte is refused as without the cache', async () => {
    for (const offset of [0x2a0, 0x2e8 + 47]) {
      const bad = { ...snpGood, report: flipped(milan.report, offset) };
      const codes = await codesAfter(snpGood, bad, snpCall, 'sev-snp.signatures');
      expect(codes).toEqual({ warm: 'ERR_EVIDENCE_SIGNATURE', cold: 'ERR_EVIDENCE_SIGNATURE' });
    }
  });

  it('a report with one flipped signed byte is refused as without the cache', async () => {
    for (const offset of [0x50, 0x90]) {
      const bad = { ...snpGood, report: flipped(milan.report, offset) };
      const codes = await codesAfter(snpGood, bad, snpCall, 'sev-snp.signatures');
      expect(codes).toEqual({ warm: 'ERR_EVIDENCE_SIGNATURE', cold: 'ERR_EVIDENCE_SIGNATURE' });
    }
  });

  it('the same report under another VEK is refused as without the cache', async () => {
    const bad = { ...snpGood, vek: otherMilan.vek };
    const codes = await codesAfter(snpGood, bad, snpCall, 'sev-snp.signatures');
    // The signature is checked before the VEK's TCB and hwID are compared with the report: a
    // verdict found for the report alone would make this ERR_EVIDENCE_CHAIN.
    expect(codes).toEqual({ warm: 'ERR_EVIDENCE_SIGNATURE', cold: 'ERR_EVIDENCE_SIGNATURE' });
  });

  it('a refused signature is not remembered', async () => {
    const verifier = createVerifier({ offline: true });
    const bad = { ...snpGood, report: flipped(milan.report, 0x90) };
    for (let i = 0; i < 2; i++)
      expect(await codeOf(verifier.verify(bad, snpCall))).toBe('ERR_EVIDENCE_SIGNATURE');
    expect(verifier.stats()['sev-snp.signatures']).toMatchObject({ size: 0, hits: 0, misses: 2 });
  });
});

describe('tdx.signatures', () => {
  const v = loadVector('dcap-qvl__quote');
  const good: EvidenceInput = { report: v.quote, collateral: v.collateral! };
  const call: VerifierCallOptions = { now: v.now };
  const quote = parseTdxQuote(v.quote);
  // The signature follows the signed header and body and its u32 length.
  const signatureAt = quote.signedData.length + 4;
  // Header byte 40 is in its user data; REPORTDATA of the TD report is 520 bytes into the body
  // (after the 48-byte header).
  const reportDataAt = 48 + 520;

  it('the same quote again is a hit, and verifies', async () => {
    const verifier = createVerifier({ offline: true });
    await verifier.verify(good, call);
    await expect(verifier.verify({ ...good, report: new Uint8Array(v.quote) }, call)).resolves.toMatchObject({
      format: 'tdx',
    });
    expect(verifier.stats()['tdx.signatures']).toMatchObject({ size: 1, hits: 1, misses: 1 });
  });

  it('a quote with one flipped signature byte is refused as without the cache', async () => {
    for (const offset of [signatureAt, signatureAt + 63]) {
      const codes = await codesAfter(
        good,
        { ...good, report: flipped(v.quote, offset) },
        call,
        'tdx.signatures',
      );
      expect(codes).toEqual({ warm: 'ERR_EVIDENCE_SIGNATURE', cold: 'ERR_EVIDENCE_SIGNATURE' });
    }
  });

  it('a quote with one flipped signed byte is refused as without the cache', async () => {
    for (const offset of [40, reportDataAt]) {
      const codes = await codesAfter(
        good,
        { ...good, report: flipped(v.quote, offset) },
        call,
        'tdx.signatures',
      );
      expect(codes.warm).toBe(codes.cold);
      expect(codes.warm).not.toBe('accepted');
    }
  });

  it('the same quote under another attestation key, vouched for by the QE, is refused as without the cache', async () => {
    const tdxNow = new Date('2030-01-01T00:00:00Z');
    const ev = await simulated.tdx({ now: tdxNow }).getEvidence(new Uint8Array(64).fill(5));
    const tdxCall: VerifierCallOptions = { now: tdxNow };
    // The quote's signed bytes and signature, with another key in its place that the QE report
    // binds (REPORTDATA = SHA-256(key ‖ auth data) ‖ zeros) and the simulated PCK signs: steps 6
    // and 7 pass, and only the quote signature (step 9) can refuse it.
    const q = parseTdxQuote(ev.report);
    const raw = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .publicKey.export({ format: 'der', type: 'spki' })
      .subarray(-64);
    const bad = new Uint8Array(ev.report);
    const keyAt = q.signedData.length + 4 + 64;
    const qeAt = keyAt + 64 + 6;
    bad.set(raw, keyAt);
    const qe = bad.subarray(qeAt, qeAt + 384);
    qe.set(createHash('sha256').update(raw).update(q.qeAuthData).digest(), 320);
    bad.set(sign('sha256', qe, { key: simulatedKey('intelPck'), dsaEncoding: 'ieee-p1363' }), qeAt + 384);
    const verifier = createVerifier({ offline: true, trustAnchors: simulated.trustAnchors() });
    await verifier.verify(ev, tdxCall);
    const warm = await codeOf(verifier.verify({ ...ev, report: bad }, tdxCall));
    const cold = await codeOf(
      createVerifier({ offline: true, trustAnchors: simulated.trustAnchors() }).verify(
        { ...ev, report: bad },
        tdxCall,
      ),
    );
    expect({ warm, cold }).toEqual({ warm: 'ERR_EVIDENCE_SIGNATURE', cold: 'ERR_EVIDENCE_SIGNATURE' });
    expect(verifier.stats()['tdx.signatures']).toMatchObject({ size: 1, hits: 0, misses: 2 });
  });
});

describe('verdict entries (verdicts.ts)', () => {
  const sig = new Uint8Array(64).fill(7);
  const key = new Uint8Array(64).fill(1);
  const signed = new Uint8Array(632).fill(2);
  const remembered = (): SignatureVerdicts => {
    const cache: SignatureVerdicts = new Lru(4);
    rememberSignature(cache, signatureId(sig), key, signed);
    return cache;
  };

  it('the same signature, key and signed bytes are a hit', () => {
    const cache = remembered();
    expect(
      knownSignature(cache, signatureId(new Uint8Array(sig)), new Uint8Array(key), new Uint8Array(signed)),
    ).toBe(true);
    expect(cache.stats()).toMatchObject({ size: 1, hits: 1, misses: 0 });
  });

  it('the same signature bytes with other signed bytes, or under another key, are a miss', () => {
    const cache = remembered();
    const id = signatureId(sig);
    for (const at of [0, 631]) {
      const other = new Uint8Array(signed);
      other[at]! ^= 1;
      expect(knownSignature(cache, id, key, other)).toBe(false);
    }
    // A prefix of the signed bytes, and longer signed bytes, are other bytes too.
    expect(knownSignature(cache, id, key, signed.subarray(0, 631))).toBe(false);
    expect(knownSignature(cache, id, key, new Uint8Array(633).fill(2))).toBe(false);
    for (const at of [0, 63]) {
      const other = new Uint8Array(key);
      other[at]! ^= 1;
      expect(knownSignature(cache, id, other, signed)).toBe(false);
    }
    expect(cache.stats()).toMatchObject({ size: 1, hits: 0, misses: 6 });
  });

  it('another signature over the same bytes under the same key is a miss', () => {
    const cache = remembered();
    for (const at of [0, 63]) {
      const other = new Uint8Array(sig);
      other[at]! ^= 1;
      expect(knownSignature(cache, signatureId(other), key, signed)).toBe(false);
    }
    expect(knownSignature(cache, signatureId(sig.subarray(0, 63)), key, signed)).toBe(false);
  });

  it('an entry keeps its own copies: changing the caller bytes afterwards changes no verdict', () => {
    const k = new Uint8Array(key);
    const d = new Uint8Array(signed);
    const cache: SignatureVerdicts = new Lru(4);
    rememberSignature(cache, signatureId(sig), k, d);
    k[0]! ^= 1;
    d[0]! ^= 1;
    expect(knownSignature(cache, signatureId(sig), k, d)).toBe(false);
    expect(knownSignature(cache, signatureId(sig), key, signed)).toBe(true);
  });

  it('signature ids are one character per byte, so different bytes give different ids', () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const id = signatureId(bytes.subarray(0, 128), bytes.subarray(128));
    expect(id.length).toBe(256);
    expect(Array.from(id, (c) => c.charCodeAt(0))).toEqual(Array.from(bytes));
  });
});
