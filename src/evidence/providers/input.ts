/**
 * Argument checks shared by the evidence providers (configfs-tsm and the simulators): bad
 * options are caller mistakes (ERR_INVALID_ARGUMENT).
 */
import { AttestationError } from '../../errors.js';
import { hexToBytes } from '../bytes.js';

/** A fixed-size byte field given as bytes or hex; `fallback` when absent. */
export function fixedBytes(
  name: string,
  value: Uint8Array | string | undefined,
  sizes: number[],
  fallback: Uint8Array,
): Uint8Array {
  if (value === undefined) return fallback;
  let bytes: Uint8Array;
  if (typeof value === 'string') {
    try {
      bytes = hexToBytes(value);
    } catch {
      throw new AttestationError('ERR_INVALID_ARGUMENT', `${name} is not a hex string`);
    }
  } else if (value instanceof Uint8Array) bytes = value;
  else throw new AttestationError('ERR_INVALID_ARGUMENT', `${name} must be a Uint8Array or a hex string`);
  if (!sizes.includes(bytes.length))
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      `${name} must be ${sizes.join(' or ')} bytes, got ${bytes.length}`,
    );
  return Uint8Array.from(bytes);
}

export function uint(name: string, value: number | undefined, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0 || value > max)
    throw new AttestationError('ERR_INVALID_ARGUMENT', `${name} must be an integer in 0..${max}`);
  return value;
}

export function uint64(name: string, value: bigint | number | undefined, fallback: bigint): bigint {
  if (value === undefined) return fallback;
  const v = typeof value === 'number' && Number.isSafeInteger(value) ? BigInt(value) : value;
  if (typeof v !== 'bigint' || v < 0n || v >= 1n << 64n)
    throw new AttestationError('ERR_INVALID_ARGUMENT', `${name} must be an unsigned 64-bit integer`);
  return v;
}

/** REPORT_DATA as the kernel takes it: exactly 64 bytes. */
export function reportDataArg(reportData: unknown): Uint8Array {
  if (!(reportData instanceof Uint8Array) || reportData.length !== 64)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'reportData must be a Uint8Array of exactly 64 bytes');
  return reportData;
}

/** AbortSignal.throwIfAborted() throws a DOMException; the library throws only AttestationError. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'signal must be an AbortSignal');
  if (signal?.aborted)
    throw new AttestationError('ERR_ABORTED', 'evidence request aborted', { cause: signal.reason });
}
