/** The policy's azure section: its parsing, and the format check made before any collateral work. */
import { describe, expect, it } from 'vitest';
import type { AttestationError } from '../../src/errors.js';
import { workloadPins } from '../../src/evidence/appraise.js';
import { parsePolicy } from '../../src/evidence/policy.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { verifyAzure, verifyEvidence } from '../../src/evidence/verify.js';

function invalidField(policy: unknown): string | undefined {
  try {
    parsePolicy(policy);
    return undefined;
  } catch (err) {
    expect((err as AttestationError).code).toBe('ERR_POLICY_INVALID');
    return (err as AttestationError).details.field as string;
  }
}

const h32 = 'AB'.repeat(32);

describe('policy: azure section', () => {
  it('parses snp, tdx, pcrs and requireReportBinding; hex is lower-cased', () => {
    const p = parsePolicy({
      azure: {
        snp: { measurements: ['00'.repeat(48)] },
        tdx: { acceptTcbStatus: ['UpToDate'] },
        pcrs: { sha256: { '7': [h32] }, sha1: { '0': ['00'.repeat(20)] } },
        requireReportBinding: true,
      },
    });
    expect(p.azure?.pcrs?.sha256?.['7']).toEqual([h32.toLowerCase()]);
    expect(p.azure?.requireReportBinding).toBe(true);
    expect(Object.isFrozen(p.azure?.pcrs?.sha256)).toBe(true);
  });

  it.each([
    [{ azure: [] }, 'azure'],
    [{ azure: { pcr: {} } }, 'azure.pcr'],
    [{ azure: { snp: { measurement: [] } } }, 'azure.snp.measurement'],
    [{ azure: { tdx: { mrtd: [] } } }, 'azure.tdx.mrtd'],
    [{ azure: { pcrs: {} } }, 'azure.pcrs'],
    [{ azure: { pcrs: { sha256: {} } } }, 'azure.pcrs.sha256'],
    [{ azure: { pcrs: { sm3: { '0': [h32] } } } }, 'azure.pcrs.sm3'],
    [{ azure: { pcrs: { sha256: { '24': [h32] } } } }, 'azure.pcrs.sha256.24'],
    [{ azure: { pcrs: { sha256: { '07': [h32] } } } }, 'azure.pcrs.sha256.07'],
    [{ azure: { pcrs: { sha256: { '7': ['00'.repeat(48)] } } } }, 'azure.pcrs.sha256.7[0]'],
    [{ azure: { pcrs: { sha256: { '7': h32 } } } }, 'azure.pcrs.sha256.7'],
    [{ azure: { requireReportBinding: 'yes' } }, 'azure.requireReportBinding'],
    [{ azure: { pcrs: { ['__proto__']: { '0': [h32] } } } }, 'azure.pcrs.__proto__'],
  ])('refuses %j (field %s)', (policy, field) => {
    expect(invalidField(JSON.parse(JSON.stringify(policy)))).toBe(field);
  });

  it('workloadPins: only azure.pcrs pins Azure evidence', () => {
    expect(
      workloadPins('azure-sev-snp', parsePolicy({ azure: { snp: { measurements: ['00'.repeat(48)] } } })),
    ).toEqual([]);
    expect(workloadPins('azure-tdx', parsePolicy({ azure: { pcrs: { sha256: { '7': [h32] } } } }))).toEqual([
      'azure.pcrs',
    ]);
  });

  it('a format the policy does not name is refused before any collateral is looked for', async () => {
    const {
      vek: _vek,
      chain: _chain,
      ...input
    } = await simulated.azure({ tee: 'snp' }).getEvidence(new Uint8Array(64));
    const opts = { trustAnchors: simulated.trustAnchors(), offline: true };
    const refused = await verifyEvidence(input, { ...opts, policy: { azure: { tdx: {} } } }).catch((e) => e);
    expect(refused.code).toBe('ERR_EVIDENCE_POLICY');
    expect(refused.details.field).toBe('format');
    // verifyAzure() checks it on its own too (it is public).
    const direct = await verifyAzure(
      { ...input, tpm: input.tpm! },
      {
        ...opts,
        now: new Date(),
        policy: { azure: { tdx: {} } },
      },
    ).catch((e) => e);
    expect(direct.details.field).toBe('format');
    // The same evidence under a policy that names it needs its VCEK, which offline it cannot fetch.
    const missing = await verifyEvidence(input, { ...opts, policy: { azure: {} } }).catch((e) => e);
    expect(missing.code).toBe('ERR_COLLATERAL_UNAVAILABLE');
  });
});
