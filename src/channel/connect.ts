/** attestedConnect(): the client end of attested-channel/1 over TCP, a WebSocket or any Duplex. */
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { AttestationError, signalArg } from '../errors.js';
import { parsePolicy } from '../evidence/policy.js';
import { policyMemoOf } from '../evidence/policy-memo.js';
import type { Verifier } from '../evidence/types.js';
import { verifierFor } from '../evidence/verify.js';
import { schedulerFor } from './batch-scheduler.js';
import { ALPN_PROTOCOLS } from './binder.js';
import { AttestedChannel } from './channel.js';
import { checkIdentity, createTlsIdentity, secureContextFor, type TlsIdentity } from './identity.js';
import {
  type ChannelInternals,
  type ChannelOptions,
  type ChannelVerifyOptions,
  checkChannelOptions,
  DEFAULT_TIMEOUT_MS,
  INTERNAL,
} from './options.js';
import { connectWebSocket } from './websocket.js';

export interface AttestedConnectOptions extends ChannelOptions {
  /** TCP target. */
  host?: string;
  port?: number;
  /** Any byte stream to run the channel over (instead of host/port or url). */
  socket?: Duplex;
  /** ws:// or wss:// URL: the channel runs inside a WebSocket. */
  url?: string | URL;
  /** HTTP headers of the WebSocket upgrade (url only). */
  headers?: Record<string, string>;
  /** Options of the outer TLS of a wss:// URL (url only); they never replace the attestation. */
  tls?: ConnectionOptions;
  /** SNI of the inner TLS handshake (default: `host` when it is a name). */
  servername?: string;
  /** How to appraise the server's evidence; when set, the server must attest. */
  verify?: ChannelVerifyOptions;
  /** The client's TLS identity when it attests (default: a fresh one per connection). */
  identity?: TlsIdentity;
  signal?: AbortSignal;
}

/** One function for every connection (Node keeps it in each socket's options). */
const noServerIdentityCheck = (): undefined => undefined;

/**
 * Opens an attested channel: TLS 1.3 with ALPN attested-channel/1, then the attestation exchange.
 * Resolves once the channel is open (the server's evidence verified and bound to this connection,
 * and the client's accepted when the server asked for it). Rejects with an AttestationError whose
 * code says why; nothing (socket, timer) is left behind.
 */
export async function attestedConnect(options: AttestedConnectOptions): Promise<AttestedChannel> {
  // The Verifier is found once per connect, when the policy is parsed (by the Verifier's memo of
  // parsed policies): a bad trust anchor list is refused before any connection is made, and the
  // verification does not look the Verifier up again.
  let verifier: Verifier | undefined;
  const policy = checkChannelOptions(options, 'attestedConnect', (given) => {
    try {
      verifier = verifierFor(options.verify!);
    } catch {
      // Refused below, after the checks that came first before (the policy's among them).
      return parsePolicy(given);
    }
    return policyMemoOf(verifier)?.parse(given) ?? parsePolicy(given);
  });
  if (options.verify !== undefined && verifier === undefined) verifier = verifierFor(options.verify);
  const { host, port, socket, url, signal } = options;
  const targets = [host !== undefined || port !== undefined, socket !== undefined, url !== undefined].filter(
    Boolean,
  );
  if (targets.length !== 1)
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      'attestedConnect: give exactly one of {host, port}, socket, url',
    );
  if ((host !== undefined || port !== undefined) && !(Number.isInteger(port) && port! > 0 && port! < 65536))
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      'attestedConnect: port must be an integer in 1..65535',
    );
  // They only mean something for a WebSocket; taken silently with host/port, a caller's CA pin or
  // proxy credentials would be dropped without a word.
  if (url === undefined && (options.headers !== undefined || options.tls !== undefined))
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      `attestedConnect: ${options.headers !== undefined ? 'headers' : 'tls'} applies to a ws:// or wss:// url only (the outer WebSocket connection); the attested TLS takes no CA or headers`,
    );
  if (socket !== undefined && (typeof socket?.write !== 'function' || typeof socket?.on !== 'function'))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'attestedConnect: socket must be a Duplex stream');
  if (host !== undefined && typeof host !== 'string')
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'attestedConnect: host must be a string');
  if (options.identity !== undefined) checkIdentity(options.identity, 'attestedConnect');
  if (signalArg(signal, 'attestedConnect')?.aborted)
    throw new AttestationError('ERR_ABORTED', 'aborted before connecting', { cause: signal!.reason });
  const internals = (options as { [INTERNAL]?: ChannelInternals })[INTERNAL];
  const timeout = options.timeout ?? DEFAULT_TIMEOUT_MS;
  const started = performance.now();

  let transport: Duplex | undefined = socket;
  if (url !== undefined) {
    transport = await connectWebSocket(url, {
      ...(options.headers ? { headers: options.headers } : {}),
      ...(options.tls ? { tls: options.tls } : {}),
      ...(signal ? { signal } : {}),
      timeout,
    });
  }
  const identity = options.identity ?? (options.evidence ? createTlsIdentity() : undefined);
  const servername = options.servername ?? (host !== undefined && isIP(host) === 0 ? host : undefined);
  const tlsSocket = tlsConnect({
    // noDelay: the exchange is a few small frames each way; Nagle plus delayed ACKs would add ~40 ms.
    ...(transport ? { socket: transport } : { host: host ?? 'localhost', port: port!, noDelay: true }),
    ...(servername ? { servername } : {}),
    ALPNProtocols: ALPN_PROTOCOLS,
    // Trust comes from the evidence bound to this key, not from a CA; no session is ever offered.
    rejectUnauthorized: false,
    checkServerIdentity: noServerIdentityCheck,
    secureContext: secureContextFor(identity, 'client'),
  });
  // tls.connect does not pass `noDelay` on to the TCP socket it makes (the first small write after
  // the exchange waited ~40 ms for the server's delayed ACK): set it on the socket itself.
  if (!transport) tlsSocket.setNoDelay(true);
  // tls.connect over a caller's Duplex does not own it; make sure a failure releases it too.
  if (transport) tlsSocket.once('close', () => transport.destroy());
  const channel = new AttestedChannel({
    socket: tlsSocket,
    role: 'client',
    identity,
    options,
    timeoutMs: Math.max(1, timeout - (performance.now() - started)),
    signal,
    internals,
    policy,
    verifier,
    // A lone connection batches only with the sides that share its scheduler (else it answers plainly).
    batcher: schedulerFor(options.batch, options.evidence),
  });
  return channel.ready;
}
