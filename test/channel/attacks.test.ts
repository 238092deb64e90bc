/**
 * Each attack of DESIGN.md §2 (and the protocol's abuse cases) as a test: a hand-built adversary
 * speaking the wire format over real node:tls against our client or our server. A positive
 * control shows the adversary's honest path is accepted, so each refusal is the check at work.
 */
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AttestedChannel } from '../../src/channel/channel.js';
import { encodeCmw, REPORT_MEDIA_TYPES } from '../../src/channel/cmw.js';
import { attestedConnect } from '../../src/channel/connect.js';
import {
  encodeEvidence,
  encodeFrame,
  encodeRequest,
  encodeResult,
  FrameType,
} from '../../src/channel/frames.js';
import { createTlsIdentity } from '../../src/channel/identity.js';
import { type AttestedServer, createAttestedServer } from '../../src/channel/server.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import {
  adversaryServer,
  binderFor,
  type Cleanups,
  contextOf,
  json,
  rawClient,
  serveEvidence,
} from './adversary.js';
import {
  activeHandles,
  closeServer,
  expectNoLeaks,
  fakeProvider,
  fakeVerify,
  listen,
  nextServerError,
  rejectionOf,
} from './helpers.js';

const anchors = simulated.trustAnchors();
const verify = {
  policy: { snp: { measurements: [simulated.defaults.snpMeasurement] } },
  trustAnchors: anchors,
};
const sim = simulated.snp();

let cleanups: Cleanups = [];
let baseline: Record<string, number>;
beforeEach(() => {
  baseline = activeHandles();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A node:tls server for tests that need one we do not control; closes without waiting on its sockets. */
async function plainTlsServer(
  options: import('node:tls').TlsOptions,
  onSocket: (s: import('node:tls').TLSSocket) => void,
) {
  const server = createTlsServer(options, (s) => {
    s.on('error', () => {});
    onSocket(s);
  });
  const raw = new Set<import('node:net').Socket>();
  server.on('connection', (c) => raw.add(c));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    for (const c of raw) c.destroy();
    server.close();
  });
  return (server.address() as import('node:net').AddressInfo).port;
}

async function ourServer(
  options: Parameters<typeof createAttestedServer>[0],
): Promise<[AttestedServer, number]> {
  const server = createAttestedServer(options);
  const port = await listen(server);
  cleanups.push(() => closeServer(server));
  return [server, port];
}

describe('attacks on the client (the server must attest)', () => {
  it('positive control: an adversary with genuine evidence bound to its own connection and key is accepted', async () => {
    let seen: unknown[] = [];
    const adv = await adversaryServer(cleanups, async (peer) => {
      seen = await serveEvidence(peer, async (ctx) =>
        encodeCmw(
          await sim.getEvidence(binderFor(peer.socket, 'server', peer.identity.spki, ctx)),
          'sev-snp',
        ),
      );
    });
    const ch = await attestedConnect({ host: '127.0.0.1', port: adv.port, verify });
    expect(ch.peer?.format).toBe('sev-snp');
    ch.end();
    await adv.done;
    expect(seen[0]).toEqual([FrameType.RESULT, expect.objectContaining({ ok: true })]);
  });

  it('a format the client did not offer: genuine TDX evidence bound to this connection is ERR_EVIDENCE_POLICY', async () => {
    // The client's policy names only SNP, so its REQUEST.accept lists only the SNP report type; a
    // peer ignoring that list gets the refusal verifyEvidence() gives, before any signature check.
    const tdx = simulated.tdx();
    let seen: unknown[] = [];
    const adv = await adversaryServer(cleanups, async (peer) => {
      seen = await serveEvidence(peer, async (ctx) =>
        encodeCmw(await tdx.getEvidence(binderFor(peer.socket, 'server', peer.identity.spki, ctx)), 'tdx'),
      );
    });
    const err = await rejectionOf(attestedConnect({ host: '127.0.0.1', port: adv.port, verify }));
    expect(err.code).toBe('ERR_EVIDENCE_POLICY');
    expect(err.details.field).toBe('format');
    // Refused by the channel's own check on the media type (cmw.ts), before the report is parsed;
    // verifyEvidence()'s format check (appraise.ts) would refuse it too, with another message.
    expect(err.message).toContain('tdx evidence was not offered');
    await adv.done;
    expect(seen).toContainEqual([FrameType.ALERT, expect.objectContaining({ code: 'ERR_EVIDENCE_POLICY' })]);
    expect(seen.some((f) => (f as unknown[])[1] === 'data')).toBe(false);
  });

  it('relay: evidence from another live connection is ERR_BINDING_MISMATCH (the relayer gets the ALERT)', async () => {
    // A genuine server S; the adversary M asks S for evidence with our client's context and relays it.
    const [, sPort] = await ourServer({ evidence: sim });
    let seen: unknown[] = [];
    const adv = await adversaryServer(cleanups, async (peer) => {
      seen = await serveEvidence(peer, async (ctx) => {
        const upstream = await rawClient(sPort);
        upstream.socket.write(encodeRequest(ctx, REPORT_MEDIA_TYPES));
        await upstream.reader.next(); // S's REQUEST
        const evidence = json(await upstream.reader.next());
        upstream.socket.destroy();
        return evidence['evidence'];
      });
    });
    const err = await rejectionOf(attestedConnect({ host: '127.0.0.1', port: adv.port, verify }));
    expect(err.code).toBe('ERR_BINDING_MISMATCH');
    await adv.done;
    expect(seen).toContainEqual([FrameType.ALERT, expect.objectContaining({ code: 'ERR_BINDING_MISMATCH' })]);
    expect(seen).toContainEqual([
      FrameType.RESULT,
      expect.objectContaining({ ok: false, code: 'ERR_BINDING_MISMATCH' }),
    ]);
  });

  it('replay: evidence recorded on an old connection is ERR_BINDING_MISMATCH', async () => {
    const [, sPort] = await ourServer({ evidence: sim });
    // Record: an earlier, completed exchange with the genuine server.
    const old = await rawClient(sPort);
    old.socket.write(encodeRequest(new Uint8Array(32).fill(1), REPORT_MEDIA_TYPES));
    await old.reader.next();
    const recorded = json(await old.reader.next())['evidence'];
    old.socket.destroy();
    const adv = await adversaryServer(cleanups, async (peer) => {
      await serveEvidence(peer, async () => recorded);
    });
    const err = await rejectionOf(attestedConnect({ host: '127.0.0.1', port: adv.port, verify }));
    expect(err.code).toBe('ERR_BINDING_MISMATCH');
  });

  it('key substitution: genuine evidence for this connection but another key is ERR_BINDING_MISMATCH', async () => {
    const teeKey = createTlsIdentity(); // the key the TEE vouches for; the adversary terminates TLS with its own
    const adv = await adversaryServer(cleanups, async (peer) => {
      await serveEvidence(peer, async (ctx) =>
        encodeCmw(await sim.getEvidence(binderFor(peer.socket, 'server', teeKey.spki, ctx)), 'sev-snp'),
      );
    });
    const err = await rejectionOf(attestedConnect({ host: '127.0.0.1', port: adv.port, verify }));
    expect(err.code).toBe('ERR_BINDING_MISMATCH');
  });

  it("reflection: the client's own evidence sent back as the server's is ERR_BINDING_MISMATCH", async () => {
    const adv = await adversaryServer(cleanups, async (peer) => {
      const clientCtx = await contextOf(peer.reader);
      // Ask the (mutual) client for its evidence, then hand that back as ours.
      peer.socket.write(encodeRequest(new Uint8Array(32).fill(0x77), REPORT_MEDIA_TYPES));
      const reflected = json(await peer.reader.next())['evidence'];
      peer.socket.write(encodeEvidence(clientCtx, reflected));
      await peer.reader.rest();
    });
    const err = await rejectionOf(
      attestedConnect({ host: '127.0.0.1', port: adv.port, verify, evidence: simulated.snp() }),
    );
    expect(err.code).toBe('ERR_BINDING_MISMATCH');
  });

  it("reflection of our own context in the peer's REQUEST is ERR_PROTOCOL", async () => {
    const adv = await adversaryServer(cleanups, async (peer) => {
      const ctx = await contextOf(peer.reader);
      peer.socket.write(encodeRequest(ctx, REPORT_MEDIA_TYPES));
      await peer.reader.rest();
    });
    const err = await rejectionOf(
      attestedConnect({ host: '127.0.0.1', port: adv.port, verify, evidence: fakeProvider(), ...fakeVerify }),
    );
    expect(err.code).toBe('ERR_PROTOCOL');
  });

  it('early DATA from the server is ERR_PROTOCOL and never delivered', async () => {
    let seen: unknown[] = [];
    const adv = await adversaryServer(cleanups, async (peer) => {
      await contextOf(peer.reader);
      peer.socket.write(encodeRequest(new Uint8Array(32).fill(3), []));
      peer.socket.write(encodeFrame(FrameType.DATA, Buffer.from('sneaky')));
      seen = (await peer.reader.rest()).map((f) => json(f));
    });
    const err = await rejectionOf(
      attestedConnect({ host: '127.0.0.1', port: adv.port, verify, ...fakeVerify }),
    );
    expect(err.code).toBe('ERR_PROTOCOL');
    await adv.done;
    expect(seen).toContainEqual(expect.objectContaining({ code: 'ERR_PROTOCOL' }));
  });

  it.each([
    ['an oversized control frame', Buffer.from([FrameType.REQUEST, 0, 0x10, 0, 1])],
    ['an oversized DATA frame', Buffer.from([FrameType.DATA, 0, 1, 0, 1])],
    ['an unknown frame type', Buffer.from([0x09, 0, 0, 0, 0])],
  ])('%s is ERR_PROTOCOL with an ALERT', async (_n, bytes) => {
    let seen: unknown[] = [];
    const adv = await adversaryServer(cleanups, async (peer) => {
      peer.socket.write(bytes);
      seen = (await peer.reader.rest()).filter((f) => f.type === FrameType.ALERT).map((f) => json(f));
    });
    const err = await rejectionOf(
      attestedConnect({ host: '127.0.0.1', port: adv.port, verify, ...fakeVerify }),
    );
    expect(err.code).toBe('ERR_PROTOCOL');
    await adv.done;
    expect(seen).toEqual([expect.objectContaining({ code: 'ERR_PROTOCOL' })]);
    await adv.close();
    cleanups = [];
    await expectNoLeaks(baseline);
  });

  it('a stalling server is ERR_ATTESTATION_TIMEOUT after the configured timeout, and nothing leaks', async () => {
    let seen: unknown[] = [];
    const adv = await adversaryServer(cleanups, async (peer) => {
      seen = (await peer.reader.rest()).map((f) => [f.type, json(f)]);
    });
    const err = await rejectionOf(
      // Long enough for TLS on a loaded machine; the stall is in the attestation exchange.
      attestedConnect({ host: '127.0.0.1', port: adv.port, verify, timeout: 2500, ...fakeVerify }),
    );
    expect(err.code).toBe('ERR_ATTESTATION_TIMEOUT');
    await adv.done;
    expect(seen.at(-1)).toEqual([
      FrameType.ALERT,
      expect.objectContaining({ code: 'ERR_ATTESTATION_TIMEOUT' }),
    ]);
    await adv.close();
    cleanups = [];
    await expectNoLeaks(baseline);
  });

  it('a TCP peer that never speaks TLS is ERR_ATTESTATION_TIMEOUT', async () => {
    const { createServer } = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const silent = createServer((s) => sockets.push(s)).listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const port = (silent.address() as import('node:net').AddressInfo).port;
    const err = await rejectionOf(attestedConnect({ host: '127.0.0.1', port, verify, timeout: 100 }));
    expect(err.code).toBe('ERR_ATTESTATION_TIMEOUT');
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
    await expectNoLeaks(baseline);
  });

  it('a server that selects no ALPN is refused with ERR_TLS', async () => {
    const id = createTlsIdentity();
    const port = await plainTlsServer({ key: id.keyPem, cert: id.certPem }, () => {});
    const err = await rejectionOf(attestedConnect({ host: '127.0.0.1', port, verify, timeout: 5000 }));
    expect(err.code).toBe('ERR_TLS');
    expect(err.message).toMatch(/ALPN/);
  });

  it('a resumed TLS session is refused with ERR_TLS', async () => {
    // Our client never offers a session; to reach the check, run the channel on a socket that did.
    const id = createTlsIdentity();
    const port = await plainTlsServer(
      { key: id.keyPem, cert: id.certPem, ALPNProtocols: ['attested-channel/1'], minVersion: 'TLSv1.3' },
      (s) => {
        s.on('data', () => {});
      },
    );
    const first = tlsConnect({
      host: '127.0.0.1',
      port,
      rejectUnauthorized: false,
      ALPNProtocols: ['attested-channel/1'],
    });
    first.on('data', () => {});
    const [session] = (await once(first, 'session')) as [Buffer];
    first.destroy();
    const second = tlsConnect({
      host: '127.0.0.1',
      port,
      rejectUnauthorized: false,
      ALPNProtocols: ['attested-channel/1'],
      session,
    });
    const channel = new AttestedChannel({
      socket: second,
      role: 'client',
      identity: undefined,
      options: { verify },
      timeoutMs: 5000,
    });
    const err = await rejectionOf(channel.ready);
    expect(second.isSessionReused()).toBe(true);
    expect(err.code).toBe('ERR_TLS');
    expect(err.message).toMatch(/resum/);
  });
});

describe('attacks on the server', () => {
  it('early DATA from a client is ERR_PROTOCOL, never delivered, and the client gets the ALERT', async () => {
    const [server, port] = await ourServer({ evidence: fakeProvider(), verify: {}, ...fakeVerify });
    let delivered = false;
    server.on('channel', (ch) => ch.on('data', () => (delivered = true)));
    const failed = nextServerError(server);
    const c = await rawClient(port);
    c.socket.write(encodeRequest(new Uint8Array(32).fill(4), REPORT_MEDIA_TYPES));
    c.socket.write(encodeFrame(FrameType.DATA, Buffer.from('early')));
    expect((await failed).code).toBe('ERR_PROTOCOL');
    const frames = await c.reader.rest();
    expect(frames.filter((f) => f.type === FrameType.ALERT).map((f) => json(f)['code'])).toEqual([
      'ERR_PROTOCOL',
    ]);
    expect(delivered).toBe(false);
  });

  it("a client reflecting the server's evidence as its own is ERR_BINDING_MISMATCH", async () => {
    const [server, port] = await ourServer({ evidence: sim, verify });
    const failed = nextServerError(server);
    const c = await rawClient(port);
    const serverCtx = await contextOf(c.reader);
    c.socket.write(encodeRequest(new Uint8Array(32).fill(6), REPORT_MEDIA_TYPES));
    const serverEvidence = json(await c.reader.next())['evidence'];
    c.socket.write(encodeEvidence(serverCtx, serverEvidence));
    expect((await failed).code).toBe('ERR_BINDING_MISMATCH');
    c.socket.destroy();
  });

  it('a client that completes TLS and stalls is ERR_ATTESTATION_TIMEOUT, nothing leaks', async () => {
    const [server, port] = await ourServer({
      evidence: fakeProvider(),
      verify: {},
      timeout: 120,
      ...fakeVerify,
    });
    const failed = nextServerError(server);
    const c = await rawClient(port);
    expect((await failed).code).toBe('ERR_ATTESTATION_TIMEOUT');
    const frames = await c.reader.rest();
    expect(frames.at(-1)?.type).toBe(FrameType.ALERT);
    expect(server.pendingCount).toBe(0);
    for (const f of cleanups.splice(0).reverse()) await f();
    await expectNoLeaks(baseline);
  });

  it('a client that never answers a re-attestation is closed with ERR_ATTESTATION_TIMEOUT', async () => {
    const [server, port] = await ourServer({ verify: {}, timeout: 1500, ...fakeVerify });
    const opened = once(server, 'channel') as Promise<[AttestedChannel]>;
    const c = await rawClient(port);
    const serverCtx = await contextOf(c.reader);
    c.socket.write(encodeRequest(new Uint8Array(32).fill(8), []));
    const { fakeReport } = await import('./helpers.js');
    const bound = binderFor(c.socket, 'client', c.identity.spki, serverCtx);
    c.socket.write(encodeEvidence(serverCtx, encodeCmw({ report: fakeReport(bound) }, 'sev-snp')));
    const [ch] = await opened;
    const closed = once(ch, 'error');
    const re = ch.reattest();
    const [err] = (await closed) as [import('../../src/errors.js').AttestationError];
    expect(err.code).toBe('ERR_ATTESTATION_TIMEOUT');
    expect((await rejectionOf(re)).code).toBe('ERR_ATTESTATION_TIMEOUT');
    c.socket.destroy();
  });

  it('a client offering no ALPN is refused with ERR_TLS', async () => {
    const [server, port] = await ourServer({ evidence: fakeProvider(), ...fakeVerify });
    const failed = nextServerError(server);
    const c = await rawClient(port, { alpn: false });
    expect((await failed).code).toBe('ERR_TLS');
    c.socket.destroy();
  });

  it('a TLS 1.2 client cannot connect', async () => {
    const [server, port] = await ourServer({ evidence: fakeProvider(), ...fakeVerify });
    const failed = nextServerError(server);
    const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, maxVersion: 'TLSv1.2' });
    s.on('error', () => {});
    expect(['ERR_TLS', 'ERR_CONNECTION_CLOSED']).toContain((await failed).code);
    s.destroy();
  });

  it('a client cannot resume: the server sends no resumable ticket', async () => {
    const [server, port] = await ourServer({ evidence: fakeProvider(), ...fakeVerify });
    server.on('channel', (ch) => ch.on('error', () => {}));
    const tickets: Buffer[] = [];
    const first = await rawClient(port);
    first.socket.on('session', (s: Buffer) => tickets.push(s));
    first.socket.write(encodeRequest(new Uint8Array(32).fill(9), REPORT_MEDIA_TYPES));
    await first.reader.next();
    await first.reader.next();
    first.socket.end();
    await first.reader.rest();
    const second = await rawClient(port, tickets[0] ? { session: tickets[0] } : {});
    expect(second.socket.isSessionReused()).toBe(false);
    second.socket.destroy();
  });

  it('RESULT for evidence never sent is ERR_PROTOCOL', async () => {
    const [server, port] = await ourServer({ verify: {}, ...fakeVerify });
    const failed = nextServerError(server);
    const c = await rawClient(port);
    const ctx = await contextOf(c.reader);
    c.socket.write(encodeRequest(new Uint8Array(32).fill(10), []));
    c.socket.write(encodeResult(ctx));
    expect((await failed).code).toBe('ERR_PROTOCOL');
    c.socket.destroy();
  });

  it('a TCP client that never starts TLS times out, nothing leaks', async () => {
    const [server, port] = await ourServer({ evidence: fakeProvider(), timeout: 100, ...fakeVerify });
    const failed = nextServerError(server);
    const raw = netConnect(port, '127.0.0.1');
    raw.on('error', () => {});
    expect((await failed).code).toBe('ERR_ATTESTATION_TIMEOUT');
    raw.destroy();
    for (const f of cleanups.splice(0).reverse()) await f();
    await expectNoLeaks(baseline);
  });
});
