/**
 * How Azure evidence binds a channel's 64-byte binder (issue 12; docs/reference/cloud-evidence.md
 * §1.8). Two ways:
 * - "tpm-quote": the TPM quote's qualifyingData is SHA-384(binder). 48 bytes fit every vTPM's
 *   TPM2B_DATA; freshness and binding come from the vTPM AK, which the hardware report vouches for.
 *   Works on every Azure CVM.
 * - "report": the guest wrote the binder to NV 0x01400002 and the paravisor re-issued the HCL
 *   report, so `user-data` (inside the hardware-signed REPORT_DATA hash) equals the binder.
 * The quote binding is always required (see checkAzureBinding); "report" is reported when the HCL
 * report is bound too, and can be required.
 */
import { createHash } from 'node:crypto';
import { AttestationError } from '../../errors.js';
import { bytesToHex, equalBytes } from '../bytes.js';
import { parseTpmsAttest } from '../tpm/attest.js';
import type { AzureClaims } from './verify.js';

/** The TPM quote's qualifyingData for a binder. */
export function azureQuoteNonce(binder: Uint8Array): Uint8Array {
  if (!(binder instanceof Uint8Array))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'azureQuoteNonce: binder must be a Uint8Array');
  return new Uint8Array(createHash('sha384').update(binder).digest());
}

/** Which binding holds for `binder`; ERR_BINDING_MISMATCH when none does (or not the required one). */
export function checkAzureBinding(
  claims: Pick<AzureClaims, 'userData' | 'tpm'>,
  binder: Uint8Array,
  options: { requireReportBinding?: boolean } = {},
): 'report' | 'tpm-quote' {
  if (!(binder instanceof Uint8Array) || binder.length !== 64)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'the binder must be 64 bytes');
  const tpm = typeof claims === 'object' && claims !== null ? (claims as { tpm?: unknown }).tpm : undefined;
  if (
    typeof tpm !== 'object' ||
    tpm === null ||
    typeof (tpm as { extraData?: unknown }).extraData !== 'string'
  )
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      'checkAzureBinding: claims must be Azure claims (with tpm.extraData)',
    );
  if (options === null || typeof options !== 'object')
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'checkAzureBinding: options must be an object');
  // The quote must be bound in both cases: a report bound through user-data alone could come with
  // a quote replayed from an earlier state of the same vTPM (its AK persists across boots), and the
  // PCRs the verifier appraises would then be stale.
  if (claims.tpm.extraData !== bytesToHex(azureQuoteNonce(binder)))
    throw new AttestationError(
      'ERR_BINDING_MISMATCH',
      'the TPM quote is not bound to this channel (extraData is not SHA-384 of the binder)',
    );
  if (claims.userData === bytesToHex(binder)) return 'report';
  if (options.requireReportBinding)
    throw new AttestationError(
      'ERR_BINDING_MISMATCH',
      "the HCL report's user-data is not the binder, and report binding is required",
      { details: { field: 'azure.requireReportBinding' } },
    );
  return 'tpm-quote';
}

/**
 * Whether the quote claims (unverified) to be bound to `binder`; undefined when it does not parse.
 * The channel asks this before any signature work so relayed evidence is refused as such, cheaply;
 * checkAzureBinding() decides on the verified claims.
 */
export function quoteClaimsBinder(quote: unknown, binder: Uint8Array): boolean | undefined {
  if (!(quote instanceof Uint8Array)) return undefined;
  try {
    return equalBytes(parseTpmsAttest(quote).extraData, azureQuoteNonce(binder));
  } catch {
    return undefined;
  }
}
