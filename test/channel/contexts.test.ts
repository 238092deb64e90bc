/**
 * REQUEST contexts (src/channel/contexts.ts): fresh per REQUEST (protocol.md §4.2) when cut from an
 * owner's block of CSPRNG bytes, and a server's REQUESTs on different connections never share one.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ContextSource, freshContext } from '../../src/channel/contexts.js';
import { createAttestedServer } from '../../src/channel/server.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { json, rawClient } from './adversary.js';
import { closeServer, listen } from './helpers.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('ContextSource', () => {
  it('hands out 32-byte contexts that never repeat, across several CSPRNG reads', () => {
    const source = new ContextSource();
    const seen = new Set<string>();
    for (let i = 0; i < 32 * 4 + 5; i++) {
      const c = source.next();
      expect(c).toBeInstanceOf(Uint8Array);
      expect(c.length).toBe(32);
      expect(c.some((b) => b !== 0)).toBe(true);
      seen.add(hex(c));
    }
    expect(seen.size).toBe(32 * 4 + 5);
  });

  it('a context handed out is its own copy: a later refill does not change it', () => {
    const source = new ContextSource();
    const first = source.next();
    const kept = hex(first);
    for (let i = 0; i < 64; i++) source.next(); // two refills of the block
    expect(hex(first)).toBe(kept);
    expect(first.buffer.byteLength).toBe(32);
  });

  it('two sources, and the ownerless freshContext(), give unrelated contexts', () => {
    const a = new ContextSource();
    const b = new ContextSource();
    const all = [a.next(), b.next(), freshContext(), freshContext()].map(hex);
    expect(new Set(all).size).toBe(4);
  });
});

describe('a server’s REQUEST contexts', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('differ between its connections (the server keeps one source for all)', async () => {
    const verify = {
      policy: { snp: { measurements: [simulated.defaults.snpMeasurement] } },
      trustAnchors: simulated.trustAnchors(),
    };
    const server = createAttestedServer({ evidence: simulated.snp(), verify }, (c) => c.destroy());
    server.on('attestationError', () => {});
    const port = await listen(server);
    cleanups.push(() => closeServer(server));
    const contexts: string[] = [];
    for (let i = 0; i < 40; i++) {
      const peer = await rawClient(port);
      contexts.push(String(json(await peer.reader.next())['context']));
      peer.socket.destroy();
    }
    expect(contexts.every((c) => c.length === 43)).toBe(true);
    expect(new Set(contexts).size).toBe(40);
  });
});
