/**
 * Key broker throughput: requests per second over an established (keep-alive) attested channel,
 * next to plain HTTPS (TLS 1.3, same P-256 key type) whose handler does the broker's work, and with
 * a new attested channel per request, next to what such a request cannot do without: a TLS
 * handshake and two P-384 signatures and verifications. Every baseline is measured in the same run,
 * interleaved with the contender it is compared with.
 *
 * BENCH_BROKER_ROUNDS (default 5) and BENCH_BROKER_REQUESTS (default 1000 keep-alive requests a
 * round; a fifth of that with new channels) shrink the runs.
 */
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { createServer as createHttpsServer, Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { register } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { simulated } from '../dist/evidence/providers/simulated.js';
import type { Claims } from '../dist/evidence/types.js';
import { buildCertificate } from '../dist/evidence/x509/build.js';
import { derToPem } from '../dist/evidence/x509/pem.js';
import { attestedAgent } from '../dist/http/agent.js';
import { interleaved, record, type Timings } from './harness.js';

// The key broker example imports the library's sources; here it runs on the build, as the rest.
register('./examples-on-dist.mjs', import.meta.url);
const { AuditLog, peerSummary } = await import('../examples/key-broker/audit.js');
const { decide, startBroker } = await import('../examples/key-broker/broker.js');
const { parseConfig } = await import('../examples/key-broker/config.js');

const SECTION = 'broker';
/** Rounds of each measurement; each round interleaves the contenders one request at a time. */
const ROUNDS = Number(process.env['BENCH_BROKER_ROUNDS'] ?? 5);
const KEEPALIVE_REQUESTS = Number(process.env['BENCH_BROKER_REQUESTS'] ?? 1000);
const NEW_CHANNEL_REQUESTS = Math.max(1, Math.round(KEEPALIVE_REQUESTS / 5));
const progress = (what: string) => process.stderr.write(`  [broker] ${what}\n`);

function tlsIdentity(): { cert: string; key: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const der = buildCertificate({
    subject: [['CN', 'bench']],
    issuer: [['CN', 'bench']],
    serial: Uint8Array.from([0x01, ...randomBytes(8)]),
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 86400_000),
    publicKey,
    signingKey: privateKey,
    algorithm: 'ecdsa-sha256',
  });
  return { cert: derToPem(der), key: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
}

function get(
  request: typeof httpRequest,
  agent: Agent,
  port: number,
  path: string,
  extra: object = {},
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, ...extra }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
      });
      res.on('end', () =>
        res.statusCode === 200 ? resolve(n) : reject(new Error(`status ${res.statusCode}`)),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Resolves once the server end of the next connection has closed (see bench/channel.ts). */
function serverEnds(server: EventEmitter, event: 'connection' | 'channel') {
  const waiting: Array<() => void> = [];
  const done = () => waiting.shift()?.();
  server.on(event, (end: EventEmitter) => end.once('close', done));
  return (): Promise<void> => new Promise<void>((resolve) => waiting.push(resolve));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * `rounds` calls of interleaved(), `perRound` operations of each contender each: one figure per
 * contender per round (its median), so the rows can give the best and the median round.
 */
async function roundsOf<K extends string>(
  contenders: Record<K, () => Promise<unknown>>,
  perRound: number,
): Promise<Array<Record<K, Timings>>> {
  const out: Array<Record<K, Timings>> = [];
  for (let r = 0; r < ROUNDS; r++) out.push(await interleaved(contenders, perRound));
  return out;
}

export async function run(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-broker-'));
  const secret = randomBytes(32).toString('hex');
  await writeFile(join(dir, 'key'), secret);
  const measurement = simulated.defaults.snpMeasurement;
  const config = parseConfig(
    {
      auditLog: 'audit.log',
      listen: { host: '127.0.0.1', port: 0 },
      trust: 'simulated',
      secrets: { key: { source: { file: 'key' }, policy: { snp: { measurements: [measurement] } } } },
    },
    dir,
    {},
  );
  const broker = await startBroker({ config, trustAnchors: simulated.trustAnchors() });
  const { port } = await broker.listen();
  const vm = simulated.snp({ measurement });
  // The claims the broker decides on, taken from its first channel: the HTTPS baseline decides on
  // the same ones.
  let claims: Claims | undefined;
  let keptChannel: EventEmitter | undefined;
  broker.attested.once('channel', (c) => {
    claims = c.peer;
    keptChannel = c;
  });

  // Baseline: plain HTTPS (TLS 1.3) doing what the broker's handler does for a request (the same
  // decide() on the same claims, the same audit line written before answering, the same answer):
  // the difference between the two is then what the attested channel costs, not the broker's work.
  const { cert, key } = tlsIdentity();
  const baseAudit = await AuditLog.open(join(dir, 'baseline.log'));
  const plain = createHttpsServer(
    { cert, key, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' },
    (req: IncomingMessage, res) => {
      const verdict = decide(config, req.method ?? '', req.url ?? '', claims);
      const peer = peerSummary(claims);
      const remote = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
      baseAudit.write({ event: 'request', ...verdict.audit, remote, ...(peer ? { peer } : {}) }).then(() => {
        const body = verdict.body as Uint8Array;
        res.writeHead(verdict.status, {
          'content-type': 'application/octet-stream',
          'content-length': body.length,
          'cache-control': 'no-store',
        });
        res.end(body);
      });
    },
  );
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  const plainPort = (plain.address() as AddressInfo).port;
  let keptSocket: EventEmitter | undefined;
  plain.once('connection', (s) => {
    keptSocket = s;
  });
  const tlsOpts = { rejectUnauthorized: false, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' } as const;

  try {
    progress(`keep-alive: ${ROUNDS} rounds of ${KEEPALIVE_REQUESTS} requests a side, interleaved`);
    const keepAttested = attestedAgent({ evidence: vm }, { keepAlive: true, maxSockets: 1 });
    const keepPlain = new HttpsAgent({ keepAlive: true, maxSockets: 1, ...tlsOpts });
    await get(httpRequest, keepAttested, port, '/v1/secrets/key');
    await get(httpsRequest, keepPlain, plainPort, '/v1/secrets/key');
    if (!claims || !keptChannel || !keptSocket) throw new Error('the servers saw no connection');
    const keep = await roundsOf(
      {
        attested: () => get(httpRequest, keepAttested, port, '/v1/secrets/key'),
        https: () => get(httpsRequest, keepPlain, plainPort, '/v1/secrets/key'),
      },
      KEEPALIVE_REQUESTS,
    );
    // Both kept connections are gone before the next part counts connections that close.
    const keptClosed = [keptChannel, keptSocket].map(
      (c) => new Promise((resolve) => c.once('close', resolve)),
    );
    keepAttested.destroy();
    keepPlain.destroy();
    await Promise.all(keptClosed);
    const brokerChannelEnds = serverEnds(broker.attested, 'channel');
    const plainEnds = serverEnds(plain, 'connection');
    // Per round: requests/s at the round's median request time.
    const rate = (ms: number) => 1000 / ms;
    const keepA = keep.map((r) => rate(r.attested.median));
    const keepP = keep.map((r) => rate(r.https.median));
    const keepRatios = keep.map((r) => r.https.median / r.attested.median);
    record({
      section: SECTION,
      metric: 'requests/s, established channel (keep-alive), best round',
      value: Math.max(...keepA),
      unit: 'req/s',
      baseline: { metric: 'HTTPS keep-alive, same handler work, best round', value: Math.max(...keepP) },
      ratio: Math.max(...keepA) / Math.max(...keepP),
      target: '≥ 0.9',
      pass: Math.max(...keepA) / Math.max(...keepP) >= 0.9,
    });
    record({
      section: SECTION,
      metric: `requests/s, established channel (keep-alive), median round (round ratios ${keepRatios.map((x) => x.toFixed(2)).join(' ')})`,
      value: median(keepA),
      unit: 'req/s',
      baseline: { metric: 'HTTPS keep-alive, median round', value: median(keepP) },
      ratio: median(keepA) / median(keepP),
    });

    progress(
      `new channel per request: ${ROUNDS} rounds of ${NEW_CHANNEL_REQUESTS} requests, TLS connects, P-384 signs and verifies, interleaved`,
    );
    // What a request on a new channel cannot do without: one TLS 1.3 handshake (tls.connect() with
    // defaults, as bench/channel.ts), and one P-384 sign and verify of a report-sized message for
    // each side's attestation, each timed alone between the requests.
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const message = randomBytes(0x2a0);
    const signature = sign('sha384', message, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    const freshAttested = attestedAgent({ evidence: vm }, { keepAlive: false });
    const freshPlain = new HttpsAgent({ keepAlive: false, ...tlsOpts });
    // Each request and connect is timed until its answer (or open connection) is in; closing it and
    // waiting until the server end has closed happen off the clock.
    const fresh = await roundsOf(
      {
        attested: async () => {
          const closed = brokerChannelEnds();
          await get(httpRequest, freshAttested, port, '/v1/secrets/key');
          return () => closed;
        },
        https: async () => {
          const closed = plainEnds();
          await get(httpsRequest, freshPlain, plainPort, '/v1/secrets/key');
          return () => closed;
        },
        tls: async () => {
          const closed = plainEnds();
          const s = tlsConnect({ host: '127.0.0.1', port: plainPort, ...tlsOpts });
          await new Promise<void>((resolve, reject) => {
            s.once('secureConnect', resolve);
            s.once('error', reject);
          });
          return () => {
            s.destroy();
            return closed;
          };
        },
        sign: async () => {
          sign('sha384', message, { key: privateKey, dsaEncoding: 'ieee-p1363' });
        },
        verify: async () => {
          verify('sha384', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
        },
      },
      NEW_CHANNEL_REQUESTS,
    );
    freshAttested.destroy();
    freshPlain.destroy();
    const floorMs = (r: (typeof fresh)[number]) => r.tls.median + 2 * (r.sign.median + r.verify.median);
    const freshA = fresh.map((r) => rate(r.attested.median));
    const freshFloor = fresh.map((r) => rate(floorMs(r)));
    const freshRatios = fresh.map((r) => floorMs(r) / r.attested.median);
    const best = freshRatios.indexOf(Math.max(...freshRatios));
    const mid = freshRatios.indexOf(median(freshRatios));
    for (const [which, i] of [
      ['best', best],
      ['median', mid],
    ] as const) {
      const r = fresh[i]!;
      record({
        section: SECTION,
        metric: `requests/s, new attested channel per request, ${which} round${which === 'median' ? ` (round ratios ${freshRatios.map((x) => x.toFixed(2)).join(' ')})` : ''}`,
        value: freshA[i]!,
        unit: 'req/s',
        baseline: {
          metric: `1 / (TLS ${r.tls.median.toFixed(2)} + 2 × (P-384 sign ${r.sign.median.toFixed(2)} + verify ${r.verify.median.toFixed(2)}) ms)`,
          value: freshFloor[i]!,
        },
        ratio: freshRatios[i]!,
        ...(which === 'best' ? { target: '≥ 0.8', pass: freshRatios[i]! >= 0.8 } : {}),
      });
    }
    const httpsNew = median(fresh.map((r) => rate(r.https.median)));
    record({
      section: SECTION,
      metric: 'requests/s, new attested channel per request (median round)',
      value: median(freshA),
      unit: 'req/s',
      baseline: { metric: 'HTTPS, new TLS 1.3 connection per request', value: httpsNew },
      ratio: median(freshA) / httpsNew,
    });
  } finally {
    await broker.close();
    plain.closeAllConnections();
    await new Promise<void>((r) => plain.close(() => r()));
    await baseAudit.close();
    await rm(dir, { recursive: true, force: true });
  }
}
