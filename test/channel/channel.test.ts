/**
 * The channel as a Duplex, over in-memory pairs and loopback TCP, with the fake evidence provider
 * and verifier (real TLS, real exporters and binders): open, data both ways, backpressure,
 * half-close, held writes, re-attestation while data flows, configuration refusals, no leaks.
 */
import { once } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AttestedChannel } from '../../src/channel/channel.js';
import { attestedConnect } from '../../src/channel/connect.js';
import { createTlsIdentity } from '../../src/channel/identity.js';
import { type AttestedServer, createAttestedServer } from '../../src/channel/server.js';
import { AttestationError } from '../../src/errors.js';
import { thrownCode } from '../helpers/codes.js';
import {
  activeHandles,
  closeServer,
  duplexPair,
  expectNoLeaks,
  FAKE_MEASUREMENT,
  fakeProvider,
  fakeVerify,
  listen,
  nextServerError,
  rejectionOf,
} from './helpers.js';

const servers: AttestedServer[] = [];
let baseline: Record<string, number>;
beforeEach(() => {
  baseline = activeHandles();
});
afterEach(async () => {
  for (const s of servers.splice(0)) if (s.listening) await closeServer(s);
});

function serve(
  options: Parameters<typeof createAttestedServer>[0],
  onChannel?: (ch: AttestedChannel) => void,
) {
  const s = createAttestedServer({ ...fakeVerify, ...options }, onChannel);
  servers.push(s);
  return s;
}

function echo(ch: AttestedChannel): void {
  ch.on('error', () => {});
  ch.pipe(ch);
}

function readAll(ch: AttestedChannel): Promise<Buffer> {
  const parts: Buffer[] = [];
  ch.on('data', (d: Buffer) => parts.push(d));
  return new Promise((resolve, reject) => {
    ch.on('end', () => resolve(Buffer.concat(parts)));
    ch.on('error', reject);
  });
}

describe('over an in-memory Duplex pair', () => {
  it('one-way attestation opens both ends and carries data both ways', async () => {
    const [a, b] = duplexPair();
    const server = serve({ evidence: fakeProvider() });
    const serverSide = server.accept(b)!;
    const client = await attestedConnect({ socket: a, verify: {}, ...fakeVerify });
    await serverSide.ready;
    expect(client.peer?.format).toBe('sev-snp');
    expect(serverSide.peer).toBeUndefined();
    client.write('to server');
    const [d1] = (await once(serverSide, 'data')) as [Buffer];
    expect(d1.toString()).toBe('to server');
    serverSide.write('to client');
    const [d2] = (await once(client, 'data')) as [Buffer];
    expect(d2.toString()).toBe('to client');
    client.destroy();
    serverSide.destroy();
  });

  it('bytes written to the server side before open are held and delivered after open', async () => {
    const [a, b] = duplexPair();
    const server = serve({ evidence: fakeProvider({ delayMs: 30 }) });
    const serverSide = server.accept(b)!;
    let written = false;
    serverSide.write('held', () => (written = true));
    expect(serverSide.attested).toBe(false);
    const client = await attestedConnect({ socket: a, verify: {}, ...fakeVerify });
    const [d] = (await once(client, 'data')) as [Buffer];
    expect(d.toString()).toBe('held');
    expect(written).toBe(true);
    client.destroy();
  });

  it('held bytes are dropped with the error when attestation fails', async () => {
    const [a, b] = duplexPair();
    const server = serve({ evidence: fakeProvider({ measurement: 'cd'.repeat(48) }) });
    const serverSide = server.accept(b)!;
    const writeError = new Promise<Error | null | undefined>((r) => serverSide.write('secret', r));
    const policy = { snp: { measurements: [FAKE_MEASUREMENT] } };
    const err = await rejectionOf(attestedConnect({ socket: a, verify: { policy }, ...fakeVerify }));
    expect(err.code).toBe('ERR_EVIDENCE_POLICY');
    const werr = await writeError;
    expect(werr).toBeInstanceOf(AttestationError);
    expect((werr as AttestationError).code).toBe('ERR_PEER_REJECTED');
  });
});

describe('over loopback TCP', () => {
  it('mutual attestation: each side verifies the other', async () => {
    let serverSide: AttestedChannel | undefined;
    const server = serve({ evidence: fakeProvider(), verify: {} }, (ch) => {
      serverSide = ch;
      echo(ch);
    });
    const port = await listen(server);
    const provider = fakeProvider();
    const ch = await attestedConnect({
      host: '127.0.0.1',
      port,
      verify: {},
      evidence: provider,
      ...fakeVerify,
    });
    expect(ch.peer).toBeDefined();
    expect(provider.calls).toHaveLength(1);
    ch.write('x');
    await once(ch, 'data');
    expect(serverSide?.peer).toBeDefined();
    ch.destroy();
  });

  it('moves 8 MiB each way intact with backpressure (64 KiB frames)', async () => {
    const server = serve({ evidence: fakeProvider() }, echo);
    const port = await listen(server);
    const ch = await attestedConnect({ host: '127.0.0.1', port, verify: {}, ...fakeVerify });
    const data = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i, i);
    const received = readAll(ch);
    let i = 0;
    const writeMore = () => {
      while (i < data.length) {
        const piece = data.subarray(i, i + 100_000);
        i += piece.length;
        if (!ch.write(piece)) return void ch.once('drain', writeMore);
      }
      ch.end();
    };
    writeMore();
    const got = await received;
    expect(got.length).toBe(data.length);
    expect(got.equals(data)).toBe(true);
  });

  it('DATA frames fill TLS records exactly: each record the peer reads is one whole frame', async () => {
    const chunks: Buffer[] = [];
    let received: Promise<Buffer> | undefined;
    const server = serve({ evidence: fakeProvider() }, (ch) => {
      ch.socket.on('data', (d: Buffer) => chunks.push(d));
      received = readAll(ch);
    });
    const port = await listen(server);
    const ch = await attestedConnect({ host: '127.0.0.1', port, verify: {}, ...fakeVerify });
    // Writes of 64 KiB in one tick (4 frames and 20 bytes each), then 2000 tiny ones, then the end.
    const big = Array.from({ length: 16 }, (_, i) => Buffer.alloc(65_536, i));
    const small = Array.from({ length: 2000 }, (_, i) => Buffer.from(`${i},`));
    for (const p of [...big, ...small]) ch.write(p);
    ch.end();
    while (!received) await new Promise<void>((resolve) => setImmediate(resolve));
    const got = await received;
    expect(got.equals(Buffer.concat([...big, ...small]))).toBe(true);
    const data = chunks.filter((c) => c[0] === 0x04);
    for (const c of data) expect(c.readUInt32BE(1)).toBe(c.length - 5);
    // 16 × 64 KiB + ~9 KB = 65 full records and one partial; without carrying each write's tail
    // over to the next it would be 16 × 5 + 2000.
    expect(data.length).toBeLessThanOrEqual(66);
  });

  it('a re-attestation started between two writes keeps the bytes whole and in order', async () => {
    const server = serve({ evidence: fakeProvider() }, echo);
    const port = await listen(server);
    const ch = await attestedConnect({ host: '127.0.0.1', port, verify: {}, ...fakeVerify });
    const back: Buffer[] = [];
    ch.on('data', (d: Buffer) => back.push(d));
    ch.write('before ');
    const claims = ch.reattest(); // its REQUEST goes out between the two writes' bytes
    ch.write('after');
    await claims;
    while (Buffer.concat(back).length < 12) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(Buffer.concat(back).toString()).toBe('before after');
    ch.destroy();
  });

  it('half-close: the client ends, the server keeps writing, then ends', async () => {
    const server = serve({ evidence: fakeProvider(), allowHalfOpen: true }, (ch) => {
      ch.on('error', () => {});
      const got: Buffer[] = [];
      ch.on('data', (d) => got.push(d));
      ch.on('end', () => {
        ch.write(`got ${Buffer.concat(got).toString()}`);
        ch.end('; bye');
      });
    });
    const port = await listen(server);
    const ch = await attestedConnect({ host: '127.0.0.1', port, verify: {}, ...fakeVerify });
    const reply = readAll(ch);
    ch.end('question');
    const closed = once(ch, 'close');
    expect((await reply).toString()).toBe('got question; bye');
    await closed;
  });

  it('re-attestation while data flows: fresh evidence, new claims, no byte lost', async () => {
    const provider = fakeProvider();
    const server = serve({ evidence: provider }, echo);
    const port = await listen(server);
    const ch = await attestedConnect({ host: '127.0.0.1', port, verify: {}, ...fakeVerify });
    const received = readAll(ch);
    const sent: Buffer[] = [];
    let reattested = 0;
    ch.on('reattested', () => reattested++);
    for (let round = 0; round < 3; round++) {
      const chunk = Buffer.alloc(50_000, round + 1);
      sent.push(chunk);
      ch.write(chunk);
      const [claims, again] = await Promise.all([ch.reattest(), ch.reattest()]);
      expect(claims).toBe(again);
      expect(ch.peer).toBe(claims);
    }
    ch.end();
    expect((await received).equals(Buffer.concat(sent))).toBe(true);
    expect(reattested).toBe(3);
    expect(provider.calls).toHaveLength(4);
    const distinct = new Set(provider.calls.map((c) => Buffer.from(c).toString('hex')));
    expect(distinct.size).toBe(4);
  });

  it('reattestEvery re-attests on its own', async () => {
    const provider = fakeProvider();
    const server = serve({ evidence: provider }, echo);
    const port = await listen(server);
    const ch = await attestedConnect({
      host: '127.0.0.1',
      port,
      verify: {},
      reattestEvery: 50,
      ...fakeVerify,
    });
    await once(ch, 'reattested');
    await once(ch, 'reattested');
    expect(provider.calls.length).toBeGreaterThanOrEqual(3);
    ch.destroy();
  });

  it("a re-attestation the policy now refuses closes the channel with the verifier's code", async () => {
    let allow = true;
    const server = serve({ evidence: fakeProvider() }, echo);
    const port = await listen(server);
    const ch = await attestedConnect({
      host: '127.0.0.1',
      port,
      verify: { check: () => allow },
      ...fakeVerify,
    });
    allow = false;
    const failed = once(ch, 'error');
    expect((await rejectionOf(ch.reattest())).code).toBe('ERR_EVIDENCE_POLICY');
    expect(((await failed)[0] as AttestationError).code).toBe('ERR_EVIDENCE_POLICY');
  });

  it('setTimeout emits timeout on an idle channel', async () => {
    const server = serve({ evidence: fakeProvider() }, echo);
    const port = await listen(server);
    const ch = await attestedConnect({ host: '127.0.0.1', port, verify: {}, ...fakeVerify });
    await new Promise<void>((r) => ch.setTimeout(30, r));
    ch.setTimeout(0);
    ch.destroy();
  });

  it('a provider failure reaches both ends with its code, and nothing leaks', async () => {
    const server = serve({ evidence: fakeProvider({ fail: new Error('tsm busy') }) });
    const port = await listen(server);
    const serverErr = nextServerError(server);
    const err = await rejectionOf(attestedConnect({ host: '127.0.0.1', port, verify: {}, ...fakeVerify }));
    expect(err.code).toBe('ERR_PEER_REJECTED');
    expect(err.details['peerCode']).toBe('ERR_PROVIDER_FAILED');
    expect((await serverErr).code).toBe('ERR_PROVIDER_FAILED');
    await closeServer(server);
    await expectNoLeaks(baseline);
  });

  it('a client without evidence asked by the server: ERR_UNSUPPORTED_EVIDENCE both ways', async () => {
    const server = serve({ evidence: fakeProvider(), verify: {} });
    const port = await listen(server);
    const serverErr = nextServerError(server);
    const err = await rejectionOf(attestedConnect({ host: '127.0.0.1', port, verify: {}, ...fakeVerify }));
    expect(err.code).toBe('ERR_UNSUPPORTED_EVIDENCE');
    const se = await serverErr;
    expect(se.details['peerCode']).toBe('ERR_UNSUPPORTED_EVIDENCE');
  });

  it('neither side asking for evidence is refused at run time', async () => {
    const server = serve({ evidence: fakeProvider() });
    const port = await listen(server);
    const err = await rejectionOf(
      attestedConnect({ host: '127.0.0.1', port, evidence: fakeProvider(), ...fakeVerify }),
    );
    expect(['ERR_PROTOCOL', 'ERR_PEER_REJECTED']).toContain(err.code);
  });

  it('abort before open is ERR_ABORTED and releases everything', async () => {
    const server = serve({ evidence: fakeProvider({ delayMs: 200 }) });
    const port = await listen(server);
    const ac = new AbortController();
    const p = attestedConnect({ host: '127.0.0.1', port, verify: {}, signal: ac.signal, ...fakeVerify });
    setTimeout(() => ac.abort(), 30);
    expect((await rejectionOf(p)).code).toBe('ERR_ABORTED');
    await closeServer(server);
    await expectNoLeaks(baseline);
  });

  it('a connection that dies while the provider works aborts the provider', async () => {
    const signals: AbortSignal[] = [];
    const server = serve({
      evidence: {
        format: 'sev-snp',
        // Answers only by failing once aborted, like a provider waiting on the kernel.
        getEvidence: (_reportData, opts) =>
          new Promise((_resolve, reject) => {
            signals.push(opts!.signal!);
            opts!.signal!.addEventListener('abort', () => reject(opts!.signal!.reason));
          }),
      },
    });
    const port = await listen(server);
    const ac = new AbortController();
    const p = attestedConnect({ host: '127.0.0.1', port, verify: {}, signal: ac.signal, ...fakeVerify });
    while (signals.length === 0) await new Promise((r) => setTimeout(r, 5));
    expect(signals[0]!.aborted).toBe(false);
    ac.abort();
    expect((await rejectionOf(p)).code).toBe('ERR_ABORTED');
    while (!signals[0]!.aborted) await new Promise((r) => setTimeout(r, 5));
    expect(signals[0]!.reason).toBeInstanceOf(AttestationError);
    await closeServer(server);
    await expectNoLeaks(baseline);
  });

  it('a refused connection is ERR_CONNECTION_CLOSED', async () => {
    const server = serve({ evidence: fakeProvider() });
    const port = await listen(server);
    await closeServer(server);
    const err = await rejectionOf(attestedConnect({ host: '127.0.0.1', port, verify: {}, ...fakeVerify }));
    expect(err.code).toBe('ERR_CONNECTION_CLOSED');
  });
});

describe('configuration', () => {
  it.each([
    ['no verify and no evidence', {}],
    ['two targets', { host: 'h', port: 1, url: 'ws://x', verify: {} }],
    ['no target', { verify: {} }],
    ['bad port', { host: 'h', port: 0, verify: {} }],
    ['bad timeout', { host: 'h', port: 1, verify: {}, timeout: -1 }],
    ['reattestEvery without verify', { host: 'h', port: 1, evidence: fakeProvider(), reattestEvery: 10 }],
    ['tiny maxControlPayload', { host: 'h', port: 1, verify: {}, maxControlPayload: 10 }],
    ['bad provider', { host: 'h', port: 1, evidence: {} }],
    // The Verifier is found when attestedConnect is called: refused before any connection.
    [
      'trust anchors that are not DER lists',
      { host: 'h', port: 1, verify: { trustAnchors: { amdArks: ['x'] } } },
    ],
    ['an identity that is a string', { host: 'h', port: 1, verify: {}, identity: 'mine' }],
    [
      'an identity without its PEM forms',
      (() => {
        const { key, cert, spki } = createTlsIdentity();
        return { host: 'h', port: 1, verify: {}, identity: { key, cert, spki } };
      })(),
    ],
  ])('attestedConnect refuses %s with ERR_INVALID_ARGUMENT', async (_n, options) => {
    const err = await rejectionOf(attestedConnect(options as never));
    expect(err.code).toBe('ERR_INVALID_ARGUMENT');
  });

  it.each([
    ['a string', 'mine'],
    ['a public key', { ...createTlsIdentity(), key: createTlsIdentity().spki }],
  ])('createAttestedServer refuses an identity that is %s', (_n, identity) => {
    expect(() => createAttestedServer({ evidence: fakeProvider(), identity } as never)).toThrow(
      /identity must be a TlsIdentity/,
    );
    expect(thrownCode(() => createAttestedServer({ evidence: fakeProvider(), identity } as never))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });

  it('an invalid policy is refused before connecting', async () => {
    const err = await rejectionOf(
      attestedConnect({ host: 'h', port: 1, verify: { policy: { snp: { measurements: ['zz'] } } } }),
    );
    expect(err.code).toBe('ERR_POLICY_INVALID');
  });

  it('createAttestedServer refuses a server that neither attests nor verifies', () => {
    expect(() => createAttestedServer({})).toThrow(AttestationError);
  });

  it('server identity: one per server by default, fresh per connection on request', async () => {
    const shared = serve({ evidence: fakeProvider() });
    const perConn = serve({ evidence: fakeProvider(), identity: 'per-connection' });
    expect(shared.identity).toBeDefined();
    expect(perConn.identity).toBeUndefined();
    const fingerprints = async (s: AttestedServer) => {
      const out: string[] = [];
      for (let i = 0; i < 2; i++) {
        const [a, b] = duplexPair();
        s.accept(b);
        const ch = await attestedConnect({ socket: a, verify: {}, ...fakeVerify });
        out.push(ch.peerCertificate!.raw.toString('hex'));
        ch.destroy();
      }
      return out;
    };
    const [s1, s2] = await fingerprints(shared);
    expect(s1).toBe(s2);
    const [p1, p2] = await fingerprints(perConn);
    expect(p1).not.toBe(p2);
  });
});
