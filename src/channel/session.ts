/**
 * The attestation exchange of attested-channel/1 as a pure state machine: events go in (bytes
 * from the peer, our provider's evidence, the verifier's verdict, a timer that fired), actions
 * come out (frames to send, evidence to produce or verify, timers, open, fail). No I/O, no clocks,
 * no randomness of its own, so every ordering can be driven and checked in a unit test; the
 * driver in channel.ts does the I/O.
 *
 * Rules (docs/protocol.md §4): each side sends one REQUEST first; a side is open when its own
 * REQUEST has verified EVIDENCE (or asked nothing) and the peer's REQUEST has RESULT ok (or asked
 * nothing); DATA before open is a protocol error; after open either side may re-attest, one
 * exchange per direction at a time, never with a context seen before on this connection.
 */
import { AttestationError, internalError } from '../errors.js';
import { bytesToHex } from '../evidence/bytes.js';
import type { RecentTexts } from '../evidence/challenger.js';
import type { Claims } from '../evidence/types.js';
import { type CmwCollection, type DecodedCmw, decodeCmw } from './cmw.js';
import {
  CONTEXT_SIZE,
  encodeAlert,
  encodeEvidence,
  encodeKeyProof,
  encodeRequest,
  encodeResult,
  type Frame,
  FrameDecoder,
  type FrameLimits,
  FrameType,
  HEADER_SIZE,
  type KeyProofMessage,
  MAX_DATA_PAYLOAD,
  parseAlert,
  parseEvidence,
  parseRequest,
  parseResult,
} from './frames.js';
import type { Role } from './options.js';

export interface SessionConfig {
  role: Role;
  /** Report media types we accept from the peer; empty: we do not need the peer's evidence. */
  accept: readonly string[];
  /** The report media type our provider produces; undefined: we cannot attest. */
  produces?: string;
  /** Our REQUESTs say `"batch": true`: we appraise batched evidence (docs/protocol.md §5.1). */
  batch?: boolean;
  /** Time allowed for each re-attestation exchange, ms. */
  exchangeTimeoutMs: number;
  /** Caps every control frame (see resolveFrameLimits). */
  maxControlPayload?: number;
  /** Largest payload per control frame type; missing entries keep DEFAULT_FRAME_LIMITS. */
  frameLimits?: Partial<FrameLimits>;
  /** 32 random bytes per call (injected so tests are deterministic). */
  random: () => Uint8Array;
  /** Decoded chain texts of the peer's evidence, kept by this side's Verifier (challenger.ts). */
  chains?: RecentTexts | undefined;
}

/** Bytes a peer may send before our side has seen the TLS handshake complete (its REQUEST, an ALERT). */
const MAX_EARLY_BYTES = 64 * 1024;

export type TimerKey = 'handshake' | 'challenge' | 'response';

export type SessionAction =
  /** Write these bytes (one encoded frame) to the TLS connection. */
  | { type: 'send'; bytes: Uint8Array }
  /**
   * Produce our evidence for this context, then feed 'evidence' or 'attest-failed'; with `known`
   * (the peer's initial REQUEST listed report digests) a 'key-proof' may answer instead; `batch`:
   * the peer's REQUEST accepts batched evidence.
   */
  | { type: 'attest'; context: Uint8Array; known?: Uint8Array[]; batch: boolean }
  /** Verify the peer's evidence for this context, then feed 'verified' or 'verify-failed'. */
  | { type: 'verify'; context: Uint8Array; evidence: DecodedCmw }
  /** Verify the peer's key proof (its digest is one we listed), then 'verified' or 'verify-failed'. */
  | { type: 'verify-proof'; context: Uint8Array; keyProof: KeyProofMessage }
  | { type: 'open'; peer: Claims | undefined }
  | { type: 'reattested'; claims: Claims }
  | { type: 'data'; payload: Uint8Array }
  /** The peer finished sending (TLS close_notify) after open: end the readable side. */
  | { type: 'end' }
  | { type: 'arm-timer'; key: TimerKey; ms: number }
  | { type: 'clear-timer'; key: TimerKey }
  /** Terminal. Sends (an ALERT) listed before it must be flushed, then the connection closed. */
  | { type: 'fail'; error: AttestationError };

export type SessionEvent =
  /**
   * TLS is up; `handshakeMs` is what is left of the whole-handshake budget; `known` the digests of
   * reports we hold for the peer's key, listed in our first REQUEST (§4.7).
   */
  | { type: 'start'; handshakeMs: number; known?: Uint8Array[] }
  | { type: 'bytes'; chunk: Uint8Array }
  | { type: 'evidence'; context: Uint8Array; cmw: CmwCollection }
  /** Our key proof for the peer's REQUEST `context`, sent instead of evidence. */
  | { type: 'key-proof'; context: Uint8Array; keyProof: KeyProofMessage }
  | { type: 'attest-failed'; context: Uint8Array; error: AttestationError }
  | { type: 'verified'; context: Uint8Array; claims: Claims }
  | { type: 'verify-failed'; context: Uint8Array; error: AttestationError }
  /** The application asks for fresh evidence from the peer. */
  | { type: 'reattest' }
  | { type: 'timeout'; key: TimerKey }
  /** The peer ended its sending side (close_notify / end of stream). */
  | { type: 'peer-end' }
  /** The transport is gone (closed, reset, aborted); `error` says why when known. */
  | { type: 'closed'; error?: AttestationError };

export type SessionState = 'new' | 'handshaking' | 'open' | 'closed' | 'failed';

interface Challenge {
  context: Uint8Array;
  /** Sent REQUEST, waiting for EVIDENCE; or got EVIDENCE, verifying. */
  stage: 'await-evidence' | 'verifying';
  /** The report digests this REQUEST listed (initial REQUEST only): a key proof may name one. */
  known?: Uint8Array[];
}

interface Response {
  context: Uint8Array;
  /** Producing our evidence; or sent EVIDENCE, waiting for RESULT. */
  stage: 'attesting' | 'await-result';
}

export class Session {
  readonly config: SessionConfig;
  #state: SessionState = 'new';
  #decoder: FrameDecoder;
  #used = new Set<string>();
  /** Our outstanding REQUEST (at most one). */
  #challenge: Challenge | undefined;
  /** The peer's outstanding REQUEST we are answering (at most one). */
  #response: Response | undefined;
  #peerRequestSeen = false;
  #peerEnded = false;
  /**
   * Bytes that arrived before start. An honest peer sends at most its REQUEST (and an ALERT)
   * before ours, so more than MAX_EARLY_BYTES is refused rather than held.
   */
  #early: Uint8Array[] = [];
  #earlyBytes = 0;
  #peer: Claims | undefined;
  #error: AttestationError | undefined;

  constructor(config: SessionConfig) {
    this.config = config;
    this.#decoder = new FrameDecoder({
      ...(config.maxControlPayload === undefined ? {} : { maxControlPayload: config.maxControlPayload }),
      ...(config.frameLimits === undefined ? {} : { limits: config.frameLimits }),
      onHeader: (type) => this.#header(type),
    });
  }

  get state(): SessionState {
    return this.#state;
  }
  get peer(): Claims | undefined {
    return this.#peer;
  }
  get error(): AttestationError | undefined {
    return this.#error;
  }
  /**
   * The payload of `chunk` when it is exactly one whole DATA frame arriving on an open session with
   * no partial frame held: the common case once open (the sender fills one TLS record with one
   * frame). Undefined otherwise, and the caller hands the chunk to handle() as usual. Changes no
   * state and allocates nothing, so bulk data skips the event and action objects.
   */
  dataPayload(chunk: Uint8Array): Uint8Array | undefined {
    if (this.#state !== 'open' || this.#decoder.buffered !== 0 || chunk.length <= HEADER_SIZE)
      return undefined;
    if (chunk[0] !== FrameType.DATA) return undefined;
    const length = ((chunk[1]! << 24) | (chunk[2]! << 16) | (chunk[3]! << 8) | chunk[4]!) >>> 0;
    if (length !== chunk.length - HEADER_SIZE || length > MAX_DATA_PAYLOAD) return undefined;
    return chunk.subarray(HEADER_SIZE);
  }

  /** True while a re-attestation we asked for is unanswered. */
  get challengePending(): boolean {
    return this.#challenge !== undefined;
  }

  handle(event: SessionEvent): SessionAction[] {
    if (this.#state === 'failed' || this.#state === 'closed') return [];
    const out: SessionAction[] = [];
    try {
      this.#dispatch(event, out);
    } catch (err) {
      // A non-AttestationError is a bug here, not the peer's doing: fail as ERR_INTERNAL rather than
      // throw out of a socket 'data' handler (which would take the whole process down).
      this.#fail(internalError(err, 'handling a channel event'), out, true);
    }
    return out;
  }

  #dispatch(event: SessionEvent, out: SessionAction[]): void {
    switch (event.type) {
      case 'start':
        this.#start(event.handshakeMs, event.known, out);
        return;
      case 'bytes':
        if (this.#state === 'new') {
          // The peer may finish TLS first and speak before our side reports the handshake done.
          this.#earlyBytes += event.chunk.length;
          if (this.#earlyBytes > MAX_EARLY_BYTES)
            throw protocol(`more than ${MAX_EARLY_BYTES} bytes before the TLS handshake completed`);
          this.#early.push(event.chunk);
          return;
        }
        // Each frame is handled before the next header is read, so the header checks (onHeader)
        // see the state every earlier frame left.
        this.#decoder.push(event.chunk, (frame) => {
          this.#frame(frame, out);
          return this.#state !== 'failed';
        });
        return;
      case 'evidence':
        this.#evidenceReady(event.context, () => encodeEvidence(event.context, event.cmw), out);
        return;
      case 'key-proof':
        this.#evidenceReady(event.context, () => encodeKeyProof(event.context, event.keyProof), out);
        return;
      case 'attest-failed':
        if (this.#response && same(this.#response.context, event.context)) this.#fail(event.error, out, true);
        return;
      case 'verified':
        this.#verified(event.context, event.claims, out);
        return;
      case 'verify-failed':
        this.#verifyFailed(event.context, event.error, out);
        return;
      case 'reattest':
        this.#reattest(out);
        return;
      case 'timeout':
        this.#timeout(event.key, out);
        return;
      case 'peer-end':
        this.#peerEnd(out);
        return;
      case 'closed':
        if (this.#state === 'open' && !this.#challenge && !this.#response) {
          this.#state = 'closed'; // nothing was pending: the end of an open channel, not an attestation failure
          return;
        }
        this.#fail(
          event.error ??
            new AttestationError(
              'ERR_CONNECTION_CLOSED',
              this.#state === 'open'
                ? 'connection closed during re-attestation'
                : 'connection closed during attestation',
            ),
          out,
          false,
        );
        return;
    }
  }

  #start(handshakeMs: number, known: Uint8Array[] | undefined, out: SessionAction[]): void {
    if (this.#state !== 'new') throw protocol('session started twice');
    this.#state = 'handshaking';
    out.push({ type: 'arm-timer', key: 'handshake', ms: handshakeMs });
    const context = this.#freshContext();
    // Digests go only with evidence asked for: a key proof answers a REQUEST, nothing else.
    const listed = this.config.accept.length > 0 && known && known.length > 0 ? known : undefined;
    out.push({ type: 'send', bytes: this.#requestFrame(context, listed) });
    if (this.config.accept.length > 0)
      this.#challenge = { context, stage: 'await-evidence', ...(listed ? { known: listed } : {}) };
    for (const chunk of this.#early.splice(0)) {
      this.#dispatch({ type: 'bytes', chunk }, out);
      if ((this.#state as SessionState) === 'failed') return;
    }
  }

  /**
   * Refuses from its header a frame this state cannot take, before its payload is buffered: so
   * only an EVIDENCE we asked for can make us hold up to its (large) limit, and DATA (64 KiB)
   * only once open. The same rules are checked again on the whole frame (#frame).
   */
  #header(type: FrameType): void {
    if (type === FrameType.ALERT) return;
    if (!this.#peerRequestSeen && type !== FrameType.REQUEST)
      throw protocol(`${frameName(type)} before the peer's first REQUEST`);
    if (type === FrameType.DATA && this.#state !== 'open') throw protocol('DATA before the channel is open');
    if (type === FrameType.EVIDENCE && this.#challenge?.stage !== 'await-evidence')
      throw protocol('EVIDENCE that answers no outstanding REQUEST');
    if (type === FrameType.RESULT && this.#response?.stage !== 'await-result')
      throw protocol('RESULT for no EVIDENCE we sent');
  }

  #frame(frame: Frame, out: SessionAction[]): void {
    if (frame.type === FrameType.ALERT) {
      const alert = parseAlert(frame.payload);
      this.#fail(peerRejected(alert.code, alert.reason, 'ALERT'), out, false);
      return;
    }
    if (!this.#peerRequestSeen && frame.type !== FrameType.REQUEST)
      throw protocol(`${frameName(frame.type)} before the peer's first REQUEST`);
    switch (frame.type) {
      case FrameType.REQUEST:
        this.#request(frame.payload, out);
        return;
      case FrameType.EVIDENCE: {
        const msg = parseEvidence(frame.payload);
        const c = this.#challenge;
        if (c?.stage !== 'await-evidence' || !same(c.context, msg.context))
          throw protocol('EVIDENCE that answers no outstanding REQUEST');
        if (msg.keyProof) {
          // Only for a report we named: a proof is worth nothing without our copy of its evidence.
          if (!c.known) throw protocol('a key proof answers a REQUEST that listed no known report');
          const digest = msg.keyProof.known;
          if (!c.known.some((d) => same(d, digest)))
            throw protocol('a key proof for a report the REQUEST did not list as known');
          c.stage = 'verifying';
          out.push({ type: 'verify-proof', context: c.context, keyProof: msg.keyProof });
          return;
        }
        // decodeCmw throws ERR_EVIDENCE_MALFORMED / ERR_UNSUPPORTED_EVIDENCE, which keep their code.
        const evidence = decodeCmw(msg.evidence, this.config.accept, {
          batch: this.config.batch === true,
          chains: this.config.chains,
        });
        c.stage = 'verifying';
        out.push({ type: 'verify', context: c.context, evidence });
        return;
      }
      case FrameType.RESULT: {
        const msg = parseResult(frame.payload);
        const r = this.#response;
        if (r?.stage !== 'await-result' || !same(r.context, msg.context))
          throw protocol('RESULT for no EVIDENCE we sent');
        if (!msg.ok) {
          this.#fail(peerRejected(msg.code, msg.reason, 'RESULT'), out, false);
          return;
        }
        this.#response = undefined;
        if (this.#state === 'open') out.push({ type: 'clear-timer', key: 'response' });
        else this.#maybeOpen(out);
        return;
      }
      case FrameType.DATA:
        if (this.#state !== 'open') throw protocol('DATA before the channel is open');
        if (frame.payload.length > 0) out.push({ type: 'data', payload: frame.payload });
        return;
    }
  }

  #request(payload: Uint8Array, out: SessionAction[]): void {
    const msg = parseRequest(payload);
    const initial = !this.#peerRequestSeen;
    if (!initial) {
      if (this.#state !== 'open') throw protocol('a second REQUEST before the channel is open');
      if (this.#response) throw protocol('a REQUEST while the previous one is still being answered');
      if (msg.accept.length === 0) throw protocol('a re-attestation REQUEST must accept some evidence');
      // Re-attestation asks for the peer's current state: only new hardware evidence says it.
      if (msg.known) throw protocol('a re-attestation REQUEST must not list known reports');
    }
    if (msg.known && msg.accept.length === 0)
      throw protocol('a REQUEST that accepts no evidence lists known reports');
    const key = bytesToHex(msg.context);
    if (this.#used.has(key)) throw protocol('REQUEST repeats a context already used on this connection');
    this.#used.add(key);
    this.#peerRequestSeen = true;
    if (msg.accept.length === 0) {
      if (this.config.accept.length === 0)
        throw protocol('neither side asked for evidence; that would be plain TLS');
      this.#maybeOpen(out);
      return;
    }
    const produces = this.config.produces;
    if (produces === undefined)
      throw new AttestationError(
        'ERR_UNSUPPORTED_EVIDENCE',
        'the peer asked for evidence and this side has none',
      );
    if (!msg.accept.includes(produces))
      throw new AttestationError(
        'ERR_UNSUPPORTED_EVIDENCE',
        `the peer accepts ${msg.accept.join(', ')}; this side produces ${produces}`,
      );
    this.#response = { context: msg.context, stage: 'attesting' };
    if (!initial) out.push({ type: 'arm-timer', key: 'response', ms: this.config.exchangeTimeoutMs });
    out.push({
      type: 'attest',
      context: msg.context,
      batch: msg.batch,
      ...(msg.known ? { known: msg.known } : {}),
    });
  }

  /** Sends our EVIDENCE frame (evidence or key proof, encoded by `encode`) for the peer's REQUEST `context`. */
  #evidenceReady(context: Uint8Array, encode: () => Uint8Array, out: SessionAction[]): void {
    const r = this.#response;
    if (r?.stage !== 'attesting' || !same(r.context, context)) return; // stale: ignore
    r.stage = 'await-result';
    out.push({ type: 'send', bytes: encode() });
  }

  #verified(context: Uint8Array, claims: Claims, out: SessionAction[]): void {
    const c = this.#challenge;
    if (c?.stage !== 'verifying' || !same(c.context, context)) return;
    this.#challenge = undefined;
    this.#peer = claims;
    out.push({ type: 'send', bytes: encodeResult(context) });
    if (this.#state === 'open') {
      out.push({ type: 'clear-timer', key: 'challenge' }, { type: 'reattested', claims });
    } else this.#maybeOpen(out);
  }

  #verifyFailed(context: Uint8Array, error: AttestationError, out: SessionAction[]): void {
    const c = this.#challenge;
    if (c?.stage !== 'verifying' || !same(c.context, context)) return;
    // RESULT ok:false tells the peer which exchange failed; the ALERT that follows closes.
    out.push({ type: 'send', bytes: encodeResult(context, { code: error.code, reason: error.message }) });
    this.#fail(error, out, true);
  }

  #reattest(out: SessionAction[]): void {
    if (this.#state !== 'open') throw new AttestationError('ERR_INVALID_ARGUMENT', 'the channel is not open');
    if (this.config.accept.length === 0)
      throw new AttestationError(
        'ERR_INVALID_ARGUMENT',
        'this side does not verify the peer (no verify options)',
      );
    if (this.#challenge) return; // one at a time: the caller joins the pending one
    if (this.#peerEnded) throw new AttestationError('ERR_CONNECTION_CLOSED', 'the peer has ended its side');
    const context = this.#freshContext();
    this.#challenge = { context, stage: 'await-evidence' };
    out.push(
      { type: 'arm-timer', key: 'challenge', ms: this.config.exchangeTimeoutMs },
      { type: 'send', bytes: this.#requestFrame(context) },
    );
  }

  /** Our REQUEST; it asks for batches only when we verify (an empty accept wants no evidence). */
  #requestFrame(context: Uint8Array, known?: Uint8Array[]): Uint8Array {
    const batch = this.config.batch === true && this.config.accept.length > 0;
    return encodeRequest(context, this.config.accept, {
      ...(batch ? { batch } : {}),
      ...(known ? { known } : {}),
    });
  }

  #timeout(key: TimerKey, out: SessionAction[]): void {
    const live =
      (key === 'handshake' && this.#state === 'handshaking') ||
      (key === 'challenge' && this.#state === 'open' && this.#challenge !== undefined) ||
      (key === 'response' && this.#state === 'open' && this.#response !== undefined);
    if (!live) return;
    const what =
      key === 'handshake'
        ? 'the attestation handshake'
        : key === 'challenge'
          ? "the peer's answer to our re-attestation"
          : "the peer's RESULT for our evidence";
    this.#fail(new AttestationError('ERR_ATTESTATION_TIMEOUT', `timed out waiting for ${what}`), out, true);
  }

  #peerEnd(out: SessionAction[]): void {
    this.#peerEnded = true;
    if (this.#state !== 'open' || this.#challenge || this.#response) {
      const error = new AttestationError(
        'ERR_CONNECTION_CLOSED',
        this.#state === 'open'
          ? 'the peer ended the connection during re-attestation'
          : 'the peer ended the connection during attestation',
      );
      // The peer can no longer read our reply reliably, but an ALERT costs nothing and may help.
      this.#fail(error, out, true);
      return;
    }
    out.push({ type: 'end' });
  }

  #maybeOpen(out: SessionAction[]): void {
    if (this.#state !== 'handshaking' || !this.#peerRequestSeen || this.#challenge || this.#response) return;
    this.#state = 'open';
    out.push({ type: 'clear-timer', key: 'handshake' }, { type: 'open', peer: this.#peer });
  }

  #fail(error: AttestationError, out: SessionAction[], alert: boolean): void {
    if (this.#state === 'failed') return;
    const wasOpen = this.#state !== 'new';
    this.#state = 'failed';
    this.#error = error;
    if (alert && wasOpen) out.push({ type: 'send', bytes: encodeAlert(error.code, error.message) });
    out.push(
      { type: 'clear-timer', key: 'handshake' },
      { type: 'clear-timer', key: 'challenge' },
      { type: 'clear-timer', key: 'response' },
      { type: 'fail', error },
    );
  }

  #freshContext(): Uint8Array {
    for (;;) {
      const context = this.config.random();
      if (context.length !== CONTEXT_SIZE)
        throw new AttestationError('ERR_INVALID_ARGUMENT', 'random() must give 32 bytes');
      const key = bytesToHex(context);
      if (!this.#used.has(key)) {
        this.#used.add(key);
        return context;
      }
    }
  }
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

function protocol(message: string): AttestationError {
  return new AttestationError('ERR_PROTOCOL', message);
}

function frameName(type: FrameType): string {
  return ['', 'REQUEST', 'EVIDENCE', 'RESULT', 'DATA', 'ALERT'][type] ?? String(type);
}

function peerRejected(code: string, reason: string, via: 'ALERT' | 'RESULT'): AttestationError {
  return new AttestationError(
    'ERR_PEER_REJECTED',
    `the peer refused (${code})${reason ? `: ${reason}` : ''}`,
    {
      details: { peerCode: code, peerReason: reason, via },
    },
  );
}
