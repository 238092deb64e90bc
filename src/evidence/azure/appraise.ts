/**
 * The Azure-only part of an `azure` policy section: the quoted PCR values. (Its `snp` / `tdx`
 * parts are applied to the hardware report by verifyAzure(), through the SNP and TDX appraisal;
 * `requireReportBinding` needs the channel's binder and is applied by checkAzureBinding().)
 */
import { AttestationError } from '../../errors.js';
import type { AzurePolicy } from '../policy.js';
import type { TpmQuoteClaims } from '../tpm/quote.js';

/** Each PCR the policy lists must be quoted, with one of its listed values (ERR_EVIDENCE_POLICY). */
export function appraiseAzure(claims: { tpm: TpmQuoteClaims }, policy: AzurePolicy | undefined): void {
  for (const [bank, indices] of Object.entries(policy?.pcrs ?? {})) {
    const quoted = Object.hasOwn(claims.tpm.pcrs, bank)
      ? claims.tpm.pcrs[bank as keyof TpmQuoteClaims['pcrs']]
      : undefined;
    for (const [index, allowed] of Object.entries(indices ?? {})) {
      const field = `azure.pcrs.${bank}.${index}`;
      const value = quoted !== undefined && Object.hasOwn(quoted, index) ? quoted[index] : undefined;
      if (value === undefined)
        throw new AttestationError(
          'ERR_EVIDENCE_POLICY',
          `policy ${field}: the TPM quote does not cover ${bank} PCR ${index}`,
          { details: { field } },
        );
      if (!allowed.includes(value))
        throw new AttestationError(
          'ERR_EVIDENCE_POLICY',
          `policy ${field}: PCR value ${value} is not allowed`,
          {
            details: { field, actual: value },
          },
        );
    }
  }
}
