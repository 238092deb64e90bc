/**
 * Appraisal of verified TDX claims against the `tdx` section of a policy. Defaults are strict:
 * only UpToDate is accepted, debug TDs and bound service TDs are refused, SEPT_VE_DISABLE is
 * required. The TCB verdict comes first (ERR_EVIDENCE_TCB, with the status and advisory IDs in
 * the details), then each policy field (ERR_EVIDENCE_POLICY, details.field = "tdx.<name>").
 */
import { AttestationError } from '../../errors.js';
import type { TdxPolicy } from '../policy.js';
import type { TdxClaims } from '../types.js';

const DEFAULT_ACCEPTED_STATUS = ['UpToDate'];

const MEASUREMENT_FIELDS = [
  'mrTd',
  'rtmr0',
  'rtmr1',
  'rtmr2',
  'rtmr3',
  'mrConfigId',
  'mrOwner',
  'mrOwnerConfig',
  'mrSeam',
] as const;

function refuse(field: keyof TdxPolicy, message: string): AttestationError {
  return new AttestationError('ERR_EVIDENCE_POLICY', message, { details: { field: `tdx.${field}` } });
}

export function appraiseTdx(claims: TdxClaims, policy: TdxPolicy = {}): void {
  const accepted = policy.acceptTcbStatus ?? DEFAULT_ACCEPTED_STATUS;
  if (!accepted.includes(claims.tcbStatus)) {
    throw new AttestationError(
      'ERR_EVIDENCE_TCB',
      claims.tcbStatus === 'NoMatchingTcbLevel'
        ? 'no TCB level of the TCB info matches this platform'
        : `TCB status ${claims.tcbStatus} is not accepted (accepted: ${accepted.join(', ') || 'none'})`,
      { details: { tcbStatus: claims.tcbStatus, advisoryIds: claims.advisoryIds } },
    );
  }
  if (claims.tdAttributes.debug && policy.allowDebug !== true)
    throw refuse(
      'allowDebug',
      'the TD runs in debug mode (TDATTRIBUTES.DEBUG) and tdx.allowDebug is not set',
    );
  if (!claims.tdAttributes.septVeDisable && policy.requireSeptVeDisable !== false)
    throw refuse('requireSeptVeDisable', 'TDATTRIBUTES.SEPT_VE_DISABLE is not set');
  if (claims.mrServiceTd !== undefined && /[^0]/.test(claims.mrServiceTd) && policy.allowServiceTd !== true)
    throw refuse(
      'allowServiceTd',
      'a service TD is bound (MRSERVICETD is not zero) and tdx.allowServiceTd is not set',
    );
  for (const field of MEASUREMENT_FIELDS) {
    const allowed = policy[field];
    if (allowed !== undefined && !allowed.some((v) => v.toLowerCase() === claims[field]))
      throw refuse(field, `${field} ${claims[field]} is not in the policy's list`);
  }
}
