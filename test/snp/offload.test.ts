/**
 * The SEV-SNP report signature checked on the threadpool (`offload: true`, as the channel verifies):
 * the same verdicts as the synchronous path, on real reports and on simulated ones, and the
 * simulated platform's off-thread signing fails as a provider does.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bytesToHex } from '../../src/evidence/bytes.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { signSnpReportOffThread } from '../../src/evidence/providers/simulated-snp.js';
import { createVerifier } from '../../src/evidence/verifier.js';
import { codeOf, errorOf, flipped, loadFixture } from './fixtures.js';

const milan = loadFixture('ms-tav__milan-v3');
const turin = loadFixture('ms-tav__turin-v5');
const verifier = createVerifier({ offline: true });

describe('report signature off the event loop', () => {
  it('accepts real reports', async () => {
    for (const f of [milan, turin]) {
      const claims = await verifier.verify({ report: f.report, vek: f.vek }, { now: f.at, offload: true });
      expect(claims.format).toBe('sev-snp');
    }
  });

  it('refuses a flipped signed byte or a flipped byte of r or s with ERR_EVIDENCE_SIGNATURE', async () => {
    for (const offset of [0x04, 21, 0x50, 0x90, 100, 0x180, 0x1a0, 0x1f8]) {
      const report = flipped(milan.report, offset);
      expect(
        await codeOf(verifier.verify({ report, vek: milan.vek }, { now: milan.at, offload: true })),
      ).toBe('ERR_EVIDENCE_SIGNATURE');
    }
    for (const offset of [0x2a0, 0x2a0 + 47, 0x2e8, 0x2e8 + 47]) {
      const report = flipped(turin.report, offset);
      expect(
        await codeOf(verifier.verify({ report, vek: turin.vek }, { now: turin.at, offload: true })),
      ).toBe('ERR_EVIDENCE_SIGNATURE');
    }
  });

  it('refuses the same report under a VEK of another chip', async () => {
    const oak = loadFixture('oak__milan-v3-oc-release');
    const code = await codeOf(
      verifier.verify({ report: milan.report, vek: oak.vek }, { now: milan.at, offload: true }),
    );
    expect(['ERR_EVIDENCE_SIGNATURE', 'ERR_EVIDENCE_CHAIN']).toContain(code);
  });

  it('the simulated platform signs on the threadpool only when asked to overlap', async () => {
    const p = simulated.snp();
    const sim = createVerifier({ trustAnchors: simulated.trustAnchors(), offline: true });
    for (const overlap of [true, false, undefined]) {
      // Signed on the event loop, the report is ready within the microtasks of this turn; a
      // threadpool job's answer can only be taken by a later turn of the event loop.
      let settled = false;
      const rd = new Uint8Array(64).fill(overlap === true ? 1 : 2);
      const pending = p.getEvidence(rd, overlap === undefined ? undefined : { overlap });
      void pending.then(() => {
        settled = true;
      });
      for (let i = 0; i < 8; i++) await new Promise<void>((r) => queueMicrotask(r));
      expect(settled).toBe(overlap !== true);
      expect((await sim.verify(await pending)).reportData).toBe(bytesToHex(rd));
    }
  });

  it('verifies simulated reports, signed on or off the event loop', async () => {
    const sim = createVerifier({ trustAnchors: simulated.trustAnchors(), offline: true });
    const evidence = await simulated.snp().getEvidence(new Uint8Array(64).fill(7), { overlap: true });
    for (const offload of [true, false])
      expect((await sim.verify(evidence, { offload })).reportData).toBe('07'.repeat(64));
    const report = flipped(evidence.report, 0x60);
    expect(await codeOf(sim.verify({ ...evidence, report }, { offload: true }))).toBe(
      'ERR_EVIDENCE_SIGNATURE',
    );
  });

  it('offload must be a boolean', async () => {
    const err = await errorOf(
      verifier.verify(
        { report: milan.report, vek: milan.vek },
        {
          now: milan.at,
          offload: 'yes' as unknown as boolean,
        },
      ),
    );
    expect(err.code).toBe('ERR_INVALID_ARGUMENT');
    expect(err.message).toMatch(/offload/);
  });
});

describe('simulated platform signing off the event loop', () => {
  it('fails with ERR_PROVIDER_FAILED, not an uncaught error, when the key cannot sign', async () => {
    const report = new Uint8Array(0x4a0);
    const err = await errorOf(signSnpReportOffThread(report, generateKeyPairSync('x25519').privateKey));
    expect(err.code).toBe('ERR_PROVIDER_FAILED');
    expect(report.subarray(0x2a0).every((b) => b === 0)).toBe(true);
  });
});
