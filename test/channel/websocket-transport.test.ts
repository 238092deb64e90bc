// The WebSocket transport on its own (no attestation): byte stream semantics, proxies, error codes.
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { attachWebSocket, connectWebSocket, type WebSocketAttachment } from '../../src/channel/websocket.js';
import { AttestationError } from '../../src/errors.js';
import {
  closeServer,
  leakCheck,
  listen,
  port,
  readBytes,
  terminatingProxy,
  track,
} from '../helpers/edges.js';

let http: HttpServer;
let sockets: Set<Socket>;
let attachment: WebSocketAttachment;
let accepted: Duplex[];
let leaks: ReturnType<typeof leakCheck>;

/** An acceptor that echoes every byte, like a trivial attested server would after open. */
const echo = {
  accept(duplex: Duplex) {
    accepted.push(duplex);
    duplex.on('error', () => {});
    duplex.pipe(duplex);
  },
};

beforeEach(async () => {
  leaks = leakCheck();
  accepted = [];
  http = createHttpServer((_req, res) => res.writeHead(200).end('plain http still works'));
  sockets = track(http);
  attachment = attachWebSocket(http, echo, { path: '/attested' });
  await listen(http);
});

afterEach(async () => {
  attachment.close();
  await closeServer(http, sockets);
  await leaks.assertNoLeaks();
});

async function expectCode(p: Promise<unknown>, code: string): Promise<AttestationError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AttestationError);
  expect((err as AttestationError).code).toBe(code);
  return err as AttestationError;
}

function closed(stream: Duplex): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed) resolve();
    else stream.once('close', () => resolve());
  });
}

describe('connectWebSocket + attachWebSocket', () => {
  it('carries bytes both ways in order, with backpressure, and half-closes', async () => {
    const stream = await connectWebSocket(`ws://127.0.0.1:${port(http)}/attested?x=1`);
    const payload = randomBytes(3 * 1024 * 1024 + 17);
    const back = readBytes(stream, payload.length);
    // Many small writes and one large one: the byte stream must not care about message boundaries.
    for (let i = 0; i < 1000; i++) stream.write(payload.subarray(i * 7, (i + 1) * 7));
    stream.write(payload.subarray(7000));
    const echoed = await back;
    expect(Buffer.compare(echoed, payload)).toBe(0);
    expect(accepted).toHaveLength(1);
    stream.end();
    await closed(stream);
    await closed(accepted[0]!);
  });

  it('leaves ordinary HTTP requests alone and answers 404 on other upgrade paths', async () => {
    const res = await fetch(`http://127.0.0.1:${port(http)}/`);
    expect(await res.text()).toBe('plain http still works');
    const err = await expectCode(
      connectWebSocket(`ws://127.0.0.1:${port(http)}/other`),
      'ERR_CONNECTION_CLOSED',
    );
    expect(err.details.status).toBe(404);
    expect(accepted).toHaveLength(0);
  });

  it('leaves other paths to another upgrade listener when there is one', async () => {
    const other: string[] = [];
    const onUpgrade = (req: { url?: string }, socket: Socket) => {
      if (req.url === '/mine') {
        other.push(req.url);
        socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
      }
    };
    http.on('upgrade', onUpgrade);
    const err = await expectCode(
      connectWebSocket(`ws://127.0.0.1:${port(http)}/mine`),
      'ERR_CONNECTION_CLOSED',
    );
    expect(err.details.status).toBe(403);
    expect(other).toEqual(['/mine']);
    http.off('upgrade', onUpgrade);
  });

  it('runs through a proxy that terminates the outer HTTPS, with headers passed through', async () => {
    const proxy = await terminatingProxy(port(http));
    try {
      const stream = await connectWebSocket(`wss://127.0.0.1:${port(proxy.server)}/attested`, {
        headers: { authorization: 'Bearer token-for-the-proxy' },
        tls: { ca: proxy.ca },
      });
      const back = readBytes(stream, 5);
      stream.write('hello');
      expect((await back).toString()).toBe('hello');
      expect(proxy.seenHeaders[0]?.authorization).toBe('Bearer token-for-the-proxy');
      stream.destroy();
      await closed(stream);
      // The outer TLS options are honoured: without the proxy's CA the connection is refused.
      await expectCode(connectWebSocket(`wss://127.0.0.1:${port(proxy.server)}/attested`), 'ERR_TLS');
    } finally {
      await proxy.close();
    }
  });

  it('refuses URLs that are not ws:// or wss://', async () => {
    await expectCode(connectWebSocket('http://127.0.0.1:1/'), 'ERR_INVALID_ARGUMENT');
    await expectCode(connectWebSocket('not a url'), 'ERR_INVALID_ARGUMENT');
    await expectCode(connectWebSocket('ws://127.0.0.1:1/', { timeout: -1 }), 'ERR_INVALID_ARGUMENT');
  });

  it('reports a refused TCP connection as ERR_CONNECTION_CLOSED', async () => {
    const probe = await listen(createNetServer());
    const dead = port(probe);
    await closeServer(probe);
    await expectCode(connectWebSocket(`ws://127.0.0.1:${dead}/`), 'ERR_CONNECTION_CLOSED');
  });

  it('times out a server that never answers the upgrade, and honours abort', async () => {
    const silent = createNetServer((s) => s.on('error', () => {}));
    const silentSockets = track(silent);
    await listen(silent);
    try {
      await expectCode(
        connectWebSocket(`ws://127.0.0.1:${port(silent)}/`, { timeout: 150 }),
        'ERR_ATTESTATION_TIMEOUT',
      );
      const ac = new AbortController();
      const p = connectWebSocket(`ws://127.0.0.1:${port(silent)}/`, { signal: ac.signal });
      setTimeout(() => ac.abort(), 50);
      await expectCode(p, 'ERR_ABORTED');
      await expectCode(
        connectWebSocket(`ws://127.0.0.1:${port(silent)}/`, { signal: AbortSignal.abort() }),
        'ERR_ABORTED',
      );
    } finally {
      await closeServer(silent, silentSockets);
    }
  });

  it('fails the stream with ERR_PROTOCOL when the peer sends a text message', async () => {
    const raw = new WebSocket(`ws://127.0.0.1:${port(http)}/attested`);
    await new Promise((resolve) => raw.once('open', resolve));
    await new Promise<void>((resolve) => {
      const wait = () => (accepted.length > 0 ? resolve() : setTimeout(wait, 5));
      wait();
    });
    const server = accepted[0]!;
    const failed = new Promise<unknown>((resolve) => server.once('error', resolve));
    const echoed: Buffer[] = [];
    raw.on('message', (d: Buffer) => echoed.push(d));
    raw.send('text is not allowed');
    const err = await failed;
    expect(err).toBeInstanceOf(AttestationError);
    expect((err as AttestationError).code).toBe('ERR_PROTOCOL');
    await new Promise((resolve) => raw.once('close', resolve));
    expect(echoed).toHaveLength(0);
  });

  it('fails the stream when a message exceeds maxPayload, without buffering it', async () => {
    const raw = new WebSocket(`ws://127.0.0.1:${port(http)}/attested`);
    await new Promise((resolve) => raw.once('open', resolve));
    await new Promise<void>((resolve) => {
      const wait = () => (accepted.length > 0 ? resolve() : setTimeout(wait, 5));
      wait();
    });
    const failed = new Promise<unknown>((resolve) => accepted[0]!.once('error', resolve));
    raw.on('error', () => {});
    raw.send(Buffer.alloc(2 * 1024 * 1024));
    const err = await failed;
    expect((err as AttestationError).code).toBe('ERR_CONNECTION_CLOSED');
    await new Promise((resolve) => raw.once('close', resolve));
  });

  it('close() drops open WebSockets and stops taking upgrades', async () => {
    const stream = await connectWebSocket(`ws://127.0.0.1:${port(http)}/attested`);
    stream.on('error', () => {});
    stream.resume();
    attachment.close();
    await closed(stream);
    await expectCode(
      connectWebSocket(`ws://127.0.0.1:${port(http)}/attested`, { timeout: 2000 }),
      'ERR_CONNECTION_CLOSED',
    );
  });

  it('rejects an attach without a usable acceptor or path', () => {
    expect(() => attachWebSocket(http, {} as never)).toThrow(AttestationError);
    expect(() => attachWebSocket(http, echo, { path: 'no-slash' })).toThrow(AttestationError);
  });
});
