/** createAttestedServer(): the server end of attested-channel/1, on TCP or on Duplexes handed in. */
import { EventEmitter } from 'node:events';
import { type AddressInfo, createServer as createNetServer, isIP, type Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { type SecureContext, TLSSocket } from 'node:tls';
import { AttestationError } from '../errors.js';
import { type BatchScheduler, schedulerFor } from './batch-scheduler.js';
import { ALPN_PROTOCOLS } from './binder.js';
import { AttestedChannel } from './channel.js';
import { ChainEncoder } from './cmw.js';
import { ContextSource } from './contexts.js';
import { checkIdentity, createTlsIdentity, secureContextFor, type TlsIdentity } from './identity.js';
import {
  type ChannelInternals,
  type ChannelOptions,
  checkChannelOptions,
  DEFAULT_TIMEOUT_MS,
  INTERNAL,
} from './options.js';

export interface AttestedServerOptions extends ChannelOptions {
  /**
   * TLS identity. Default: one generated for this server. 'per-connection' generates a fresh key
   * and certificate for every connection.
   */
  identity?: TlsIdentity | 'per-connection';
  /**
   * listen() backlog: connections the kernel queues while the event loop is busy (evidence and
   * verification are CPU work). Default 511, as net.Server; the kernel caps it at somaxconn.
   */
  backlog?: number;
  /**
   * Connections allowed in their TLS handshake or attestation exchange at once; each further one
   * is closed at once (before any TLS work) and counted in `droppedCount` and a 'drop' event.
   * Default DEFAULT_MAX_PENDING_CONNECTIONS (1 000).
   */
  maxPendingConnections?: number;
}

/**
 * Each pending connection holds a TLS state and at most one partial frame for up to `timeout`
 * (an EVIDENCE only when this server asked for one, and then only as much as the client sent):
 * a bound on what a flood of connections that never finish can hold, with room for bursts.
 */
export const DEFAULT_MAX_PENDING_CONNECTIONS = 1000;

/** What a 'drop' event tells about the connection refused. */
export interface DropInfo {
  /** Channels pending when it arrived (the limit). */
  pendingCount: number;
  /** Connections dropped so far, this one included. */
  droppedCount: number;
  remoteAddress?: string;
  remotePort?: number;
}

export interface AttestedServerEvents {
  channel: [AttestedChannel];
  attestationError: [AttestationError];
  listening: [];
  close: [];
  error: [Error];
  drop: [DropInfo];
}

export class AttestedServer extends EventEmitter<AttestedServerEvents> {
  readonly #options: AttestedServerOptions;
  readonly #identity: TlsIdentity | undefined;
  /** The TLS context of #identity, made once for all connections (whatever object the identity is). */
  readonly #secureContext: SecureContext | undefined;
  /** Our provider attests every connection with the same chain: its encoding is kept here. */
  readonly #chains = new ChainEncoder();
  /** The contexts of its channels' REQUESTs (mutual and re-attestation), cut from one CSPRNG read per 32. */
  readonly #contexts = new ContextSource();
  /** One report in flight for all our connections, serving every exchange that waits for it. */
  readonly #batcher: BatchScheduler | undefined;
  #net: NetServer | undefined;
  #pending = new Set<AttestedChannel>();
  /** A channel's own entry is in #pending until it opens: more than one means others are opening. */
  readonly #othersOpening = (): boolean => this.#pending.size > 1;
  readonly #maxPending: number;
  #dropped = 0;

  /** @internal Use createAttestedServer(). */
  constructor(options: AttestedServerOptions) {
    super();
    checkChannelOptions(options, 'createAttestedServer');
    const identity = options.identity;
    if (identity !== undefined && identity !== 'per-connection')
      checkIdentity(identity, 'createAttestedServer (or "per-connection")');
    const maxPending = options.maxPendingConnections ?? DEFAULT_MAX_PENDING_CONNECTIONS;
    if (!(Number.isSafeInteger(maxPending) && maxPending >= 1))
      throw new AttestationError(
        'ERR_INVALID_ARGUMENT',
        'createAttestedServer: maxPendingConnections must be a positive integer',
      );
    this.#maxPending = maxPending;
    this.#options = options;
    this.#batcher = schedulerFor(options.batch, options.evidence);
    if (identity !== 'per-connection') {
      this.#identity = identity ?? createTlsIdentity();
      this.#secureContext = secureContextFor(this.#identity, 'server'); // now: a bad identity fails here
    }
  }

  /** The server's TLS identity (undefined with identity: 'per-connection'). */
  get identity(): TlsIdentity | undefined {
    return this.#identity;
  }

  /** The scheduler that batches this server's evidence (undefined when batching is off or it does not attest). */
  get batchScheduler(): BatchScheduler | undefined {
    return this.#batcher;
  }

  /** Channels still in their TLS handshake or attestation exchange. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Connections closed at once because maxPendingConnections were already pending. */
  get droppedCount(): number {
    return this.#dropped;
  }

  /** net.Server#listen semantics: listen(port?, host?, callback?). */
  listen(port?: number, host?: string | (() => void), callback?: () => void): this {
    if (typeof host === 'function') {
      callback = host;
      host = undefined;
    }
    if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port < 65536))
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'listen: port must be an integer in 0..65535');
    if (host !== undefined && typeof host !== 'string')
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'listen: host must be a string');
    if (callback !== undefined && typeof callback !== 'function')
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'listen: callback must be a function');
    if (!this.#net) {
      const net = createNetServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
      net.on('listening', () => this.emit('listening'));
      net.on('close', () => this.emit('close'));
      net.on('error', (err) => this.emit('error', err));
      this.#net = net;
    }
    if (callback) this.once('listening', callback);
    const backlog = this.#options.backlog ?? 511;
    if (host === undefined) this.#net.listen({ port, backlog });
    else this.#net.listen({ port, host, backlog });
    return this;
  }

  address(): AddressInfo | string | null {
    return this.#net?.address() ?? null;
  }

  get listening(): boolean {
    return this.#net?.listening ?? false;
  }

  /** Stops accepting connections; channels already open stay up (net.Server semantics). */
  close(callback?: (err?: Error) => void): this {
    if (!this.#net) {
      if (callback) queueMicrotask(() => callback(new Error('Server is not running.')));
      return this;
    }
    this.#net.close(callback);
    return this;
  }

  /**
   * Serves one attested channel over any Duplex (a WebSocket stream, a socket pair, ...). Returns
   * the channel at once: bytes written to it are held until it opens. 'channel' is emitted when it
   * opens, 'attestationError' when it fails, with the peer's address in details.remote: `peer`'s,
   * else the duplex's own (a net.Socket has one; a WebSocket stream does not). When
   * maxPendingConnections channels are already pending, the duplex is destroyed at once, 'drop'
   * is emitted, and undefined is returned.
   */
  accept(duplex: Duplex, peer?: PeerAddress): AttestedChannel | undefined {
    if (typeof duplex?.write !== 'function' || typeof duplex?.on !== 'function')
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'accept() needs a Duplex stream');
    const { remoteAddress, remotePort } = peer ?? (duplex as PeerAddress);
    if (this.#pending.size >= this.#maxPending) {
      this.#dropped++;
      duplex.destroy();
      this.emit('drop', {
        pendingCount: this.#pending.size,
        droppedCount: this.#dropped,
        ...(typeof remoteAddress === 'string' ? { remoteAddress } : {}),
        ...(typeof remotePort === 'number' ? { remotePort } : {}),
      });
      return undefined;
    }
    // Read now: once the connection has closed, a socket no longer knows its peer.
    const remote = formatPeer({ remoteAddress, remotePort });
    const options = this.#options;
    const identity = this.#identity ?? createTlsIdentity();
    const tlsSocket = new TLSSocket(duplex, {
      isServer: true,
      secureContext: this.#secureContext ?? secureContextFor(identity, 'server'),
      ALPNProtocols: ALPN_PROTOCOLS,
      // A client certificate is only wanted when the client must attest (its key goes into the binder).
      requestCert: options.verify !== undefined,
      rejectUnauthorized: false,
    });
    tlsSocket.once('close', () => {
      if (!duplex.destroyed) duplex.destroy();
    });
    const channel = new AttestedChannel({
      socket: tlsSocket,
      role: 'server',
      identity,
      options,
      chains: this.#chains,
      batcher: this.#batcher,
      contexts: this.#contexts.next,
      othersOpening: this.#othersOpening,
      timeoutMs: options.timeout ?? DEFAULT_TIMEOUT_MS,
      internals: (options as { [INTERNAL]?: ChannelInternals })[INTERNAL],
    });
    this.#pending.add(channel);
    channel.ready.then(
      () => {
        this.#pending.delete(channel);
        this.emit('channel', channel);
      },
      (err: AttestationError) => {
        this.#pending.delete(channel);
        this.emit('attestationError', remote === undefined ? err : withRemote(err, remote));
      },
    );
    return channel;
  }
}

/** Where a connection comes from: net.Socket's fields, or what a transport (a WebSocket) knew. */
export interface PeerAddress {
  remoteAddress?: string | undefined;
  remotePort?: number | undefined;
}

/**
 * The error with the refused client's address in its details, for the logs. A copy: the same
 * error object can be shared by several connections (a collateral fetch that failed once for all
 * the verifications waiting on it), and each must name its own client.
 */
function withRemote(err: AttestationError, remote: string): AttestationError {
  const copy = new AttestationError(err.code, err.message, {
    ...(err.cause === undefined ? {} : { cause: err.cause }),
    details: { ...err.details, remote },
  });
  if (err.stack) copy.stack = err.stack;
  return copy;
}

/** "203.0.113.7:51522" or "[2001:db8::7]:51522"; undefined when the address is not known. */
function formatPeer(peer: PeerAddress | undefined): string | undefined {
  const address = peer?.remoteAddress;
  if (typeof address !== 'string' || address === '') return undefined;
  const port = peer?.remotePort;
  const host = isIP(address) === 6 ? `[${address}]` : address;
  return typeof port === 'number' ? `${host}:${port}` : host;
}

export function createAttestedServer(
  options: AttestedServerOptions,
  onChannel?: (channel: AttestedChannel) => void,
): AttestedServer {
  const server = new AttestedServer(options);
  if (onChannel) server.on('channel', onChannel);
  return server;
}
