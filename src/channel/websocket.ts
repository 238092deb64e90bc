/**
 * WebSocket as a transport for attested-channel/1. The attested TLS runs INSIDE the WebSocket, so
 * a proxy or load balancer that terminates the outer HTTPS sees only ciphertext it cannot read or
 * alter undetected: the binder ties the evidence to the inner TLS connection, never to the outer one.
 *
 * Each WebSocket becomes a byte stream (ws.createWebSocketStream). Only binary messages are legal:
 * a text message means the peer is not speaking this protocol, and the stream fails with ERR_PROTOCOL.
 * Compression is off (ciphertext does not compress, and it would only cost CPU and memory).
 */
import type { Server as HttpServer, IncomingMessage } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { createWebSocketStream, WebSocket, WebSocketServer } from 'ws';
import { AttestationError, asAttestationError, type ErrorCode } from '../errors.js';
import type { PeerAddress } from './server.js';

/**
 * Largest WebSocket message accepted. The inner TLS writes its records in chunks well below this
 * (a record is at most ~16 KiB); the bound keeps a hostile peer from making us buffer 100 MiB (ws's default).
 */
export const DEFAULT_WEBSOCKET_MAX_PAYLOAD = 1024 * 1024;

/** Largest message this side sends; must stay below any sane maxPayload of the peer. */
const MESSAGE_SLICE = 64 * 1024;

export interface WebSocketConnectOptions {
  /** Extra HTTP headers of the upgrade request (cookies, bearer tokens for the proxy, ...). */
  headers?: Record<string, string>;
  /**
   * Options of the OUTER TLS connection for wss:// (ca, cert, key, servername, rejectUnauthorized, ...).
   * They only protect the path to the proxy; the peer is authenticated by the attested channel inside.
   */
  tls?: ConnectionOptions;
  signal?: AbortSignal;
  /** Milliseconds for the opening handshake (TCP, outer TLS, HTTP upgrade). Default 30 000. */
  timeout?: number;
  /** Largest message accepted from the peer, bytes. Default DEFAULT_WEBSOCKET_MAX_PAYLOAD. */
  maxPayload?: number;
}

/** Error codes of Node's TLS layer that mean the outer certificate (or TLS itself) was refused. */
function isTlsFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  return (
    code.startsWith('ERR_SSL_') ||
    code.startsWith('ERR_TLS_') ||
    code.includes('CERT') ||
    code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' ||
    code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'
  );
}

/**
 * Wraps an open WebSocket as a Duplex whose failures are AttestationErrors: text messages are a
 * protocol error, anything the ws library reports (bad framing, oversized message) keeps its message
 * under ERR_CONNECTION_CLOSED.
 */
function toStream(ws: WebSocket): Duplex {
  let duplex: Duplex | undefined;
  // Registered before createWebSocketStream's own listener so a text message is refused before it
  // could be pushed; a push into the destroyed stream is then discarded by Node.
  ws.on('message', (_data, isBinary) => {
    if (isBinary || !duplex || duplex.destroyed) return;
    duplex.destroy(
      new AttestationError('ERR_PROTOCOL', 'WebSocket peer sent a text message; only binary is allowed'),
    );
  });
  duplex = createWebSocketStream(ws);
  const stream = duplex;
  // ws closes only the socket after a receive error, and then waits up to 30 s for a close frame it
  // can no longer read; drop the socket at once instead so nothing lingers.
  ws.on('error', () => ws.terminate());
  // A closed WebSocket cannot be half-open: once the peer's last bytes have been read, the stream
  // is finished in both directions (createWebSocketStream would keep the writable side waiting).
  ws.once('close', () => {
    if (stream.destroyed) return;
    if (stream.readableEnded) stream.destroy();
    else stream.once('end', () => stream.destroy());
  });
  const destroyInner = duplex._destroy.bind(duplex);
  duplex._destroy = (err, callback) => {
    destroyInner(err, (e) =>
      callback(e == null ? e : asAttestationError(e, 'ERR_CONNECTION_CLOSED', 'WebSocket')),
    );
  };
  // One write becomes one message in ws; a large write must not become a message the peer refuses
  // (maxPayload), so it goes out in slices. The byte stream has no message boundaries to keep.
  const writeInner = duplex._write.bind(duplex);
  const writeSliced = (
    chunk: Buffer,
    encoding: BufferEncoding,
    callback: (err?: Error | null) => void,
  ): void => {
    if (chunk.length <= MESSAGE_SLICE) {
      writeInner(chunk, encoding, callback);
      return;
    }
    writeInner(chunk.subarray(0, MESSAGE_SLICE), encoding, (err) => {
      if (err) callback(err);
      else writeSliced(chunk.subarray(MESSAGE_SLICE), encoding, callback);
    });
  };
  duplex._write = writeSliced;
  return duplex;
}

/**
 * Opens a WebSocket (ws:// or wss://) and returns it as a byte stream to run the attested channel
 * over. Rejects with AttestationError: ERR_INVALID_ARGUMENT (bad URL), ERR_TLS (outer TLS refused),
 * ERR_CONNECTION_CLOSED (network failure or an HTTP answer other than 101, status in details),
 * ERR_ATTESTATION_TIMEOUT, ERR_ABORTED.
 */
export function connectWebSocket(url: string | URL, options: WebSocketConnectOptions = {}): Promise<Duplex> {
  if (typeof options !== 'object' || options === null)
    return Promise.reject(new AttestationError('ERR_INVALID_ARGUMENT', 'options must be an object'));
  if (typeof url !== 'string' && !(url instanceof URL))
    return Promise.reject(new AttestationError('ERR_INVALID_ARGUMENT', 'url must be a string or a URL'));
  let target: URL;
  try {
    target = new URL(url);
  } catch (err) {
    return Promise.reject(
      new AttestationError('ERR_INVALID_ARGUMENT', `not a URL: ${String(url)}`, { cause: err }),
    );
  }
  if (target.protocol !== 'ws:' && target.protocol !== 'wss:')
    return Promise.reject(
      new AttestationError(
        'ERR_INVALID_ARGUMENT',
        `WebSocket URL must be ws:// or wss://, got ${target.protocol}`,
      ),
    );
  // ws would ignore them on a ws:// URL: a CA pin or client certificate meant for the proxy would
  // be dropped silently, and the connection would run in clear.
  if (options.tls !== undefined && target.protocol !== 'wss:')
    return Promise.reject(
      new AttestationError('ERR_INVALID_ARGUMENT', 'tls options apply to a wss:// URL only, got ws://'),
    );
  if (
    options.headers !== undefined &&
    (typeof options.headers !== 'object' ||
      options.headers === null ||
      Object.values(options.headers).some((v) => typeof v !== 'string'))
  )
    return Promise.reject(
      new AttestationError('ERR_INVALID_ARGUMENT', 'headers must be an object of string values'),
    );
  const timeout = options.timeout ?? 30_000;
  if (!(Number.isFinite(timeout) && timeout > 0))
    return Promise.reject(new AttestationError('ERR_INVALID_ARGUMENT', 'timeout must be a positive number'));
  const { signal } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal))
    return Promise.reject(new AttestationError('ERR_INVALID_ARGUMENT', 'signal must be an AbortSignal'));
  if (signal?.aborted)
    return Promise.reject(
      new AttestationError('ERR_ABORTED', 'aborted before connecting', { cause: signal.reason }),
    );

  return new Promise<Duplex>((resolve, reject) => {
    const ws = new WebSocket(target, {
      ...(options.tls as object),
      headers: options.headers,
      perMessageDeflate: false,
      followRedirects: false,
      maxPayload: options.maxPayload ?? DEFAULT_WEBSOCKET_MAX_PAYLOAD,
    });
    let status: number | undefined;
    let failure: AttestationError | undefined;

    const fail = (code: ErrorCode, message: string, cause?: unknown, details?: Record<string, unknown>) => {
      if (failure) return;
      failure = new AttestationError(code, message, { cause, details });
      // terminate() while CONNECTING aborts the request and emits 'error' then 'close'.
      ws.terminate();
    };
    const onAbort = () => fail('ERR_ABORTED', 'aborted while opening the WebSocket', signal?.reason);
    const timer = setTimeout(
      () =>
        fail('ERR_ATTESTATION_TIMEOUT', `WebSocket handshake with ${target.host} took over ${timeout} ms`),
      timeout,
    );
    signal?.addEventListener('abort', onAbort, { once: true });

    const cleanup = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      ws.off('open', onOpen);
      ws.off('error', onError);
      ws.off('close', onClose);
      ws.off('unexpected-response', onResponse);
    };
    const onOpen = () => {
      cleanup();
      resolve(toStream(ws));
    };
    const onResponse = (_req: unknown, res: IncomingMessage) => {
      status = res.statusCode;
      res.resume();
      fail(
        'ERR_CONNECTION_CLOSED',
        `WebSocket upgrade refused by ${target.host}: HTTP ${status}`,
        undefined,
        {
          status,
        },
      );
    };
    const onError = (err: Error) => {
      if (failure) return;
      if (isTlsFailure(err)) failure = asAttestationError(err, 'ERR_TLS', 'outer TLS of the WebSocket');
      else failure = asAttestationError(err, 'ERR_CONNECTION_CLOSED', `WebSocket to ${target.host}`);
    };
    const onClose = () => {
      cleanup();
      reject(failure ?? new AttestationError('ERR_CONNECTION_CLOSED', `WebSocket to ${target.host} closed`));
    };
    ws.on('open', onOpen);
    ws.on('error', onError);
    ws.on('close', onClose);
    ws.on('unexpected-response', onResponse);
  });
}

/** What attachWebSocket needs of an attested server: createAttestedServer's accept(). */
export interface DuplexAcceptor {
  /** `peer`: the address of the HTTP connection that carried the upgrade (a proxy's, behind one). */
  accept(duplex: Duplex, peer?: PeerAddress): unknown;
}

export interface AttachWebSocketOptions {
  /** URL path that carries the channel (the query string is ignored). Default '/'. */
  path?: string;
  /** Largest message accepted from a client, bytes. Default DEFAULT_WEBSOCKET_MAX_PAYLOAD. */
  maxPayload?: number;
}

export interface WebSocketAttachment {
  /** Stops taking upgrades on the path and drops the WebSockets still open. */
  close(): void;
}

/**
 * Serves attested channels on `path` of an ordinary http or https server: each WebSocket upgrade
 * there becomes a byte stream handed to `acceptor.accept()` (an attested server). Other paths are
 * left to the server's other 'upgrade' listeners, or answered 404 when there are none.
 */
export function attachWebSocket(
  server: HttpServer | HttpsServer,
  acceptor: DuplexAcceptor,
  options: AttachWebSocketOptions = {},
): WebSocketAttachment {
  const path = options.path ?? '/';
  if (typeof path !== 'string' || !path.startsWith('/'))
    throw new AttestationError('ERR_INVALID_ARGUMENT', `path must start with "/", got ${String(path)}`);
  if (typeof acceptor?.accept !== 'function')
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'acceptor must have an accept(duplex) method');
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: options.maxPayload ?? DEFAULT_WEBSOCKET_MAX_PAYLOAD,
  });
  let closed = false;

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    let pathname: string;
    try {
      pathname = new URL(req.url ?? '/', 'http://h').pathname;
    } catch {
      pathname = '';
    }
    if (pathname !== path) {
      // Someone else may serve this path; otherwise nobody would ever answer the client.
      if (server.listenerCount('upgrade') <= 1) {
        socket.once('finish', () => socket.destroy());
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      }
      return;
    }
    const { remoteAddress, remotePort } = req.socket;
    wss.handleUpgrade(req, socket as Socket, head, (ws) => {
      if (closed) {
        ws.terminate();
        return;
      }
      acceptor.accept(toStream(ws), { remoteAddress, remotePort });
    });
  };
  server.on('upgrade', onUpgrade);

  return {
    close() {
      if (closed) return;
      closed = true;
      server.off('upgrade', onUpgrade);
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}
