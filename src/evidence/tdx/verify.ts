import { AttestationError } from '../../errors.js';
import type { Policy } from '../policy.js';
import type { EvidenceInput, TdxClaims, VerifyOptions } from '../types.js';

// Placeholder until the TDX pipeline lands.
export async function verifyTdx(
  _input: EvidenceInput,
  _options: VerifyOptions & { policy: Policy; now: Date },
): Promise<TdxClaims> {
  throw new AttestationError('ERR_UNSUPPORTED_EVIDENCE', 'TDX verification is not implemented yet');
}
