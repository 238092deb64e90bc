/**
 * Appraisal: what a verified report says, held against the snp.* policy. Runs only after every
 * signature and chain check passed, on the claims the caller will see. Defaults are strict:
 * debug and migration agents are refused unless the policy allows them.
 *
 * Failures are ERR_EVIDENCE_POLICY (ERR_EVIDENCE_TCB for snp.minTcb) with details.field set to
 * the policy field that refused the report.
 */
import { AttestationError } from '../../errors.js';
import type { SnpPolicy } from '../policy.js';
import type { RevocationStatus, SnpClaims } from '../types.js';
import type { SnpReport } from './report.js';
import type { SnpProduct } from './roots.js';
import { firstBelow } from './tcb.js';

/** The claims fields a report states by itself: what the parser read, nothing verified. */
export type SnpReportFields = Omit<SnpClaims, 'format' | 'simulated' | 'revocation' | 'workloadPinned'>;

/**
 * The claims of a report, as the parser read it (`snpReportFields`), and what verification
 * concluded: the accepting root (simulated or not) and the revocation check. tdx/appraise.ts builds
 * TDX claims the same way.
 */
export function snpClaims(
  report: SnpReport,
  product: SnpProduct,
  simulated: boolean,
  revocation: RevocationStatus,
): SnpClaims {
  return {
    format: 'sev-snp',
    simulated,
    revocation,
    // Set by appraiseClaims(), from the policy the claims passed.
    workloadPinned: false,
    ...snpReportFields(report, product),
  };
}

/** Every claims field the report itself holds (the CLI shows these for a report that did not verify). */
export function snpReportFields(report: SnpReport, product: SnpProduct): SnpReportFields {
  const claims: SnpReportFields = {
    version: report.version,
    product,
    signer: report.signerInfo.signingKey,
    guestSvn: report.guestSvn,
    policy: report.policy,
    vmpl: report.vmpl,
    reportData: report.reportData,
    measurement: report.measurement,
    hostData: report.hostData,
    idKeyDigest: report.idKeyDigest,
    authorKeyDigest: report.authorKeyDigest,
    familyId: report.familyId,
    imageId: report.imageId,
    reportId: report.reportId,
    reportIdMa: report.reportIdMa,
    chipId: report.chipId,
    currentTcb: report.currentTcb,
    reportedTcb: report.reportedTcb,
    committedTcb: report.committedTcb,
    launchTcb: report.launchTcb,
    platformInfo: report.platformInfo,
    signerInfo: {
      authorKeyEn: report.signerInfo.authorKeyEn,
      maskChipKey: report.signerInfo.maskChipKey,
      signingKey: report.signerInfo.signingKey,
    },
    currentFirmware: report.currentFirmware,
    committedFirmware: report.committedFirmware,
  };
  if (report.cpuid) claims.cpuid = report.cpuid;
  if (report.launchMitVector !== undefined) claims.launchMitVector = report.launchMitVector;
  if (report.currentMitVector !== undefined) claims.currentMitVector = report.currentMitVector;
  return claims;
}

function refuse(field: string, message: string, extra: Record<string, unknown> = {}): AttestationError {
  return new AttestationError('ERR_EVIDENCE_POLICY', `policy ${field}: ${message}`, {
    details: { field, ...extra },
  });
}

function chipIdAllowed(chipId: string, allowed: string[], product: SnpProduct): boolean {
  return allowed.some(
    (a) =>
      a === chipId ||
      // Turin identifies chips by 8 bytes; the rest of CHIP_ID is zero.
      (product === 'Turin' && a.length === 16 && chipId === a + '0'.repeat(112)),
  );
}

/** Applies every snp.* policy field. `policy` is the parsed (lower-cased) policy. */
export function appraiseSnp(claims: SnpClaims, policy: SnpPolicy = {}): void {
  const signers = policy.signers ?? ['vcek', 'vlek'];
  if (!signers.includes(claims.signer))
    throw refuse('snp.signers', `signed by a ${claims.signer.toUpperCase()}, allowed: ${signers.join(', ')}`);
  if (claims.policy.debug && policy.allowDebug !== true)
    throw refuse('snp.allowDebug', 'the guest policy allows debugging (the host can read guest memory)');
  if (claims.policy.migrateMa && policy.allowMigrationAgent !== true)
    throw refuse('snp.allowMigrationAgent', 'the guest policy allows a migration agent');
  if (policy.measurements && !policy.measurements.includes(claims.measurement))
    throw refuse('snp.measurements', `measurement ${claims.measurement} is not allowed`);
  if (policy.hostData && !policy.hostData.includes(claims.hostData))
    throw refuse('snp.hostData', `HOST_DATA ${claims.hostData} is not allowed`);
  if (policy.idKeyDigests && !policy.idKeyDigests.includes(claims.idKeyDigest))
    throw refuse('snp.idKeyDigests', `ID key digest ${claims.idKeyDigest} is not allowed`);
  if (policy.chipIds && !chipIdAllowed(claims.chipId, policy.chipIds, claims.product))
    throw refuse('snp.chipIds', `CHIP_ID ${claims.chipId} is not allowed`);
  if (policy.vmpls && !policy.vmpls.includes(claims.vmpl))
    throw refuse('snp.vmpls', `VMPL ${claims.vmpl} is not allowed`);
  if (policy.minGuestSvn !== undefined && claims.guestSvn < policy.minGuestSvn)
    throw refuse('snp.minGuestSvn', `guest SVN ${claims.guestSvn} is below ${policy.minGuestSvn}`);
  if (policy.minTcb) {
    // fmc is compared only on products that have it (Turin); Milan and Genoa have no FMC SPL.
    const low = firstBelow(claims.reportedTcb, policy.minTcb, claims.product);
    if (low)
      throw new AttestationError(
        'ERR_EVIDENCE_TCB',
        `REPORTED_TCB ${low} SPL ${claims.reportedTcb[low]} is below the policy minimum ${policy.minTcb[low]}`,
        { details: { field: 'snp.minTcb', component: low } },
      );
  }
}
