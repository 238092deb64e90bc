/**
 * The one entry point for evidence of any format: detect, then run that format's pipeline
 * (parse → verify → appraise → claims), then the caller's own check.
 */
import { AttestationError, asAttestationError, atBoundary, optionsArg, signalArg } from '../errors.js';
import { checkFormat } from './appraise.js';
import { attachBoot } from './boot.js';
import { verifyGceVtpm } from './gce/vtpm.js';
import { type Policy, parsePolicy } from './policy.js';
import { reportDataOf as snpReportDataOf } from './snp/report.js';
import { verifySnp } from './snp/verify.js';
import { reportDataOf as tdxReportDataOf } from './tdx/quote.js';
import { verifyTdx } from './tdx/verify.js';
import type { Claims, EvidenceFormat, EvidenceInput, VerifyOptions } from './types.js';

export const SNP_REPORT_SIZE = 0x4a0;

/**
 * Tells an SNP report from a TDX quote by their first bytes: a quote starts with a u16 version,
 * u16 attestation key type 2 and u32 TEE type; an SNP report with a u32 version (< 2^16).
 */
export function detectFormat(report: Uint8Array): EvidenceFormat | undefined {
  if (!(report instanceof Uint8Array))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'detectFormat: report must be a Uint8Array');
  if (report.length >= 8 && report[2] === 2 && report[3] === 0) {
    const tee = report[4]! | (report[5]! << 8) | (report[6]! << 16) | (report[7]! << 24);
    if (tee === 0x81) return 'tdx';
  }
  if (report.length === SNP_REPORT_SIZE) return 'sev-snp';
  return undefined;
}

/**
 * REPORT_DATA as the raw evidence claims it, located by the format's own module, before any
 * signature is checked. Undefined when the format is unknown or the bytes too short to say.
 */
export function reportDataOf(report: Uint8Array): Uint8Array | undefined {
  const format = detectFormat(report);
  if (format === 'sev-snp') return snpReportDataOf(report);
  if (format === 'tdx') return tdxReportDataOf(report);
  return undefined;
}

function isBytes(v: unknown): boolean {
  return v instanceof Uint8Array;
}

function checkInput(input: EvidenceInput): void {
  if (typeof input !== 'object' || input === null || !isBytes(input.report))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'input.report must be a Uint8Array');
  if (input.vek !== undefined && !isBytes(input.vek))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'input.vek must be a Uint8Array (DER)');
  const chain: unknown = input.chain;
  if (
    chain !== undefined &&
    typeof chain !== 'string' &&
    !isBytes(chain) &&
    !(Array.isArray(chain) && chain.every((c) => typeof c === 'string' || isBytes(c)))
  )
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      'input.chain must be a PEM string, a Uint8Array or an array of them',
    );
  const collateral: unknown = input.collateral;
  if (
    collateral !== undefined &&
    typeof collateral !== 'string' &&
    (typeof collateral !== 'object' || collateral === null || Array.isArray(collateral))
  )
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'input.collateral must be an object or its JSON text');
  if (input.eventLog !== undefined && !isBytes(input.eventLog?.log))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'input.eventLog.log must be a Uint8Array');
}

/**
 * Measured boot and Google's vTPM beside a verified raw report (boot.ts, gce/vtpm.ts). With a
 * vTPM, the policy's boot section applies to the vTPM's log (what measures the guest's OS there)
 * and a CCEL is still checked against the RTMRs; without one, to the CCEL. The gce section needs
 * the vTPM's AK certificate: the raw report carries no instance identity.
 */
function attachMeasuredBoot(
  claims: Claims,
  input: EvidenceInput,
  policy: Policy,
  options: { now: Date; vtpmRoots?: VerifyOptions['vtpmRoots'] },
): void {
  const rawBoot = input.vtpm === undefined ? policy.boot : undefined;
  attachBoot(claims, input.eventLog, rawBoot, () =>
    claims.format === 'tdx' ? { rtmrs: [claims.rtmr0, claims.rtmr1, claims.rtmr2, claims.rtmr3] } : undefined,
  );
  if (input.vtpm === undefined) {
    if (policy.gce !== undefined)
      throw new AttestationError(
        'ERR_EVIDENCE_POLICY',
        'policy gce: the policy names Google Cloud instances, but the evidence has no vTPM AK certificate',
        { details: { field: 'gce' } },
      );
    return;
  }
  const roots = options.vtpmRoots;
  claims.vtpm = verifyGceVtpm(input.vtpm, {
    now: options.now,
    policy: { ...(policy.boot ? { boot: policy.boot } : {}), ...(policy.gce ? { gce: policy.gce } : {}) },
    ...(roots ? { roots } : {}),
  });
}

function checkOptions(options: VerifyOptions): void {
  if (options.now !== undefined && !(options.now instanceof Date && Number.isFinite(options.now.getTime())))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'options.now must be a valid Date');
  signalArg(options.signal, 'verifyEvidence');
  if (options.check !== undefined && typeof options.check !== 'function')
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'options.check must be a function');
  if (options.offline !== undefined && typeof options.offline !== 'boolean')
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'options.offline must be a boolean');
  const anchors: unknown = options.trustAnchors;
  if (anchors !== undefined) {
    if (typeof anchors !== 'object' || anchors === null)
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'options.trustAnchors must be an object');
    for (const key of ['amdArks', 'intelRoots'] as const) {
      const list: unknown = (anchors as Record<string, unknown>)[key];
      if (list !== undefined && !(Array.isArray(list) && list.every(isBytes)))
        throw new AttestationError(
          'ERR_INVALID_ARGUMENT',
          `options.trustAnchors.${key} must be an array of Uint8Array`,
        );
    }
  }
  for (const key of ['kds', 'pcs'] as const) {
    const client: unknown = options[key];
    if (client !== undefined && (typeof client !== 'object' || client === null))
      throw new AttestationError('ERR_INVALID_ARGUMENT', `options.${key} must be an object`);
  }
}

/**
 * Only AttestationError leaves: an abort of `signal` is ERR_ABORTED whatever threw it, and an
 * error that is neither (a bug) is ERR_INTERNAL with its cause rather than a verdict on the evidence.
 */
export async function verifyEvidence(input: EvidenceInput, options: VerifyOptions = {}): Promise<Claims> {
  const opts = optionsArg(options, 'verifyEvidence');
  try {
    return await verifyChecked(input, opts);
  } catch (err) {
    throw atBoundary(err, opts.signal instanceof AbortSignal ? opts.signal : undefined, 'verifyEvidence');
  }
}

async function verifyChecked(input: EvidenceInput, options: VerifyOptions): Promise<Claims> {
  checkInput(input);
  checkOptions(options);
  const policy = parsePolicy(options.policy);
  if (options.signal?.aborted)
    throw new AttestationError('ERR_ABORTED', 'verification aborted', { cause: options.signal.reason });
  const format = detectFormat(input.report);
  // Before any signature or collateral work: a format the policy does not name is refused as
  // such, and costs no fetch. appraiseClaims() checks it again on the verified claims.
  if (format !== undefined) checkFormat(format, policy);
  const resolved = { ...options, policy, now: options.now ?? new Date() };
  let claims: Claims;
  if (format === 'sev-snp') claims = await verifySnp(input, resolved);
  else if (format === 'tdx') claims = await verifyTdx(input, resolved);
  else
    throw new AttestationError(
      'ERR_EVIDENCE_MALFORMED',
      `evidence is neither an SNP report (${SNP_REPORT_SIZE} bytes) nor a TDX quote (${input.report.length} bytes)`,
    );
  attachMeasuredBoot(claims, input, policy, resolved);
  if (options.check) {
    let verdict: boolean | undefined;
    try {
      verdict = await options.check(claims);
    } catch (err) {
      throw asAttestationError(err, 'ERR_EVIDENCE_POLICY', 'check() refused the evidence');
    }
    if (verdict === false) throw new AttestationError('ERR_EVIDENCE_POLICY', 'check() refused the evidence');
  }
  return claims;
}
