/**
 * The server half of the `rates` bench, in a child process of its own so the client loops cannot
 * starve it of CPU (bench/rates.ts forks it with one profile name). Each attested server has its own
 * simulated platform behind platformDelay(), as if each contender ran alone on its own CVM; the
 * contenders run one at a time, so the report count over a round is that round's contender's.
 *
 * IPC (process.send): it announces `{ type: 'ready', ports, features }`; then answers
 * `begin` / `end` (CPU and report counters, server-side errors between the two) and `idle`
 * (resolves once no platform has a request waiting or in flight and the last round's connections
 * are gone), and exits on `exit`.
 */
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { createTlsIdentity } from '../dist/channel/identity.js';
import { type AttestedServer, createAttestedServer } from '../dist/channel/server.js';
import { simulated } from '../dist/evidence/providers/simulated.js';
import { type DelayedProvider, PROFILES, platformDelay } from './platform-delay.js';
import {
  ALPN,
  CHIP_ID,
  type Contender,
  type Features,
  type FromServer,
  probeOption,
  type ServerCounters,
  type ToServer,
} from './rates-shared.js';

const profile = PROFILES[process.argv[2] ?? ''];
if (!profile || !process.send) throw new Error('rates-server: run by bench/rates.ts with a profile name');
const send = (m: FromServer) => process.send!(m);

const identity = createTlsIdentity();
/**
 * Each attested server has a platform of its own, as if each contender ran alone on its own CVM:
 * no contender inherits another's queue or (on the throttled profile) its host budget.
 */
const platforms: DelayedProvider[] = [];
function platform(): DelayedProvider {
  const p = platformDelay(
    profile!.platform === 'snp' ? simulated.snp({ chipId: CHIP_ID }) : simulated.tdx(),
    profile!,
  );
  platforms.push(p);
  return p;
}
const probe = platformDelay(simulated.snp(), profile);

// The options under test are detected, not assumed: a build that validates them refuses a value
// of the wrong type; one that does not know them ignores it.
const features: Features = {
  batch: probeOption(
    () => createAttestedServer({ evidence: probe, identity, batch: 'probe' } as never),
    'batch',
  ),
  keyProof: probeOption(
    () => createAttestedServer({ evidence: probe, identity, keyProof: 'probe' } as never),
    'keyProof',
  ),
};

let counting = false;
const errors: Record<string, number> = {};
const countError = (code: string) => {
  if (counting) errors[code] = (errors[code] ?? 0) + 1;
};

/** Open server-side connections of every server (the drain between rounds waits for none). */
let open = 0;
function attested(extra: Record<string, unknown>): AttestedServer {
  const options = { evidence: platform(), identity, backlog: 2048, ...extra };
  const server = createAttestedServer(options as never, (c) => {
    open++;
    c.once('close', () => open--);
    c.on('error', () => {});
    c.on('data', (d: Buffer) => c.write(d));
  });
  server.on('attestationError', (e) => countError(e.code));
  server.on('drop', () => countError('dropped (maxPendingConnections)'));
  server.on('error', (e) => countError(`server: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
  return server;
}

function plain(): TlsServer {
  const server = createTlsServer(
    {
      key: identity.keyPem,
      cert: identity.certPem,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      ALPNProtocols: [ALPN],
    },
    (s) => {
      s.on('error', () => {});
      s.on('data', (d: Buffer) => s.write(d));
    },
  );
  server.on('tlsClientError', (e) => countError(`tls: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
  return server;
}

const off = (feature: boolean, key: string, value: unknown) => (feature ? { [key]: value } : {});
// On a throttled host the batched servers pace their reports below the host's budget, as
// the scheduler's reportsPerSecond is for, so the guest driver never enters its 2-s resend loop
// (BENCH_RATES_PACE reports/s; 0: unpaced). Elsewhere batching runs as it comes.
const pace = Number(process.env['BENCH_RATES_PACE'] ?? 0.9);
const batchOn = profile.throttle && pace > 0 ? { batch: { reportsPerSecond: pace } } : {};
const plainServer = plain();
const servers: Partial<Record<Exclude<Contender, 'plain'>, AttestedServer>> = {
  // Today's protocol: one report per connection.
  today: attested({ ...off(features.batch, 'batch', false), ...off(features.keyProof, 'keyProof', false) }),
};
if (features.batch) servers.batched = attested({ ...batchOn, ...off(features.keyProof, 'keyProof', false) });
if (features.keyProof)
  servers.keyProof = attested({ ...off(features.batch, 'batch', false), keyProof: true });
if (features.batch && features.keyProof) servers.batchedKeyProof = attested({ ...batchOn, keyProof: true });

await new Promise<void>((resolve) =>
  plainServer.listen({ port: 0, host: '127.0.0.1', backlog: 2048 }, resolve),
);
const ports: Partial<Record<Contender, number>> = { plain: (plainServer.address() as AddressInfo).port };
for (const [name, server] of Object.entries(servers) as Array<[Contender, AttestedServer]>) {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  ports[name] = (server.address() as AddressInfo).port;
}

function counters(): ServerCounters {
  // Only one contender runs at a time: the sums are its counts.
  let reports = 0;
  let refused = 0;
  for (const p of platforms) {
    reports += p.stats.reports;
    refused += p.stats.refused;
  }
  return { cpu: process.cpuUsage(), reports, refused, errors: { ...errors } };
}

/** Every platform idle and every connection of the last round gone (or 10 s passed). */
async function drained(): Promise<void> {
  const end = Date.now() + 10_000;
  for (const p of platforms) await p.idle();
  const plainOpen = () =>
    new Promise<number>((resolve) => plainServer.getConnections((_e, n) => resolve(n ?? 0)));
  for (;;) {
    const pending = Object.values(servers).reduce((n, s) => n + s.pendingCount, 0);
    if ((pending === 0 && open === 0 && (await plainOpen()) === 0) || Date.now() > end) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

process.on('message', async (m: ToServer) => {
  switch (m.type) {
    case 'begin':
      for (const k of Object.keys(errors)) delete errors[k];
      counting = true;
      send({ type: 'counters', counters: counters() });
      break;
    case 'end':
      counting = false;
      send({ type: 'counters', counters: counters() });
      break;
    case 'idle':
      await drained();
      send({ type: 'idle' });
      break;
    case 'exit':
      plainServer.close();
      for (const s of Object.values(servers)) s.close();
      process.exit(0);
  }
});

send({ type: 'ready', ports, features });
