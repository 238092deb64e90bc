/**
 * Test plumbing for the channel's edges (WebSocket transport, CLI, examples): a self-signed outer
 * TLS certificate, a TLS-terminating HTTP proxy, an echo server and a leak check.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { buildCertificate } from '../../src/evidence/x509/build.js';
import { derToPem } from '../../src/evidence/x509/pem.js';

/**
 * A P-256 certificate for `dnsName` (default localhost) and, unless `loopbackIp` is false, the IP
 * address 127.0.0.1, as PEM, for the OUTER TLS of a proxy.
 */
export function outerTlsIdentity(dnsName = 'localhost', loopbackIp = true): { cert: string; key: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  // subjectAltName (RFC 5280 4.2.1.6): dNSName [2] and iPAddress [7], short lengths only.
  const dns = [0x82, dnsName.length, ...Buffer.from(dnsName)];
  const ip = loopbackIp ? [0x87, 0x04, 127, 0, 0, 1] : [];
  const san = Uint8Array.from([0x30, dns.length + ip.length, ...dns, ...ip]);
  const der = buildCertificate({
    subject: [['CN', dnsName]],
    issuer: [['CN', dnsName]],
    serial: Uint8Array.from([0x01, ...randomBytes(8)]),
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 86400_000),
    publicKey,
    signingKey: privateKey,
    algorithm: 'ecdsa-sha256',
    extensions: [{ oid: '2.5.29.17', value: san }],
  });
  return { cert: derToPem(der), key: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
}

export function port(server: { address(): AddressInfo | string | null }): number {
  const a = server.address();
  if (a === null || typeof a === 'string') throw new Error('server is not listening on TCP');
  return a.port;
}

export async function listen<S extends Server>(server: S, host = '127.0.0.1'): Promise<S> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** Closes a server and destroys the connections it still holds. */
export async function closeServer(server: Server, sockets?: Set<Socket>): Promise<void> {
  for (const s of sockets ?? []) s.destroy();
  (server as { closeAllConnections?: () => void }).closeAllConnections?.();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Tracks the sockets of a server so a test can destroy them. */
export function track(server: Server): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return sockets;
}

/** A TCP echo server that also counts the bytes it ever received. */
export async function echoServer(): Promise<{
  server: Server;
  received: () => number;
  connections: () => number;
}> {
  let received = 0;
  let connections = 0;
  const server = createServer((s) => {
    connections++;
    s.on('data', (d: Buffer) => {
      received += d.length;
    });
    s.on('error', () => {});
    s.pipe(s);
  });
  return { server: await listen(server), received: () => received, connections: () => connections };
}

/**
 * An HTTPS front that terminates the outer TLS and forwards each upgrade request, as plain HTTP,
 * to a backend: what a cloud load balancer or ingress does in front of a WebSocket service.
 */
export async function terminatingProxy(backendPort: number): Promise<{
  server: HttpsServer;
  ca: string;
  seenHeaders: Array<Record<string, unknown>>;
  close(): Promise<void>;
}> {
  const id = outerTlsIdentity();
  const seenHeaders: Array<Record<string, unknown>> = [];
  const open = new Set<Socket>();
  const server = createHttpsServer({ cert: id.cert, key: id.key }, (_req, res) => {
    res.writeHead(426).end();
  });
  server.on('upgrade', (req, client: Socket, head: Buffer) => {
    seenHeaders.push({ ...req.headers });
    const upstream = connect(backendPort, '127.0.0.1');
    open.add(client);
    open.add(upstream);
    client.on('close', () => open.delete(client));
    upstream.on('close', () => open.delete(upstream));
    const lines = [`${req.method} ${req.url} HTTP/1.1`];
    for (let i = 0; i < req.rawHeaders.length; i += 2)
      lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    lines.push('X-Forwarded-Proto: https', '', '');
    upstream.write(lines.join('\r\n'));
    if (head.length > 0) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
    const kill = () => {
      client.destroy();
      upstream.destroy();
    };
    upstream.on('error', kill);
    client.on('error', kill);
  });
  await listen(server);
  return {
    server,
    ca: id.cert,
    seenHeaders,
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const WATCHED = new Set(['TCPSocketWrap', 'TCPServerWrap', 'Timeout', 'TLSWrap']);

function counts(): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) if (WATCHED.has(r)) m.set(r, (m.get(r) ?? 0) + 1);
  return m;
}

/**
 * Snapshot of live sockets, servers and timers; `assertNoLeaks()` waits (briefly) until the process
 * is back at or below the snapshot, and throws listing what is left otherwise.
 */
export function leakCheck(): { assertNoLeaks(waitMs?: number): Promise<void> } {
  const before = counts();
  return {
    async assertNoLeaks(waitMs = 2000) {
      const deadline = Date.now() + waitMs;
      for (;;) {
        const now = counts();
        const extra = [...now].filter(([k, n]) => n > (before.get(k) ?? 0));
        if (extra.length === 0) return;
        if (Date.now() > deadline)
          throw new Error(`leaked: ${extra.map(([k, n]) => `${k} ${n - (before.get(k) ?? 0)}`).join(', ')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

/** Reads from a stream until `n` bytes arrived. */
export function readBytes(stream: NodeJS.ReadableStream, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const onData = (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got >= n) {
        stream.off('data', onData);
        stream.off('error', reject);
        resolve(Buffer.concat(parts));
      }
    };
    stream.on('data', onData);
    stream.on('error', reject);
  });
}
