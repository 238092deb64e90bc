/**
 * Re-appraises claims that the channel already verified against one secret's policy, with the
 * library's own appraisal (the same code verifyEvidence runs), so the broker never has a second,
 * diverging reading of a policy field.
 */
import type { Policy } from '../../src/evidence/policy.js';
import { appraiseSnp } from '../../src/evidence/snp/appraise.js';
import { appraiseTdx } from '../../src/evidence/tdx/appraise.js';
import type { Claims } from '../../src/evidence/types.js';

/** Throws the library's AttestationError (details.field names the policy field) when `policy` refuses. */
export function appraiseClaims(claims: Claims, policy: Policy): void {
  if (claims.format === 'sev-snp') appraiseSnp(claims, policy.snp);
  else appraiseTdx(claims, policy.tdx);
}
