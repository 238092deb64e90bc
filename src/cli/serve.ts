/**
 * `attested-channel serve`: runs inside the confidential VM. It attests every incoming connection
 * (attested-channel/1 over TCP, or inside a WebSocket on an HTTP path) and only then forwards the
 * connection's bytes to a local service such as sshd. With --policy, clients must attest too.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import type { AttestedChannel } from '../channel/channel.js';
import { createAttestedServer } from '../channel/server.js';
import { attachWebSocket } from '../channel/websocket.js';
import { AttestationError } from '../errors.js';
import { createVerifier } from '../evidence/verifier.js';
import { AZURE_SERVE_OPTIONS, AZURE_SERVE_USAGE, azureProviderFrom, simulatedAzurePin } from './azure.js';
import {
  checkWorkloadPinned,
  describeClaims,
  formatHostPort,
  type HostPort,
  loadPolicy,
  loadSimulated,
  parseHostPort,
  providerFrom,
  runUntilSignal,
  simulatedRootHint,
  simulatedRoots,
  splice,
} from './endpoint-args.js';
import { type CliIo, oneLine, parseOptions, printable } from './io.js';

export const SERVE_USAGE = `usage: attested-channel serve --listen HOST:PORT --forward HOST:PORT
         (--simulate snp|tdx|azure-snp|azure-tdx | --configfs [--configfs-root DIR] | --azure ...)
         [--websocket PATH] [--policy FILE [--simulated-roots] [--any-workload]] [--timeout MS] [--grace MS]

Runs in the confidential VM. Each connection to --listen proves this VM's identity with hardware
evidence bound to that connection; only then are its bytes forwarded to --forward (e.g. 127.0.0.1:22).
  --listen HOST:PORT  where clients (tunnel) connect, e.g. 0.0.0.0:7000 (port 0: any free port)
  --forward HOST:PORT the local service each attested connection is forwarded to
  --simulate snp|tdx  simulated evidence (NOT a TEE: testing only); prints the measurement to pin
                      (azure-snp, azure-tdx: a simulated Azure VM)
  --configfs          evidence from configfs-tsm (a real SEV-SNP or TDX guest)
  --configfs-root DIR configfs-tsm report folder (default /sys/kernel/config/tsm/report)
  --websocket PATH    serve the channel inside WebSockets on this HTTP path instead of raw TCP
  --policy FILE       clients must attest too, and satisfy this policy (JSON)
  --simulated-roots   trust the simulator's roots for client evidence (testing only)
  --any-workload      accept a --policy that pins no client workload (any genuine VM it admits)
  --timeout MS        TLS handshake plus attestation of each connection (default 30000)
  --grace MS          on SIGTERM or SIGINT: stop accepting, let open sessions run this long, then
                      close them (default 10000); a second signal closes them at once
${AZURE_SERVE_USAGE}`;

/** Every option serve takes; --help lists each (a test checks it). */
export const SERVE_OPTIONS = {
  listen: { type: 'string' },
  forward: { type: 'string' },
  websocket: { type: 'string' },
  simulate: { type: 'string' },
  configfs: { type: 'boolean' },
  'configfs-root': { type: 'string' },
  policy: { type: 'string' },
  'simulated-roots': { type: 'boolean' },
  'any-workload': { type: 'boolean' },
  timeout: { type: 'string' },
  grace: { type: 'string' },
  ...AZURE_SERVE_OPTIONS,
} as const;

const DEFAULT_GRACE_MS = 10_000;

export interface ServeHandle {
  /** Where it listens (HOST:PORT, with the real port when 0 was asked for). */
  readonly address: HostPort;
  /** Stops accepting and waits (at most --grace ms) for the open sessions to end. */
  drain(): Promise<void>;
  /** Stops accepting and closes every session. */
  close(): Promise<void>;
}

/**
 * Starts serving; resolves once listening. Throws AttestationError (ERR_INVALID_ARGUMENT /
 * ERR_POLICY_INVALID for usage mistakes, provider codes when --configfs cannot work).
 */
export async function startServe(args: string[], io: CliIo): Promise<ServeHandle> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseOptions(args, SERVE_OPTIONS).values;
  } catch (err) {
    throw new AttestationError('ERR_INVALID_ARGUMENT', (err as Error).message);
  }
  if (typeof values['listen'] !== 'string')
    throw new AttestationError('ERR_INVALID_ARGUMENT', '--listen is required');
  if (typeof values['forward'] !== 'string')
    throw new AttestationError('ERR_INVALID_ARGUMENT', '--forward is required');
  const listen = parseHostPort(values['listen'], '--listen', true);
  const forward = parseHostPort(values['forward'], '--forward');
  const wsPath = values['websocket'] as string | undefined;
  if (wsPath !== undefined && !wsPath.startsWith('/'))
    throw new AttestationError('ERR_INVALID_ARGUMENT', '--websocket PATH must start with "/"');
  const timeout = values['timeout'] === undefined ? undefined : Number(values['timeout']);
  if (timeout !== undefined && !(Number.isInteger(timeout) && timeout > 0))
    throw new AttestationError('ERR_INVALID_ARGUMENT', '--timeout must be a positive number of ms');
  const grace = values['grace'] === undefined ? DEFAULT_GRACE_MS : Number(values['grace']);
  if (!(Number.isInteger(grace) && grace >= 0 && grace <= 2_147_483_647))
    throw new AttestationError('ERR_INVALID_ARGUMENT', '--grace must be a number of ms (0 or more)');
  const azure = azureProviderFrom(values);
  if (azure && (values['simulate'] !== undefined || values['configfs']))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'give one of --simulate, --configfs and --azure');
  if (values['simulate'] === undefined && !values['configfs'] && !azure)
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      'give --simulate snp|tdx|azure-snp|azure-tdx, --configfs or --azure (the VM must attest)',
    );
  if (values['simulated-roots'] && values['policy'] === undefined)
    throw new AttestationError('ERR_INVALID_ARGUMENT', '--simulated-roots only applies with --policy');
  if (values['any-workload'] && values['policy'] === undefined)
    throw new AttestationError('ERR_INVALID_ARGUMENT', '--any-workload only applies with --policy');
  const policy = typeof values['policy'] === 'string' ? await loadPolicy(values['policy']) : undefined;
  const unpinned = policy ? checkWorkloadPinned(policy, values['any-workload'] === true) : [];
  const evidence =
    azure ??
    (await providerFrom({
      simulate: values['simulate'] as string | undefined,
      configfs: values['configfs'] as boolean | undefined,
      configfsRoot: values['configfs-root'] as string | undefined,
    }));

  // Lines carry the peer's words (ALERT reasons, codes, claims): escaped, so they stay one line.
  const say = (line: string) => io.out(`${new Date().toISOString()} ${printable(line)}\n`);
  const server = createAttestedServer({
    evidence,
    // The forwarded service sees the client's half-close (e.g. ssh's EOF) as it would over TCP.
    allowHalfOpen: true,
    ...(policy
      ? {
          verify: {
            policy,
            // One Verifier for every connection of this server: one set of caches, one bound.
            verifier: createVerifier(await simulatedRoots(values['simulated-roots'])),
          },
        }
      : {}),
    ...(timeout ? { timeout } : {}),
  });
  const live = new Set<AttestedChannel>();
  const forwards = new Set<Socket>();
  let next = 0;
  server.on('channel', (channel) => {
    const id = ++next;
    live.add(channel);
    const upstream = netConnect({ host: forward.host, port: forward.port, allowHalfOpen: true });
    forwards.add(upstream);
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      say(`#${id} accepted: ${describeClaims(channel.peer)} → forwarding to ${formatHostPort(forward)}`);
    });
    upstream.once('error', (err) => {
      if (!connected)
        say(`#${id} forward to ${formatHostPort(forward)} failed: ${err.message}; closing the channel`);
    });
    splice(channel, upstream, (inBytes, outBytes) => {
      live.delete(channel);
      forwards.delete(upstream);
      if (connected) say(`#${id} closed (${inBytes} bytes in, ${outBytes} bytes out)`);
    });
  });
  server.on('attestationError', (err) => {
    const id = ++next;
    const peer = typeof err.details['peerCode'] === 'string' ? ` (peer said ${err.details['peerCode']})` : '';
    const from = typeof err.details['remote'] === 'string' ? ` ${err.details['remote']}` : '';
    const hint = values['policy'] ? simulatedRootHint(err, values['simulated-roots'] === true) : '';
    say(`#${id} refused${from}: ${err.code}${peer} — ${oneLine(err.message)}${hint}`);
  });

  let http: HttpServer | undefined;
  let detach: (() => void) | undefined;
  const listening = new Promise<HostPort>((resolve, reject) => {
    const onListening = (addr: unknown) => {
      const a = addr as { address: string; port: number };
      resolve({ host: listen.host, port: a.port });
    };
    if (wsPath !== undefined) {
      const h = createHttpServer((_req, res) => {
        res
          .writeHead(426, { 'content-type': 'text/plain' })
          .end(`attested-channel/1: WebSocket upgrade on ${wsPath}\n`);
      });
      http = h;
      detach = attachWebSocket(h, server, { path: wsPath }).close;
      h.once('error', reject);
      h.listen(listen.port, listen.host, () => onListening(h.address()));
    } else {
      server.once('error', reject);
      server.listen(listen.port, listen.host, () => onListening(server.address()));
    }
  });
  const address = await listening;
  const kind =
    evidence?.format === 'sev-snp'
      ? 'SEV-SNP'
      : evidence?.format === 'tdx'
        ? 'TDX'
        : `Azure ${evidence?.format}`;
  const source = azure
    ? 'Azure vTPM (HCL report + TPM quote)'
    : values['configfs']
      ? `configfs-tsm (${kind})`
      : `simulated ${kind} (NOT a TEE: testing only)`;
  say(
    `serving attested-channel/1 on ${wsPath !== undefined ? `ws://${formatHostPort(address)}${wsPath}` : formatHostPort(address)}, evidence ${source}, forwarding to ${formatHostPort(forward)}${policy ? ', clients must attest' : ''}${unpinned.length ? ` (ANY ${unpinned.join(' or ')} workload: --any-workload)` : ''}`,
  );

  if (!values['configfs'] && !azure && evidence) {
    // What a tunnel's policy must pin to accept this simulated VM (and nothing else).
    say(simulatedPinLine(evidence.format, await loadSimulated())); // --simulate loaded it already
  }

  // Stops listening once; resolves when the listener and every connection it accepted are closed.
  let stopped: Promise<void> | undefined;
  const stopAccepting = (): Promise<void> => {
    stopped ??= new Promise<void>((resolve) => {
      if (http) {
        http.close(() => resolve());
        http.closeIdleConnections();
      } else server.close(() => resolve());
    });
    return stopped;
  };
  const openCount = () => live.size + server.pendingCount;
  let closing = false;

  return {
    address,
    async drain() {
      void stopAccepting();
      const open = openCount();
      say(
        `stopping: no new connections; ${open} open session${open === 1 ? '' : 's'} may finish within ${grace} ms (signal again to close them now)`,
      );
      const deadline = performance.now() + grace;
      while (!closing && openCount() > 0 && performance.now() < deadline)
        await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, deadline - performance.now()))));
      const left = openCount();
      if (!closing && left > 0)
        say(`grace period over: closing ${left} open session${left === 1 ? '' : 's'}`);
    },
    async close() {
      // A drain still waiting (a second signal came) stops waiting.
      closing = true;
      const done = stopAccepting();
      detach?.();
      for (const c of live) c.destroy();
      for (const s of forwards) s.destroy();
      http?.closeAllConnections();
      await done;
      say('stopped');
    },
  };
}

/** Serves until SIGINT or SIGTERM. */
export function run(args: string[], io: CliIo): Promise<number> {
  return runUntilSignal(args, io, 'serve', SERVE_USAGE, startServe);
}

/** The line `serve --simulate` prints: the value a tunnel's policy pins to admit this simulated VM only. */
function simulatedPinLine(format: string, simulated: Awaited<ReturnType<typeof loadSimulated>>): string {
  if (format === 'sev-snp' || format === 'tdx') {
    const pin =
      format === 'sev-snp'
        ? { snp: { measurements: [simulated.defaults.snpMeasurement] } }
        : { tdx: { mrTd: [simulated.defaults.tdxMrTd] } };
    const field = format === 'sev-snp' ? 'measurement' : 'MRTD';
    return `simulated ${field} ${format === 'sev-snp' ? pin.snp!.measurements[0] : pin.tdx!.mrTd[0]}; a tunnel's policy.json that admits this VM only: ${JSON.stringify(pin)} (with tunnel --simulated-roots)`;
  }
  const pin = simulatedAzurePin(format, simulated);
  return `simulated Azure VM (${format}): its workload is pinned by PCRs; a tunnel's policy.json that admits this VM only: ${JSON.stringify(pin)} (with tunnel --simulated-roots)`;
}
