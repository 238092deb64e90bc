/**
 * What an AttestedChannel forwards to the TLS connection underneath, as net.Socket does for its
 * own (ref, unref, setKeepAlive, setTimeout and the 'timeout' event): kept apart from the driver
 * (channel.ts), which is about attestation and DATA, not socket settings.
 */
import { Duplex, type DuplexOptions } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { AttestationError, asAttestationError } from '../errors.js';

export class SocketDuplex extends Duplex {
  /** The TLS connection underneath. Writing to it directly breaks the framing; read-only use. */
  readonly socket: TLSSocket;

  constructor(socket: TLSSocket, options: DuplexOptions) {
    super(options);
    this.socket = socket;
    socket.on('timeout', () => this.emit('timeout'));
  }

  /** Like net.Socket#ref: the channel keeps the event loop alive (the default). */
  ref(): this {
    this.socket.ref();
    return this;
  }

  /** Like net.Socket#unref: the channel alone does not keep the process alive (an idle pooled one). */
  unref(): this {
    this.socket.unref();
    return this;
  }

  /** Like net.Socket#setKeepAlive, for the TCP connection underneath (no effect over other transports). */
  setKeepAlive(enable?: boolean, initialDelay?: number): this {
    if (enable !== undefined && typeof enable !== 'boolean')
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'setKeepAlive: enable must be a boolean');
    if (initialDelay !== undefined && !(Number.isFinite(initialDelay) && initialDelay >= 0))
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'setKeepAlive: initialDelay must be a number of ms');
    this.socket.setKeepAlive(enable, initialDelay);
    return this;
  }

  /** Like net.Socket#setTimeout: 'timeout' is emitted after `ms` of inactivity (0 disables). */
  setTimeout(ms: number, callback?: () => void): this {
    if (!(Number.isFinite(ms) && ms >= 0 && ms <= 2_147_483_647))
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'setTimeout: ms must be a number of ms');
    if (callback !== undefined && typeof callback !== 'function')
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'setTimeout: callback must be a function');
    this.socket.setTimeout(ms);
    if (callback) {
      if (ms === 0) this.off('timeout', callback);
      else this.once('timeout', callback);
    }
    return this;
  }
}

/**
 * A transport's 'error' as a channel reports it: OpenSSL's and node:tls's failures (ERR_SSL_*,
 * ERR_TLS_*) are ERR_TLS, anything else ERR_CONNECTION_CLOSED; an AttestationError (a WebSocket
 * transport's) keeps its code.
 */
export function transportError(err: Error): AttestationError {
  if (err instanceof AttestationError) return err;
  const code = (err as { code?: unknown }).code;
  const tls = typeof code === 'string' && (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_'));
  return asAttestationError(err, tls ? 'ERR_TLS' : 'ERR_CONNECTION_CLOSED', 'transport');
}
