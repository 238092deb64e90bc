/**
 * Argument checks for the explain and policy-builder exports: a mistyped argument is
 * ERR_INVALID_ARGUMENT, never a TypeError from deep inside (issue 10's error boundary).
 */
import { AttestationError } from '../errors.js';

const FORMATS = ['sev-snp', 'tdx', 'azure-sev-snp', 'azure-tdx'];

export function badArgument(message: string): AttestationError {
  return new AttestationError('ERR_INVALID_ARGUMENT', message);
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Verified claims (or parsedClaims()): an object of a known format with its hex fields. */
export function checkClaims(fn: string, claims: unknown): void {
  const c = claims as Record<string, unknown>;
  const format = isPlainObject(claims) && typeof c.format === 'string' ? c.format : '';
  const ok =
    FORMATS.includes(format) &&
    typeof c.reportData === 'string' &&
    isPlainObject(c.revocation) &&
    (format.endsWith('sev-snp')
      ? typeof c.measurement === 'string' && isPlainObject(c.policy) && isPlainObject(c.reportedTcb)
      : typeof c.mrTd === 'string' && isPlainObject(c.tdAttributes)) &&
    (!format.startsWith('azure') || (isPlainObject(c.tpm) && isPlainObject(c.tpm.pcrs)));
  if (!ok) throw badArgument(`${fn}: claims must be the claims of verified (or parsed) evidence`);
}

export function checkOptions(fn: string, options: unknown): Record<string, unknown> {
  if (options === undefined) return {};
  if (!isPlainObject(options)) throw badArgument(`${fn}: options must be an object`);
  return options;
}

export function checkOptionalString(fn: string, name: string, v: unknown): void {
  if (v !== undefined && typeof v !== 'string') throw badArgument(`${fn}: ${name} must be a string`);
}

export function checkCount(fn: string, name: string, v: unknown, max: number): void {
  if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max))
    throw badArgument(`${fn}: ${name} must be an integer from 0 to ${max}`);
}

/** A verified LaunchEndorsement's shape (what the functions here read of it). */
export function checkEndorsement(fn: string, e: unknown): void {
  const x = e as Record<string, unknown>;
  if (
    !isPlainObject(e) ||
    !(x.uefiDigest instanceof Uint8Array) ||
    !(x.timestamp instanceof Date) ||
    Number.isNaN(x.timestamp.getTime()) ||
    (x.sevSnp !== undefined && !(isPlainObject(x.sevSnp) && x.sevSnp.measurements instanceof Map)) ||
    (x.tdx !== undefined && !(isPlainObject(x.tdx) && Array.isArray(x.tdx.measurements)))
  )
    throw badArgument(`${fn}: the endorsement must be one verifyLaunchEndorsement() returned`);
}
