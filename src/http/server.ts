/**
 * Ordinary `http.Server`s serving requests that arrive over attested channels.
 *
 * An http.Server accepts any Duplex through its 'connection' event, so each attested channel is
 * handed over as is: the HTTP parser runs on the channel's plaintext, which flows only after the
 * peer proved itself. The peer's claims are read only from a socket that is an AttestedChannel by
 * the class's brand check (AttestedChannel.isChannel), never from a property of whatever socket a
 * request came in on: a plain TCP socket with a forged `peer` field gets no claims.
 */
import { createServer, type Server as HttpServer, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { AttestedChannel } from '../channel/channel.js';
import type { AttestedServer } from '../channel/server.js';
import { AttestationError } from '../errors.js';
import type { Claims } from '../evidence/types.js';

/**
 * The verified claims of the peer a request (server side) or response (client side, through
 * attestedAgent) came from. Undefined when the message did not arrive over an attested channel
 * or the peer was not asked to attest. Reads the channel's current claims, so it reflects the
 * latest re-attestation.
 */
export function peerClaims(message: IncomingMessage): Claims | undefined {
  // On the client side Node detaches res.socket once the response ends; the request keeps it.
  const socket = (message?.socket ??
    (message as { req?: { socket?: Duplex | null } } | undefined)?.req?.socket) as Duplex | null | undefined;
  return AttestedChannel.isChannel(socket) ? socket.peer : undefined;
}

/**
 * Hands every channel `attestedServer` opens to `httpServer` (created when not given) and returns
 * the HTTP server. The HTTP server need not listen: the attested server owns the port. Call the
 * returned server's `close()` to stop serving; `closeAllConnections()` on it is extended to also
 * end the channels it received (Node tracks only connections of a listening server).
 */
export function serveHttp(
  attestedServer: AttestedServer,
  httpServer: HttpServer = createServer(),
): HttpServer {
  if (typeof attestedServer?.on !== 'function')
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      'serveHttp: attestedServer must emit "channel" events',
    );
  const live = new Set<AttestedChannel>();
  const onChannel = (channel: AttestedChannel): void => {
    live.add(channel);
    channel.once('close', () => live.delete(channel));
    httpServer.emit('connection', channel);
  };
  attestedServer.on('channel', onChannel);

  const closeAll = httpServer.closeAllConnections.bind(httpServer);
  httpServer.closeAllConnections = () => {
    closeAll();
    for (const channel of live) channel.destroy();
    live.clear();
  };
  const closeIdle = httpServer.closeIdleConnections.bind(httpServer);
  httpServer.closeIdleConnections = () => {
    closeIdle();
    // An injected socket is idle when the HTTP parser has no request on it.
    for (const channel of live) {
      if (!(channel as unknown as { _httpMessage?: unknown })._httpMessage) channel.destroy();
    }
  };
  httpServer.once('close', () => attestedServer.off('channel', onChannel));
  return httpServer;
}
