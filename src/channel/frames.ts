/**
 * The framing of attested-channel/1 (docs/protocol.md §3): `type (1) | length (4, big-endian) |
 * payload`, and the JSON control messages carried in REQUEST, EVIDENCE, RESULT and ALERT frames.
 *
 * The decoder refuses a frame as soon as its header shows it cannot be legal (unknown type, length
 * over the limit), before buffering its payload, so a hostile peer cannot make us hold more than
 * one maximal frame.
 */
import { isUtf8 } from 'node:buffer';
import { AttestationError, type ErrorCode } from '../errors.js';
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
/** The context of a REQUEST is exactly this many random bytes. */
export const CONTEXT_SIZE = 32;
/** Bound on the `reason` text we send (peers may send longer ones; we truncate when reporting). */
export const MAX_REASON_LENGTH = 1024;

/** Largest payload accepted per control frame type, in bytes (docs/protocol.md §3). */
export interface FrameLimits {
  /** Default 4 096: a REQUEST is ~200 bytes (a context and two media types). */
  request: number;
  /**
   * Default 4 MiB: the largest real evidence in the fixtures is ~36 KB on the wire (a TDX quote
   * with its collateral, base64url in JSON), and EVIDENCE will also carry event logs (the real
   * ones seen are up to 256 KiB; a few MiB fit).
   */
  evidence: number;
  /** Default 8 192: a RESULT or ALERT holds a code and a reason of at most 1 024 characters. */
  result: number;
  alert: number;
}

export const DEFAULT_FRAME_LIMITS: Readonly<FrameLimits> = Object.freeze({
  request: 4096,
  evidence: 4 * 1024 * 1024,
  result: 8192,
  alert: 8192,
});

/** The smallest limit a caller may set: our own RESULT and ALERT frames fit in it. */
export const MIN_FRAME_LIMIT = 1024;
const MAX_FRAME_LIMIT = 0xffffffff;

/**
 * The per-type limits from the options: `frameLimits` entries replace the defaults, and
 * `maxControlPayload`, when given, caps every control type. Throws ERR_INVALID_ARGUMENT.
 */
export function resolveFrameLimits(
  frameLimits: Partial<FrameLimits> | undefined,
  maxControlPayload: number | undefined,
  who = 'frameLimits',
): FrameLimits {
  if (frameLimits !== undefined && (typeof frameLimits !== 'object' || frameLimits === null))
    throw new AttestationError('ERR_INVALID_ARGUMENT', `${who} must be an object`);
  const out = { ...DEFAULT_FRAME_LIMITS };
  for (const key of Object.keys(frameLimits ?? {})) {
    if (!Object.hasOwn(DEFAULT_FRAME_LIMITS, key))
      throw new AttestationError('ERR_INVALID_ARGUMENT', `${who}.${key} is not a frame type with a limit`);
    const v = (frameLimits as Record<string, unknown>)[key];
    if (v === undefined) continue;
    if (!(Number.isSafeInteger(v) && (v as number) >= MIN_FRAME_LIMIT && (v as number) <= MAX_FRAME_LIMIT))
      throw new AttestationError(
        'ERR_INVALID_ARGUMENT',
        `${who}.${key} must be an integer in ${MIN_FRAME_LIMIT}..${MAX_FRAME_LIMIT}`,
      );
    out[key as keyof FrameLimits] = v as number;
  }
  if (maxControlPayload !== undefined)
    for (const key of Object.keys(out) as Array<keyof FrameLimits>)
      out[key] = Math.min(out[key], maxControlPayload);
  return out;
}

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
 * The first buffer for a frame split across reads; it doubles as bytes arrive, never beyond the
 * announced length. So a peer that announces a large frame and sends little makes us hold little
 * (at most twice what it sent, plus this), and each byte is copied O(1) times (amortised).
 */
const INITIAL_FRAME_BUFFER = 16 * 1024;

export interface FrameDecoderOptions {
  /** Caps every control frame type (kept for compatibility; see resolveFrameLimits). */
  maxControlPayload?: number;
  /** Per-type limits; missing entries keep DEFAULT_FRAME_LIMITS. */
  limits?: Partial<FrameLimits>;
  /**
   * Called with each frame header before its payload is buffered; it may throw (an
   * AttestationError) to refuse a frame the receiver's state does not allow, e.g. DATA before open.
   */
  onHeader?: (type: FrameType, length: number) => void;
}

/** The payload limit of each frame type, indexed by type (0 is no type). */
function limitsByType(limits: Readonly<FrameLimits>): readonly number[] {
  return Object.freeze([0, limits.request, limits.evidence, limits.result, MAX_DATA_PAYLOAD, limits.alert]);
}
const DEFAULT_LIMIT_OF = limitsByType(DEFAULT_FRAME_LIMITS);

function maxOf(limits: Readonly<FrameLimits>): number {
  return Math.max(limits.request, limits.evidence, limits.result, limits.alert);
}

/**
 * Incremental frame decoder. push() bytes as they arrive; it returns the complete frames. It
 * throws AttestationError(ERR_PROTOCOL) on the first illegal header; after that the decoder is
 * dead (every later push throws too), since the stream can no longer be parsed.
 *
 * Linear in the bytes pushed, however they are split: a frame that lies whole in one chunk is
 * returned as a view of it (no copy); a frame split across chunks is copied into one buffer of its
 * own, so no chunk is ever kept (a peer sending one byte per TLS record costs a byte per byte).
 */
export class FrameDecoder {
  /** The largest control limit in force (the EVIDENCE one by default). */
  readonly maxControlPayload: number;
  readonly limits: Readonly<FrameLimits>;
  readonly #limitOf: readonly number[];
  readonly #onHeader: ((type: FrameType, length: number) => void) | undefined;
  /** A header split across chunks; made the first time one is (most connections never split one). */
  #header: Buffer | undefined;
  #headerLength = 0;
  /** The frame being assembled (after its header): type, announced length, buffer, bytes in it. */
  #type: FrameType = FrameType.DATA;
  #length = 0;
  #body: Buffer | undefined;
  #filled = 0;
  #failed: AttestationError | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    const cap = options.maxControlPayload;
    this.#onHeader = options.onHeader;
    if (cap === undefined && options.limits === undefined) {
      // Every channel without frame options (most): the defaults, resolved and frozen once.
      this.limits = DEFAULT_FRAME_LIMITS;
      this.maxControlPayload = maxOf(DEFAULT_FRAME_LIMITS);
      this.#limitOf = DEFAULT_LIMIT_OF;
      return;
    }
    if (cap !== undefined && !(Number.isSafeInteger(cap) && cap >= 0 && cap <= MAX_FRAME_LIMIT))
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'maxControlPayload must be an integer in 0..2^32-1');
    const limits = resolveFrameLimits(options.limits, undefined);
    if (cap !== undefined)
      for (const k of Object.keys(limits) as Array<keyof FrameLimits>) limits[k] = Math.min(limits[k], cap);
    this.limits = Object.freeze(limits);
    this.maxControlPayload = maxOf(limits);
    this.#limitOf = limitsByType(limits);
  }

  /** Bytes held that do not yet form a complete frame. */
  get buffered(): number {
    return this.#headerLength + this.#filled;
  }

  /**
   * Decodes `chunk`. Without `onFrame`, returns the complete frames. With it, hands each frame to
   * `onFrame` as soon as it is complete, before the next header is read (so a receiver's state,
   * which `onHeader` consults, reflects every earlier frame), and returns []; `onFrame` returning
   * false stops decoding (the receiver has failed; the rest of the chunk is dropped).
   */
  push(chunk: Uint8Array, onFrame?: (frame: Frame) => boolean | undefined): Frame[] {
    if (this.#failed) throw this.#failed;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    const n = buf.length;
    const frames: Frame[] = [];
    let stopped = false;
    const deliver = (frame: Frame): void => {
      if (!onFrame) frames.push(frame);
      else if (onFrame(frame) === false) stopped = true;
    };
    let at = 0;
    while (at < n && !stopped) {
      if (this.#body !== undefined) {
        at = this.#fill(buf, at, deliver);
        continue;
      }
      if (this.#headerLength === 0) {
        const type = buf[at]!;
        if (!isFrameType(type)) this.#fail(`unknown frame type 0x${type.toString(16).padStart(2, '0')}`);
        if (n - at >= HEADER_SIZE) {
          // The whole header in this chunk, and maybe the whole frame: then it is a view, not a copy.
          const length = buf.readUInt32BE(at + 1);
          this.#check(type, length);
          at += HEADER_SIZE;
          if (n - at >= length) {
            const payload = buf.subarray(at, at + length);
            at += length;
            deliver({ type, payload });
          } else this.#begin(type, length);
          continue;
        }
      }
      // A header split across chunks: at most 5 bytes are held.
      const m = Math.min(HEADER_SIZE - this.#headerLength, n - at);
      this.#header ??= Buffer.alloc(HEADER_SIZE);
      const header = this.#header;
      buf.copy(header, this.#headerLength, at, at + m);
      this.#headerLength += m;
      at += m;
      if (this.#headerLength < HEADER_SIZE) continue;
      this.#headerLength = 0;
      const type = header[0] as FrameType;
      const length = header.readUInt32BE(1);
      this.#check(type, length);
      if (length === 0) deliver({ type, payload: new Uint8Array(0) });
      else this.#begin(type, length);
    }
    return frames;
  }

  /** Refuses a header whose length is over its type's limit, or that the receiver does not allow. */
  #check(type: FrameType, length: number): void {
    const limit = this.#limitOf[type]!;
    if (length > limit)
      this.#fail(`${FRAME_NAMES[type]} frame of ${length} bytes is over the limit of ${limit}`);
    if (this.#onHeader) {
      try {
        this.#onHeader(type, length);
      } catch (err) {
        this.#failWith(err instanceof AttestationError ? err : protocolError(String(err)));
      }
    }
  }

  #begin(type: FrameType, length: number): void {
    this.#type = type;
    this.#length = length;
    this.#body = Buffer.allocUnsafe(Math.min(length, INITIAL_FRAME_BUFFER));
    this.#filled = 0;
  }

  /** Copies what `buf` holds of the frame being assembled; returns the new read position. */
  #fill(buf: Buffer, at: number, deliver: (frame: Frame) => void): number {
    const m = Math.min(this.#length - this.#filled, buf.length - at);
    let body = this.#body!;
    if (this.#filled + m > body.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.#length, Math.max(this.#filled + m, body.length * 2)));
      body.copy(grown, 0, 0, this.#filled);
      body = grown;
      this.#body = grown;
    }
    buf.copy(body, this.#filled, at, at + m);
    this.#filled += m;
    if (this.#filled === this.#length) {
      this.#body = undefined;
      this.#filled = 0;
      deliver({ type: this.#type, payload: body });
    }
    return at + m;
  }

  #fail(message: string): never {
    this.#failWith(protocolError(message));
  }

  #failWith(error: AttestationError): never {
    this.#failed = error;
    this.#body = undefined;
    this.#filled = 0;
    this.#headerLength = 0;
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Control messages

export interface RequestMessage {
  context: Uint8Array;
  accept: string[];
  /** Digests (32 bytes each) of reports the challenger holds for our key (§4.7); absent: none. */
  known?: Uint8Array[];
  /** The challenger can appraise batched evidence (docs/protocol.md §5.1); false when absent. */
  batch: boolean;
}
export interface EvidenceMessage {
  context: Uint8Array;
  /** The CMW collection, still untyped (cmw.ts decodes it against the REQUEST's accept list). */
  evidence?: unknown;
  /** Instead of `evidence`: a key-continuity proof for the report of digest `known` (§4.7). */
  keyProof?: KeyProofMessage;
}
export interface KeyProofMessage {
  /** The digest of the report, one of the REQUEST's `known`. */
  known: Uint8Array;
  /** The signature over the key-proof input by this handshake's TLS key. */
  proof: Uint8Array;
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
/** REQUEST `known` lists 1 to this many report digests (this library sends one). */
export const MAX_KNOWN_ENTRIES = 4;
const DIGEST_SIZE = 32;
/** A proof is a signature: 64 bytes (P-256, Ed25519), 96 (P-384), up to 512 (RSA-4096). */
const MAX_PROOF_SIZE = 1024;

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
  const batch = member(o, 'batch');
  if (batch !== undefined && typeof batch !== 'boolean')
    throw protocolError('REQUEST.batch must be a boolean');
  const known = member(o, 'known');
  if (known === undefined) return { context, accept: accept as string[], batch: batch === true };
  if (!Array.isArray(known) || known.length === 0 || known.length > MAX_KNOWN_ENTRIES)
    throw protocolError(`REQUEST.known must be an array of 1 to ${MAX_KNOWN_ENTRIES} report digests`);
  const digests = known.map((d) => {
    const bytes = typeof d === 'string' && d.length === 43 ? fromBase64url(d) : undefined;
    if (bytes?.length !== DIGEST_SIZE)
      throw protocolError(`REQUEST.known entries must be ${DIGEST_SIZE} bytes in unpadded base64url`);
    return bytes;
  });
  return { context, accept: accept as string[], batch: batch === true, known: digests };
}

export function parseEvidence(payload: Uint8Array): EvidenceMessage {
  const o = parseJsonObject(payload, 'EVIDENCE');
  const context = contextOf(o, 'EVIDENCE');
  const hasProof = Object.hasOwn(o, 'known') || Object.hasOwn(o, 'proof');
  if (Object.hasOwn(o, 'evidence')) {
    if (hasProof) throw protocolError('EVIDENCE carries both evidence and a key proof');
    return { context, evidence: o['evidence'] };
  }
  if (!hasProof) throw protocolError('EVIDENCE.evidence is missing');
  const known = member(o, 'known');
  const digest = typeof known === 'string' && known.length === 43 ? fromBase64url(known) : undefined;
  if (digest?.length !== DIGEST_SIZE)
    throw protocolError(`EVIDENCE.known must be ${DIGEST_SIZE} bytes in unpadded base64url`);
  const p = member(o, 'proof');
  const proof =
    typeof p === 'string' && p.length <= (MAX_PROOF_SIZE * 4) / 3 + 1 ? fromBase64url(p) : undefined;
  if (!proof || proof.length === 0 || proof.length > MAX_PROOF_SIZE)
    throw protocolError(`EVIDENCE.proof must be 1 to ${MAX_PROOF_SIZE} bytes in unpadded base64url`);
  return { context, keyProof: { known: digest, proof } };
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

/**
 * A control frame: the JSON text written straight after the header (evidence is ~10 KB). The text
 * is written piece by piece so the long base64url members, which need no escaping, are copied once
 * into the frame instead of first into a JSON.stringify string the size of the frame (~13 KB of
 * heap per connect). Every piece is what JSON.stringify gives for it, so the bytes are the same.
 */
function controlFrame(type: FrameType, value: unknown): Buffer {
  const pieces: string[] = [];
  jsonPieces(value, pieces);
  let length = 0;
  for (const piece of pieces) length += Buffer.byteLength(piece, 'utf8');
  const out = Buffer.allocUnsafe(HEADER_SIZE + length);
  out[0] = type;
  out.writeUInt32BE(length, 1);
  let at = HEADER_SIZE;
  for (const piece of pieces) at += out.write(piece, at, 'utf8');
  return out;
}

/** Printable ASCII but '"' and '\\': JSON.stringify emits such a string between quotes unchanged. */
const PLAIN_JSON_STRING = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
/** Below this a string goes through JSON.stringify: the test would cost more than the copy saves. */
const RAW_STRING_MIN = 256;

/** Appends the JSON text of `value` as pieces; plain objects and arrays are walked, the rest stringified. */
function jsonPieces(value: unknown, pieces: string[]): void {
  if (typeof value === 'string') {
    if (value.length >= RAW_STRING_MIN && PLAIN_JSON_STRING.test(value)) pieces.push('"', value, '"');
    else pieces.push(JSON.stringify(value));
    return;
  }
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof (value as { toJSON?: unknown }).toJSON === 'function'
  ) {
    pieces.push(JSON.stringify(value) ?? 'null');
    return;
  }
  if (Array.isArray(value)) {
    pieces.push('[');
    for (let i = 0; i < value.length; i++) {
      if (i > 0) pieces.push(',');
      const v: unknown = value[i];
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') pieces.push('null');
      else jsonPieces(v, pieces);
    }
    pieces.push(']');
    return;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    pieces.push(JSON.stringify(value));
    return;
  }
  pieces.push('{');
  let first = true;
  for (const key of Object.keys(value)) {
    const v: unknown = (value as Record<string, unknown>)[key];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    pieces.push(first ? JSON.stringify(key) : `,${JSON.stringify(key)}:`);
    if (first) pieces.push(':');
    first = false;
    jsonPieces(v, pieces);
  }
  pieces.push('}');
}

function clip(reason: string): string {
  return reason.length > MAX_REASON_LENGTH ? reason.slice(0, MAX_REASON_LENGTH) : reason;
}

/**
 * A REQUEST. `batch` is sent only when true and `known` only when it lists a digest (a peer that
 * predates either member ignores it).
 */
export function encodeRequest(
  context: Uint8Array,
  accept: readonly string[],
  options: { batch?: boolean; known?: readonly Uint8Array[] } = {},
): Buffer {
  return controlFrame(FrameType.REQUEST, {
    v: 1,
    context: base64url(context),
    accept,
    ...(options.batch === true ? { batch: true } : {}),
    ...(options.known && options.known.length > 0 ? { known: options.known.map(base64url) } : {}),
  });
}

export function encodeEvidence(context: Uint8Array, evidence: unknown): Buffer {
  return controlFrame(FrameType.EVIDENCE, { context: base64url(context), evidence });
}

/** EVIDENCE answering with a key-continuity proof instead of a CMW collection (§4.7). */
export function encodeKeyProof(context: Uint8Array, proof: KeyProofMessage): Buffer {
  return controlFrame(FrameType.EVIDENCE, {
    context: base64url(context),
    known: base64url(proof.known),
    proof: base64url(proof.proof),
  });
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
