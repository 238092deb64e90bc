/**
 * `attested-channel tunnel`: runs on the user's side. Each local TCP connection gets its own
 * attested channel to the VM (TCP or ws:// / wss://); the local bytes are read only once the VM
 * proved, with evidence bound to that channel, that it satisfies the policy. A refused VM never
 * sees a byte: the local connection is closed.
 */
import { createServer as createNetServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import type { AttestedChannel } from '../channel/channel.js';
import { type AttestedConnectOptions, attestedConnect } from '../channel/connect.js';
import { AttestationError } from '../errors.js';
import { simulated } from '../evidence/providers/simulated.js';
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
  splice,
} from './endpoint-args.js';
import { type CliIo, oneLine } from './io.js';

export const TUNNEL_USAGE = `usage: attested-channel tunnel --listen HOST:PORT --connect HOST:PORT|ws://…|wss://… --policy FILE
         [--simulated-roots] [--any-workload] [--simulate snp|tdx | --configfs] [--timeout MS]

Runs on your side. Each connection to --listen is carried through its own attested channel to
--connect; nothing is forwarded until the VM's evidence, bound to that channel, satisfies the policy.
  --policy FILE      what the VM must be (JSON: snp.measurements, tdx.mrTd, ...); required
  --simulated-roots  trust the simulator's roots instead of AMD's and Intel's (testing only)
  --any-workload     accept a policy that pins no workload (any genuine VM of a format it admits)
  --simulate, --configfs  attest this side too, when the server asks for it
`;

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

export async function startTunnel(args: string[], io: CliIo): Promise<TunnelHandle> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        listen: { type: 'string' },
        connect: { type: 'string' },
        policy: { type: 'string' },
        'simulated-roots': { type: 'boolean' },
        'any-workload': { type: 'boolean' },
        simulate: { type: 'string' },
        configfs: { type: 'boolean' },
        'configfs-root': { type: 'string' },
        timeout: { type: 'string' },
      },
    }).values;
  } catch (err) {
    throw new AttestationError('ERR_INVALID_ARGUMENT', (err as Error).message);
  }
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
  const connectOptions: AttestedConnectOptions = {
    ...target,
    allowHalfOpen: true,
    verify: { policy, ...(values['simulated-roots'] ? { trustAnchors: simulated.trustAnchors() } : {}) },
    ...(evidence ? { evidence } : {}),
    ...(timeout ? { timeout } : {}),
  };
  const targetText = 'url' in target ? target.url : formatHostPort(target);

  const say = (line: string) => io.out(`${new Date().toISOString()} ${line}\n`);
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
        const hint = simulatedRootHint(e, values['simulated-roots'] === true);
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
  say(
    `tunnel listening on ${formatHostPort(address)} → ${targetText}; each connection must attest${values['simulated-roots'] ? ' (simulated roots: TESTING ONLY)' : ''}${unpinned.length ? `; ANY ${unpinned.join(' or ')} workload is accepted (--any-workload)` : ''}`,
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
