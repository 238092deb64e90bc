/**
 * The bench's mutual floor (bench/mutual-floor.ts) does the exchange it claims: over real node:tls
 * with a client certificate, each connection carries both sides' REQUEST, EVIDENCE and RESULT and
 * opens only after both sides' signature work. It loads the build (dist/), as the benches do.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mutualFloor } from '../bench/mutual-floor.js';
import { createTlsIdentity } from '../dist/channel/identity.js';

describe('bench mutual floor', () => {
  let floor: Awaited<ReturnType<typeof mutualFloor>>;
  const server = createTlsIdentity();
  const client = createTlsIdentity();
  beforeAll(async () => {
    floor = await mutualFloor(server, client);
    await new Promise<void>((r) => floor.server.listen(0, '127.0.0.1', r));
  });
  afterAll(() => new Promise<void>((r) => floor.server.close(() => r())));

  it('opens connections that carried the whole exchange both ways, with the client certificate', async () => {
    const port = (floor.server.address() as AddressInfo).port;
    const peers: Buffer[] = [];
    floor.server.on('secureConnection', (s) => {
      const cert = s.getPeerX509Certificate();
      if (cert) peers.push(cert.raw);
    });
    for (let i = 0; i < 3; i++) {
      const s = await floor.connect(port);
      // Two REQUESTs, two ~9.8 KB EVIDENCE frames and two RESULTs went through this connection.
      expect(s.bytesWritten).toBeGreaterThan(9_000);
      expect(s.bytesRead).toBeGreaterThan(9_000);
      expect(Buffer.from(s.getPeerX509Certificate()!.raw).equals(Buffer.from(server.cert))).toBe(true);
      s.destroy();
      await once(s, 'close');
    }
    expect(peers.length).toBe(3);
    for (const p of peers) expect(p.equals(Buffer.from(client.cert))).toBe(true);
  });
});
