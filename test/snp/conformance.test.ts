/**
 * Every real report in test/fixtures/snp verifies at its suggested time with the claims its
 * meta.json gives. The data files drive the test: a new fixture folder is a new case.
 */
import { describe, expect, it } from 'vitest';
import type { SnpClaims } from '../../src/evidence/types.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { allFixtures, codeOf, errorOf } from './fixtures.js';

const fixtures = allFixtures();

describe('real SEV-SNP reports (conformance)', () => {
  it('has the fixtures the README lists', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(13);
  });

  for (const f of fixtures) {
    const debug = (BigInt(f.meta.fields.policy) & (1n << 19n)) !== 0n;
    describe(f.name, () => {
      it('verifies with the chain supplied, at suggested_verify_at, with the expected claims', async () => {
        const claims = (await verifyEvidence(
          { report: f.report, vek: f.vek, chain: [f.ask, f.ark] },
          { now: f.at, offline: true, policy: { snp: { allowDebug: debug } } },
        )) as SnpClaims;
        const m = f.meta.fields;
        expect(claims.format).toBe('sev-snp');
        expect(claims.simulated).toBe(false);
        expect(claims.version).toBe(f.meta.version);
        expect(claims.product).toBe(f.product);
        expect(claims.signer).toBe(f.meta.signer.toLowerCase());
        expect(claims.measurement).toBe(m.measurement);
        expect(claims.reportData).toBe(m.report_data);
        expect(claims.chipId).toBe(m.chip_id);
        expect(claims.hostData).toBe(m.host_data);
        expect(claims.idKeyDigest).toBe(m.id_key_digest);
        expect(claims.authorKeyDigest).toBe(m.author_key_digest);
        expect(claims.reportId).toBe(m.report_id);
        expect(claims.reportIdMa).toBe(m.report_id_ma);
        expect(claims.familyId).toBe(m.family_id);
        expect(claims.imageId).toBe(m.image_id);
        expect(claims.guestSvn).toBe(m.guest_svn);
        expect(claims.vmpl).toBe(m.vmpl);
        expect(claims.policy.raw).toBe(m.policy);
        expect(claims.policy.debug).toBe(debug);
        expect(claims.platformInfo.raw).toBe(m.platform_info);
        expect(claims.currentFirmware).toBe(m.current_fw);
        expect(claims.committedFirmware).toBe(m.committed_fw);
        const t = f.meta.reported_tcb_parts;
        expect(claims.reportedTcb).toMatchObject({
          bootloader: t.bl,
          tee: t.tee,
          snp: t.snp,
          microcode: t.ucode,
        });
        expect(claims.reportedTcb.fmc).toBe(t.fmc);
        // meta.json prints TCBs as u64 hex; claims keep the raw bytes in report order.
        const asU64 = (raw: string) => Buffer.from(raw, 'hex').reverse().toString('hex');
        expect(asU64(claims.reportedTcb.raw)).toBe(m.reported_tcb);
        expect(asU64(claims.currentTcb.raw)).toBe(m.current_tcb);
        expect(asU64(claims.committedTcb.raw)).toBe(m.committed_tcb);
        expect(asU64(claims.launchTcb.raw)).toBe(m.launch_tcb);
        if (f.meta.version >= 3)
          expect(claims.cpuid).toEqual({
            family: m.cpuid_fam_id,
            model: m.cpuid_mod_id,
            stepping: m.cpuid_step,
          });
        else expect(claims.cpuid).toBeUndefined();
        if (f.meta.version >= 5) {
          expect(claims.launchMitVector).toBe(m.launch_mit_vector);
          expect(claims.currentMitVector).toBe(m.current_mit_vector);
        }
      });

      it('verifies with the embedded chain of its product', async () => {
        const claims = await verifyEvidence(
          { report: f.report, vek: f.vek },
          { now: f.at, offline: true, policy: { snp: { allowDebug: debug } } },
        );
        expect((claims as SnpClaims).product).toBe(f.product);
      });

      it('fails the chain outside the VEK validity window', async () => {
        const [from, to] = f.meta.chain_valid_window.map((s) => new Date(s).getTime()) as [number, number];
        const input = { report: f.report, vek: f.vek };
        const opts = { offline: true, policy: { snp: { allowDebug: debug } } };
        expect(await codeOf(verifyEvidence(input, { ...opts, now: new Date(from - 86_400_000) }))).toBe(
          'ERR_EVIDENCE_CHAIN',
        );
        expect(await codeOf(verifyEvidence(input, { ...opts, now: new Date(to + 86_400_000) }))).toBe(
          'ERR_EVIDENCE_CHAIN',
        );
      });
    });
  }

  it('the DEBUG report is refused by default and accepted with allowDebug', async () => {
    const f = fixtures.find((x) => x.name === 'go-sev-guest__milan-v2')!;
    const err = await errorOf(verifyEvidence({ report: f.report, vek: f.vek }, { now: f.at, offline: true }));
    expect(err.code).toBe('ERR_EVIDENCE_POLICY');
    expect(err.details.field).toBe('snp.allowDebug');
    const ok = await verifyEvidence(
      { report: f.report, vek: f.vek },
      { now: f.at, offline: true, policy: { snp: { allowDebug: true } } },
    );
    expect((ok as SnpClaims).policy.debug).toBe(true);
  });

  it('expired VLEKs fail at the wall-clock time', async () => {
    const vleks = fixtures.filter((f) => f.meta.signer === 'VLEK');
    expect(vleks.length).toBeGreaterThanOrEqual(2);
    for (const f of vleks) {
      const err = await errorOf(verifyEvidence({ report: f.report, vek: f.vek }, { offline: true }));
      expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
      expect(err.message).toMatch(/expired/);
    }
  });

  it('Turin reports carry platform-info bit 6 as an unknown bit, not a rejection', async () => {
    const f = fixtures.find((x) => x.product === 'Turin')!;
    const claims = (await verifyEvidence(
      { report: f.report, vek: f.vek },
      { now: f.at, offline: true },
    )) as SnpClaims;
    expect(claims.platformInfo.unknownBits).toBe('0x40');
    expect(claims.reportedTcb.fmc).toBe(1);
  });
});
