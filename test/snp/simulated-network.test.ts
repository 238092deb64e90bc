import { afterEach, describe, expect, it, vi } from 'vitest';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { verifyEvidence } from '../../src/evidence/verify.js';

describe('simulated SNP evidence and AMD KDS', () => {
  afterEach(() => vi.restoreAllMocks());

  it('never asks the real AMD KDS for a CRL of a simulated root', async () => {
    const spy = vi.spyOn(globalThis, 'fetch').mockRejectedValue(new Error('network must not be used'));
    const evidence = await simulated.snp().getEvidence(new Uint8Array(64));
    const claims = await verifyEvidence(evidence, { trustAnchors: simulated.trustAnchors() });
    expect(claims.simulated).toBe(true);
    expect(spy).not.toHaveBeenCalled();
  });

  it('still requires a CRL from somewhere when the policy says requireCrl', async () => {
    vi.spyOn(globalThis, 'fetch').mockRejectedValue(new Error('network must not be used'));
    const evidence = await simulated.snp().getEvidence(new Uint8Array(64));
    await expect(
      verifyEvidence(evidence, {
        trustAnchors: simulated.trustAnchors(),
        policy: { snp: { requireCrl: true } },
      }),
    ).rejects.toMatchObject({ code: 'ERR_COLLATERAL_UNAVAILABLE' });
  });
});
