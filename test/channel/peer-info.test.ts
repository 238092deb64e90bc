/**
 * What a server and a client learn about the other end besides its claims: the refused client's
 * address in attestationError's details.remote (TCP and WebSocket), and the peer's TLS
 * certificate as channel.peerCertificate, which socket.getPeerCertificate() no longer returns.
 */
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, connect as netConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { attestedConnect } from '../../src/channel/connect.js';
import { type AttestedServer, createAttestedServer } from '../../src/channel/server.js';
import { attachWebSocket } from '../../src/channel/websocket.js';
import type { AttestationError } from '../../src/errors.js';
import { simulated } from '../../src/evidence/providers/simulated.js';

const verify = {
  policy: { snp: { measurements: [simulated.defaults.snpMeasurement] } },
  trustAnchors: simulated.trustAnchors(),
  offline: true,
};

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listening(server: AttestedServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

describe("attestationError's details.remote", () => {
  it('TCP: the refused client’s address and port', async () => {
    const server = createAttestedServer({ evidence: simulated.snp(), verify });
    const port = await listening(server);
    const refused = once(server, 'attestationError') as Promise<[AttestationError]>;
    const sock = netConnect({ host: '127.0.0.1', port });
    await once(sock, 'connect');
    const local = `127.0.0.1:${sock.localPort}`;
    sock.on('error', () => {});
    sock.write('not TLS at all\r\n\r\n');
    const [err] = await refused;
    expect(err.code).toBe('ERR_TLS');
    expect(err.details.remote).toBe(local);
    sock.destroy();
  });

  it('TCP: a client refused for its evidence is logged with its address too', async () => {
    const server = createAttestedServer({ evidence: simulated.snp(), verify });
    const port = await listening(server);
    const refused = once(server, 'attestationError') as Promise<[AttestationError]>;
    // This client's evidence is simulated TDX: the server's policy names only SEV-SNP.
    await expect(
      attestedConnect({ host: '127.0.0.1', port, evidence: simulated.tdx(), verify }),
    ).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_EVIDENCE' });
    const [err] = await refused;
    expect(err.code).toBe('ERR_PEER_REJECTED');
    expect(err.details.remote).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(err.details.remote).not.toBe(`127.0.0.1:${port}`);
  });

  it('WebSocket: the address of the HTTP connection that carried the upgrade', async () => {
    const attested = createAttestedServer({ evidence: simulated.snp(), verify });
    const http = createHttpServer();
    const ws = attachWebSocket(http, attested, { path: '/a' });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      ws.close();
      http.closeAllConnections();
      return new Promise<void>((resolve) => http.close(() => resolve()));
    });
    const refused = once(attested, 'attestationError') as Promise<[AttestationError]>;
    const client = new WebSocket(`ws://127.0.0.1:${(http.address() as AddressInfo).port}/a`);
    client.on('error', () => {});
    await once(client, 'open');
    const local = `127.0.0.1:${(client as unknown as { _socket: { localPort: number } })._socket.localPort}`;
    client.send(Buffer.from('not a TLS ClientHello'));
    const [err] = await refused;
    expect(err.details.remote).toBe(local);
    client.terminate();
  });

  it('one error object shared by two refusals: each attestationError names its own client', async () => {
    const { INTERNAL } = await import('../../src/channel/options.js');
    const { AttestationError: AE } = await import('../../src/errors.js');
    // As a collateral fetch that failed once for every verification waiting on it.
    const shared = new AE('ERR_COLLATERAL_UNAVAILABLE', 'KDS unreachable');
    const server = createAttestedServer({
      evidence: simulated.snp(),
      verify,
      [INTERNAL]: { verifier: async () => Promise.reject(shared) },
    } as Parameters<typeof createAttestedServer>[0]);
    const port = await listening(server);
    const seen: AttestationError[] = [];
    server.on('attestationError', (e) => seen.push(e));
    const clients: string[] = [];
    for (let i = 0; i < 2; i++) {
      const sock = netConnect({ host: '127.0.0.1', port });
      await once(sock, 'connect');
      clients.push(`127.0.0.1:${sock.localPort}`);
      await expect(
        attestedConnect({ socket: sock, evidence: simulated.snp(), verify }),
      ).rejects.toMatchObject({ code: 'ERR_PEER_REJECTED' });
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(seen.map((e) => e.code)).toEqual(['ERR_COLLATERAL_UNAVAILABLE', 'ERR_COLLATERAL_UNAVAILABLE']);
    expect(seen.map((e) => e.details.remote)).toEqual(clients);
    // The shared object itself is left as it was.
    expect(shared.details).toEqual({});
  });

  it('accept(duplex, peer) takes the address from the caller; IPv6 in brackets', async () => {
    const server = createAttestedServer({ evidence: simulated.snp(), verify });
    const { duplexPair } = await import('./helpers.js');
    const [a, b] = duplexPair();
    const refused = once(server, 'attestationError') as Promise<[AttestationError]>;
    server.accept(b, { remoteAddress: '2001:db8::7', remotePort: 51522 });
    a.write('junk that is no ClientHello');
    const [err] = await refused;
    expect(err.details.remote).toBe('[2001:db8::7]:51522');
    a.destroy();
  });
});

describe('channel.peerCertificate', () => {
  it('is the X509Certificate the evidence is bound to, on both ends, after open', async () => {
    let serverSide: import('../../src/channel/channel.js').AttestedChannel | undefined;
    const server = createAttestedServer(
      { evidence: simulated.snp(), verify, identity: 'per-connection' },
      (ch) => {
        serverSide = ch;
      },
    );
    const port = await listening(server);
    const channel = await attestedConnect({ host: '127.0.0.1', port, verify, evidence: simulated.snp() });
    cleanups.push(() => {
      channel.destroy();
    });
    const cert = channel.peerCertificate;
    expect(cert).toBeInstanceOf(X509Certificate);
    // The server's TLS key is the one the verified evidence binds (per-connection identity).
    await new Promise((r) => setTimeout(r, 20));
    expect(serverSide).toBeDefined();
    expect(serverSide!.socket.getCertificate()).toBeDefined();
    const serverCert = new X509Certificate((serverSide!.socket.getX509Certificate() as X509Certificate).raw);
    expect(cert!.raw.equals(serverCert.raw)).toBe(true);
    // And the server sees the client's certificate the same way.
    const clientCert = serverSide!.peerCertificate;
    expect(clientCert).toBeInstanceOf(X509Certificate);
    expect(clientCert!.raw.equals(channel.socket.getX509Certificate()!.raw)).toBe(true);
    // Node 20 and 22 answer {} from socket.getPeerCertificate() once the channel has read the
    // certificate (what the issue saw); Node 24 does not. peerCertificate does not depend on it.
    serverSide!.destroy();
  });

  it('is undefined on the server when the client presents no certificate', async () => {
    let serverSide: import('../../src/channel/channel.js').AttestedChannel | undefined;
    const server = createAttestedServer({ evidence: simulated.snp() }, (ch) => {
      serverSide = ch;
    });
    const port = await listening(server);
    const channel = await attestedConnect({ host: '127.0.0.1', port, verify });
    cleanups.push(() => {
      channel.destroy();
    });
    expect(channel.peerCertificate).toBeInstanceOf(X509Certificate);
    await new Promise((r) => setTimeout(r, 20));
    expect(serverSide?.peerCertificate).toBeUndefined();
    serverSide?.destroy();
  });
});

describe('timeout messages', () => {
  it('name the timeout that was set ("the 300 ms timeout", not "299.828845 ms" left)', async () => {
    const { createServer } = await import('node:net');
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      silent.close();
    });
    const port = (silent.address() as AddressInfo).port;
    const err = (await attestedConnect({ host: '127.0.0.1', port, verify, timeout: 300 }).catch(
      (e) => e,
    )) as AttestationError;
    expect(err.code).toBe('ERR_ATTESTATION_TIMEOUT');
    expect(err.message).toBe('TLS handshake not done within the 300 ms timeout');
  });
});
