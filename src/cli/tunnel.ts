/**
 * `attested-channel tunnel`: runs on the user's side. Each local TCP connection gets its own
 * attested channel to the VM (TCP or ws:// / wss://); the local bytes are read only once the VM
 * proved, with evidence bound to that channel, that it satisfies the policy. A refused VM never
 * sees a byte: the local connection is closed.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer as createNetServer, type Socket } from 'node:net';
import type { AttestedChannel } from '../channel/channel.js';
import { type AttestedConnectOptions, attestedConnect } from '../channel/connect.js';
import { AttestationError } from '../errors.js';
import { createVerifier } from '../evidence/verifier.js';
import {
  checkWorkloadPinned,
  describeClaims,
  formatHostPort,
  type HostPort,
  loadPolicy,
  parseHostPort,
  providerFrom,
  runUntilSignal,
  simulatedRootHint,
  simulatedRoots,
  splice,
} from './endpoint-args.js';
import { type CliIo, oneLine, parseOptions, printable } from './io.js';

export const TUNNEL_USAGE = `usage: attested-channel tunnel --listen HOST:PORT --connect HOST:PORT|ws://…|wss://… --policy FILE
         [--simulated-roots] [--any-workload] [--simulate snp|tdx | --configfs [--configfs-root DIR]]
         [--timeout MS] [--ca FILE] [--servername NAME] [--header 'NAME: VALUE']...

Runs on your side. Each connection to --listen is carried through its own attested channel to
--connect; nothing is forwarded until the VM's evidence, bound to that channel, satisfies the policy.
  --listen HOST:PORT     where local clients connect (e.g. 127.0.0.1:2222; port 0: any free port)
  --connect TARGET       the VM's serve: HOST:PORT (TCP), or ws://… / wss://… (serve --websocket,
                         also through an HTTPS proxy)
  --policy FILE          what the VM must be (JSON: {"snp": {"measurements": ["<96 hex>"]}}, tdx.mrTd, ...); required
  --simulated-roots      trust the simulator's roots instead of AMD's and Intel's (testing only)
  --any-workload         accept a policy that pins no workload (any genuine VM of a format it admits)
  --simulate snp|tdx     attest this side too, with simulated evidence, when the VM asks (serve --policy)
  --configfs             attest this side too, from configfs-tsm, when the VM asks
  --configfs-root DIR    configfs-tsm report folder (default /sys/kernel/config/tsm/report)
  --timeout MS           TLS handshake plus attestation of each connection (default 30000)
  --ca FILE              wss:// only: CA certificate(s), PEM, that the proxy's HTTPS certificate must
                         chain to (instead of the system's CAs), e.g. a private or self-signed one
  --servername NAME      wss:// only: the name the proxy's certificate must carry, and the SNI
                         (default: the URL's host)
  --header 'NAME: VALUE' ws:// or wss:// only: a header of the WebSocket upgrade request, e.g. a
                         proxy's 'Authorization: Bearer …'; repeatable
The outer HTTPS of wss:// only protects the path to the proxy: the VM is authenticated by its
evidence, inside, whatever the proxy's certificate.
`;

/** Every option tunnel takes; --help lists each (a test checks it). */
export const TUNNEL_OPTIONS = {
  listen: { type: 'string' },
  connect: { type: 'string' },
  policy: { type: 'string' },
  'simulated-roots': { type: 'boolean' },
  'any-workload': { type: 'boolean' },
  simulate: { type: 'string' },
  configfs: { type: 'boolean' },
  'configfs-root': { type: 'string' },
  timeout: { type: 'string' },
  ca: { type: 'string' },
  servername: { type: 'string' },
  header: { type: 'string', multiple: true },
} as const;

export interface TunnelHandle {
  readonly address: HostPort;
  close(): Promise<void>;
}

type Target = { host: string; port: number } | { url: string };

function parseTarget(text: string): Target {
  if (/^wss?:\/\//i.test(text)) {
    try {
      return { url: new URL(text).toString() };
    } catch {
      throw new AttestationError('ERR_INVALID_ARGUMENT', `--connect: not a URL: ${text}`);
    }
  }
  return parseHostPort(text, '--connect');
}

/** 'Name: value' of --header; names as RFC 9110 tokens, values without CR, LF or NUL. */
function parseHeader(text: string): [string, string] {
  const colon = text.indexOf(':');
  const name = colon < 0 ? '' : text.slice(0, colon).trim();
  const value = colon < 0 ? '' : text.slice(colon + 1).trim();
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || /[\r\n\0]/.test(value))
    throw new AttestationError('ERR_INVALID_ARGUMENT', `--header must be 'NAME: VALUE' (got "${text}")`);
  return [name, value];
}

/** --ca, --servername, --header: the outer WebSocket connection's options (to a proxy, say). */
async function outerOptions(
  target: Target,
  o: { ca: string | undefined; servername: string | undefined; headers: string[] },
): Promise<Pick<AttestedConnectOptions, 'tls' | 'headers'>> {
  const secure = 'url' in target && target.url.startsWith('wss:');
  for (const [flag, given] of [
    ['--ca', o.ca],
    ['--servername', o.servername],
  ] as const)
    if (given !== undefined && !secure)
      throw new AttestationError(
        'ERR_INVALID_ARGUMENT',
        `${flag} applies to a wss:// --connect only (the proxy's HTTPS); the VM itself is authenticated by its evidence`,
      );
  if (o.headers.length > 0 && !('url' in target))
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      '--header applies to a ws:// or wss:// --connect only',
    );
  const out: Pick<AttestedConnectOptions, 'tls' | 'headers'> = {};
  if (o.headers.length > 0) {
    const headers: Record<string, string> = {};
    const seen = new Set<string>();
    for (const h of o.headers) {
      const [name, value] = parseHeader(h);
      if (seen.has(name.toLowerCase()))
        throw new AttestationError('ERR_INVALID_ARGUMENT', `--header ${name} given more than once`);
      seen.add(name.toLowerCase());
      headers[name] = value;
    }
    out.headers = headers;
  }
  if (o.ca !== undefined || o.servername !== undefined) {
    const tls: NonNullable<AttestedConnectOptions['tls']> = {};
    if (o.ca !== undefined) tls.ca = await readCa(o.ca);
    if (o.servername !== undefined) {
      if (o.servername === '' || /[\s/:]/.test(o.servername))
        throw new AttestationError(
          'ERR_INVALID_ARGUMENT',
          `--servername must be a host name (got "${o.servername}")`,
        );
      tls.servername = o.servername;
    }
    out.tls = tls;
  }
  return out;
}

/**
 * What to do when connecting failed short of attestation: nothing listening, a server that is not
 * attested-channel serve, or an outer connection (to a proxy) without --ca, --servername, --header.
 */
function connectHint(
  err: AttestationError,
  target: Target,
  outer: Pick<AttestedConnectOptions, 'tls' | 'headers'>,
): string {
  if (err.code === 'ERR_CONNECTION_CLOSED' && /ECONNREFUSED/.test(err.message))
    return ' (nothing listens at --connect: is attested-channel serve running there?)';
  if (
    err.code === 'ERR_TLS' &&
    /no application protocol|protocol version|wrong version number/i.test(err.message)
  )
    return " (the server at --connect does not speak attested-channel/1 over TLS 1.3: is it serve's --listen address?)";
  if (!('url' in target)) return '';
  const status = err.details['status'];
  if (err.code === 'ERR_CONNECTION_CLOSED' && (status === 401 || status === 403 || status === 407))
    return ` (the proxy wants credentials: give them with --header, e.g. --header 'Authorization: Bearer …')`;
  if (err.code !== 'ERR_TLS' || !err.message.startsWith('outer TLS')) return '';
  if (/altname|does not match|hostname/i.test(err.message))
    return " (give --servername with the name the proxy's certificate carries)";
  if (/self[- ]signed|issuer|unable to (get|verify)/i.test(err.message) && outer.tls?.ca === undefined)
    return " (give --ca with the proxy's CA certificate, PEM)";
  return '';
}

/** The PEM certificates of --ca, each checked to parse, so a wrong file fails at start. */
async function readCa(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new AttestationError('ERR_INVALID_ARGUMENT', `cannot read --ca ${path}`, { cause: err });
  }
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length === 0)
    throw new AttestationError('ERR_INVALID_ARGUMENT', `--ca ${path} holds no PEM certificate`);
  for (const pem of pems) {
    try {
      new X509Certificate(pem);
    } catch (err) {
      throw new AttestationError('ERR_INVALID_ARGUMENT', `--ca ${path}: a certificate does not parse`, {
        cause: err,
      });
    }
  }
  return pems;
}

export async function startTunnel(args: string[], io: CliIo): Promise<TunnelHandle> {
  let parsed: ReturnType<typeof parseOptions<typeof TUNNEL_OPTIONS>>['values'];
  try {
    parsed = parseOptions(args, TUNNEL_OPTIONS).values;
  } catch (err) {
    throw new AttestationError('ERR_INVALID_ARGUMENT', (err as Error).message);
  }
  const { header: headerArgs, ...single } = parsed;
  const values: Record<string, string | boolean | undefined> = single;
  if (typeof values['listen'] !== 'string')
    throw new AttestationError('ERR_INVALID_ARGUMENT', '--listen is required');
  if (typeof values['connect'] !== 'string')
    throw new AttestationError('ERR_INVALID_ARGUMENT', '--connect is required');
  if (typeof values['policy'] !== 'string')
    throw new AttestationError('ERR_INVALID_ARGUMENT', '--policy is required (what the VM must be)');
  const listen = parseHostPort(values['listen'], '--listen', true);
  const target = parseTarget(values['connect']);
  const timeout = values['timeout'] === undefined ? undefined : Number(values['timeout']);
  if (timeout !== undefined && !(Number.isInteger(timeout) && timeout > 0))
    throw new AttestationError('ERR_INVALID_ARGUMENT', '--timeout must be a positive number of ms');
  const policy = await loadPolicy(values['policy']);
  const unpinned = checkWorkloadPinned(policy, values['any-workload'] === true);
  const evidence = await providerFrom({
    simulate: values['simulate'] as string | undefined,
    configfs: values['configfs'] as boolean | undefined,
    configfsRoot: values['configfs-root'] as string | undefined,
  });
  const outer = await outerOptions(target, {
    ca: values['ca'] as string | undefined,
    servername: values['servername'] as string | undefined,
    headers: headerArgs ?? [],
  });
  const connectOptions: AttestedConnectOptions = {
    ...target,
    ...outer,
    allowHalfOpen: true,
    // One Verifier for every channel of this tunnel: one set of caches, one bound.
    verify: { policy, verifier: createVerifier(await simulatedRoots(values['simulated-roots'])) },
    ...(evidence ? { evidence } : {}),
    ...(timeout ? { timeout } : {}),
  };
  const targetText = 'url' in target ? target.url : formatHostPort(target);

  // Lines carry the peer's words (ALERT reasons, codes, claims): escaped, so they stay one line.
  const say = (line: string) => io.out(`${new Date().toISOString()} ${printable(line)}\n`);
  const locals = new Set<Socket>();
  const channels = new Set<AttestedChannel>();
  const aborts = new Set<AbortController>();
  let next = 0;
  const server = createNetServer({ allowHalfOpen: true, pauseOnConnect: true }, (local) => {
    const id = ++next;
    const from = `${local.remoteAddress}:${local.remotePort}`;
    locals.add(local);
    local.on('close', () => locals.delete(local));
    // The local client's bytes stay in the kernel (paused) until the VM has proved itself.
    local.on('error', () => {});
    const abort = new AbortController();
    aborts.add(abort);
    // A local client that gives up while the VM is attesting cancels that attempt.
    const onLocalClose = () => abort.abort();
    local.once('close', onLocalClose);
    attestedConnect({ ...connectOptions, signal: abort.signal }).then(
      (channel) => {
        aborts.delete(abort);
        local.off('close', onLocalClose);
        if (local.destroyed) {
          channel.destroy();
          return;
        }
        channels.add(channel);
        say(`#${id} accepted ${from} → ${targetText}: ${describeClaims(channel.peer)}`);
        splice(local, channel, (out, back) => {
          channels.delete(channel);
          say(`#${id} closed ${from} (${out} bytes out, ${back} bytes back)`);
        });
        local.resume();
      },
      (err: unknown) => {
        aborts.delete(abort);
        const e =
          err instanceof AttestationError ? err : new AttestationError('ERR_CONNECTION_CLOSED', String(err));
        const peer = typeof e.details['peerCode'] === 'string' ? ` (peer said ${e.details['peerCode']})` : '';
        const hint =
          simulatedRootHint(e, values['simulated-roots'] === true) || connectHint(e, target, outer);
        say(
          `#${id} refused ${from} → ${targetText}: ${e.code}${peer} — ${oneLine(e.message)}${hint}; local connection closed`,
        );
        local.destroy();
      },
    );
  });
  const address = await new Promise<HostPort>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      const a = server.address();
      resolve({ host: listen.host, port: typeof a === 'object' && a ? a.port : listen.port });
    });
  });
  // The proxy settings in force, header names only (their values are often credentials).
  const via = [
    ...(values['ca'] !== undefined ? [`proxy CA ${values['ca']}`] : []),
    ...(outer.tls?.servername !== undefined ? [`proxy name ${outer.tls.servername}`] : []),
    ...(outer.headers ? [`headers ${Object.keys(outer.headers).join(', ')}`] : []),
  ];
  say(
    `tunnel listening on ${formatHostPort(address)} → ${targetText}${via.length ? ` (${via.join('; ')})` : ''}; each connection must attest${values['simulated-roots'] ? ' (simulated roots: TESTING ONLY)' : ''}${unpinned.length ? `; ANY ${unpinned.join(' or ')} workload is accepted (--any-workload)` : ''}`,
  );
  return {
    address,
    async close() {
      for (const a of aborts) a.abort();
      for (const c of channels) c.destroy();
      for (const s of locals) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Tunnels until SIGINT or SIGTERM. */
export function run(args: string[], io: CliIo): Promise<number> {
  return runUntilSignal(args, io, 'tunnel', TUNNEL_USAGE, startTunnel);
}
