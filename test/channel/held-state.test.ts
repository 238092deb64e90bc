/**
 * What an open channel keeps while it is held (10 000 of them in bench/channel.ts): no timer, not
 * the peer's evidence or the signal its verification ran under, no Buffer-pool slab for its ALPN
 * list, no X509 object until asked for one. Nothing here is timed.
 */
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import type { AttestedChannel } from '../../src/channel/channel.js';
import { attestedConnect } from '../../src/channel/connect.js';
import { INTERNAL } from '../../src/channel/options.js';
import { type AttestedServer, createAttestedServer } from '../../src/channel/server.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import type { EvidenceInput, VerifyOptions } from '../../src/evidence/types.js';
import { verifyEvidence } from '../../src/evidence/verify.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const anchors = simulated.trustAnchors();
const policy = { snp: { measurements: [simulated.defaults.snpMeasurement] } };

let server: AttestedServer | undefined;
const open: AttestedChannel[] = [];

afterEach(async () => {
  for (const c of open.splice(0)) c.destroy();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

async function listen(onChannel: (c: AttestedChannel) => void = () => {}): Promise<number> {
  server = createAttestedServer({ evidence: simulated.snp() }, (c) => {
    open.push(c);
    c.on('data', (d: Buffer) => c.write(d));
    onChannel(c);
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

async function collected(refs: WeakRef<object>[]): Promise<boolean> {
  // A WeakRef target lives at least until the job that made it ends; then a full GC decides.
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
    if (refs.every((r) => r.deref() === undefined)) return true;
  }
  return false;
}

describe('an open, idle channel', () => {
  it('holds no timer on either end once open and echoed (the handshake and TLS timers are cleared)', async () => {
    const port = await listen();
    const before = timeouts();
    const channels = await Promise.all(
      Array.from({ length: 4 }, () =>
        attestedConnect({ host: '127.0.0.1', port, verify: { policy, trustAnchors: anchors } }),
      ),
    );
    open.push(...channels);
    await Promise.all(
      channels.map(
        (c) =>
          new Promise<void>((resolve) => {
            c.once('data', () => resolve());
            c.write('ping');
          }),
      ),
    );
    await new Promise((r) => setImmediate(r));
    expect(open).toHaveLength(8);
    expect(timeouts()).toBeLessThanOrEqual(before);
  });

  it("keeps neither the peer's evidence nor the signal its verification ran under", async () => {
    const port = await listen();
    const refs: WeakRef<object>[] = [];
    const verifier = async (input: EvidenceInput, options: VerifyOptions) => {
      refs.push(new WeakRef(input), new WeakRef(input.report));
      if (input.vek) refs.push(new WeakRef(input.vek));
      if (options.signal) refs.push(new WeakRef(options.signal));
      return verifyEvidence(input, options);
    };
    const channel = await attestedConnect({
      host: '127.0.0.1',
      port,
      verify: { policy, trustAnchors: anchors },
      [INTERNAL]: { verifier },
    } as Parameters<typeof attestedConnect>[0]);
    open.push(channel);
    expect(refs.length).toBeGreaterThanOrEqual(3);
    expect(channel.peer?.format).toBe('sev-snp');
    expect(await collected(refs)).toBe(true);
    // Still a working channel after that.
    const echo = new Promise<string>((r) => channel.once('data', (d: Buffer) => r(d.toString())));
    channel.write('still here');
    expect(await echo).toBe('still here');
  });

  it("gives the handshake's peer certificate when asked, made from the DER it kept", async () => {
    const port = await listen();
    const channel = await attestedConnect({
      host: '127.0.0.1',
      port,
      verify: { policy, trustAnchors: anchors },
    });
    open.push(channel);
    const cert = channel.peerCertificate!;
    expect(cert.raw.equals(server!.identity!.cert)).toBe(true);
    expect(channel.peerCertificate).toBe(cert); // one object, made once
  });

  it('holds its ALPN list in a buffer of its own, not in a slab of the shared Buffer pool', async () => {
    let serverEnd: AttestedChannel | undefined;
    const port = await listen((c) => {
      serverEnd = c;
    });
    const channel = await attestedConnect({
      host: '127.0.0.1',
      port,
      verify: { policy, trustAnchors: anchors },
    });
    open.push(channel);
    while (!serverEnd) await new Promise((r) => setImmediate(r));
    for (const end of [channel, serverEnd]) {
      expect(end.socket.alpnProtocol).toBe('attested-channel/1');
      // Node's copy of the list (lib/_tls_wrap.js keeps it in _tlsOptions for the socket's life).
      const alpn = (end.socket as unknown as { _tlsOptions: { ALPNProtocols: Buffer } })._tlsOptions
        .ALPNProtocols;
      expect(alpn.toString('latin1')).toBe('\x12attested-channel/1');
      expect(alpn.buffer.byteLength).toBe(alpn.length);
    }
  });
});
