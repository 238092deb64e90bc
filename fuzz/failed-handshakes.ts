/**
 * Failed handshakes of four kinds against one attested server, then a look at what is left behind:
 * sockets, timers and listeners (process.getActiveResourcesInfo(), the server's pending count and
 * listener counts) and memory. Used by fuzz/leaks.ts (10 000 of each, with --expose-gc) and by
 * test/channel/leaks.test.ts (a few hundred of each).
 *
 * The kinds (issue 10, "Fuzzing and leaks"):
 * - binder: a client that answers the server's REQUEST with evidence bound to another connection;
 * - stall:  a client that completes TLS and then sends nothing (the server's timeout ends it);
 * - frame:  a client that sends a frame of an unknown type;
 * - tls:    a client that speaks plain text instead of TLS.
 */
import { once } from 'node:events';
import { type AddressInfo, connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { PROTOCOL_ID } from '../src/channel/binder.js';
import { encodeCmw } from '../src/channel/cmw.js';
import {
  encodeEvidence,
  encodeFrame,
  encodeRequest,
  FrameDecoder,
  FrameType,
  parseRequest,
} from '../src/channel/frames.js';
import type { AttestationError } from '../src/errors.js';
import { type AttestedServer, createAttestedServer, createTlsIdentity } from '../src/index.js';
import { simulated } from '../src/simulated.js';

export type FailureKind = 'binder' | 'stall' | 'frame' | 'tls';
export const FAILURE_KINDS: readonly FailureKind[] = ['binder', 'stall', 'frame', 'tls'];

/** What each kind must be refused with: anything else means the attempt did not test what it says. */
export const EXPECTED_CODE: Record<FailureKind, string> = {
  binder: 'ERR_BINDING_MISMATCH',
  stall: 'ERR_ATTESTATION_TIMEOUT',
  frame: 'ERR_PROTOCOL',
  tls: 'ERR_TLS',
};

export interface Snapshot {
  resources: Record<string, number>;
  pending: number;
  listeners: Record<string, number>;
  rss: number;
  heapUsed: number;
}

export async function snapshot(server: AttestedServer): Promise<Snapshot> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    // Twice, with a turn of the event loop between: finalizers of the first pass free more.
    gc();
    await new Promise((r) => setImmediate(r));
    gc();
  }
  const resources: Record<string, number> = {};
  for (const k of process.getActiveResourcesInfo()) resources[k] = (resources[k] ?? 0) + 1;
  const listeners: Record<string, number> = {};
  for (const name of server.eventNames()) listeners[String(name)] = server.listenerCount(name);
  const m = process.memoryUsage();
  return { resources, pending: server.pendingCount, listeners, rss: m.rss, heapUsed: m.heapUsed };
}

const ctx = new Uint8Array(32).fill(9);
/** A well-formed SNP-shaped report whose REPORT_DATA binds nothing of this connection. */
const foreignEvidence = (() => {
  const report = new Uint8Array(0x4a0);
  report[0] = 5;
  report.fill(0xab, 0x50, 0x90);
  return encodeCmw({ report }, 'sev-snp');
})();
const clientIdentity = createTlsIdentity();

/** One attempt of `kind`; resolves once the client's connection is closed. */
export async function attempt(port: number, kind: FailureKind): Promise<void> {
  if (kind === 'tls') {
    const s = netConnect(port, '127.0.0.1');
    s.on('error', () => {});
    s.resume();
    if (
      !(await once(s, 'connect').then(
        () => true,
        () => false,
      ))
    )
      return closed(s);
    s.end('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    await closed(s);
    return;
  }
  const s = tlsConnect({
    host: '127.0.0.1',
    port,
    ALPNProtocols: [PROTOCOL_ID],
    rejectUnauthorized: false,
    key: clientIdentity.keyPem,
    cert: clientIdentity.certPem,
  });
  s.on('error', () => {});
  // Reads everything the server sends, so its ALERT and end are seen and the socket closes. The
  // binder kind answers the server's REQUEST with evidence for its context, bound elsewhere.
  const decoder = new FrameDecoder();
  s.on('data', (chunk: Buffer) => {
    if (kind !== 'binder') return;
    for (const f of decoder.push(chunk))
      if (f.type === FrameType.REQUEST)
        s.write(encodeEvidence(parseRequest(f.payload).context, foreignEvidence));
  });
  // The server may give up first (its timeout, on a busy machine): then the attempt is over.
  const up = await Promise.race([
    once(s, 'secureConnect').then(() => true),
    closed(s).then(() => false),
  ]).catch(() => false);
  if (!up) return closed(s);
  if (kind === 'frame') s.write(encodeFrame(0x7f as FrameType, new Uint8Array(1)));
  // Our REQUEST asks for nothing.
  else if (kind === 'binder') s.write(encodeRequest(ctx, []));
  // stall: nothing at all, the server's timeout must end it.
  await closed(s);
}

function closed(s: { destroyed: boolean; once(e: 'close', f: () => void): unknown }): Promise<void> {
  return new Promise((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
}

export interface Run {
  server: AttestedServer;
  port: number;
  codes: Map<string, number>;
  close(): Promise<void>;
}

/** The one server every attempt goes to: the client must attest, and the handshake is short. */
export async function startServer(timeoutMs: number): Promise<Run> {
  const server = createAttestedServer({
    verify: { trustAnchors: simulated.trustAnchors() },
    timeout: timeoutMs,
  });
  const codes = new Map<string, number>();
  server.on('attestationError', (err: AttestationError) =>
    codes.set(err.code, (codes.get(err.code) ?? 0) + 1),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    codes,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** `count` attempts of `kind`, at most `parallel` at a time. */
export async function attempts(
  port: number,
  kind: FailureKind,
  count: number,
  parallel: number,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      await attempt(port, kind);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
}

/** Waits until the server holds no pending channel and the client sockets are gone. */
export async function settle(server: AttestedServer, baseline: Snapshot, ms = 5000): Promise<Snapshot> {
  const deadline = Date.now() + ms;
  for (;;) {
    const now = await snapshot(server);
    const sockets = ['TCPSocketWrap', 'TLSWrap'].every(
      (k) => (now.resources[k] ?? 0) <= (baseline.resources[k] ?? 0),
    );
    const timers = (now.resources['Timeout'] ?? 0) <= (baseline.resources['Timeout'] ?? 0);
    if ((now.pending === 0 && sockets && timers) || Date.now() > deadline) return now;
    await new Promise((r) => setTimeout(r, 50));
  }
}
