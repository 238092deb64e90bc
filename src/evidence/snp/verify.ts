import { AttestationError } from '../../errors.js';
import type { Policy } from '../policy.js';
import type { EvidenceInput, SnpClaims, VerifyOptions } from '../types.js';

// Placeholder until the SNP pipeline lands.
export async function verifySnp(
  _input: EvidenceInput,
  _options: VerifyOptions & { policy: Policy; now: Date },
): Promise<SnpClaims> {
  throw new AttestationError('ERR_UNSUPPORTED_EVIDENCE', 'SEV-SNP verification is not implemented yet');
}
