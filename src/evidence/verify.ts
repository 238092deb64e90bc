/**
 * The one entry point for evidence of any format: detect, then run that format's pipeline
 * (parse → verify → appraise → claims), then the caller's own check.
 */
import { KeyObject } from 'node:crypto';
import { AttestationError, asAttestationError, atBoundary, optionsArg, signalArg } from '../errors.js';
import { checkFormat } from './appraise.js';
import { hclFormatOf } from './azure/hcl.js';
import {
  type AzureClaims,
  type AzureEvidenceInput,
  type AzureVerifyOptions,
  verifyAzure as verifyAzureUnchecked,
} from './azure/verify.js';
import { parsePolicy } from './policy.js';
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
  // Azure: an HCL report ("HCLA" magic), whose runtime-data header names the hardware.
  const azure = hclFormatOf(report);
  if (azure !== undefined) return azure;
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
  const tpm: unknown = input.tpm;
  if (tpm !== undefined) {
    const t = tpm as Record<string, unknown>;
    if (typeof tpm !== 'object' || tpm === null || !isBytes(t.quote) || !isBytes(t.signature))
      throw new AttestationError(
        'ERR_INVALID_ARGUMENT',
        'input.tpm must be { quote: Uint8Array, signature: Uint8Array, pcrs: object }',
      );
    if (typeof t.pcrs !== 'object' || t.pcrs === null || Array.isArray(t.pcrs))
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'input.tpm.pcrs must be an object of PCR banks');
  }
  if (input.tdQuote !== undefined && !isBytes(input.tdQuote))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'input.tdQuote must be a Uint8Array');
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
  if (
    options.expectedAk !== undefined &&
    !(options.expectedAk instanceof KeyObject && options.expectedAk.type !== 'secret')
  )
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      'options.expectedAk must be a public or private KeyObject',
    );
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
  else if (format === 'azure-sev-snp' || format === 'azure-tdx')
    claims = await verifyAzureInput(input, resolved);
  else
    throw new AttestationError(
      'ERR_EVIDENCE_MALFORMED',
      `evidence is not an SNP report (${SNP_REPORT_SIZE} bytes), a TDX quote or an Azure HCL report (${input.report.length} bytes)`,
    );
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

/**
 * Azure evidence (an HCL report with the vTPM's quote): its own pipeline, azure/verify.ts. Kept
 * apart so the format table can take it over as one entry.
 */
function verifyAzureInput(
  input: EvidenceInput,
  options: VerifyOptions & { now: Date; policy: ReturnType<typeof parsePolicy> },
): Promise<Claims> {
  if (typeof input.tpm !== 'object' || input.tpm === null)
    throw new AttestationError(
      'ERR_EVIDENCE_MALFORMED',
      'Azure evidence (an HCL report) needs its TPM quote: input.tpm { quote, signature, pcrs }',
    );
  return verifyAzureUnchecked({ ...input, tpm: input.tpm }, options);
}

/**
 * verifyAzure() as the package exports it: the arguments checked as verifyEvidence() checks
 * them (`now` required), and only AttestationError leaving.
 */
export async function verifyAzure(
  input: AzureEvidenceInput,
  options: AzureVerifyOptions,
): Promise<AzureClaims> {
  const opts = optionsArg(options, 'verifyAzure') as AzureVerifyOptions;
  try {
    checkInput(input);
    checkOptions(opts);
    if (!(opts.now instanceof Date))
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'verifyAzure: options.now must be a valid Date');
    if (opts.expectedExtraData !== undefined && !isBytes(opts.expectedExtraData))
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'options.expectedExtraData must be a Uint8Array');
    if (opts.signal?.aborted)
      throw new AttestationError('ERR_ABORTED', 'verification aborted', { cause: opts.signal.reason });
    return await verifyAzureUnchecked(input, { ...opts, policy: parsePolicy(opts.policy) });
  } catch (err) {
    throw atBoundary(err, opts.signal instanceof AbortSignal ? opts.signal : undefined, 'verifyAzure');
  }
}
