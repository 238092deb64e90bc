/**
 * The server half of the `rates` bench, in a child process of its own so the client loops cannot
 * starve it of CPU (bench/rates.ts forks it with one profile name). One simulated platform behind
 * platformDelay() serves every attested server here, as one CVM's PSP or QE would; the contenders
 * run one at a time, so its report count per round is that contender's.
 *
 * IPC (process.send): it announces `{ type: 'ready', ports, features }`; then answers
 * `begin` / `end` (CPU and report counters, server-side errors between the two) and `idle`
 * (resolves once the platform has no request waiting or in flight), and exits on `exit`.
 */
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { createTlsIdentity } from '../dist/channel/identity.js';
import { type AttestedServer, createAttestedServer } from '../dist/channel/server.js';
import { simulated } from '../dist/evidence/providers/simulated.js';
import { PROFILES, platformDelay } from './platform-delay.js';
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
const evidence = platformDelay(
  profile.platform === 'snp' ? simulated.snp({ chipId: CHIP_ID }) : simulated.tdx(),
  profile,
);

// The options under test are detected, not assumed: a build that validates them refuses a value
// of the wrong type; one that does not know them ignores it.
const features: Features = {
  batch: probeOption(() => createAttestedServer({ evidence, identity, batch: 'probe' } as never), 'batch'),
  keyProof: probeOption(
    () => createAttestedServer({ evidence, identity, keyProof: 'probe' } as never),
    'keyProof',
  ),
};

let counting = false;
const errors: Record<string, number> = {};
const countError = (code: string) => {
  if (counting) errors[code] = (errors[code] ?? 0) + 1;
};

function attested(extra: Record<string, unknown>): AttestedServer {
  const server = createAttestedServer({ evidence, identity, backlog: 2048, ...extra } as never, (c) => {
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
  const { reports, refused } = evidence.stats;
  return { cpu: process.cpuUsage(), reports, refused, errors: { ...errors } };
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
      await evidence.idle();
      send({ type: 'idle' });
      break;
    case 'exit':
      plainServer.close();
      for (const s of Object.values(servers)) s.close();
      process.exit(0);
  }
});

send({ type: 'ready', ports, features });
