/**
 * verifyAzure() verifies through a Verifier (options.verifier, or the default one), as
 * verifyEvidence() does: the Verifier's runtime-claims cache is used, and the claims are those of
 * verifier.verify() on the same evidence.
 */
import { describe, expect, it } from 'vitest';
import type { AzureClaims } from '../../src/evidence/types.js';
import { createVerifier } from '../../src/evidence/verifier.js';
import { verifyAzure, verifyEvidence } from '../../src/evidence/verify.js';
import { codeOf, inputOf, loadFixture, optionsOf } from './fixtures.js';

describe('verifyAzure() through a Verifier', () => {
  for (const id of ['trustee__snp-hcl-report', 'trustee__tdx-hcl-report']) {
    it(`${id}: uses the Verifier's runtime-claims cache, with the claims verifier.verify() gives`, async () => {
      const fx = loadFixture(id);
      const { offline, ...call } = optionsOf(fx);
      const verifier = createVerifier({ offline: offline === true });
      const stat = () => verifier.stats()[`${fx.meta.format}.runtimeClaims`];
      const first = await verifyAzure(inputOf(fx), { ...call, verifier });
      expect(stat()).toMatchObject({ size: 1, hits: 0, misses: 1 });
      const second = await verifyAzure(inputOf(fx), { ...call, verifier });
      expect(stat()).toMatchObject({ size: 1, hits: 1, misses: 1 });
      const direct = (await verifier.verify(inputOf(fx), call)) as AzureClaims;
      expect(stat()).toMatchObject({ size: 1, hits: 2, misses: 1 });
      expect(second).toEqual(first);
      expect(direct).toEqual(first);
      // The kept (frozen) runtime claims, not a parse of their own.
      expect(second.runtimeClaims).toBe(first.runtimeClaims);
      expect(direct.runtimeClaims).toBe(first.runtimeClaims);
    });
  }

  it('without options.verifier, the default Verifier keeps the runtime claims, as verifyEvidence() does', async () => {
    const fx = loadFixture('trustee__snp-evidence-v0');
    const first = await verifyAzure(inputOf(fx), optionsOf(fx));
    const second = await verifyAzure(inputOf(fx), optionsOf(fx));
    const viaEvidence = (await verifyEvidence(inputOf(fx), optionsOf(fx))) as AzureClaims;
    expect(Object.isFrozen(first.runtimeClaims)).toBe(true);
    expect(second.runtimeClaims).toBe(first.runtimeClaims);
    expect(viaEvidence.runtimeClaims).toBe(first.runtimeClaims);
    expect(viaEvidence).toEqual(first);
  });

  it('expectedExtraData is checked before the caller’s check(), which sees only matching claims', async () => {
    const fx = loadFixture('trustee__snp-evidence-v2');
    const extraData = (fx.meta.expected_claims.tpm as { extraData: string }).extraData;
    const seen: string[] = [];
    const check = (c: unknown) => {
      seen.push((c as AzureClaims).tpm.extraData);
      return true;
    };
    const right = new Uint8Array(Buffer.from(extraData, 'hex'));
    await verifyAzure(inputOf(fx), { ...optionsOf(fx), expectedExtraData: right, check });
    const wrong = right.slice();
    wrong[0]! ^= 1;
    expect(
      await codeOf(verifyAzure(inputOf(fx), { ...optionsOf(fx), expectedExtraData: wrong, check })),
    ).toBe('ERR_BINDING_MISMATCH');
    expect(seen).toEqual([extraData]);
    // The caller's check() is applied (it was not, before verifyAzure() went through a Verifier).
    expect(await codeOf(verifyAzure(inputOf(fx), { ...optionsOf(fx), check: () => false }))).toBe(
      'ERR_EVIDENCE_POLICY',
    );
  });

  it('refuses evidence that is not an HCL report, before any verification', async () => {
    const fx = loadFixture('trustee__snp-hcl-report');
    const input = inputOf(fx);
    const snp = input.report.slice(0x20, 0x20 + 1184);
    expect(await codeOf(verifyAzure({ ...input, report: snp }, optionsOf(fx)))).toBe(
      'ERR_EVIDENCE_MALFORMED',
    );
  });
});
