/**
 * One end of the concurrent-channels bench (bench/channel.ts spawns two of these, each in its own
 * process under a raised file-descriptor limit): `server` listens and echoes, `client` opens the
 * channels a window at a time, echoes once on each while all are open, then holds them. Each end
 * samples its own RSS, heap and event-loop delay and sends them to the parent over IPC.
 *
 * argv: role ('server' | 'client'), kind ('attested' | 'tls'), and for the client: port, count.
 * With BENCH_HEAP_SNAPSHOT=<dir>, each end writes a heap snapshot while the channels are held.
 */
import { type EventEmitter, once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { writeHeapSnapshot } from 'node:v8';
import { attestedConnect } from '../dist/channel/connect.js';
import { createTlsIdentity, secureContextFor } from '../dist/channel/identity.js';
import { createAttestedServer } from '../dist/channel/server.js';
import { simulated } from '../dist/evidence/providers/simulated.js';

const [role, kind, portArg, countArg] = process.argv.slice(2) as [string, string, string?, string?];
const ALPN = 'attested-channel/1';
/** Connects in flight at once: under the server's maxPendingConnections (1 000 by default). */
const WINDOW = Number(process.env['BENCH_CHANNEL_WINDOW'] ?? 64);
/** The event-loop delay sampling interval. */
const RESOLUTION_MS = 5;
/** Frame sizes of the simulated SNP exchange (one-way): REQUEST, EVIDENCE, RESULT. */
const REQUEST_BYTES = 116;
const EVIDENCE_BYTES = 9770;
const RESULT_BYTES = 42;
/** How long the channels stay open after the echo round, sampled. */
const HOLD_MS = Number(process.env['BENCH_CHANNEL_HOLD_MS'] ?? 3000);

export interface Phase {
  p50: number;
  p99: number;
  max: number;
}
export interface EndReport {
  role: string;
  baseRss: number;
  baseHeap: number;
  peakRss: number;
  peakHeap: number;
  heldRss: number;
  heldHeap: number;
  /** ArrayBuffer memory (Buffers) before and while held: outside the heap, inside RSS. */
  baseBuffers: number;
  heldBuffers: number;
  /** Heap committed (heapTotal) while held, and RSS / heap used after a full GC at the end. */
  heldHeapTotal: number;
  baseHeapTotal: number;
  gcRss: number;
  gcHeap: number;
  opening: Phase;
  held: Phase;
  openMs?: number;
  errors: number;
}

const send = (msg: unknown) => process.send!(msg);
const gc = (globalThis as { gc?: () => void }).gc;

/** Peak RSS and heap, sampled every 20 ms from `start()` on. */
function memorySampler() {
  let peakRss = 0;
  let peakHeap = 0;
  const sample = () => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  };
  const timer = setInterval(sample, 20);
  timer.unref();
  return {
    get peakRss() {
      sample();
      return peakRss;
    },
    get peakHeap() {
      return peakHeap;
    },
  };
}

/** Event-loop delay in ms of one phase; the histogram is reset for the next. */
function phase(h: ReturnType<typeof monitorEventLoopDelay>): Phase {
  // Each sample is the time between two ticks of a RESOLUTION_MS timer: the lag is what exceeds it.
  const lag = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS);
  const out = { p50: lag(h.percentile(50)), p99: lag(h.percentile(99)), max: lag(h.max) };
  h.reset();
  return out;
}

function baseline() {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return { baseRss: m.rss, baseHeap: m.heapUsed, baseBuffers: m.arrayBuffers, baseHeapTotal: m.heapTotal };
}

function afterGc() {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return { gcRss: m.rss, gcHeap: m.heapUsed };
}

function snapshot(): void {
  const dir = process.env['BENCH_HEAP_SNAPSHOT'];
  if (dir) writeHeapSnapshot(`${dir}/${kind}-${role}.heapsnapshot`);
}

/**
 * What an end reports once its channels are held: memory now (read before the heap snapshot and the
 * full GC of afterGc(), which would change it), the peaks, and both phases' event-loop delay.
 */
function heldReport(
  base: ReturnType<typeof baseline>,
  mem: ReturnType<typeof memorySampler>,
  opening: Phase,
  held: Phase,
  extra: { openMs?: number; errors: number },
): EndReport {
  const m = process.memoryUsage();
  const peakRss = mem.peakRss;
  snapshot();
  return {
    role,
    ...base,
    peakRss,
    peakHeap: mem.peakHeap,
    heldRss: m.rss,
    heldHeap: m.heapUsed,
    heldBuffers: m.arrayBuffers,
    heldHeapTotal: m.heapTotal,
    ...afterGc(),
    opening,
    held,
    ...extra,
  };
}

async function server(): Promise<void> {
  const identity = createTlsIdentity();
  const held: EventEmitter[] = [];
  let errors = 0;
  const echo = (s: NodeJS.ReadWriteStream & EventEmitter) => {
    held.push(s);
    s.on('error', () => {});
    s.on('data', (d: Buffer) => s.write(d));
  };
  /**
   * kind 'exchange': plain TLS carrying the bytes of the attestation exchange (sizes of the
   * simulated SNP one: REQUEST each way, EVIDENCE to the client, RESULT back) before the echo. The
   * floor for any implementation of the protocol over node:tls.
   *
   * Diagnostics of where that floor sits (docs/benchmarks.md): BENCH_EXCHANGE_PIECE=<n> writes
   * EVIDENCE as n-byte writes in one go; BENCH_EXCHANGE_PACE=1 writes each piece only once the
   * last one's write has completed (with pieces of 1 000 bytes every TLS record then fits the
   * 1 KiB buffer TLSWrap starts its outgoing ring with, so the ring never grows), and
   * BENCH_EXCHANGE_GAP_MS=<ms> waits that long between pieces (so that the client reads each on
   * its own: its incoming ring starts at 4 KiB);
   * BENCH_EXCHANGE_FRAG=<n> sets setMaxSendFragment(n) before EVIDENCE.
   */
  const exchange = (s: TLSSocket) => {
    held.push(s);
    s.on('error', () => {});
    let got = 0;
    s.on('data', (d: Buffer) => {
      if (got >= REQUEST_BYTES + RESULT_BYTES) {
        s.write(d);
        return;
      }
      const before = got;
      got += d.length;
      if (before < REQUEST_BYTES && got >= REQUEST_BYTES) {
        const frag = process.env['BENCH_EXCHANGE_FRAG'];
        if (frag) s.setMaxSendFragment(Number(frag));
        s.write(Buffer.alloc(REQUEST_BYTES, 1));
        const piece = Number(process.env['BENCH_EXCHANGE_PIECE'] ?? EVIDENCE_BYTES);
        if (process.env['BENCH_EXCHANGE_PACE']) {
          const gap = Number(process.env['BENCH_EXCHANGE_GAP_MS'] ?? 0);
          let at = 0;
          const step = () => {
            if (at >= EVIDENCE_BYTES) return;
            const n = Math.min(piece, EVIDENCE_BYTES - at);
            at += n;
            s.write(Buffer.alloc(n, 2), () => (gap ? setTimeout(step, gap) : step()));
          };
          step();
        } else
          for (let at = 0; at < EVIDENCE_BYTES; at += piece)
            s.write(Buffer.alloc(Math.min(piece, EVIDENCE_BYTES - at), 2));
      }
      if (got > REQUEST_BYTES + RESULT_BYTES)
        s.write(d.subarray(d.length - (got - REQUEST_BYTES - RESULT_BYTES)));
    });
  };
  const srv =
    kind === 'attested'
      ? createAttestedServer({ evidence: simulated.snp(), identity, backlog: 4096 }, (c) => echo(c)).on(
          'attestationError',
          () => errors++,
        )
      : createTlsServer(
          {
            key: identity.keyPem,
            cert: identity.certPem,
            minVersion: 'TLSv1.3',
            maxVersion: 'TLSv1.3',
            ALPNProtocols: [ALPN],
          },
          (s) => (kind === 'exchange' ? exchange(s) : echo(s)),
        ).on('tlsClientError', () => errors++);
  await new Promise<void>((resolve) => {
    if ('accept' in srv) srv.listen(0, '127.0.0.1', resolve);
    else srv.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve);
  });
  const base = baseline();
  const mem = memorySampler();
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  h.enable();
  send({ port: ((srv as { address(): AddressInfo }).address() as AddressInfo).port });
  const [msg1] = (await once(process, 'message')) as [string];
  if (msg1 !== 'opened') throw new Error(`unexpected ${msg1}`);
  const opening = phase(h);
  const [msg2] = (await once(process, 'message')) as [string];
  if (msg2 !== 'held') throw new Error(`unexpected ${msg2}`);
  send(heldReport(base, mem, opening, phase(h), { errors }));
  for (const s of held) (s as unknown as { destroy(): void }).destroy();
  process.exit(0);
}

function plainConnect(port: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port,
      // The context the channel's client uses too: one for all connections.
      secureContext: secureContextFor(undefined, 'client'),
      ALPNProtocols: [ALPN],
      rejectUnauthorized: false,
    });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

/** The client's part of kind 'exchange' (see server()): REQUEST, then RESULT once EVIDENCE is in. */
function exchangeClient(s: TLSSocket): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    let got = 0;
    const onData = (d: Buffer) => {
      got += d.length;
      if (got < REQUEST_BYTES + EVIDENCE_BYTES) return;
      s.off('data', onData);
      s.off('error', reject);
      s.write(Buffer.alloc(RESULT_BYTES, 3));
      resolve(s);
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(Buffer.alloc(REQUEST_BYTES, 1));
  });
}

async function client(port: number, count: number): Promise<void> {
  const anchors = simulated.trustAnchors();
  const policy = { snp: { measurements: [simulated.defaults.snpMeasurement] } };
  const open = (): Promise<NodeJS.ReadWriteStream & EventEmitter & { destroy(): void }> =>
    kind === 'attested'
      ? attestedConnect({ host: '127.0.0.1', port, verify: { policy, trustAnchors: anchors } })
      : kind === 'exchange'
        ? plainConnect(port).then(exchangeClient)
        : plainConnect(port);
  const base = baseline();
  const mem = memorySampler();
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  h.enable();
  const t0 = performance.now();
  const channels: Array<NodeJS.ReadWriteStream & EventEmitter & { destroy(): void }> = [];
  let errors = 0;
  let next = 0;
  // A window of connects in flight: what a pool opening many connections does.
  await Promise.all(
    Array.from({ length: Math.min(WINDOW, count) }, async () => {
      while (next < count) {
        next++;
        try {
          const c = await open();
          c.on('error', () => errors++);
          channels.push(c);
        } catch {
          errors++;
        }
      }
    }),
  );
  // All open at once: one echo round trip on each proves they all carry data.
  const echoes = await Promise.allSettled(
    channels.map(
      (c, i) =>
        new Promise<void>((resolve, reject) => {
          c.once('data', (d: Buffer) =>
            d.toString() === `ping ${i}` ? resolve() : reject(new Error('echo')),
          );
          c.write(`ping ${i}`);
        }),
    ),
  );
  errors += echoes.filter((e) => e.status === 'rejected').length;
  const openMs = performance.now() - t0;
  const opening = phase(h);
  send('opened');
  await new Promise((r) => setTimeout(r, HOLD_MS));
  send(heldReport(base, mem, opening, phase(h), { openMs, errors }));
  const [bye] = (await once(process, 'message')) as [string];
  if (bye === 'exit') {
    for (const c of channels) c.destroy();
    process.exit(0);
  }
}

if (role === 'server') await server();
else await client(Number(portArg), Number(countArg));
