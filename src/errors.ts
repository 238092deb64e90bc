/**
 * Every error this library throws or emits is an AttestationError with a stable `code`.
 * Codes are part of the public API: callers branch on them, peers receive them in ALERT and
 * RESULT frames, and docs/api.md lists each one with what it means and what to do.
 */
/** The codes, one list: the ErrorCode type is derived from it. */
export const ERROR_CODES = [
  // Evidence: parsing, signatures, chains, appraisal.
  'ERR_EVIDENCE_MALFORMED',
  'ERR_EVIDENCE_SIGNATURE',
  'ERR_EVIDENCE_CHAIN',
  'ERR_EVIDENCE_POLICY',
  'ERR_EVIDENCE_TCB',
  'ERR_COLLATERAL_UNAVAILABLE',
  'ERR_UNSUPPORTED_EVIDENCE',
  'ERR_POLICY_INVALID',
  'ERR_EVENTLOG_MISMATCH',
  // Channel.
  'ERR_BINDING_MISMATCH',
  'ERR_ATTESTATION_TIMEOUT',
  'ERR_PROTOCOL',
  'ERR_PEER_REJECTED',
  'ERR_TLS',
  'ERR_CONNECTION_CLOSED',
  // Evidence providers.
  'ERR_PROVIDER_UNAVAILABLE',
  'ERR_PROVIDER_FAILED',
  // Caller mistakes and cancellation.
  'ERR_INVALID_ARGUMENT',
  'ERR_ABORTED',
  // A bug in this library (or in a dependency): never the peer's or the caller's fault.
  'ERR_INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

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

/**
 * What a public function turns a failure into on its way out: an AttestationError as it is, an
 * abort of the caller's signal as ERR_ABORTED, anything else (a TypeError from a bug, a dependency's
 * own error) as ERR_INTERNAL with the original as `cause`, so a bug is never reported as bad input.
 */
export function atBoundary(err: unknown, signal?: AbortSignal, what = 'internal error'): AttestationError {
  if (err instanceof AttestationError) return err;
  if (signal?.aborted) return new AttestationError('ERR_ABORTED', 'aborted', { cause: signal.reason });
  const text = err instanceof Error ? err.message : String(err);
  return new AttestationError('ERR_INTERNAL', `${what}: ${text}`, { cause: err });
}

/** An options argument: undefined means `{}`; anything but a non-null object is ERR_INVALID_ARGUMENT. */
export function optionsArg<T extends object>(value: T | undefined, who: string): T {
  if (value === undefined) return {} as T;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new AttestationError('ERR_INVALID_ARGUMENT', `${who}: options must be an object`);
  return value;
}

/** Rejects with ERR_INVALID_ARGUMENT unless `signal` is undefined or an AbortSignal. */
export function signalArg(signal: unknown, who: string): AbortSignal | undefined {
  if (signal === undefined || signal instanceof AbortSignal) return signal;
  throw new AttestationError('ERR_INVALID_ARGUMENT', `${who}: signal must be an AbortSignal`);
}

/**
 * An AttestationError as it is; anything else as ERR_INTERNAL with `cause`. The message names only
 * `doing`: it travels to the peer in an ALERT, and the original error's text is ours, not theirs.
 */
export function internalError(err: unknown, doing: string): AttestationError {
  if (err instanceof AttestationError) return err;
  return new AttestationError('ERR_INTERNAL', `internal error while ${doing}`, { cause: err });
}
