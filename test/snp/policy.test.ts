/** One test per snp.* policy field (and the check callback): it passes when satisfied, refuses when not. */
import { describe, expect, it } from 'vitest';
import type { Policy } from '../../src/evidence/policy.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import type { EvidenceInput, SnpClaims, VerifyOptions } from '../../src/evidence/types.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { errorOf, loadFixture, type SnpFixture } from './fixtures.js';

const turin = loadFixture('ms-tav__turin-v5');
const milan = loadFixture('ms-tav__milan-v3');
const vlek = loadFixture('trustee__milan-v2-vlek-aws-old');

function run(f: SnpFixture, policy: Policy, extra: VerifyOptions = {}) {
  return verifyEvidence({ report: f.report, vek: f.vek }, { now: f.at, offline: true, policy, ...extra });
}

async function refusedBy(p: Promise<unknown>, field: string, code = 'ERR_EVIDENCE_POLICY') {
  const err = await errorOf(p);
  expect(err.code).toBe(code);
  expect(err.details.field).toBe(field);
}

const simOpts = { offline: true, trustAnchors: simulated.trustAnchors() };
const sim = (o: Parameters<typeof simulated.snp>[0]): Promise<EvidenceInput> =>
  simulated.snp(o).getEvidence(new Uint8Array(64));

describe('snp policy fields', () => {
  it('snp.measurements', async () => {
    await expect(
      run(turin, { snp: { measurements: [turin.meta.fields.measurement] } }),
    ).resolves.toBeTruthy();
    await refusedBy(run(turin, { snp: { measurements: ['00'.repeat(48)] } }), 'snp.measurements');
  });

  it('snp.allowDebug (default refuses DEBUG)', async () => {
    const ev = await sim({ policy: 0x30000n | (1n << 19n) });
    await refusedBy(verifyEvidence(ev, simOpts), 'snp.allowDebug');
    await refusedBy(
      verifyEvidence(ev, { ...simOpts, policy: { snp: { allowDebug: false } } }),
      'snp.allowDebug',
    );
    await expect(
      verifyEvidence(ev, { ...simOpts, policy: { snp: { allowDebug: true } } }),
    ).resolves.toBeTruthy();
  });

  it('snp.allowMigrationAgent (default refuses MIGRATE_MA)', async () => {
    const ev = await sim({ policy: 0x30000n | (1n << 18n) });
    await refusedBy(verifyEvidence(ev, simOpts), 'snp.allowMigrationAgent');
    const ok = (await verifyEvidence(ev, {
      ...simOpts,
      policy: { snp: { allowMigrationAgent: true } },
    })) as SnpClaims;
    expect(ok.policy.migrateMa).toBe(true);
  });

  it('snp.minTcb: each component, compared with REPORTED_TCB in the product layout', async () => {
    // Turin fixture: fmc 1, bootloader 1, tee 1, snp 4, microcode 81.
    await expect(
      run(turin, { snp: { minTcb: { fmc: 1, bootloader: 1, tee: 1, snp: 4, microcode: 81 } } }),
    ).resolves.toBeTruthy();
    for (const [component, value] of [
      ['fmc', 2],
      ['bootloader', 2],
      ['tee', 2],
      ['snp', 5],
      ['microcode', 82],
    ] as const) {
      const err = await errorOf(run(turin, { snp: { minTcb: { [component]: value } } }));
      expect(err.code).toBe('ERR_EVIDENCE_TCB');
      expect(err.details).toMatchObject({ field: 'snp.minTcb', component });
    }
    // Milan fixture: bootloader 4, tee 0, snp 24, microcode 219; Milan has no FMC to compare.
    await expect(run(milan, { snp: { minTcb: { snp: 24, microcode: 219, fmc: 9 } } })).resolves.toBeTruthy();
    await refusedBy(run(milan, { snp: { minTcb: { snp: 25 } } }), 'snp.minTcb', 'ERR_EVIDENCE_TCB');
  });

  it('snp.chipIds (Turin also by its 8-byte ID)', async () => {
    await expect(run(milan, { snp: { chipIds: [milan.meta.fields.chip_id] } })).resolves.toBeTruthy();
    await refusedBy(run(milan, { snp: { chipIds: ['ab'.repeat(64)] } }), 'snp.chipIds');
    await expect(run(turin, { snp: { chipIds: [turin.meta.vek_hwid!] } })).resolves.toBeTruthy();
    await expect(run(turin, { snp: { chipIds: [turin.meta.fields.chip_id] } })).resolves.toBeTruthy();
    await refusedBy(run(turin, { snp: { chipIds: ['00'.repeat(8)] } }), 'snp.chipIds');
    // An 8-byte ID is not a prefix match on Milan's 64-byte IDs.
    await refusedBy(
      run(milan, { snp: { chipIds: [milan.meta.fields.chip_id.slice(0, 16)] } }),
      'snp.chipIds',
    );
  });

  it('snp.vmpls', async () => {
    expect(vlek.meta.fields.vmpl).toBe(1);
    await expect(run(vlek, { snp: { vmpls: [1] } })).resolves.toBeTruthy();
    await refusedBy(run(vlek, { snp: { vmpls: [0] } }), 'snp.vmpls');
  });

  it('snp.hostData', async () => {
    await expect(run(turin, { snp: { hostData: [turin.meta.fields.host_data] } })).resolves.toBeTruthy();
    await refusedBy(run(turin, { snp: { hostData: ['00'.repeat(32)] } }), 'snp.hostData');
  });

  it('snp.idKeyDigests', async () => {
    await expect(
      run(turin, { snp: { idKeyDigests: [turin.meta.fields.id_key_digest] } }),
    ).resolves.toBeTruthy();
    await refusedBy(run(turin, { snp: { idKeyDigests: ['00'.repeat(48)] } }), 'snp.idKeyDigests');
  });

  it('snp.minGuestSvn', async () => {
    expect(turin.meta.fields.guest_svn).toBe(2);
    await expect(run(turin, { snp: { minGuestSvn: 2 } })).resolves.toBeTruthy();
    await refusedBy(run(turin, { snp: { minGuestSvn: 3 } }), 'snp.minGuestSvn');
  });

  it('snp.signers (default both)', async () => {
    await expect(run(vlek, {})).resolves.toBeTruthy();
    await expect(run(vlek, { snp: { signers: ['vlek'] } })).resolves.toBeTruthy();
    await refusedBy(run(vlek, { snp: { signers: ['vcek'] } }), 'snp.signers');
    await refusedBy(run(milan, { snp: { signers: ['vlek'] } }), 'snp.signers');
  });

  it('snp.requireCrl: a missing CRL is fatal only when required', async () => {
    await expect(run(milan, { snp: { requireCrl: false } })).resolves.toBeTruthy();
    const err = await errorOf(run(milan, { snp: { requireCrl: true } }));
    expect(err.code).toBe('ERR_COLLATERAL_UNAVAILABLE');
    expect(err.details.field).toBe('snp.requireCrl');
  });

  it('an invalid policy is ERR_POLICY_INVALID before anything is verified', async () => {
    const err = await errorOf(run(milan, { snp: { allowDebugg: true } } as unknown as Policy));
    expect(err.code).toBe('ERR_POLICY_INVALID');
  });

  it('check(): false or a throw refuses; true or undefined accepts; it sees the claims', async () => {
    const seen: SnpClaims[] = [];
    await expect(run(milan, {}, { check: (c) => void seen.push(c as SnpClaims) })).resolves.toBeTruthy();
    expect(seen[0]?.measurement).toBe(milan.meta.fields.measurement);
    expect((await errorOf(run(milan, {}, { check: () => false }))).code).toBe('ERR_EVIDENCE_POLICY');
    expect(
      (
        await errorOf(
          run(
            milan,
            {},
            {
              check: () => {
                throw new Error('no');
              },
            },
          ),
        )
      ).code,
    ).toBe('ERR_EVIDENCE_POLICY');
  });
});
