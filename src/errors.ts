/**
 * Every error this library throws or emits is an AttestationError with a stable `code`.
 * Codes are part of the public API: callers branch on them, peers receive them in ALERT and
 * RESULT frames, and docs/api.md lists each one with what it means and what to do.
 */
export type ErrorCode =
  // Evidence: parsing, signatures, chains, appraisal.
  | 'ERR_EVIDENCE_MALFORMED'
  | 'ERR_EVIDENCE_SIGNATURE'
  | 'ERR_EVIDENCE_CHAIN'
  | 'ERR_EVIDENCE_POLICY'
  | 'ERR_EVIDENCE_TCB'
  | 'ERR_COLLATERAL_UNAVAILABLE'
  | 'ERR_UNSUPPORTED_EVIDENCE'
  | 'ERR_POLICY_INVALID'
  | 'ERR_EVENTLOG_MISMATCH'
  // Channel.
  | 'ERR_BINDING_MISMATCH'
  | 'ERR_ATTESTATION_TIMEOUT'
  | 'ERR_PROTOCOL'
  | 'ERR_PEER_REJECTED'
  | 'ERR_TLS'
  | 'ERR_CONNECTION_CLOSED'
  // Evidence providers.
  | 'ERR_PROVIDER_UNAVAILABLE'
  | 'ERR_PROVIDER_FAILED'
  // Caller mistakes and cancellation.
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_ABORTED';

export const ERROR_CODES: readonly ErrorCode[] = [
  'ERR_EVIDENCE_MALFORMED',
  'ERR_EVIDENCE_SIGNATURE',
  'ERR_EVIDENCE_CHAIN',
  'ERR_EVIDENCE_POLICY',
  'ERR_EVIDENCE_TCB',
  'ERR_COLLATERAL_UNAVAILABLE',
  'ERR_UNSUPPORTED_EVIDENCE',
  'ERR_POLICY_INVALID',
  'ERR_EVENTLOG_MISMATCH',
  'ERR_BINDING_MISMATCH',
  'ERR_ATTESTATION_TIMEOUT',
  'ERR_PROTOCOL',
  'ERR_PEER_REJECTED',
  'ERR_TLS',
  'ERR_CONNECTION_CLOSED',
  'ERR_PROVIDER_UNAVAILABLE',
  'ERR_PROVIDER_FAILED',
  'ERR_INVALID_ARGUMENT',
  'ERR_ABORTED',
];

export interface AttestationErrorOptions {
  cause?: unknown;
  /** Machine-readable extras: the failed policy field, a TCB status, the peer's code, ... */
  details?: Record<string, unknown>;
}

export class AttestationError extends Error {
  override readonly name = 'AttestationError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: AttestationErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return Object.keys(this.details).length > 0
      ? { code: this.code, message: this.message, details: this.details }
      : { code: this.code, message: this.message };
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

/** Wraps anything thrown by a dependency so that only AttestationError leaves the library. */
export function asAttestationError(err: unknown, fallback: ErrorCode, message?: string): AttestationError {
  if (err instanceof AttestationError) return err;
  const text = err instanceof Error ? err.message : String(err);
  return new AttestationError(fallback, message ? `${message}: ${text}` : text, { cause: err });
}
