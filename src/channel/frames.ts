/**
 * The framing of attested-channel/1 (docs/protocol.md §3): `type (1) | length (4, big-endian) |
 * payload`, and the JSON control messages carried in REQUEST, EVIDENCE, RESULT and ALERT frames.
 *
 * The decoder refuses a frame as soon as its header shows it cannot be legal (unknown type, length
 * over the limit), before buffering its payload, so a hostile peer cannot make us hold more than
 * one maximal frame.
 */
import { isUtf8 } from 'node:buffer';
import { AttestationError, type ErrorCode, isErrorCode } from '../errors.js';
import { base64url, fromBase64url } from '../evidence/bytes.js';

export const FrameType = {
  REQUEST: 0x01,
  EVIDENCE: 0x02,
  RESULT: 0x03,
  DATA: 0x04,
  ALERT: 0x05,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export const FRAME_NAMES: Record<FrameType, string> = {
  1: 'REQUEST',
  2: 'EVIDENCE',
  3: 'RESULT',
  4: 'DATA',
  5: 'ALERT',
};

export const HEADER_SIZE = 5;
/** Largest DATA payload (64 KiB). */
export const MAX_DATA_PAYLOAD = 65_536;
/** Default largest control payload (1 MiB). */
export const DEFAULT_MAX_CONTROL_PAYLOAD = 1_048_576;
/** The context of a REQUEST is exactly this many random bytes. */
export const CONTEXT_SIZE = 32;
/** Bound on the `reason` text we send (peers may send longer ones; we truncate when reporting). */
export const MAX_REASON_LENGTH = 1024;

export interface Frame {
  type: FrameType;
  payload: Uint8Array;
}

function protocolError(message: string): AttestationError {
  return new AttestationError('ERR_PROTOCOL', message);
}

export function isFrameType(t: number): t is FrameType {
  return t >= FrameType.REQUEST && t <= FrameType.ALERT;
}

export function frameHeader(type: FrameType, length: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER_SIZE);
  h[0] = type;
  h.writeUInt32BE(length, 1);
  return h;
}

/** One frame as one buffer (header and payload together, so TLS sends them in one record). */
export function encodeFrame(type: FrameType, payload: Uint8Array): Buffer {
  if (type === FrameType.DATA && payload.length > MAX_DATA_PAYLOAD)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'DATA payload over 64 KiB');
  const out = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  out[0] = type;
  out.writeUInt32BE(payload.length, 1);
  out.set(payload, HEADER_SIZE);
  return out;
}

/**
 * Incremental frame decoder. push() bytes as they arrive; it returns the complete frames. It
 * throws AttestationError(ERR_PROTOCOL) on the first illegal header; after that the decoder is
 * dead (every later push throws too), since the stream can no longer be parsed.
 */
export class FrameDecoder {
  readonly maxControlPayload: number;
  #chunks: Buffer[] = [];
  #offset = 0; // read position in #chunks[0]
  #available = 0;
  #failed: AttestationError | undefined;

  constructor(options: { maxControlPayload?: number } = {}) {
    const limit = options.maxControlPayload ?? DEFAULT_MAX_CONTROL_PAYLOAD;
    if (!(Number.isSafeInteger(limit) && limit >= 0 && limit <= 0xffffffff))
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'maxControlPayload must be an integer in 0..2^32-1');
    this.maxControlPayload = limit;
  }

  /** Bytes held that do not yet form a complete frame. */
  get buffered(): number {
    return this.#available;
  }

  push(chunk: Uint8Array): Frame[] {
    if (this.#failed) throw this.#failed;
    if (chunk.length > 0) {
      this.#chunks.push(
        Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length),
      );
      this.#available += chunk.length;
    }
    const frames: Frame[] = [];
    for (;;) {
      if (this.#available < 1) break;
      const type = this.#peekByte(0);
      if (!isFrameType(type)) this.#fail(`unknown frame type 0x${type.toString(16).padStart(2, '0')}`);
      if (this.#available < HEADER_SIZE) break;
      const length = this.#peekUint32(1);
      const limit = type === FrameType.DATA ? MAX_DATA_PAYLOAD : this.maxControlPayload;
      if (length > limit)
        this.#fail(
          `${FRAME_NAMES[type as FrameType]} frame of ${length} bytes is over the limit of ${limit}`,
        );
      if (this.#available < HEADER_SIZE + length) break;
      this.#take(HEADER_SIZE);
      frames.push({ type: type as FrameType, payload: this.#take(length) });
    }
    return frames;
  }

  #fail(message: string): never {
    this.#failed = protocolError(message);
    this.#chunks = [];
    this.#available = 0;
    throw this.#failed;
  }

  #peekByte(i: number): number {
    let pos = this.#offset + i;
    for (const c of this.#chunks) {
      if (pos < c.length) return c[pos]!;
      pos -= c.length;
    }
    throw new RangeError('peek past the end');
  }

  #peekUint32(i: number): number {
    return (
      ((this.#peekByte(i) << 24) |
        (this.#peekByte(i + 1) << 16) |
        (this.#peekByte(i + 2) << 8) |
        this.#peekByte(i + 3)) >>>
      0
    );
  }

  /** Removes n bytes; a view into the chunk when they lie in one (no copy), else a fresh buffer. */
  #take(n: number): Uint8Array {
    this.#available -= n;
    const first = this.#chunks[0];
    if (n === 0) return new Uint8Array(0);
    if (first && first.length - this.#offset >= n) {
      const out = first.subarray(this.#offset, this.#offset + n);
      this.#offset += n;
      if (this.#offset === first.length) {
        this.#chunks.shift();
        this.#offset = 0;
      }
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.#chunks[0]!;
      const m = Math.min(n - filled, c.length - this.#offset);
      c.copy(out, filled, this.#offset, this.#offset + m);
      filled += m;
      this.#offset += m;
      if (this.#offset === c.length) {
        this.#chunks.shift();
        this.#offset = 0;
      }
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Control messages

export interface RequestMessage {
  context: Uint8Array;
  accept: string[];
}
export interface EvidenceMessage {
  context: Uint8Array;
  /** The CMW collection, still untyped (cmw.ts decodes it against the REQUEST's accept list). */
  evidence: unknown;
}
export type ResultMessage =
  | { context: Uint8Array; ok: true }
  | { context: Uint8Array; ok: false; code: string; reason: string };
export interface AlertMessage {
  code: string;
  reason: string;
}

const MAX_MEDIA_TYPE_LENGTH = 255;
const MAX_ACCEPT_ENTRIES = 64;

function parseJsonObject(payload: Uint8Array, what: string): Record<string, unknown> {
  if (!isUtf8(payload)) throw protocolError(`${what} payload is not UTF-8`);
  const text = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw protocolError(`${what} payload is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw protocolError(`${what} payload is not a JSON object`);
  return value as Record<string, unknown>;
}

/** A member of a peer's JSON object, never one inherited from Object.prototype. */
function member(o: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}

function contextOf(o: Record<string, unknown>, what: string): Uint8Array {
  const c = member(o, 'context');
  const bytes = typeof c === 'string' ? fromBase64url(c) : undefined;
  if (!bytes || bytes.length !== CONTEXT_SIZE)
    throw protocolError(`${what}.context must be ${CONTEXT_SIZE} bytes in unpadded base64url`);
  return bytes;
}

/** A string member; `code` members must also look like an error code (ERR_ + capitals). */
function stringOf(o: Record<string, unknown>, key: string, what: string): string {
  const v = member(o, key);
  if (typeof v !== 'string') throw protocolError(`${what}.${key} must be a string`);
  return v;
}

function codeOf(o: Record<string, unknown>, what: string): string {
  const code = stringOf(o, 'code', what);
  if (!/^ERR_[A-Z0-9_]{1,60}$/.test(code)) throw protocolError(`${what}.code is not an error code`);
  return code;
}

function reasonOf(o: Record<string, unknown>, what: string): string {
  // `reason` is informative; a peer that leaves it out is tolerated.
  if (member(o, 'reason') === undefined) return '';
  return stringOf(o, 'reason', what).slice(0, MAX_REASON_LENGTH);
}

export function parseRequest(payload: Uint8Array): RequestMessage {
  const o = parseJsonObject(payload, 'REQUEST');
  if (member(o, 'v') !== 1) throw protocolError('REQUEST.v must be 1');
  const context = contextOf(o, 'REQUEST');
  const accept = member(o, 'accept');
  if (!Array.isArray(accept) || accept.length > MAX_ACCEPT_ENTRIES)
    throw protocolError(`REQUEST.accept must be an array of at most ${MAX_ACCEPT_ENTRIES} media types`);
  for (const m of accept)
    if (typeof m !== 'string' || m.length === 0 || m.length > MAX_MEDIA_TYPE_LENGTH)
      throw protocolError('REQUEST.accept entries must be non-empty strings');
  return { context, accept: accept as string[] };
}

export function parseEvidence(payload: Uint8Array): EvidenceMessage {
  const o = parseJsonObject(payload, 'EVIDENCE');
  const context = contextOf(o, 'EVIDENCE');
  if (!Object.hasOwn(o, 'evidence')) throw protocolError('EVIDENCE.evidence is missing');
  return { context, evidence: o['evidence'] };
}

export function parseResult(payload: Uint8Array): ResultMessage {
  const o = parseJsonObject(payload, 'RESULT');
  const context = contextOf(o, 'RESULT');
  const ok = member(o, 'ok');
  if (ok === true) return { context, ok: true };
  if (ok !== false) throw protocolError('RESULT.ok must be true or false');
  return { context, ok: false, code: codeOf(o, 'RESULT'), reason: reasonOf(o, 'RESULT') };
}

export function parseAlert(payload: Uint8Array): AlertMessage {
  const o = parseJsonObject(payload, 'ALERT');
  return { code: codeOf(o, 'ALERT'), reason: reasonOf(o, 'ALERT') };
}

/** A control frame: the JSON text encoded straight after the header (evidence is ~10 KB). */
function controlFrame(type: FrameType, value: unknown): Buffer {
  const text = JSON.stringify(value);
  const out = Buffer.allocUnsafe(HEADER_SIZE + Buffer.byteLength(text, 'utf8'));
  out[0] = type;
  out.writeUInt32BE(out.length - HEADER_SIZE, 1);
  out.write(text, HEADER_SIZE, 'utf8');
  return out;
}

function clip(reason: string): string {
  return reason.length > MAX_REASON_LENGTH ? reason.slice(0, MAX_REASON_LENGTH) : reason;
}

export function encodeRequest(context: Uint8Array, accept: readonly string[]): Buffer {
  return controlFrame(FrameType.REQUEST, { v: 1, context: base64url(context), accept });
}

export function encodeEvidence(context: Uint8Array, evidence: unknown): Buffer {
  return controlFrame(FrameType.EVIDENCE, { context: base64url(context), evidence });
}

export function encodeResult(context: Uint8Array, failure?: { code: ErrorCode; reason: string }): Buffer {
  return controlFrame(
    FrameType.RESULT,
    failure
      ? { context: base64url(context), ok: false, code: failure.code, reason: clip(failure.reason) }
      : { context: base64url(context), ok: true },
  );
}

export function encodeAlert(code: ErrorCode, reason: string): Buffer {
  return controlFrame(FrameType.ALERT, { code, reason: clip(reason) });
}

/** The code a peer reported, kept only when it is one we know (otherwise reported as given in details). */
export function knownCode(code: string): ErrorCode | undefined {
  return isErrorCode(code) ? code : undefined;
}
