/**
 * simulated.azure(): Azure-shaped evidence from TypeScript alone, verified by verifyEvidence()
 * (format detection by the HCL magic), and the azure policy section applied to it.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { azureQuoteNonce, checkAzureBinding } from '../../src/evidence/azure/binding.js';
import type { Policy } from '../../src/evidence/policy.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import type { Claims } from '../../src/evidence/types.js';
import { detectFormat, verifyEvidence } from '../../src/evidence/verify.js';
import { codeOf } from './fixtures.js';

const NOW = new Date();
const trustAnchors = simulated.trustAnchors();
const snp = simulated.azure({ tee: 'snp' });
const tdx = simulated.azure({ tee: 'tdx', tdx: { now: NOW } });
const pcr7 = simulated.defaults.azurePcrs['7']!;

async function verified(p = snp, policy: Policy = {}, binder = randomBytes(64)) {
  const input = await p.getEvidence(new Uint8Array(binder));
  const claims = await verifyEvidence(input, { trustAnchors, now: NOW, policy, offline: true });
  return { input, claims, binder: new Uint8Array(binder) };
}

function azure(claims: Claims) {
  if (claims.format !== 'azure-sev-snp' && claims.format !== 'azure-tdx') throw new Error('not Azure');
  return claims;
}

describe('simulated.azure()', () => {
  it.each([
    ['snp', snp, 'azure-sev-snp'],
    ['tdx', tdx, 'azure-tdx'],
  ] as const)('%s: verifyEvidence() detects and verifies it', async (_tee, provider, format) => {
    const { input, claims, binder } = await verified(provider);
    expect(detectFormat(input.report)).toBe(format);
    const c = azure(claims);
    expect(c.format).toBe(format);
    expect(c.simulated).toBe(true);
    expect(c.userData).toBe(Buffer.from(binder).toString('hex'));
    expect(c.tpm.extraData).toBe(Buffer.from(azureQuoteNonce(binder)).toString('hex'));
    expect(c.tpm.pcrs.sha256?.['7']).toBe(pcr7);
    expect(c.tpm.akSha256).toBe(
      createHash('sha256')
        .update(Buffer.from(provider.akPublic.export({ format: 'jwk' }).n!, 'base64url'))
        .digest('hex'),
    );
    // The hardware report measures the paravisor: no PCR pin, no workload pin.
    expect(c.workloadPinned).toBe(false);
    expect(checkAzureBinding(c, binder)).toBe('report');
  });

  it('without simulated roots it is refused', async () => {
    const input = await snp.getEvidence(new Uint8Array(64));
    expect(await codeOf(verifyEvidence(input, { now: NOW, offline: true }))).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('azure.pcrs pins the workload; a PCR value not listed, or a PCR not quoted, is refused', async () => {
    const pinned = await verified(snp, { azure: { pcrs: { sha256: { '7': [pcr7] } } } });
    expect(pinned.claims.workloadPinned).toBe(true);
    const input = await snp.getEvidence(new Uint8Array(64));
    const refusal = async (policy: Policy) => {
      try {
        await verifyEvidence(input, { trustAnchors, now: NOW, policy, offline: true });
        return undefined;
      } catch (err) {
        return err as { code: string; details: Record<string, unknown> };
      }
    };
    const wrong = await refusal({ azure: { pcrs: { sha256: { '7': ['00'.repeat(32)] } } } });
    expect(wrong?.code).toBe('ERR_EVIDENCE_POLICY');
    expect(wrong?.details.field).toBe('azure.pcrs.sha256.7');
    const unquoted = await refusal({ azure: { pcrs: { sha1: { '0': ['00'.repeat(20)] } } } });
    expect(unquoted?.code).toBe('ERR_EVIDENCE_POLICY');
    expect(unquoted?.details.field).toBe('azure.pcrs.sha1.0');
  });

  it('custom PCR values are quoted', async () => {
    const value = 'ab'.repeat(32);
    const p = simulated.azure({ pcrs: { '23': value } });
    const { claims } = await verified(p, { azure: { pcrs: { sha256: { '23': [value] } } } });
    expect(azure(claims).tpm.pcrs.sha256?.['23']).toBe(value);
  });

  it('a policy naming other formats only refuses Azure evidence (field "format")', async () => {
    const input = await snp.getEvidence(new Uint8Array(64));
    for (const policy of [{ snp: {} }, { tdx: {} }, { azure: { tdx: {} } }] as Policy[]) {
      try {
        await verifyEvidence(input, { trustAnchors, now: NOW, policy, offline: true });
        expect.unreachable();
      } catch (err) {
        expect((err as { code: string }).code).toBe('ERR_EVIDENCE_POLICY');
        expect((err as { details: { field: string } }).details.field).toBe('format');
      }
    }
  });

  it('azure.snp applies to the SNP report inside (the paravisor measurement)', async () => {
    const input = await snp.getEvidence(new Uint8Array(64));
    const ok = { azure: { snp: { measurements: [simulated.defaults.snpMeasurement] } } };
    await verifyEvidence(input, { trustAnchors, now: NOW, policy: ok, offline: true });
    const other = { azure: { snp: { measurements: ['11'.repeat(48)] } } };
    expect(
      await codeOf(verifyEvidence(input, { trustAnchors, now: NOW, policy: other, offline: true })),
    ).toBe('ERR_EVIDENCE_POLICY');
  });

  it('reportBinding false: a boot-time report, only the quote is bound', async () => {
    const { claims, binder } = await verified(simulated.azure({ reportBinding: false }));
    const c = azure(claims);
    expect(c.userData).toBe('0'.repeat(128));
    expect(checkAzureBinding(c, binder)).toBe('tpm-quote');
    expect(() => checkAzureBinding(c, binder, { requireReportBinding: true })).toThrow(
      expect.objectContaining({ code: 'ERR_BINDING_MISMATCH' }),
    );
  });

  it('expectedAk: the AK (its private or public KeyObject) is accepted, another is ERR_EVIDENCE_CHAIN', async () => {
    const input = await snp.getEvidence(new Uint8Array(64));
    const opts = { trustAnchors, now: NOW, offline: true };
    await verifyEvidence(input, { ...opts, expectedAk: snp.akPublic });
    await verifyEvidence(input, { ...opts, expectedAk: simulated.azure().akPublic });
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(await codeOf(verifyEvidence(input, { ...opts, expectedAk: other.privateKey }))).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
    expect(await codeOf(verifyEvidence(input, { ...opts, expectedAk: other.publicKey }))).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
    const mine = simulated.azure({ ak: other.privateKey });
    await verifyEvidence(await mine.getEvidence(new Uint8Array(64)), {
      ...opts,
      expectedAk: other.privateKey,
    });
  });

  it('Azure evidence without its TPM quote is ERR_EVIDENCE_MALFORMED', async () => {
    const { tpm: _tpm, ...input } = await snp.getEvidence(new Uint8Array(64));
    expect(await codeOf(verifyEvidence(input, { trustAnchors, now: NOW, offline: true }))).toBe(
      'ERR_EVIDENCE_MALFORMED',
    );
  });

  it('bad options are ERR_INVALID_ARGUMENT', () => {
    expect(() => simulated.azure({ tee: 'sgx' as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
    expect(() => simulated.azure({ pcrs: { '24': '00'.repeat(32) } })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
    expect(() => simulated.azure({ pcrs: { '1': '00' } })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
  });
});
