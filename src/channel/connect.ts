/** attestedConnect(): the client end of attested-channel/1 over TCP, a WebSocket or any Duplex. */
import type { Duplex } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { AttestationError } from '../errors.js';
import type { AttestedChannel, ChannelOptions, ChannelVerifyOptions } from './channel.js';
import type { TlsIdentity } from './identity.js';

export interface AttestedConnectOptions extends ChannelOptions {
  /** TCP target. */
  host?: string;
  port?: number;
  /** Any byte stream to run the channel over (exclusive with host/port and url). */
  socket?: Duplex;
  /** ws:// or wss:// URL: the channel runs inside a WebSocket. */
  url?: string | URL;
  /** HTTP headers of the WebSocket upgrade (url only). */
  headers?: Record<string, string>;
  /** Options of the outer TLS of a wss:// URL (url only). */
  tls?: ConnectionOptions;
  /** SNI to send in the inner TLS handshake (default: host when it is a name). */
  servername?: string;
  /** The server must attest: how to appraise its evidence. */
  verify?: ChannelVerifyOptions;
  /** The client's TLS identity when it attests (default: a fresh one per connection). */
  identity?: TlsIdentity;
  signal?: AbortSignal;
}

export async function attestedConnect(options: AttestedConnectOptions): Promise<AttestedChannel> {
  void options;
  throw new AttestationError('ERR_INVALID_ARGUMENT', 'not implemented yet');
}
