/**
 * The examples' servers survive clients that reset their TCP connection, mid-handshake and once the
 * channel is open, or that send a bad frame on an open channel (issue 10, item 12): an open channel whose transport is reset emits 'error', and
 * an 'error' event nobody listens to is thrown by Node, which would take the whole server down.
 * After each reset the same server must still serve a well-behaved client.
 */
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Server as HttpServer } from 'node:http';
import { type AddressInfo, connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { createWebSocketStream, WebSocket } from 'ws';
import { startBroker } from '../examples/key-broker/broker.js';
import { fetchSecret } from '../examples/key-broker/client.js';
import { parseConfig } from '../examples/key-broker/config.js';
import { echoVm } from '../examples/quickstart/index.js';
import { webServer } from '../examples/websocket/index.js';
import { PROTOCOL_ID } from '../src/channel/binder.js';
import type { AttestedChannel } from '../src/channel/channel.js';
import { type AttestedServer, attestedConnect } from '../src/index.js';
import { simulated } from '../src/simulated.js';

const verify = {
  policy: { snp: { measurements: [simulated.defaults.snpMeasurement] } },
  trustAnchors: simulated.trustAnchors(),
};

function dialTcp(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Completes TLS with the channel's ALPN, then resets the TCP connection before the exchange ends. */
async function resetMidHandshake(port: number): Promise<void> {
  const raw = await dialTcp(port);
  raw.on('error', () => {});
  const tls = tlsConnect({ socket: raw, ALPNProtocols: [PROTOCOL_ID], rejectUnauthorized: false });
  tls.on('error', () => {});
  await once(tls, 'secureConnect');
  raw.resetAndDestroy();
}

/** The server's side of the next channel: resolves once it has closed. */
function nextChannelClosed(server: AttestedServer): Promise<void> {
  return new Promise((resolve) =>
    server.once('channel', (ch: AttestedChannel) =>
      ch.destroyed ? resolve() : ch.once('close', () => resolve()),
    ),
  );
}

/** Opens a channel over `raw`, sends a little, then resets the TCP connection under it. */
async function resetWhenOpen(raw: Socket, options: Parameters<typeof attestedConnect>[0]): Promise<void> {
  raw.on('error', () => {});
  const channel = await attestedConnect({ ...options, socket: raw });
  channel.on('error', () => {});
  channel.write('GET /v1/secrets/x HTTP/1.1\r\nhost: x\r\n');
  await new Promise((r) => setTimeout(r, 20));
  raw.resetAndDestroy();
}

/**
 * Opens a channel, then writes a frame of an unknown type straight into its TLS socket: the
 * server's open channel fails with ERR_PROTOCOL, which it reports as an 'error' event.
 */
async function badFrameWhenOpen(options: Parameters<typeof attestedConnect>[0]): Promise<void> {
  const channel = await attestedConnect(options);
  channel.on('error', () => {});
  const closed = new Promise((resolve) => channel.once('close', resolve));
  channel.socket.write(Buffer.from([0x7f, 0, 0, 0, 1, 0]));
  await closed;
}

async function echoRoundTrip(
  options: Parameters<typeof attestedConnect>[0],
  expected: string,
): Promise<void> {
  const channel = await attestedConnect(options);
  channel.write('hello');
  const [reply] = await once(channel, 'data');
  expect(String(reply)).toBe(expected);
  channel.end();
  await once(channel, 'close');
}

describe('example servers survive client resets', () => {
  it('quickstart', async () => {
    const server = echoVm();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    try {
      const refused = once(server, 'attestationError');
      await resetMidHandshake(port);
      await refused;
      const closed = nextChannelClosed(server);
      await resetWhenOpen(await dialTcp(port), { verify });
      await closed;
      await badFrameWhenOpen({ host: '127.0.0.1', port, verify });
      await echoRoundTrip({ host: '127.0.0.1', port, verify }, 'echo: hello');
    } finally {
      await new Promise((r) => server.close(r));
    }
  }, 60_000);

  it('websocket', async () => {
    const { http, attachment } = webServer();
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const { port } = http.address() as AddressInfo;
    const url = `ws://127.0.0.1:${port}/attested`;
    try {
      // Open a channel inside a WebSocket, then reset the TCP connection the WebSocket runs on.
      const ws = new WebSocket(url);
      await once(ws, 'open');
      const stream = createWebSocketStream(ws);
      stream.on('error', () => {});
      const channel = await attestedConnect({ socket: stream, verify });
      channel.on('error', () => {});
      channel.write('hello');
      await once(channel, 'data');
      (ws as unknown as { _socket: Socket })._socket.resetAndDestroy();
      // And one that resets while the attested handshake is still going on.
      const ws2 = new WebSocket(url);
      await once(ws2, 'open');
      const tls = tlsConnect({
        socket: createWebSocketStream(ws2).on('error', () => {}),
        ALPNProtocols: [PROTOCOL_ID],
        rejectUnauthorized: false,
      });
      tls.on('error', () => {});
      await once(tls, 'secureConnect');
      (ws2 as unknown as { _socket: Socket })._socket.resetAndDestroy();
      await new Promise((r) => setTimeout(r, 100));
      await badFrameWhenOpen({ url, verify });
      await echoRoundTrip({ url, verify }, 'echo over WebSocket: hello');
    } finally {
      attachment.close();
      http.closeAllConnections();
      await new Promise((r) => (http as HttpServer).close(r));
    }
  }, 60_000);

  it('key broker', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'broker-reset-'));
    const good = 'a1'.repeat(48);
    await writeFile(join(dir, 'k'), 'secret');
    const config = parseConfig(
      {
        auditLog: 'audit.log',
        listen: { host: '127.0.0.1', port: 0 },
        trust: 'simulated',
        secrets: { k: { source: { file: 'k' }, policy: { snp: { measurements: [good] } } } },
      },
      dir,
      {},
    );
    const broker = await startBroker({ config, trustAnchors: simulated.trustAnchors() });
    const { port } = await broker.listen();
    const vm = simulated.snp({ measurement: good });
    try {
      const refused = once(broker.attested, 'attestationError');
      await resetMidHandshake(port);
      await refused;
      const closed = nextChannelClosed(broker.attested);
      await resetWhenOpen(await dialTcp(port), { evidence: vm });
      await closed;
      await badFrameWhenOpen({ host: '127.0.0.1', port, evidence: vm });
      const res = await fetchSecret({ host: '127.0.0.1', port, name: 'k', evidence: vm, timeout: 30_000 });
      expect(res.status).toBe(200);
      expect(Buffer.from(res.body).toString()).toBe('secret');
    } finally {
      await broker.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
