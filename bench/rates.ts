/**
 * The rates section (issue 17 part 3): new attested connections per second when evidence costs what
 * it costs on real hardware (bench/platform-delay.ts: one request at a time, 8 ms SNP, 39 ms TDX,
 * 1 s TDX on KVM, GCP's SNP throttle), against plain TLS, with the server in its own process
 * (bench/rates-server.ts) and every contender run side by side in alternating rounds.
 *
 * Each client loop connects, sends one 32-byte message, waits for its echo and closes; K loops run
 * at once. Per contender and K: connections/s (echoes received within the round), p50/p99 connect
 * latency (connections still connecting when a round ends count with their age then, so a stall
 * is not hidden by cutting it off), reports/s (provider calls the server made), CPU per connection
 * (process.cpuUsage of both processes over the round / connections).
 *
 * Contenders whose option the build does not know (detected at run time) are reported as not
 * available in this build. Environment: BENCH_RATES_PROFILES (comma list, default all),
 * BENCH_RATES_CLIENTS (default 1,8,32,128), BENCH_RATES_MS / BENCH_RATES_ROUNDS (unthrottled
 * millisecond-latency profiles, default 1000 ms × 3 rounds), BENCH_RATES_SLOW_MS /
 * BENCH_RATES_SLOW_ROUNDS (snp-gcp and tdx-kvm, default 4000 ms × 1 round), BENCH_RATES_PACE
 * (reports/s the batched servers pace to on the throttled profile, default 0.9; 0: unpaced).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { createSecureContext, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { attestedConnect } from '../dist/channel/connect.js';
import { parsePolicy } from '../dist/evidence/policy.js';
import { simulated } from '../dist/evidence/providers/simulated.js';
import { createVerifier } from '../dist/evidence/verifier.js';
import { fmt, record } from './harness.js';
import { type LatencyProfile, PROFILES } from './platform-delay.js';
import {
  ALPN,
  CHIP_ID,
  CONTENDERS,
  type Contender,
  type FromServer,
  LABELS,
  type ServerCounters,
  type ToServer,
} from './rates-shared.js';

const SECTION = 'rates';
const list = (v: string | undefined) => v?.split(',').filter(Boolean);
const WANTED = list(process.env['BENCH_RATES_PROFILES']) ?? Object.keys(PROFILES);
const CLIENTS = (list(process.env['BENCH_RATES_CLIENTS']) ?? ['1', '8', '32', '128']).map(Number);
const FAST = {
  ms: Number(process.env['BENCH_RATES_MS'] ?? 1000),
  rounds: Number(process.env['BENCH_RATES_ROUNDS'] ?? 3),
};
const SLOW = {
  ms: Number(process.env['BENCH_RATES_SLOW_MS'] ?? 4000),
  rounds: Number(process.env['BENCH_RATES_SLOW_ROUNDS'] ?? 1),
};
/** The cell the rate targets are set in (issue 17). */
const TARGET_PROFILE = 'snp-8ms';
const TARGET_K = 32;
const MESSAGE = Buffer.alloc(32, 0x61);
const progress = (what: string) => process.stderr.write(`  [rates] ${what}\n`);
const slow = (p: LatencyProfile) => p.throttle !== undefined || p.latencyMs >= 100;

/** The server process for one profile, and request/answer over IPC. */
class ServerProcess {
  readonly child: ChildProcess;
  #waiting: Array<{ resolve: (m: FromServer) => void; reject: (e: Error) => void }> = [];
  constructor(profile: string) {
    // Inherits this process's execArgv, so under tsx the child loads TypeScript the same way.
    this.child = fork(fileURLToPath(new URL('./rates-server.ts', import.meta.url)), [profile], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (m: FromServer) => this.#waiting.shift()?.resolve(m));
    this.child.on('exit', (code) => {
      for (const w of this.#waiting.splice(0)) w.reject(new Error(`rates-server exited (${code})`));
    });
  }
  next(): Promise<FromServer> {
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }
  async ask(m: ToServer): Promise<FromServer> {
    const answer = this.next();
    this.child.send(m);
    return answer;
  }
  async counters(m: 'begin' | 'end'): Promise<ServerCounters> {
    const a = await this.ask({ type: m });
    if (a.type !== 'counters') throw new Error(`rates-server answered ${a.type} to ${m}`);
    return a.counters;
  }
  async exit(): Promise<void> {
    const exited = once(this.child, 'exit');
    this.child.send({ type: 'exit' } satisfies ToServer);
    await exited;
  }
}

interface Client {
  connect(signal: AbortSignal): Promise<Duplex>;
  /** Whether the connection reused cached evidence (key proof), as the channel reports it. */
  reused(c: Duplex): boolean;
}

const sharedContext = createSecureContext({ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });

function plainClient(port: number): Client {
  return {
    connect: (signal) =>
      new Promise<Duplex>((resolve, reject) => {
        // One client context for all connections, as the channel keeps one per identity: the
        // stricter of the two plain-TLS baselines of the channel section.
        const s: TLSSocket = tlsConnect({
          host: '127.0.0.1',
          port,
          secureContext: sharedContext,
          ALPNProtocols: [ALPN],
          rejectUnauthorized: false,
        });
        const onAbort = () => {
          s.destroy();
          reject(signal.reason);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        s.once('secureConnect', () => {
          signal.removeEventListener('abort', onAbort);
          resolve(s);
        });
        s.once('error', reject);
      }),
    reused: () => false,
  };
}

function attestedClient(port: number, options: Record<string, unknown>): Client {
  return {
    connect: (signal) => attestedConnect({ host: '127.0.0.1', port, signal, ...options } as never),
    reused: (c) => {
      const peer = (c as unknown as { peer?: { reused?: unknown } }).peer;
      return peer?.reused === true || (c as unknown as { reused?: unknown }).reused === true;
    },
  };
}

/**
 * Whether attestedConnect knows option `key`: given a value of the wrong type, a build that
 * validates it refuses at once; one that does not know it connects (the connection is closed).
 */
async function connectorKnows(port: number, key: string, verify: object): Promise<boolean> {
  try {
    const c = await attestedConnect({ host: '127.0.0.1', port, verify, [key]: 'probe' } as never);
    c.destroy();
    return false;
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    return e.code === 'ERR_INVALID_ARGUMENT' && String(e.message).includes(key);
  }
}

/** The workload and the one machine: the platform pin is what lets a policy allow reuse. */
function basePolicy(profile: LatencyProfile): Record<string, unknown> {
  return profile.platform === 'snp'
    ? { snp: { measurements: [simulated.defaults.snpMeasurement], chipIds: [CHIP_ID] } }
    : { tdx: { mrTd: [simulated.defaults.tdxMrTd], ppids: [simulated.defaults.tdxPlatform.ppid] } };
}

/** The reuse policy, or why this build will not take it. */
function reusePolicy(profile: LatencyProfile): Record<string, unknown> | string {
  const policy = { ...basePolicy(profile), reuse: { maxEvidenceAge: 300 } };
  try {
    parsePolicy(policy as never);
    return policy;
  } catch (err) {
    return (err as Error).message;
  }
}

interface Tally {
  ms: number;
  connections: number;
  /** Connect latencies, ms, with connections cut at the end of a round at their age then. */
  latencies: number[];
  /** Open until the echo arrived, ms. */
  requests: number[];
  cut: number;
  reused: number;
  reports: number;
  refused: number;
  cpuMs: number;
  errors: Record<string, number>;
}

const emptyTally = (): Tally => ({
  ms: 0,
  connections: 0,
  latencies: [],
  requests: [],
  cut: 0,
  reused: 0,
  reports: 0,
  refused: 0,
  cpuMs: 0,
  errors: {},
});

function addError(errors: Record<string, number>, code: string, n = 1): void {
  errors[code] = (errors[code] ?? 0) + n;
}

function echo(c: Duplex): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let got = 0;
    const onData = (d: Buffer) => {
      got += d.length;
      if (got >= MESSAGE.length) done(null);
    };
    const onClose = () => done(new Error('closed before the echo'));
    const done = (err: Error | null) => {
      c.off('data', onData);
      c.off('error', done);
      c.off('close', onClose);
      err ? reject(err) : resolve();
    };
    c.on('data', onData);
    c.once('error', done);
    c.once('close', onClose);
    c.write(MESSAGE);
  });
}

interface InFlight {
  t0: number;
  abort: AbortController;
  conn?: Duplex;
  connected: boolean;
}

/** One round: K loops for `ms`, then every unfinished connection is cut (off the clock). */
async function round(server: ServerProcess, client: Client, k: number, ms: number, into: Tally) {
  const inflight = new Set<InFlight>();
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      const f: InFlight = { t0: performance.now(), abort: new AbortController(), connected: false };
      inflight.add(f);
      try {
        const conn = await client.connect(f.abort.signal);
        f.conn = conn;
        conn.on('error', () => {});
        if (stopped) break;
        f.connected = true;
        into.latencies.push(performance.now() - f.t0);
        if (client.reused(conn)) into.reused++;
        const opened = performance.now();
        await echo(conn);
        if (!stopped) {
          into.connections++;
          into.requests.push(performance.now() - opened);
        }
      } catch (err) {
        if (!stopped)
          addError(into.errors, String((err as { code?: unknown }).code ?? (err as Error).message));
      } finally {
        f.conn?.destroy();
        inflight.delete(f);
      }
    }
  };
  const before = await server.counters('begin');
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const loops = Array.from({ length: k }, loop);
  await new Promise((r) => setTimeout(r, ms));
  stopped = true;
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  for (const f of inflight)
    if (!f.connected) {
      into.latencies.push(t1 - f.t0);
      into.cut++;
    }
  const after = await server.counters('end');
  for (const f of inflight) {
    f.abort.abort(new Error('round over'));
    f.conn?.destroy();
  }
  await Promise.all(loops);
  await server.ask({ type: 'idle' });
  const serverCpu = after.cpu.user + after.cpu.system - before.cpu.user - before.cpu.system;
  into.ms += t1 - t0;
  into.cpuMs += (cpu.user + cpu.system + serverCpu) / 1000;
  into.reports += after.reports - before.reports;
  into.refused += after.refused - before.refused;
  for (const [code, n] of Object.entries(after.errors)) addError(into.errors, `server ${code}`, n);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface Cell {
  rate: number;
  p50: number;
  p99: number;
  max: number;
  request: number;
  reportsPerS: number;
  cpuPerConn: number;
  errors: number;
  tally: Tally;
}

function cell(t: Tally): Cell {
  const sorted = [...t.latencies].sort((a, b) => a - b);
  return {
    rate: (t.connections * 1000) / t.ms,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? Number.NaN,
    request: percentile(
      [...t.requests].sort((a, b) => a - b),
      50,
    ),
    reportsPerS: (t.reports * 1000) / t.ms,
    cpuPerConn: t.connections > 0 ? t.cpuMs / t.connections : Number.NaN,
    errors: Object.values(t.errors).reduce((a, b) => a + b, 0),
    tally: t,
  };
}

const num = (n: number) => (Number.isFinite(n) ? fmt(n) : '—');

async function runProfile(
  profile: LatencyProfile,
  roundCounter: { n: number },
): Promise<Map<number, Map<Contender, Cell>>> {
  const { ms, rounds } = slow(profile) ? SLOW : FAST;
  const server = new ServerProcess(profile.name);
  const ready = await server.next();
  if (ready.type !== 'ready') throw new Error('rates-server did not start');
  const anchors = simulated.trustAnchors();
  const policy = basePolicy(profile);
  const verify = () => ({ verifier: createVerifier({ trustAnchors: anchors }), policy });
  const todayPort = ready.ports.today!;
  const connectorBatch = await connectorKnows(todayPort, 'batch', { trustAnchors: anchors, policy });
  const reuse = reusePolicy(profile);
  const batchOff = connectorBatch ? { batch: false } : {};
  const missing: Partial<Record<Contender, string>> = {};
  const batchAvailable = ready.features.batch && connectorBatch;
  const keyProofAvailable = ready.features.keyProof && typeof reuse !== 'string';
  const whyNoBatch = 'not available in this build (no `batch` option)';
  // A build with key proofs may still refuse reuse for this platform (one without a TDX platform pin).
  const whyNoKeyProof = ready.features.keyProof
    ? `not available on ${profile.platform.toUpperCase()}: the policy refuses reuse (${reuse})`
    : 'not available in this build (no `keyProof` option)';
  const clients: Partial<Record<Contender, Client>> = {
    plain: plainClient(ready.ports.plain!),
    today: attestedClient(todayPort, { verify: verify(), ...batchOff }),
  };
  if (batchAvailable) clients.batched = attestedClient(ready.ports.batched!, { verify: verify() });
  else missing.batched = whyNoBatch;
  const keyProofVerify = () => ({ verifier: createVerifier({ trustAnchors: anchors }), policy: reuse });
  if (keyProofAvailable)
    clients.keyProof = attestedClient(ready.ports.keyProof!, { verify: keyProofVerify(), ...batchOff });
  else missing.keyProof = whyNoKeyProof;
  if (batchAvailable && keyProofAvailable)
    clients.batchedKeyProof = attestedClient(ready.ports.batchedKeyProof!, { verify: keyProofVerify() });
  else missing.batchedKeyProof = batchAvailable ? whyNoKeyProof : whyNoBatch;

  const names = CONTENDERS.filter((c) => clients[c]);
  progress(
    `${profile.name} (${profile.models}): ${names.map((n) => LABELS[n]).join(', ')}; ` +
      `K = ${CLIENTS.join(', ')}; ${rounds} round(s) of ${ms} ms per contender`,
  );
  for (const [name, why] of Object.entries(missing)) progress(`  ${LABELS[name as Contender]}: ${why}`);

  // Warm-up, off the record: JIT, client contexts, and the key-proof caches (the first connection
  // of a key-proof client is a full exchange; the ones after it may reuse).
  const warmReused: Partial<Record<Contender, number>> = {};
  // Two on the slow profiles, whose reports are scarce (the key-proof ones need one full exchange
  // and one to see reuse engage).
  const warmups = slow(profile) ? 2 : 5;
  for (const name of names) {
    const c = clients[name]!;
    let reused = 0;
    for (let i = 0; i < warmups; i++) {
      const conn = await c.connect(new AbortController().signal);
      if (c.reused(conn)) reused++;
      await echo(conn);
      conn.destroy();
    }
    warmReused[name] = reused;
  }
  for (const name of ['keyProof', 'batchedKeyProof'] as const)
    if (clients[name] && warmReused[name] === 0)
      progress(`  ${LABELS[name]}: no warm-up connection reused evidence (key proof did not engage)`);

  const cells = new Map<number, Map<Contender, Cell>>();
  for (const k of CLIENTS) {
    const tallies = new Map<Contender, Tally>(names.map((n) => [n, emptyTally()]));
    for (let r = 0; r < rounds; r++, roundCounter.n++)
      for (let i = 0; i < names.length; i++) {
        const name = names[(roundCounter.n + i) % names.length]!;
        await round(server, clients[name]!, k, ms, tallies.get(name)!);
      }
    const row = new Map<Contender, Cell>();
    for (const name of names) row.set(name, cell(tallies.get(name)!));
    cells.set(k, row);
  }
  await server.exit();

  // The whole grid, for the reader (the table at the end holds the target rows).
  const pace = Number(process.env['BENCH_RATES_PACE'] ?? 0.9);
  const paced =
    profile.throttle && batchAvailable && pace > 0 ? `; batched servers paced at ${pace} reports/s` : '';
  console.log(
    `\n[rates] ${profile.name}: ${profile.models}; ${rounds} × ${ms} ms per contender and K${paced}`,
  );
  console.log(
    '| K | contender | connections/s | p50 connect ms | p99 connect ms | max ms | p50 request ms | reports/s | CPU ms/conn | cut | reused | errors |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const [k, row] of cells) {
    for (const name of CONTENDERS) {
      const c = row.get(name);
      if (!c) {
        console.log(`| ${k} | ${LABELS[name]} | ${missing[name]} | | | | | | | | | |`);
        continue;
      }
      const errs = Object.entries(c.tally.errors)
        .map(([code, n]) => `${n} ${code}`)
        .join(', ');
      console.log(
        `| ${k} | ${LABELS[name]} | ${num(c.rate)} | ${num(c.p50)} | ${num(c.p99)} | ${num(c.max)} | ${num(c.request)} | ` +
          `${num(c.reportsPerS)} | ${num(c.cpuPerConn)} | ${c.tally.cut} | ${c.tally.reused} | ${errs || 0} |`,
      );
    }
  }
  recordTargets(profile, cells, missing, ms, rounds);
  return cells;
}

function recordTargets(
  profile: LatencyProfile,
  cells: Map<number, Map<Contender, Cell>>,
  missing: Partial<Record<Contender, string>>,
  ms: number,
  rounds: number,
): void {
  const p = profile.name;
  const unavailable = (name: Contender, metric: string) =>
    record({
      section: SECTION,
      metric: `${p}: ${metric} — ${LABELS[name]} ${missing[name]}`,
      value: Number.NaN,
      unit: '',
    });
  const at = (k: number, name: Contender) => cells.get(k)?.get(name);
  const k32 = cells.get(TARGET_K);
  if (k32)
    for (const name of CONTENDERS) {
      const c = k32.get(name);
      if (c)
        record({
          section: SECTION,
          metric: `${p}, K=${TARGET_K}: ${LABELS[name]} (p99 ${num(c.p99)} ms, ${num(c.reportsPerS)} reports/s, ${num(c.cpuPerConn)} ms CPU/conn)`,
          value: c.rate,
          unit: 'connections/s',
        });
    }
  if (p === TARGET_PROFILE && k32) {
    const b = at(TARGET_K, 'batched');
    const today = at(TARGET_K, 'today')!;
    const plain = at(TARGET_K, 'plain')!;
    if (!b) unavailable('batched', `K=${TARGET_K} batched vs today, batched vs plain TLS`);
    else {
      record({
        section: SECTION,
        metric: `${p}, K=${TARGET_K}: batched connections/s against per-connection evidence`,
        value: b.rate,
        unit: 'connections/s',
        baseline: { metric: 'per-connection (today)', value: today.rate },
        ratio: b.rate / today.rate,
        target: '≥ 10',
        pass: b.rate / today.rate >= 10,
      });
      record({
        section: SECTION,
        metric: `${p}, K=${TARGET_K}: batched connections/s against plain TLS`,
        value: b.rate,
        unit: 'connections/s',
        baseline: { metric: 'plain TLS', value: plain.rate },
        ratio: b.rate / plain.rate,
        target: '≥ 0.5',
        pass: b.rate / plain.rate >= 0.5,
      });
    }
  }
  if (!profile.throttle)
    for (const [k, row] of cells) {
      const b = row.get('batched');
      const plain = row.get('plain')!;
      if (!b) {
        if (k === TARGET_K) unavailable('batched', `K=${k} batched p99 connect`);
        continue;
      }
      const bound = plain.p99 + 2 * profile.latencyMs + 5;
      record({
        section: SECTION,
        metric: `${p}, K=${k}: batched p99 connect, against plain p99 + 2 × ${profile.latencyMs} ms + 5 ms`,
        value: b.p99,
        unit: 'ms',
        baseline: { metric: 'bound', value: bound },
        ratio: b.p99 / bound,
        target: '≤ 1',
        pass: b.p99 <= bound,
      });
    }
  const kp = at(TARGET_K, 'keyProof');
  const plain = at(TARGET_K, 'plain');
  if (!kp) unavailable('keyProof', `K=${TARGET_K} key proof vs plain TLS`);
  else if (plain)
    record({
      section: SECTION,
      metric: `${p}, K=${TARGET_K}: key proof (warm) connections/s against plain TLS (${kp.tally.reused} reused)`,
      value: kp.rate,
      unit: 'connections/s',
      baseline: { metric: 'plain TLS', value: plain.rate },
      ratio: kp.rate / plain.rate,
      target: '≥ 0.8',
      pass: kp.rate / plain.rate >= 0.8 && kp.tally.reused > 0,
    });
  let errors = 0;
  for (const row of cells.values()) for (const c of row.values()) errors += c.errors;
  record({
    section: SECTION,
    metric: `${p}: errors, all contenders and K (${rounds} × ${ms} ms rounds)`,
    value: errors,
    unit: 'errors',
    target: '= 0',
    pass: errors === 0,
  });
}

export async function run(): Promise<void> {
  const counter = { n: 0 };
  for (const name of WANTED) {
    const profile = PROFILES[name];
    if (!profile)
      throw new Error(`rates: unknown profile ${name} (known: ${Object.keys(PROFILES).join(', ')})`);
    await runProfile(profile, counter);
  }
}
