/**
 * The floor section: what a key-proof connection (docs/protocol.md §4.7) must cost at least on
 * node:tls, beside what the library's costs, as CPU per connection of one process holding both
 * ends (K client loops: connect, one 32-byte message, its echo, close).
 *
 * - plain: TLS 1.3 with a reused client context, the message and its echo (the rates baseline);
 * - floor: the same TLS connections carrying exactly the bytes of a key-proof exchange, in the
 *   protocol's order, made by the library's own encoders (server REQUEST, client REQUEST with
 *   `known`, EVIDENCE with the proof, RESULT), and its unavoidable work: the exporter on each side,
 *   the proof input, one P-256 sign, the peer's SPKI read from its certificate (its parsed key kept
 *   across connections, as the library keeps it) and one P-256 verify.
 *   No frame decoder, session, policy or verifier: any implementation of §4.7 does at least this;
 * - keyProof: attestedConnect against an AttestedServer with `keyProof: true`, warm.
 *
 * When both processes' CPU sets the connection rate (bench/rates.ts at 32 clients on 2 cores),
 * plain / floor CPU is the best ratio a key proof can reach against plain TLS. Rounds alternate
 * (BENCH_FLOOR_MS, default 1000 ms; BENCH_FLOOR_ROUNDS, default 4; BENCH_FLOOR_CLIENTS, 32).
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import {
  createSecureContext,
  createServer as createTlsServer,
  type Server,
  type TLSSocket,
  connect as tlsConnect,
} from 'node:tls';
import { exporterLabel } from '../dist/channel/binder.js';
import { attestedConnect } from '../dist/channel/connect.js';
import { encodeKeyProof, encodeRequest, encodeResult } from '../dist/channel/frames.js';
import { createTlsIdentity } from '../dist/channel/identity.js';
import { keyProofInput, proofKeyOf, signKeyProof, verifyKeyProof } from '../dist/channel/key-proof.js';
import { createAttestedServer } from '../dist/channel/server.js';
import { simulated } from '../dist/evidence/providers/simulated.js';
import { createVerifier } from '../dist/evidence/verifier.js';
import { certificateSpki } from '../dist/evidence/x509/cert.js';
import { record } from './harness.js';

const SECTION = 'floor';
const MS = Number(process.env['BENCH_FLOOR_MS'] ?? 1000);
const ROUNDS = Number(process.env['BENCH_FLOOR_ROUNDS'] ?? 4);
const K = Number(process.env['BENCH_FLOOR_CLIENTS'] ?? 32);
const ALPN = 'attested-channel/1';
const CHIP_ID = 'c5'.repeat(64);
const MESSAGE = Buffer.alloc(32, 0x61);
const ACCEPT = ['application/vnd.amd.sev-snp.report'];

type Connect = () => Promise<void>;

function tlsClient(port: number, context: ReturnType<typeof createSecureContext>): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port,
      secureContext: context,
      ALPNProtocols: [ALPN],
      rejectUnauthorized: false,
    });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves once `n` bytes have arrived on `s` (from now), with them. */
function readBytes(s: TLSSocket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const onData = (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got >= n) {
        s.off('data', onData);
        s.off('error', reject);
        resolve(Buffer.concat(parts));
      }
    };
    s.on('data', onData);
    s.once('error', reject);
  });
}

async function closed(s: TLSSocket): Promise<void> {
  s.destroy();
  if (!s.closed) await once(s, 'close');
}

export async function run(): Promise<void> {
  const identity = createTlsIdentity();
  const context = createSecureContext({ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });
  const tlsOptions = {
    key: identity.keyPem,
    cert: identity.certPem,
    minVersion: 'TLSv1.3' as const,
    maxVersion: 'TLSv1.3' as const,
    ALPNProtocols: [ALPN],
  };
  // The digest a returning client names, and the proof's fixed sizes: the frames are the library's.
  const digest = new Uint8Array(32).fill(7);
  const ctx = new Uint8Array(32).fill(9);
  const serverRequest = encodeRequest(ctx, []);
  const clientRequest = encodeRequest(ctx, ACCEPT, { batch: true, known: [digest] });
  const proofSize = encodeKeyProof(ctx, { known: digest, proof: new Uint8Array(64) }).length;
  const result = encodeResult(ctx);

  const plainServer = createTlsServer(tlsOptions, (s) => {
    s.on('error', () => {});
    s.on('data', (d: Buffer) => s.write(d));
  });
  const floorServer = createTlsServer(tlsOptions, async (s) => {
    s.on('error', () => {});
    try {
      s.write(serverRequest);
      await readBytes(s, clientRequest.length);
      const exporter = s.exportKeyingMaterial(32, exporterLabel('server'), Buffer.from(ctx));
      const proof = signKeyProof(identity.key, keyProofInput('server', identity.spki, digest, exporter))!;
      s.write(encodeKeyProof(ctx, { known: digest, proof }));
      const rest = await readBytes(s, result.length + MESSAGE.length);
      s.write(rest.subarray(rest.length - MESSAGE.length));
    } catch {
      s.destroy();
    }
  });
  const attestedServer = createAttestedServer(
    {
      evidence: simulated.snp({ chipId: CHIP_ID }),
      identity,
      keyProof: true,
      batch: false,
      backlog: 2048,
    } as never,
    (c) => {
      c.on('error', () => {});
      c.on('data', (d: Buffer) => c.write(d));
    },
  );
  const servers: Server[] = [plainServer, floorServer, attestedServer as unknown as Server];
  for (const s of servers) await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s: Server) => (s.address() as AddressInfo).port;

  const policy = {
    snp: { measurements: [simulated.defaults.snpMeasurement], chipIds: [CHIP_ID] },
    reuse: { maxEvidenceAge: 300 },
  };
  const verify = { verifier: createVerifier({ trustAnchors: simulated.trustAnchors() }), policy };
  // The first connection brings evidence (remembered for the next); every timed one must be a proof.
  let timed = false;
  let kept: ReturnType<typeof proofKeyOf>;
  const contenders: Record<'plain' | 'floor' | 'keyProof', Connect> = {
    plain: async () => {
      const s = await tlsClient(port(plainServer), context);
      s.write(MESSAGE);
      await readBytes(s, MESSAGE.length);
      await closed(s);
    },
    floor: async () => {
      const s = await tlsClient(port(floorServer), context);
      s.write(clientRequest);
      const got = await readBytes(s, serverRequest.length + proofSize);
      // The peer's SPKI as the channel reads it, and its key kept across connections while the SPKI
      // is the same bytes, as the library's remembered evidence keeps it.
      const spki = certificateSpki(new Uint8Array(s.getPeerX509Certificate()!.raw));
      if (!kept || !Buffer.from(kept.spki).equals(spki)) kept = proofKeyOf(spki)!;
      const exporter = s.exportKeyingMaterial(32, exporterLabel('server'), Buffer.from(ctx));
      const proof = got.subarray(got.length - proofSize).toString('latin1');
      const signature = Buffer.from(JSON.parse(proof.slice(proof.indexOf('{'))).proof, 'base64url');
      if (!verifyKeyProof(kept, keyProofInput('server', spki, digest, exporter), signature))
        throw new Error('floor: proof does not verify');
      s.write(Buffer.concat([result, MESSAGE]));
      await readBytes(s, MESSAGE.length);
      await closed(s);
    },
    keyProof: async () => {
      const c = await attestedConnect({
        host: '127.0.0.1',
        port: port(attestedServer as unknown as Server),
        verify,
        batch: false,
      } as never);
      if (timed && (c as unknown as { peer: { reused?: boolean } }).peer.reused !== true)
        throw new Error('keyProof: not reused');
      await new Promise((resolve) => {
        c.once('data', resolve);
        c.write(MESSAGE);
      });
      c.destroy();
      if (!c.closed) await once(c, 'close');
    },
  };

  const totals = Object.fromEntries(
    Object.keys(contenders).map((k) => [k, { n: 0, cpu: 0, ms: 0 }]),
  ) as Record<keyof typeof contenders, { n: number; cpu: number; ms: number }>;
  const loop = async (connect: Connect, ms: number) => {
    const end = performance.now() + ms;
    let n = 0;
    await Promise.all(
      Array.from({ length: K }, async () => {
        while (performance.now() < end) {
          await connect();
          n++;
        }
      }),
    );
    return n;
  };
  try {
    for (const connect of Object.values(contenders)) await loop(connect, 300); // warm: JIT, remembered evidence
    timed = true;
    const names = Object.keys(contenders) as Array<keyof typeof contenders>;
    for (let round = 0; round < ROUNDS; round++)
      for (let i = 0; i < names.length; i++) {
        const name = names[(round + i) % names.length]!;
        const start = performance.now();
        const cpu0 = process.cpuUsage();
        const n = await loop(contenders[name], MS);
        const cpu = process.cpuUsage(cpu0);
        totals[name].n += n;
        totals[name].cpu += (cpu.user + cpu.system) / 1000;
        totals[name].ms += performance.now() - start;
      }
  } finally {
    attestedServer.close();
    plainServer.close();
    floorServer.close();
  }
  const cpu = (k: keyof typeof totals) => totals[k].cpu / totals[k].n;
  const rate = (k: keyof typeof totals) => (totals[k].n * 1000) / totals[k].ms;
  const label = (k: keyof typeof totals) => `${rate(k).toFixed(0)} connections/s in one process, K=${K}`;
  record({
    section: SECTION,
    metric: `plain TLS, CPU per connection (${label('plain')})`,
    value: cpu('plain'),
    unit: 'ms',
  });
  record({
    section: SECTION,
    metric: `key-proof exchange at its floor (bare node:tls, the protocol's bytes and crypto), CPU per connection (${label('floor')})`,
    value: cpu('floor'),
    unit: 'ms',
    baseline: { metric: 'plain TLS', value: cpu('plain') },
    // plain / floor: the best key proof / plain TLS ratio while CPU sets the rate.
    ratio: cpu('plain') / cpu('floor'),
  });
  record({
    section: SECTION,
    metric: `key proof (attestedConnect, warm), CPU per connection (${label('keyProof')})`,
    value: cpu('keyProof'),
    unit: 'ms',
    baseline: { metric: 'plain TLS', value: cpu('plain') },
    ratio: cpu('plain') / cpu('keyProof'),
  });
  record({
    section: SECTION,
    metric: 'key proof against its floor, CPU per connection',
    value: cpu('keyProof'),
    unit: 'ms',
    baseline: { metric: 'floor', value: cpu('floor') },
    ratio: cpu('floor') / cpu('keyProof'),
  });
}
