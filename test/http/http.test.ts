import { createServer as createHttpServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Duplex, PassThrough } from 'node:stream';
import { Agent as UndiciAgent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttestedChannel } from '../../src/channel/channel.js';
import { type AttestedServer, createAttestedServer } from '../../src/channel/server.js';
import { AttestationError } from '../../src/errors.js';
import type { Policy } from '../../src/evidence/policy.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { type AttestedAgent, attestedAgent, attestedConnector } from '../../src/http/agent.js';
import { peerClaims, serveHttp } from '../../src/http/server.js';
import { rejectionCode } from '../helpers/codes.js';

/** Node's HTTP client wraps a channel's error: its cause is the AttestationError. */
const codeOf = (p: Promise<unknown>) => rejectionCode(p, { unwrapCause: true });

const SERVER_M = simulated.defaults.snpMeasurement;
const CLIENT_M = 'c1'.repeat(48);
const anchors = simulated.trustAnchors();
const accept: Policy = { snp: { measurements: [SERVER_M] } };
const refuse: Policy = { snp: { measurements: ['ab'.repeat(48)] } };

interface Served {
  attested: AttestedServer;
  http: Server;
  port: number;
  channels: AttestedChannel[];
  handled: number;
}

/** An http.Server behind an attested server; the handler reports what it knows of the peer. */
async function serve(mutual: boolean): Promise<Served> {
  const attested = createAttestedServer({
    evidence: simulated.snp(),
    ...(mutual ? { verify: { policy: { snp: { measurements: [CLIENT_M] } }, trustAnchors: anchors } } : {}),
  });
  const served: Served = {
    attested,
    http: undefined as unknown as Server,
    port: 0,
    channels: [],
    handled: 0,
  };
  attested.on('channel', (ch) => served.channels.push(ch));
  served.http = serveHttp(
    attested,
    createHttpServer((req, res) => {
      served.handled++;
      const claims = peerClaims(req);
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          path: req.url,
          peer: claims && claims.format === 'sev-snp' ? claims.measurement : null,
          channel: served.channels.indexOf(req.socket as unknown as AttestedChannel),
        }),
      );
    }),
  );
  served.http.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => attested.listen(0, '127.0.0.1', () => resolve()));
  served.port = (attested.address() as AddressInfo).port;
  return served;
}

async function close(s: Served): Promise<void> {
  const stopped = new Promise<void>((r) => s.attested.close(() => r()));
  s.http.closeAllConnections();
  s.http.close();
  await stopped;
}

function get(
  agent: AttestedAgent,
  port: number,
  path = '/',
): Promise<{
  status: number;
  json: { path: string; peer: string | null; channel: number };
  res: IncomingMessage;
}> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text), res }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

let oneWay: Served;
let mutual: Served;

beforeAll(async () => {
  [oneWay, mutual] = await Promise.all([serve(false), serve(true)]);
});
afterAll(async () => {
  await Promise.all([close(oneWay), close(mutual)]);
});

describe('http.request over attestedAgent', () => {
  it('reaches an ordinary http.Server; peerClaims gives the server claims on the response', async () => {
    const agent = attestedAgent({ verify: { policy: accept, trustAnchors: anchors } });
    try {
      const r = await get(agent, oneWay.port, '/hello');
      expect(r.status).toBe(200);
      expect(r.json.path).toBe('/hello');
      // One-way: the server did not ask the client to attest.
      expect(r.json.peer).toBeNull();
      const claims = peerClaims(r.res);
      expect(claims?.format).toBe('sev-snp');
      expect(claims?.format === 'sev-snp' && claims.measurement).toBe(SERVER_M);
      expect(claims?.simulated).toBe(true);
    } finally {
      agent.destroy();
    }
  });

  it('gives the server the client claims through peerClaims(req) when the client attests', async () => {
    const agent = attestedAgent({
      evidence: simulated.snp({ measurement: CLIENT_M }),
      verify: { policy: accept, trustAnchors: anchors },
    });
    try {
      const r = await get(agent, mutual.port);
      expect(r.status).toBe(200);
      expect(r.json.peer).toBe(CLIENT_M);
    } finally {
      agent.destroy();
    }
  });

  it('an agent that attests batches its connections: one report serves the exchanges waiting for it', async () => {
    const inner = simulated.snp({ measurement: CLIENT_M });
    const calls: Uint8Array[] = [];
    const provider = {
      format: inner.format,
      async getEvidence(reportData: Uint8Array) {
        calls.push(reportData);
        // The first report is slow, so the other connections' exchanges wait for the next one.
        if (calls.length === 1) await new Promise((r) => setTimeout(r, 400));
        return inner.getEvidence(reportData);
      },
    };
    const agent = attestedAgent({ evidence: provider, verify: { policy: accept, trustAnchors: anchors } });
    try {
      const results = await Promise.all([1, 2, 3, 4].map((i) => get(agent, mutual.port, `/${i}`)));
      expect(results.map((r) => r.json.peer)).toEqual([CLIENT_M, CLIENT_M, CLIENT_M, CLIENT_M]);
      expect(new Set(results.map((r) => r.json.channel)).size).toBe(4);
      expect(calls.length).toBeLessThan(4);
    } finally {
      agent.destroy();
    }
  });

  it('an agent that attests presents one TLS identity on every channel it opens', async () => {
    const agent = attestedAgent(
      {
        evidence: simulated.snp({ measurement: CLIENT_M }),
        verify: { policy: accept, trustAnchors: anchors },
      },
      { keepAlive: false },
    );
    try {
      const first = await get(agent, mutual.port);
      const second = await get(agent, mutual.port);
      expect(second.json.channel).not.toBe(first.json.channel);
      const certs = [first, second].map(
        (r) => mutual.channels[r.json.channel]!.peerCertificate?.fingerprint256,
      );
      expect(certs[0]).toBeDefined();
      expect(certs[1]).toBe(certs[0]);
    } finally {
      agent.destroy();
    }
  });

  it('fails the request with the verifier code when the server evidence is refused; no request is served', async () => {
    const before = oneWay.handled;
    const agent = attestedAgent({ verify: { policy: refuse, trustAnchors: anchors } });
    try {
      expect(await codeOf(get(agent, oneWay.port))).toBe('ERR_EVIDENCE_POLICY');
      expect(oneWay.handled).toBe(before);
    } finally {
      agent.destroy();
    }
  });

  it('fails with the code when the server refuses the client evidence', async () => {
    const agent = attestedAgent({
      evidence: simulated.snp({ measurement: 'dd'.repeat(48) }),
      verify: { policy: accept, trustAnchors: anchors },
    });
    try {
      const code = await codeOf(get(agent, mutual.port));
      expect(code).toBe('ERR_PEER_REJECTED');
    } finally {
      agent.destroy();
    }
  });

  it('reuses one channel for sequential requests of one keep-alive agent', async () => {
    const agent = attestedAgent({ verify: { policy: accept, trustAnchors: anchors } });
    try {
      const before = oneWay.channels.length;
      const a = await get(agent, oneWay.port, '/1');
      const b = await get(agent, oneWay.port, '/2');
      const c = await get(agent, oneWay.port, '/3');
      expect(oneWay.channels.length).toBe(before + 1);
      expect(new Set([a.json.channel, b.json.channel, c.json.channel]).size).toBe(1);
    } finally {
      agent.destroy();
    }
  });

  it('a pooled channel gathers no listeners over many requests (no leak, no MaxListeners warning)', async () => {
    const agent = attestedAgent({ verify: { policy: accept, trustAnchors: anchors } });
    try {
      const first = await get(agent, oneWay.port, '/0');
      // The response detaches from the socket once it ended; the request keeps it.
      const channel = (first.res as unknown as { req: { socket: NodeJS.EventEmitter } }).req.socket;
      const counts = () => ['error', 'close', 'end', 'data', 'timeout'].map((e) => channel.listenerCount(e));
      await get(agent, oneWay.port, '/1');
      const settled = counts();
      for (let i = 2; i < 25; i++) await get(agent, oneWay.port, `/${i}`);
      expect(counts()).toEqual(settled);
      expect(Math.max(...settled)).toBeLessThan(5);
    } finally {
      agent.destroy();
    }
  });

  it('opens a fresh channel per request when keep-alive is off', async () => {
    const agent = attestedAgent({ verify: { policy: accept, trustAnchors: anchors } }, { keepAlive: false });
    try {
      const before = oneWay.channels.length;
      await get(agent, oneWay.port);
      await get(agent, oneWay.port);
      expect(oneWay.channels.length).toBe(before + 2);
    } finally {
      agent.destroy();
    }
  });

  it('never hands a channel verified under one policy to an agent with another', async () => {
    const a = attestedAgent({ verify: { policy: accept, trustAnchors: anchors } });
    const b = attestedAgent({ verify: { policy: refuse, trustAnchors: anchors } });
    // Accepts the same server, but is a different policy: it must still get its own channel.
    const c = attestedAgent({
      verify: { policy: { snp: { measurements: [SERVER_M, 'ee'.repeat(48)] } }, trustAnchors: anchors },
    });
    try {
      const before = oneWay.channels.length;
      const first = await get(a, oneWay.port);
      // a's channel now sits idle in a's pool; b would succeed if it were handed that channel.
      expect(await codeOf(get(b, oneWay.port))).toBe('ERR_EVIDENCE_POLICY');
      const third = await get(c, oneWay.port);
      expect(third.json.channel).not.toBe(first.json.channel);
      expect(oneWay.channels.length).toBe(before + 2);
      const opts = { host: '127.0.0.1', port: oneWay.port };
      expect(a.getName(opts)).not.toBe(b.getName(opts));
      expect(a.getName(opts)).not.toBe(c.getName(opts));
    } finally {
      a.destroy();
      b.destroy();
      c.destroy();
    }
  });

  it('freezes its options: changing the caller object later does not change what channels are verified under', async () => {
    const options = { verify: { policy: accept, trustAnchors: anchors } };
    const agent = attestedAgent(options);
    try {
      (options as { verify: unknown }).verify = { policy: refuse, trustAnchors: anchors };
      expect((await get(agent, oneWay.port)).status).toBe(200);
    } finally {
      agent.destroy();
    }
  });

  it('parses and deep-copies the policy at creation: tightening it in place later changes nothing', async () => {
    const policy = { snp: { measurements: [SERVER_M] } };
    const agent = attestedAgent({ verify: { policy, trustAnchors: anchors } });
    try {
      const first = await get(agent, oneWay.port);
      expect(first.status).toBe(200);
      // Tightened in place: the server's measurement is no longer allowed by the caller's object.
      policy.snp.measurements[0] = 'ab'.repeat(48);
      // The pooled channel, and new channels alike, are verified under the policy of creation.
      const [a, b] = await Promise.all([get(agent, oneWay.port), get(agent, oneWay.port)]);
      expect([a.status, b.status]).toEqual([200, 200]);
      expect(new Set([first.json.channel, a.json.channel, b.json.channel]).size).toBe(2);
    } finally {
      agent.destroy();
    }
    // An invalid policy is refused when the agent is made, not at the first request.
    expect(() => attestedAgent({ verify: { policy: { snp: { measurement: [] } } as never } })).toThrow(
      expect.objectContaining({ code: 'ERR_POLICY_INVALID' }),
    );
    expect(() => attestedConnector({ verify: { policy: { snp: { measurement: [] } } as never } })).toThrow(
      expect.objectContaining({ code: 'ERR_POLICY_INVALID' }),
    );
  });

  it('refuses a fixed target or socket in the options', () => {
    for (const bad of [{ host: '127.0.0.1' }, { port: 1 }, { socket: new PassThrough() }]) {
      expect(() => attestedAgent({ ...bad, verify: { policy: accept } } as never)).toThrow(AttestationError);
      expect(() => attestedConnector({ ...bad, verify: { policy: accept } } as never)).toThrow(
        AttestationError,
      );
    }
  });
});

describe('undici fetch over attestedConnector', () => {
  it('fetches through attested channels', async () => {
    const dispatcher = new UndiciAgent({
      connect: attestedConnector({ verify: { policy: accept, trustAnchors: anchors } }),
    });
    try {
      const before = oneWay.channels.length;
      const r1 = await undiciFetch(`http://127.0.0.1:${oneWay.port}/one`, { dispatcher });
      expect(r1.status).toBe(200);
      const j1 = (await r1.json()) as { path: string; channel: number };
      const r2 = await undiciFetch(`http://127.0.0.1:${oneWay.port}/two`, { dispatcher });
      const j2 = (await r2.json()) as { path: string; channel: number };
      expect([j1.path, j2.path]).toEqual(['/one', '/two']);
      // Both requests were served over channels this attested server opened. (Whether undici reuses
      // the first one depends on its pool heuristics; channel reuse is asserted for http.Agent above.)
      expect(j1.channel).toBeGreaterThanOrEqual(before);
      expect(j2.channel).toBeGreaterThanOrEqual(before);
    } finally {
      await dispatcher.close();
    }
  });

  it('the connector keeps the policy of creation too, however the caller changes it', async () => {
    const policy = { snp: { measurements: [SERVER_M] } };
    const dispatcher = new UndiciAgent({
      connect: attestedConnector({ verify: { policy, trustAnchors: anchors } }),
      pipelining: 0,
    });
    try {
      policy.snp.measurements[0] = 'ab'.repeat(48);
      const r = await undiciFetch(`http://127.0.0.1:${oneWay.port}/`, { dispatcher });
      expect(r.status).toBe(200);
      await r.arrayBuffer();
    } finally {
      await dispatcher.close();
    }
  });

  it('fails fetch with the AttestationError as cause when the server is refused', async () => {
    const dispatcher = new UndiciAgent({
      connect: attestedConnector({ verify: { policy: refuse, trustAnchors: anchors } }),
    });
    try {
      const before = oneWay.handled;
      expect(await codeOf(undiciFetch(`http://127.0.0.1:${oneWay.port}/`, { dispatcher }))).toBe(
        'ERR_EVIDENCE_POLICY',
      );
      expect(oneWay.handled).toBe(before);
    } finally {
      await dispatcher.close();
    }
  });

  it('carries client evidence to a server that requires it', async () => {
    const dispatcher = new UndiciAgent({
      connect: attestedConnector({
        evidence: simulated.snp({ measurement: CLIENT_M }),
        verify: { policy: accept, trustAnchors: anchors },
      }),
    });
    try {
      const r = await undiciFetch(`http://127.0.0.1:${mutual.port}/m`, { dispatcher });
      expect(((await r.json()) as { peer: string }).peer).toBe(CLIENT_M);
    } finally {
      await dispatcher.close();
    }
  });
});

describe('peerClaims', () => {
  it('gives nothing for a request that did not come over an attested channel, even with a forged peer field', async () => {
    const toServer = new PassThrough();
    const fromServer = new PassThrough();
    const fake = Duplex.from({ readable: toServer, writable: fromServer }) as Duplex & { peer?: unknown };
    Object.defineProperty(fake, 'peer', { value: { format: 'sev-snp', measurement: SERVER_M } });
    const response = new Promise<string>((resolve) => {
      let text = '';
      fromServer.on('data', (c: Buffer) => {
        text += c.toString();
        if (text.includes('}')) resolve(text);
      });
    });
    oneWay.http.emit('connection', fake);
    toServer.write('GET /forged HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const text = await response;
    expect(text).toContain('"path":"/forged"');
    expect(text).toContain('"peer":null');
    fake.destroy();
  });

  it('gives nothing for a look-alike of an AttestedChannel (its prototype, an own peer property)', () => {
    const lookAlike = Object.create(AttestedChannel.prototype, {
      peer: { value: { format: 'sev-snp', measurement: SERVER_M } },
    }) as AttestedChannel;
    expect(lookAlike instanceof AttestedChannel).toBe(true);
    expect(peerClaims({ socket: lookAlike } as unknown as IncomingMessage)).toBeUndefined();
  });

  it('is undefined for a message without a socket', () => {
    expect(peerClaims({ socket: null } as unknown as IncomingMessage)).toBeUndefined();
  });
});
