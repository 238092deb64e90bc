/**
 * reattestEvery with allowHalfOpen: a peer that ends its side can no longer answer a REQUEST. The
 * scheduled re-attestation must then end the channel with an error, not skip silently while we
 * keep sending to a peer whose attestation is growing old.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { AttestedChannel } from '../../src/channel/channel.js';
import { attestedConnect } from '../../src/channel/connect.js';
import { type AttestedServer, createAttestedServer } from '../../src/channel/server.js';
import type { AttestationError } from '../../src/errors.js';
import { closeServer, fakeProvider, fakeVerify, listen } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function halfOpenPair(onServerChannel: (ch: AttestedChannel) => void): Promise<AttestedChannel> {
  const served: AttestedChannel[] = [];
  const server: AttestedServer = createAttestedServer(
    { evidence: fakeProvider(), allowHalfOpen: true },
    (s) => {
      served.push(s);
      onServerChannel(s);
    },
  );
  const port = await listen(server);
  cleanups.push(() => closeServer(server));
  // Half-open server channels stay up after the client goes: close them so the server can close.
  cleanups.push(() => {
    for (const s of served) s.destroy();
  });
  const ch = await attestedConnect({
    host: '127.0.0.1',
    port,
    verify: {},
    // Long enough that, on a loaded machine too, the peer's end and some DATA arrive before the first one.
    reattestEvery: 500,
    allowHalfOpen: true,
    ...fakeVerify,
  });
  cleanups.push(() => void ch.destroy());
  return ch;
}

describe('reattestEvery on a half-open channel', () => {
  it('a peer that half-closed ends the channel at the next scheduled re-attestation (ERR_CONNECTION_CLOSED)', async () => {
    let received = 0;
    let serverSide: AttestedChannel | undefined;
    const ch = await halfOpenPair((s) => {
      serverSide = s;
      s.on('data', (d: Buffer) => (received += d.length));
      s.on('error', () => {});
      s.end(); // the peer stops sending, and keeps reading
    });
    ch.resume();
    await once(ch, 'end');
    expect(ch.attested).toBe(true);
    const failed = once(ch, 'error');
    // We keep writing to the half-closed peer meanwhile; it keeps reading.
    const writer = setInterval(() => {
      if (!ch.destroyed && ch.writable) ch.write(Buffer.alloc(100));
    }, 10);
    cleanups.push(() => clearInterval(writer));
    const [err] = (await Promise.race([
      failed,
      new Promise((_, reject) => setTimeout(() => reject(new Error('no error within 10 s')), 10_000)),
    ])) as [AttestationError];
    expect(err.code).toBe('ERR_CONNECTION_CLOSED');
    expect(err.message).toMatch(/scheduled re-attestation cannot run/);
    expect(err.details).toEqual({ reattest: 'not-possible' });
    expect(received).toBeGreaterThan(0);
    expect(serverSide).toBeDefined();
    expect(ch.destroyed).toBe(true);
  });

  it('positive control: a half-open channel whose peer has not ended keeps re-attesting', async () => {
    const ch = await halfOpenPair((s) => s.on('error', () => {}));
    await once(ch, 'reattested');
    await once(ch, 'reattested');
    expect(ch.destroyed).toBe(false);
  });

  it('after our own end(), a scheduled re-attestation cannot send its REQUEST: the channel ends with an error', async () => {
    const ch = await halfOpenPair((s) => {
      s.on('error', () => {});
      // The peer keeps sending to us after we ended our side.
      const t = setInterval(() => {
        if (!s.destroyed && s.writable) s.write(Buffer.alloc(10));
        else clearInterval(t);
      }, 10);
      s.on('close', () => clearInterval(t));
    });
    ch.resume();
    const failed = once(ch, 'error');
    ch.end();
    const [err] = (await Promise.race([
      failed,
      new Promise((_, reject) => setTimeout(() => reject(new Error('no error within 10 s')), 10_000)),
    ])) as [AttestationError];
    expect(err.code).toBe('ERR_CONNECTION_CLOSED');
    expect(err.message).toMatch(/this side has ended/);
  });
});
