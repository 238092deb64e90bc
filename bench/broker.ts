/**
 * Key broker throughput: requests per second over established (keep-alive) attested channels and
 * with a new attested channel per request, each next to plain HTTPS (TLS 1.3, same P-256 key
 * type) measured in the same run with the same handler work.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type Agent, request as httpRequest } from 'node:http';
import { createServer as createHttpsServer, Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simulated } from '../dist/evidence/providers/simulated.js';
import { buildCertificate } from '../dist/evidence/x509/build.js';
import { derToPem } from '../dist/evidence/x509/pem.js';
import { attestedAgent } from '../dist/http/agent.js';
import { AuditLog } from '../examples/key-broker/audit.js';
import { startBroker } from '../examples/key-broker/broker.js';
import { parseConfig } from '../examples/key-broker/config.js';
import { opsPerSecond, record } from './harness.js';

const SECTION = 'broker';
/** Rounds of each measurement, alternating the two sides; the best round of each counts. */
const ROUNDS = 4;

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

/** Rates of the two sides in alternating rounds of `ms` each, best round of each side. */
async function bestRates(
  attested: () => Promise<unknown>,
  plain: () => Promise<unknown>,
  ms: number,
): Promise<{ attested: number; plain: number }> {
  let a = 0;
  let p = 0;
  for (let round = 0; round < ROUNDS; round++) {
    a = Math.max(a, await opsPerSecond(attested, ms));
    p = Math.max(p, await opsPerSecond(plain, ms));
  }
  return { attested: a, plain: p };
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

  // Baseline: the same answer over plain HTTPS (TLS 1.3), with a line appended per request as the broker does.
  const { cert, key } = tlsIdentity();

  const baseAudit = await AuditLog.open(join(dir, 'baseline.log'));
  const plain = createHttpsServer(
    { cert, key, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' },
    (_req, res) => {
      baseAudit
        .write({ event: 'request', decision: 'released', secret: 'key', reason: 'baseline' })
        .then(() => {
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': secret.length });
          res.end(secret);
        });
    },
  );
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  const plainPort = (plain.address() as AddressInfo).port;
  const tlsOpts = { rejectUnauthorized: false, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' } as const;

  try {
    const keepAttested = attestedAgent({ evidence: vm }, { keepAlive: true, maxSockets: 1 });
    const keepPlain = new HttpsAgent({ keepAlive: true, maxSockets: 1, ...tlsOpts });
    const { attested: attestedKeep, plain: plainKeep } = await bestRates(
      () => get(httpRequest, keepAttested, port, '/v1/secrets/key'),
      () => get(httpsRequest, keepPlain, plainPort, '/'),
      750,
    );
    keepAttested.destroy();
    keepPlain.destroy();
    record({
      section: SECTION,
      metric: 'requests/s, established channel (keep-alive)',
      value: attestedKeep,
      unit: 'req/s',
      baseline: { metric: 'HTTPS keep-alive req/s', value: plainKeep },
      ratio: attestedKeep / plainKeep,
    });

    const freshAttested = attestedAgent({ evidence: vm }, { keepAlive: false });
    const freshPlain = new HttpsAgent({ keepAlive: false, ...tlsOpts });
    const { attested: attestedNew, plain: plainNew } = await bestRates(
      () => get(httpRequest, freshAttested, port, '/v1/secrets/key'),
      () => get(httpsRequest, freshPlain, plainPort, '/'),
      1500,
    );
    freshAttested.destroy();
    freshPlain.destroy();
    record({
      section: SECTION,
      metric: 'requests/s, new attested channel per request',
      value: attestedNew,
      unit: 'req/s',
      baseline: { metric: 'new TLS 1.3 connection per request', value: plainNew },
      ratio: attestedNew / plainNew,
    });
  } finally {
    await broker.close();
    plain.closeAllConnections();
    await new Promise<void>((r) => plain.close(() => r()));
    await baseAudit.close();
    await rm(dir, { recursive: true, force: true });
  }
}
