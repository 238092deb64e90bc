/**
 * HTTP clients over attested channels: an `http.Agent` for `http.request` / `http.get`, and a
 * connector for undici's `Agent` / `Client` (and so for undici's `fetch`).
 *
 * Every connection is a fresh attested channel, verified with the options fixed when the agent
 * was made (the policy parsed and deep-frozen then). Pooled channels are only ever reused by the same agent (hence the same policy), and
 * the pool key carries a digest of the verification settings as well, so no code path can hand a
 * channel verified under one policy to a request made under another.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Agent, type AgentOptions, type ClientRequestArgs } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { schedulerFor } from '../channel/batch-scheduler.js';
import { type AttestedConnectOptions, attestedConnect } from '../channel/connect.js';
import { createTlsIdentity } from '../channel/identity.js';
import { AttestationError, asAttestationError } from '../errors.js';
import { parsePolicy } from '../evidence/policy.js';

/** attestedConnect's options without a target: the target comes from each request's URL. */
export type AttestedHttpOptions = Omit<AttestedConnectOptions, 'host' | 'port' | 'socket'>;

function fixOptions(options: AttestedHttpOptions): Readonly<AttestedHttpOptions> {
  if (typeof options !== 'object' || options === null)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'attested HTTP: options must be an object');
  const o = options as Record<string, unknown>;
  for (const key of ['socket', 'host', 'port'])
    if (o[key] !== undefined)
      throw new AttestationError(
        'ERR_INVALID_ARGUMENT',
        `attested HTTP: "${key}" is taken from each request's URL; a pool cannot share one ${key === 'socket' ? 'socket' : 'target'}`,
      );
  // Frozen copies, the policy parsed and deep-frozen once here (as attestedConnect does per call):
  // changing the caller's objects later, the policy in place included, alters neither what pooled
  // channels were verified under nor how new ones are.
  // A client that attests gets one TLS identity for all the agent's channels, made here: a fresh
  // one per connection costs a node:tls context (most of a millisecond on Node 20), and the binder still ties each
  // report to its own connection.
  const identity =
    options.evidence !== undefined && options.identity === undefined ? { identity: createTlsIdentity() } : {};
  // The agent's connections that attest share one batch scheduler (its own, or the one given).
  const batcher = schedulerFor(options.batch, options.evidence);
  if (batcher) options = { ...options, batch: batcher };
  const verify = options.verify;
  if (verify === undefined) return Object.freeze({ ...options, ...identity });
  if (typeof verify !== 'object' || verify === null)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'attested HTTP: verify must be an object');
  return Object.freeze({
    ...options,
    ...identity,
    verify: Object.freeze({ ...verify, policy: parsePolicy(verify.policy) }),
  });
}

/** Canonical JSON (sorted keys) so equal settings give equal digests. */
function canonical(value: unknown): string {
  if (value instanceof Uint8Array) return JSON.stringify(Buffer.from(value).toString('hex'));
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined && typeof v !== 'function')
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * Identifies the verification settings: the policy and trust anchors by content, plus a per-agent
 * nonce because callbacks (`check`) and evidence providers cannot be compared by content.
 */
function settingsKey(options: AttestedHttpOptions, instance: string): string {
  const verify = (options as { verify?: { policy?: unknown; trustAnchors?: unknown } }).verify;
  const digest = createHash('sha256')
    .update(canonical({ policy: verify?.policy, trustAnchors: verify?.trustAnchors }))
    .digest('hex')
    .slice(0, 16);
  return `attested:${digest}:${instance}`;
}

function connectTo(options: Readonly<AttestedHttpOptions>, host: string, port: number): Promise<Duplex> {
  const target = (options as { url?: unknown }).url !== undefined ? {} : { host, port };
  return attestedConnect({ ...options, ...target } as AttestedConnectOptions).then(
    (channel) => channel,
    (err: unknown) => {
      throw asAttestationError(err, 'ERR_CONNECTION_CLOSED', 'attested channel failed');
    },
  );
}

function portOf(value: unknown, fallback: number): number {
  const n = typeof value === 'string' && value !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 && n <= 65535 ? n : fallback;
}

/** The channel if it can be (un)ref'd itself, else the transport socket under it. */
/** An http.Agent whose sockets are attested channels. Made by attestedAgent(). */
export class AttestedAgent extends Agent {
  readonly #options: Readonly<AttestedHttpOptions>;
  readonly #key: string;

  constructor(options: AttestedHttpOptions, agentOptions: AgentOptions = {}) {
    // Attestation is the expensive part of a connection, so keep-alive is on unless turned off.
    super({ keepAlive: true, ...agentOptions });
    this.#options = fixOptions(options);
    this.#key = settingsKey(this.#options, randomUUID());
  }

  override getName(options?: ClientRequestArgs): string {
    return `${super.getName(options)}:${this.#key}`;
  }

  // Node's Agent accepts an asynchronous createConnection: return nothing, call back later.
  override createConnection(
    options: ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const host = options.hostname ?? options.host ?? 'localhost';
    const port = portOf(options.port, 80);
    connectTo(this.#options, host, port).then(
      (channel) => callback?.(null, channel),
      (err: Error) => callback?.(err, undefined as unknown as Duplex),
    );
    return undefined;
  }

  override keepSocketAlive(socket: Duplex): boolean {
    if (socket.destroyed) return false;
    // The base version (setKeepAlive, unref, the agent's idle timeout) works on a channel, which has
    // net.Socket's ref/unref/setKeepAlive; an idle pooled channel then keeps no process alive.
    // Typed void in @types/node; Node returns whether the socket may stay in the pool.
    return (super.keepSocketAlive(socket) as unknown as boolean | undefined) !== false;
  }
}

/**
 * An `http.Agent` for `http.request({ agent })`: each connection is an attested channel made with
 * `options` (those of attestedConnect without host/port/socket; `url` makes every channel go
 * through that WebSocket). A failed attestation fails the request with the AttestationError
 * (same `code`). `agentOptions` are http.Agent's (keepAlive defaults to true).
 */
export function attestedAgent(options: AttestedHttpOptions, agentOptions?: AgentOptions): AttestedAgent {
  return new AttestedAgent(options, agentOptions);
}

/** The options undici passes to a connector (undici 7, `buildConnector.Options`). */
export interface UndiciConnectOptions {
  hostname: string;
  host?: string;
  protocol: string;
  port: string;
  servername?: string;
}

/** undici's connector callback. The socket is an AttestedChannel; undici's types call it a Socket. */
export type UndiciConnectCallback = (...args: [null, Socket] | [Error, null]) => void;

/**
 * A connector for undici 7: `new Agent({ connect: attestedConnector(options) })` (or Client /
 * Pool), then `fetch(url, { dispatcher })` or `request(url, { dispatcher })`. Each undici
 * connection is a fresh attested channel verified with `options`; a refusal fails the request
 * (fetch wraps it as `TypeError('fetch failed')` with the AttestationError as `cause`).
 */
export function attestedConnector(
  options: AttestedHttpOptions,
): (opts: UndiciConnectOptions, callback: UndiciConnectCallback) => void {
  const fixed = fixOptions(options);
  return (opts, callback) => {
    const host = opts.hostname.startsWith('[') ? opts.hostname.slice(1, -1) : opts.hostname;
    const port = portOf(opts.port, opts.protocol === 'https:' ? 443 : 80);
    connectTo(fixed, host, port).then(
      (channel) => callback(null, channel as unknown as Socket),
      (err: Error) => callback(err, null),
    );
  };
}
