/** createAttestedServer(): the server end of attested-channel/1, on TCP or on Duplexes handed in. */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AttestationError } from '../errors.js';
import type { AttestedChannel, ChannelOptions } from './channel.js';
import type { TlsIdentity } from './identity.js';

export interface AttestedServerOptions extends ChannelOptions {
  /**
   * TLS identity. Default: one generated for this server. 'per-connection' generates a fresh key
   * and certificate for every connection.
   */
  identity?: TlsIdentity | 'per-connection';
}

export interface AttestedServerEvents {
  channel: [AttestedChannel];
  attestationError: [AttestationError];
  listening: [];
  close: [];
  error: [Error];
}

export class AttestedServer extends EventEmitter<AttestedServerEvents> {
  /** @internal */
  constructor(options: AttestedServerOptions) {
    super();
    void options;
  }

  /** net.Server#listen semantics. */
  listen(port?: number, host?: string | (() => void), callback?: () => void): this {
    void port;
    void host;
    void callback;
    return this;
  }

  address(): AddressInfo | string | null {
    return null;
  }

  /** Stops listening; open channels stay up (net.Server semantics). */
  close(callback?: (err?: Error) => void): this {
    void callback;
    return this;
  }

  /** Serves one attested channel over any Duplex (a WebSocket stream, a socket pair, ...). */
  accept(duplex: Duplex): void {
    void duplex;
  }
}

export function createAttestedServer(
  options: AttestedServerOptions,
  onChannel?: (channel: AttestedChannel) => void,
): AttestedServer {
  const server = new AttestedServer(options);
  if (onChannel) server.on('channel', onChannel);
  return server;
}
