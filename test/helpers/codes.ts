/**
 * "Which code was thrown": the one helper the tests use to ask it. Each gives the AttestationError's
 * `code`, 'accepted' when the call returned (or the promise resolved), or a string starting
 * 'not an AttestationError' for anything else, so an assertion on a code fails on every other
 * outcome and prints what happened.
 */
import { AttestationError } from '../../src/errors.js';

export const ACCEPTED = 'accepted';

function describe(err: unknown, unwrapCause: boolean): string {
  if (err instanceof AttestationError) return err.code;
  const cause = (err as { cause?: unknown } | null)?.cause;
  if (unwrapCause && cause instanceof AttestationError) return cause.code;
  return `not an AttestationError: ${String(err)}`;
}

/** The code `fn()` throws synchronously. */
export function thrownCode(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return describe(err, false);
  }
  return ACCEPTED;
}

/**
 * The code a promise rejects with, or a function throws or rejects with. `unwrapCause`: also accept an
 * AttestationError as the `cause` of what was thrown (Node's HTTP client wraps socket errors).
 */
export async function rejectionCode(
  p: Promise<unknown> | (() => unknown),
  options: { unwrapCause?: boolean } = {},
): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return describe(err, options.unwrapCause === true);
  }
  return ACCEPTED;
}
