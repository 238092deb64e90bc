// attested-channel/1 inside a WebSocket: end to end on loopback and through a proxy that terminates
// the outer HTTPS (the attestation binds the INNER TLS, so the proxy changes nothing).
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AttestedChannel } from '../../src/channel/channel.js';
import { attestedConnect } from '../../src/channel/connect.js';
import { type AttestedServer, createAttestedServer } from '../../src/channel/server.js';
import { attachWebSocket, type WebSocketAttachment } from '../../src/channel/websocket.js';
import { AttestationError } from '../../src/errors.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import type { SnpClaims } from '../../src/evidence/types.js';
import {
  closeServer,
  leakCheck,
  listen,
  port,
  readBytes,
  terminatingProxy,
  track,
} from '../helpers/edges.js';

const anchors = simulated.trustAnchors();
const policy = { snp: { measurements: [simulated.defaults.snpMeasurement] } };
const OTHER = 'ab'.repeat(48);

let http: HttpServer;
let sockets: Set<Socket>;
let server: AttestedServer;
let attachment: WebSocketAttachment;
let serverErrors: AttestationError[];
let serverChannels: AttestedChannel[];
let leaks: ReturnType<typeof leakCheck>;

async function setup(options: Parameters<typeof createAttestedServer>[0]): Promise<void> {
  server = createAttestedServer(options, (channel) => {
    serverChannels.push(channel);
    channel.on('error', () => {});
    channel.pipe(channel);
  });
  server.on('attestationError', (err) => serverErrors.push(err));
  attachment = attachWebSocket(http, server, { path: '/attested' });
}

beforeEach(async () => {
  leaks = leakCheck();
  serverErrors = [];
  serverChannels = [];
  http = createHttpServer((_req, res) => res.writeHead(404).end());
  sockets = track(http);
  await listen(http);
});

afterEach(async () => {
  for (const c of serverChannels) c.destroy();
  attachment?.close();
  await closeServer(http, sockets);
  await leaks.assertNoLeaks(3000);
});

function finished(channel: AttestedChannel): Promise<void> {
  return new Promise((resolve) => {
    if (channel.destroyed) resolve();
    else channel.once('close', () => resolve());
  });
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('attested channel over WebSocket', () => {
  it('attests the server and carries data, on loopback', async () => {
    await setup({ evidence: simulated.snp() });
    const channel = await attestedConnect({
      url: `ws://127.0.0.1:${port(http)}/attested`,
      verify: { policy, trustAnchors: anchors },
    });
    const peer = channel.peer as SnpClaims;
    expect(peer.format).toBe('sev-snp');
    expect(peer.measurement).toBe(simulated.defaults.snpMeasurement);
    expect(peer.simulated).toBe(true);
    const payload = randomBytes(300_000);
    const back = readBytes(channel, payload.length);
    channel.write(payload);
    expect(Buffer.compare(await back, payload)).toBe(0);
    channel.end();
    await finished(channel);
  });

  it('attests through a proxy that terminates the outer HTTPS, both ways (mutual)', async () => {
    await setup({
      evidence: simulated.snp(),
      verify: { policy, trustAnchors: anchors },
    });
    const proxy = await terminatingProxy(port(http));
    try {
      const channel = await attestedConnect({
        url: `wss://127.0.0.1:${port(proxy.server)}/attested`,
        tls: { ca: proxy.ca },
        headers: { 'x-tenant': 'demo' },
        verify: { policy, trustAnchors: anchors },
        evidence: simulated.snp(),
      });
      expect((channel.peer as SnpClaims).measurement).toBe(simulated.defaults.snpMeasurement);
      await waitFor(() => serverChannels.length === 1);
      expect((serverChannels[0]!.peer as SnpClaims).measurement).toBe(simulated.defaults.snpMeasurement);
      expect(proxy.seenHeaders[0]?.['x-tenant']).toBe('demo');
      const back = readBytes(channel, 4);
      channel.write('ping');
      expect((await back).toString()).toBe('ping');
      channel.destroy();
      await finished(channel);
    } finally {
      await proxy.close();
    }
  });

  it('refuses a server whose measurement the policy does not allow, with its code, on both ends', async () => {
    await setup({ evidence: simulated.snp() });
    const err = await attestedConnect({
      url: `ws://127.0.0.1:${port(http)}/attested`,
      verify: { policy: { snp: { measurements: [OTHER] } }, trustAnchors: anchors },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AttestationError);
    expect((err as AttestationError).code).toBe('ERR_EVIDENCE_POLICY');
    await waitFor(() => serverErrors.length === 1);
    expect(serverErrors[0]!.code).toBe('ERR_PEER_REJECTED');
    expect(serverChannels).toHaveLength(0);
  });

  it('refuses simulated evidence without the simulated trust anchors', async () => {
    await setup({ evidence: simulated.snp() });
    const err = await attestedConnect({
      url: `ws://127.0.0.1:${port(http)}/attested`,
      verify: { policy },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as AttestationError).code).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('reports a wrong upgrade path as ERR_CONNECTION_CLOSED with the HTTP status', async () => {
    await setup({ evidence: simulated.snp() });
    const wrong = await attestedConnect({
      url: `ws://127.0.0.1:${port(http)}/elsewhere`,
      verify: { policy, trustAnchors: anchors },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((wrong as AttestationError).code).toBe('ERR_CONNECTION_CLOSED');
    expect((wrong as AttestationError).details.status).toBe(404);
  });
});
