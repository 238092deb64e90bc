/**
 * The verifier keeps what it concluded about the last VEK and chain it accepted. Each case verifies
 * good evidence first (so the verdict is there), then evidence that shares the VEK or the chain
 * but differs in one thing the verdict depends on: it must be refused as if seen for the first time.
 */
import { describe, expect, it } from 'vitest';
import { simulated } from '../../src/evidence/providers/simulated.js';
import type { EvidenceInput, VerifyOptions } from '../../src/evidence/types.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { parseCertificate } from '../../src/evidence/x509/cert.js';
import { pemToDer } from '../../src/evidence/x509/pem.js';
import { codeOf, flipped } from './fixtures.js';

const anchors = simulated.trustAnchors();
const options: VerifyOptions = { trustAnchors: anchors, now: new Date('2030-01-01T00:00:00Z') };
const reportData = new Uint8Array(64).fill(7);

async function evidence(product: 'Milan' | 'Genoa' = 'Milan'): Promise<EvidenceInput> {
  return simulated.snp({ product }).getEvidence(reportData);
}

async function accepted(input: EvidenceInput): Promise<void> {
  await expect(verifyEvidence(input, options)).resolves.toMatchObject({ format: 'sev-snp' });
}

describe('verdicts kept for the last VEK and chain', () => {
  it('the same evidence at a time after the VEK expired is refused', async () => {
    const ev = await evidence();
    await accepted(ev);
    expect(await codeOf(verifyEvidence(ev, { ...options, now: new Date('2060-01-01T00:00:00Z') }))).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
  });

  it('the same VEK and chain under other trust anchors (AMD pins only) are refused', async () => {
    const ev = await evidence();
    await accepted(ev);
    const { trustAnchors: _, ...pinsOnly } = options;
    expect(await codeOf(verifyEvidence(ev, pinsOnly))).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('a VEK that differs in one byte of its signature is refused', async () => {
    const ev = await evidence();
    await accepted(ev);
    const vek = flipped(ev.vek!, ev.vek!.length - 1);
    expect(await codeOf(verifyEvidence({ ...ev, vek }, options))).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('a VEK buffer changed in place by its owner after an acceptance is refused', async () => {
    await accepted(await evidence('Genoa')); // so that the next acceptance is the one remembered
    const ev = await evidence();
    const vek = new Uint8Array(ev.vek!);
    await accepted({ ...ev, vek });
    vek[vek.length - 1]! ^= 0x01;
    expect(await codeOf(verifyEvidence({ ...ev, vek }, options))).toBe('ERR_EVIDENCE_CHAIN');
  });

  it("the VEK with another product's chain is refused", async () => {
    const ev = await evidence();
    await accepted(ev);
    const genoa = await evidence('Genoa');
    expect(await codeOf(verifyEvidence({ ...ev, chain: genoa.chain! }, options))).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('a report that names another product (CPUID) for the same VEK is refused as such', async () => {
    const ev = await evidence();
    await accepted(ev);
    const report = new Uint8Array(ev.report);
    report[0x189] = 0x11; // CPUID model: Genoa
    expect(await codeOf(verifyEvidence({ ...ev, report }, options))).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('a report that says a VLEK signed it, with the VCEK and its chain, is refused as such', async () => {
    const ev = await evidence();
    await accepted(ev);
    const report = new Uint8Array(ev.report);
    report[0x048] = (report[0x048]! & ~0b11100) | (1 << 2); // SIGNING_KEY = VLEK
    expect(await codeOf(verifyEvidence({ ...ev, report }, options))).toBe('ERR_EVIDENCE_CHAIN');
  });
});

describe('verdicts kept for a chain given as a list of DER certificates (keyed by their bytes)', () => {
  async function derChained(
    product: 'Milan' | 'Genoa' = 'Milan',
  ): Promise<EvidenceInput & { chain: Uint8Array[] }> {
    const ev = await evidence(product);
    return { ...ev, chain: pemToDer(ev.chain as string) };
  }

  it('the same VEK with a list that names another intermediate is refused', async () => {
    const ev = await derChained();
    await accepted(ev);
    const genoa = await derChained('Genoa');
    expect(await codeOf(verifyEvidence({ ...ev, chain: [genoa.chain[0]!, ev.chain[1]!] }, options))).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
  });

  it('a list element changed in place by its owner after an acceptance is refused', async () => {
    const ev = await derChained();
    await accepted(ev);
    const ask = ev.chain[0]!;
    ask[ask.length - 1]! ^= 0x01; // the ASK's signature: no longer AMD's (here: the simulator's)
    expect(await codeOf(verifyEvidence(ev, options))).toBe('ERR_EVIDENCE_CHAIN');
  });
});

describe('trust anchors are read by content on every verification (issue 10 item 6)', () => {
  /** A private copy of the simulated anchors, and the index of ARK-Milan in it. */
  function ownAnchors() {
    const own = simulated.trustAnchors();
    const milan = own.amdArks.findIndex((d) => parseCertificate(d).subject.CN === 'ARK-Milan');
    expect(milan).toBeGreaterThanOrEqual(0);
    return { own, milan };
  }

  it('a root removed in place after an acceptance is no longer trusted (kept verdict)', async () => {
    const { own, milan } = ownAnchors();
    const ev = await evidence();
    const opts = { ...options, trustAnchors: own };
    await expect(verifyEvidence(ev, opts)).resolves.toMatchObject({ format: 'sev-snp' });
    own.amdArks.splice(milan, 1);
    expect(await codeOf(verifyEvidence(ev, opts))).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('a root removed in place is no longer trusted for a chain seen before under that list', async () => {
    const { own, milan } = ownAnchors();
    const ev = await evidence();
    const opts = { ...options, trustAnchors: own };
    await expect(verifyEvidence(ev, opts)).resolves.toMatchObject({ format: 'sev-snp' });
    // Another platform's acceptance replaces the kept verdict, so the next one is decided afresh.
    await expect(verifyEvidence(await evidence('Genoa'), opts)).resolves.toMatchObject({ product: 'Genoa' });
    own.amdArks.splice(milan, 1);
    expect(await codeOf(verifyEvidence(ev, opts))).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('a root whose bytes are changed in place is no longer trusted', async () => {
    const { own, milan } = ownAnchors();
    const ev = await evidence();
    const opts = { ...options, trustAnchors: own };
    await expect(verifyEvidence(ev, opts)).resolves.toMatchObject({ format: 'sev-snp' });
    const ark = own.amdArks[milan]!;
    ark[ark.length - 1]! ^= 0x01;
    expect(await codeOf(verifyEvidence(ev, opts))).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('a root added in place is trusted from the next verification on', async () => {
    const { own, milan } = ownAnchors();
    const [ark] = own.amdArks.splice(milan, 1);
    const ev = await evidence();
    const opts = { ...options, trustAnchors: own };
    expect(await codeOf(verifyEvidence(ev, opts))).toBe('ERR_EVIDENCE_CHAIN');
    own.amdArks.push(ark!);
    await expect(verifyEvidence(ev, opts)).resolves.toMatchObject({ format: 'sev-snp' });
  });
});
