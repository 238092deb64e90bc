/**
 * AttestedChannel: the application's view of an attested-channel/1 connection, and the driver that
 * performs the I/O the pure session (session.ts) asks for: TLS checks, exporters and binders, the
 * evidence provider, the verifier, timers, and DATA in both directions once the channel is open.
 */
import { X509Certificate } from 'node:crypto';
import { AttestationError, internalError } from '../errors.js';
import { challengerStateOf } from '../evidence/challenger.js';
import type { Claims } from '../evidence/types.js';
import { certificateSpki } from '../evidence/x509/cert.js';
import { tlsProblem } from './binder.js';
import { acceptedMediaTypes, mediaTypeOf } from './cmw.js';
import { freshContext } from './contexts.js';
import { DataWriter } from './data-writer.js';
import { EvidenceTasks } from './evidence-tasks.js';
import { Operations, type PeerClaims } from './exchange.js';
import { encodeAlert } from './frames.js';
import { Opening } from './opening.js';
import { type ChannelParams, DEFAULT_TIMEOUT_MS, type Role } from './options.js';
import { ReattestSchedule, reattestRefusal } from './reattest.js';
import { Session, type SessionAction, type SessionEvent } from './session.js';
import { SessionTimers } from './session-timers.js';
import { SocketDuplex, transportError } from './socket-duplex.js';

/** After a failure we end TLS gracefully so the ALERT arrives; a peer that never closes is cut off after this. */
const CLOSE_GRACE_MS = 1_000;

/**
 * A Duplex that only ever carries attested bytes. attestedConnect() resolves with it, and an
 * attested server emits it in 'channel', once it is open: the peer's evidence (when asked for) is
 * verified and bound to this very connection. Events beyond Duplex: 'reattested' (claims) after
 * each successful re-attestation, 'timeout' (see setTimeout).
 */
export class AttestedChannel extends SocketDuplex {
  readonly role: Role;
  #params: ChannelParams;
  #session: Session;
  #tlsUp = false;
  #timers = new SessionTimers((key) => this.#feed({ type: 'timeout', key }));
  #tlsTimer: NodeJS.Timeout | undefined;
  #reattestSchedule: ReattestSchedule;
  #graceTimer: NodeJS.Timeout | undefined;
  #operations = new Operations();
  #tasks: EvidenceTasks;
  #opened = false;
  /** Until the application has had its chance to receive the channel (see #fail). */
  #justOpened = false;
  #failure: AttestationError | undefined;
  #transportError: AttestationError | undefined;
  #writer: DataWriter;
  #waiters: Array<{ resolve: (c: Claims) => void; reject: (e: AttestationError) => void }> = [];
  #peer: PeerClaims | undefined;
  /**
   * The peer's certificate of this handshake as DER (own copy); the X509Certificate is made when
   * `peerCertificate` is first read. An OpenSSL X509 per held channel, which most applications
   * never look at, was ~2 KiB of native memory each.
   */
  #peerDer: Uint8Array | undefined;
  #peerCert: X509Certificate | undefined;
  #peerSpki: Uint8Array | undefined;
  #opening = new Opening<AttestedChannel>();
  /** Only with a signal: a listener on it. */
  #onAbort: (() => void) | undefined;

  /** @internal Channels are made by attestedConnect() and createAttestedServer(). */
  constructor(params: ChannelParams) {
    super(params.socket, { allowHalfOpen: params.options.allowHalfOpen === true });
    this.#params = params;
    this.role = params.role;
    this.#writer = new DataWriter(params.socket);
    this.#tasks = new EvidenceTasks(params, this.#operations, (event) => this.#feed(event));
    this.#reattestSchedule = new ReattestSchedule(params.options.reattestEvery, () =>
      this.#scheduledReattest(),
    );
    const { options, internals, role } = params;
    const challenger = challengerStateOf(params.verifier ?? options.verify?.verifier);
    this.#session = new Session({
      role,
      // Only the formats the policy names (a policy naming none: every format).
      accept: options.verify ? acceptedMediaTypes(params.policy ?? options.verify.policy) : [],
      ...(options.evidence ? { produces: mediaTypeOf(options.evidence.format) } : {}),
      batch: options.batch !== false,
      exchangeTimeoutMs: options.timeout ?? DEFAULT_TIMEOUT_MS,
      ...(options.maxControlPayload === undefined ? {} : { maxControlPayload: options.maxControlPayload }),
      ...(options.frameLimits === undefined ? {} : { frameLimits: options.frameLimits }),
      // A server's own source first; else the Verifier's (challenger.ts), shared by its channels.
      random: internals?.random ?? params.contexts ?? challenger?.nonces.next ?? freshContext,
      chains: challenger?.chains,
    });
    const socket = params.socket;
    // Half-close must survive a generic Duplex transport too (net sockets get it from the server).
    socket.allowHalfOpen = true;
    socket.once(this.role === 'client' ? 'secureConnect' : 'secure', () => this.#onSecure());
    socket.on('data', (chunk: Buffer) => {
      // Bulk data skips the session's event and action objects (see Session#dataPayload).
      const payload = this.#session.dataPayload(chunk);
      if (payload === undefined) this.#feed({ type: 'bytes', chunk });
      else if (!this.push(payload)) socket.pause();
    });
    socket.on('end', () => this.#feed({ type: 'peer-end' }));
    socket.on('error', (err: Error) => this.#onTransportError(err));
    socket.on('close', () => this.#onTransportClose());
    this.#tlsTimer = setTimeout(
      () =>
        this.#fail(
          new AttestationError(
            'ERR_ATTESTATION_TIMEOUT',
            // The timeout the caller set, not the fractional budget left after connecting
            // ("499.828845 ms"), which names no setting.
            `TLS handshake not done within the ${params.options.timeout ?? DEFAULT_TIMEOUT_MS} ms timeout`,
          ),
        ),
      params.timeoutMs,
    );
    const signal = params.signal;
    if (signal) {
      this.#onAbort = () => {
        this.#fail(new AttestationError('ERR_ABORTED', 'aborted', { cause: signal.reason }));
      };
      if (signal.aborted) queueMicrotask(this.#onAbort);
      else signal.addEventListener('abort', this.#onAbort, { once: true });
    }
  }

  /**
   * @internal Whether `value` was made by this class: a brand check on a private field, which no
   * other object can pass (a socket with a forged `peer` property, an Object.create() look-alike).
   */
  static isChannel(value: unknown): value is AttestedChannel {
    return typeof value === 'object' && value !== null && #params in value;
  }

  /** @internal Settles when the channel opens (or fails). */
  get ready(): Promise<AttestedChannel> {
    return this.#opening.promise;
  }

  /**
   * The peer's verified claims; undefined when this side did not ask the peer to attest. `reused`
   * and `evidenceAge` say whether they come from a key proof over evidence verified earlier.
   */
  get peer(): PeerClaims | undefined {
    return this.#peer;
  }

  /**
   * The certificate the peer presented in this TLS handshake; its key is what the evidence binds.
   * (socket.getPeerCertificate() answers {} once the channel has read it: Node returns the peer's
   * certificate to one reader.)
   */
  get peerCertificate(): X509Certificate | undefined {
    if (this.#peerCert === undefined && this.#peerDer !== undefined)
      this.#peerCert = new X509Certificate(this.#peerDer);
    return this.#peerCert;
  }

  /** True once the attestation exchange completed. */
  get attested(): boolean {
    return this.#opened;
  }

  /**
   * Asks the peer for fresh evidence on this connection (a new REQUEST with a fresh context); DATA
   * keeps flowing meanwhile. Resolves with the peer's new verified claims (also in `peer`). Calls
   * while one is pending share it. A failure closes the channel with that error.
   */
  reattest(): Promise<Claims> {
    const refusal = reattestRefusal({
      failure: this.#failure,
      open: this.#opened,
      destroyed: this.destroyed,
      verifies: this.#params.options.verify !== undefined,
      sessionOpen: this.#session.state === 'open',
      peerEnded: this.socket.readableEnded,
      weEnded: this.socket.writableEnded,
    });
    if (refusal) return Promise.reject(refusal);
    const promise = new Promise<Claims>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    this.#feed({ type: 'reattest' });
    return promise;
  }

  // ---- Duplex -------------------------------------------------------------------------------

  override _read(): void {
    if (this.socket.isPaused()) this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#writeChunks([chunk], callback);
  }

  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: (error?: Error | null) => void,
  ): void {
    this.#writeChunks(
      chunks.map((c) => c.chunk),
      callback,
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#failure) {
      callback(this.#failure);
      return;
    }
    if (!this.#opened) {
      this.#opening.holdFinal(callback);
      return;
    }
    this.#writer.flush();
    this.socket.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#clearTimers();
    this.#writer.releaseWaiter();
    this.#operations.stop(null);
    if (this.#onAbort) this.#params.signal?.removeEventListener('abort', this.#onAbort);
    // Built only when someone is waiting: an Error captures a stack, and most channels end open.
    if (this.#waiters.length > 0 || !this.#opened) {
      const closed =
        this.#failure ?? new AttestationError('ERR_CONNECTION_CLOSED', 'the channel was destroyed');
      this.#rejectWaiters(closed);
      if (!this.#opened) this.#opening.reject(closed);
    }
    // After a failure the socket is being ended gracefully (so the ALERT arrives). After both
    // sides ended, the socket closes itself once our last DATA is flushed. Otherwise cut it.
    const socket = this.socket;
    const orderlyEnd = error === null && socket.writableEnded && socket.readableEnded;
    if (!this.#failure && !orderlyEnd) socket.destroy();
    callback(error);
  }

  // ---- driver -------------------------------------------------------------------------------

  #writeChunks(chunks: Buffer[], callback: (error?: Error | null) => void): void {
    if (this.#failure) {
      callback(this.#failure);
      return;
    }
    if (!this.#opened) {
      // Held until open (Writable serialises writes, so there is at most one), dropped on failure.
      this.#opening.hold({ chunks, callback });
      return;
    }
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded) {
      callback(new AttestationError('ERR_CONNECTION_CLOSED', 'the connection is closed'));
      return;
    }
    this.#writer.write(chunks, callback);
  }

  #onSecure(): void {
    if (this.#failure || this.destroyed) return;
    clearTimeout(this.#tlsTimer);
    this.#tlsTimer = undefined;
    this.#tlsUp = true;
    const socket = this.socket;
    const problem = tlsProblem(socket);
    if (problem) {
      const error = new AttestationError('ERR_TLS', `refused ${problem}`);
      socket.write(encodeAlert(error.code, error.message));
      this.#fail(error);
      return;
    }
    // Captured now: OpenSSL may drop the peer certificate from the session later (TLS 1.3 tickets),
    // and every re-attestation must bind to the certificate of this handshake.
    const cert = socket.getPeerX509Certificate();
    if (cert) {
      this.#peerDer = new Uint8Array(cert.raw);
      try {
        this.#peerSpki = certificateSpki(this.#peerDer, 'ERR_TLS');
      } catch (err) {
        // A certificate we cannot read is ERR_TLS (certificateSpki says so); anything else is ours.
        this.#fail(internalError(err, "reading the peer's TLS certificate"));
        return;
      }
    }
    const session = this.#session;
    const elapsed = performance.now() - this.#startedAt;
    const known = this.#tasks.firstRequest(this.#peerSpki);
    this.#run(
      session.handle({
        type: 'start',
        handshakeMs: Math.max(1, this.#params.timeoutMs - elapsed),
        ...(known ? { known } : {}),
      }),
    );
  }

  #startedAt = performance.now();

  #feed(event: SessionEvent): void {
    this.#run(this.#session.handle(event));
  }

  #run(actions: SessionAction[]): void {
    for (const a of actions) {
      switch (a.type) {
        case 'send':
          this.#writer.flush();
          if (!this.socket.destroyed && !this.socket.writableEnded) this.socket.write(a.bytes);
          break;
        case 'attest':
          void this.#tasks.attest(a.context, a.known, a.batch);
          break;
        case 'verify':
          void this.#tasks.verify(a.context, a.evidence, this.#peerSpki, !this.#opened);
          break;
        case 'verify-proof':
          void this.#tasks.verifyProof(a.context, a.keyProof, this.#peerSpki);
          break;
        case 'open':
          this.#open(a.peer);
          break;
        case 'reattested':
          this.#peer = a.claims as PeerClaims;
          for (const w of this.#waiters.splice(0)) w.resolve(a.claims);
          this.emit('reattested', a.claims);
          this.#scheduleReattest();
          break;
        case 'data':
          if (!this.push(a.payload)) this.socket.pause();
          break;
        case 'end':
          this.push(null);
          break;
        case 'arm-timer':
          this.#timers.arm(a.key, a.ms);
          break;
        case 'clear-timer':
          this.#timers.clear(a.key);
          break;
        case 'fail':
          this.#fail(a.error);
          break;
      }
    }
  }

  #open(peer: Claims | undefined): void {
    this.#opened = true;
    this.#justOpened = true;
    setImmediate(() => {
      this.#justOpened = false;
    });
    this.#peer = peer as PeerClaims | undefined;
    const { held, final } = this.#opening.release();
    if (held) this.#writeChunks(held.chunks, held.callback);
    if (final) {
      this.#writer.flush();
      this.socket.end();
      final();
    }
    this.#scheduleReattest();
    this.#opening.resolve(this);
  }

  #scheduleReattest(): void {
    if (this.destroyed || this.#failure) return;
    this.#reattestSchedule.arm();
  }

  /** A scheduled re-attestation; a failure closes the channel with its code ('error' reports it). */
  #scheduledReattest(): void {
    this.reattest().catch((err: AttestationError) => {
      // It could not even start (the peer ended its side, or we ended ours, on a half-open
      // channel): carrying on would keep the channel open unattested, silently. End it instead.
      if (this.#failure || this.destroyed) return;
      const error = new AttestationError(
        'ERR_CONNECTION_CLOSED',
        `the scheduled re-attestation cannot run: ${err.message}`,
        { details: { reattest: 'not-possible' } },
      );
      if (!this.socket.destroyed && !this.socket.writableEnded)
        this.socket.write(encodeAlert(error.code, error.message));
      this.#fail(error);
    });
  }

  #onTransportError(err: Error): void {
    this.#transportError ??= transportError(err);
  }

  #onTransportClose(): void {
    clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
    if (this.#failure) return;
    const error = this.#transportError;
    this.#feed(error ? { type: 'closed', error } : { type: 'closed' });
    if (this.#failure || this.destroyed) return;
    // An open channel whose transport is gone: end the readable side, then close.
    if (!this.readableEnded) this.push(null);
    this.destroy(error);
  }

  #fail(error: AttestationError): void {
    if (this.#failure || (this.destroyed && this.#opened)) return;
    this.#failure = error;
    this.#writer.discard(); // unsent DATA goes nowhere after a failure
    this.#clearTimers();
    this.#operations.stop(error);
    const socket = this.socket;
    if (!socket.destroyed) {
      if (this.#tlsUp && !socket.writableEnded) {
        // End TLS gracefully so a queued ALERT reaches the peer; cut it off if the peer lingers.
        socket.end();
        this.#graceTimer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
        this.#graceTimer.unref();
      } else socket.destroy();
    }
    const { held, final } = this.#opening.release();
    this.#rejectWaiters(error);
    // A failure in the very tick the channel opened (the peer's last handshake frame and a bad one
    // in one read) would emit 'error' before the 'channel' handler or the `await attestedConnect()`
    // continuation could listen (process.nextTick runs before promise reactions), and Node throws an
    // unheard 'error': one peer could take the whole process down. Report it once they have run.
    if (this.#opened && this.#justOpened) setImmediate(() => this.destroy(error));
    else if (this.#opened) this.destroy(error);
    else {
      this.#opening.reject(error);
      // Before open the error travels through the promise / 'attestationError', not an 'error' event
      // (nobody may be listening yet).
      this.destroy();
    }
    // After destroy, so the callbacks' error cannot turn into an unhandled 'error' event.
    held?.callback(error);
    final?.(error);
  }

  #rejectWaiters(error: AttestationError): void {
    for (const w of this.#waiters.splice(0)) w.reject(error);
  }

  #clearTimers(): void {
    clearTimeout(this.#tlsTimer);
    this.#tlsTimer = undefined;
    this.#reattestSchedule.cancel();
    this.#timers.clearAll();
  }
}
