/**
 * Which channel verifications go to the threadpool (exchange.ts: a server's, and those of a client
 * that attests too), which evidence requests tell the provider it may leave the event loop
 * (`overlap`: only a side that also verifies the peer), and that the off-thread path refuses a tampered report signature through a
 * real channel exactly as the synchronous one does, in both directions.
 */
import { once } from 'node:events';
import { connect as connectTcp } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { attestedConnect } from '../../src/channel/connect.js';
import { type AttestedServer, createAttestedServer } from '../../src/channel/server.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import type { EvidenceProvider, Verifier, VerifierCallOptions } from '../../src/evidence/types.js';
import { createVerifier } from '../../src/evidence/verifier.js';
import { closeServer, listen, nextServerError, rejectionOf } from './helpers.js';

const anchors = simulated.trustAnchors();
const policy = { snp: { measurements: [simulated.defaults.snpMeasurement] } };

let server: AttestedServer | undefined;
afterEach(async () => {
  if (server?.listening) await closeServer(server);
  server = undefined;
});

/** A Verifier that records the `offload` of each call and then verifies as the real one does. */
function recordingVerifier(): { verifier: Verifier; offloads: Array<boolean | undefined> } {
  const real = createVerifier({ trustAnchors: anchors, offline: true });
  const offloads: Array<boolean | undefined> = [];
  const verifier: Verifier = {
    verify: (input, options?: VerifierCallOptions) => {
      offloads.push(options?.offload);
      return real.verify(input, options);
    },
    stats: () => real.stats(),
    anchors: real.anchors,
  };
  return { verifier, offloads };
}

/** The simulated platform, with one bit of the report's signature `r` flipped. */
function badSignature(): EvidenceProvider {
  const sim = simulated.snp();
  return {
    format: 'sev-snp',
    async getEvidence(reportData, options) {
      const input = await sim.getEvidence(reportData, options);
      const report = Uint8Array.from(input.report);
      report[0x2a0 + 5]! ^= 0x01;
      return { ...input, report };
    },
  };
}

/** The simulated platform, recording the `overlap` of each request. */
function recordingProvider(): { provider: EvidenceProvider; overlaps: Array<boolean | undefined> } {
  const sim = simulated.snp();
  const overlaps: Array<boolean | undefined> = [];
  return {
    overlaps,
    provider: {
      format: 'sev-snp',
      getEvidence(reportData, options) {
        overlaps.push(options?.overlap);
        return sim.getEvidence(reportData, options);
      },
    },
  };
}

describe('evidence requests and the event loop (overlap)', () => {
  it('a side that also verifies asks with overlap: true; a side that only attests with false', async () => {
    for (const batch of [undefined, false] as const) {
      const s = recordingProvider();
      server = createAttestedServer(
        {
          evidence: s.provider,
          verify: { policy, trustAnchors: anchors, offline: true },
          ...(batch === false ? { batch } : {}),
        },
        (c) => c.resume(),
      );
      const c = recordingProvider();
      const mutual = await attestedConnect({
        host: '127.0.0.1',
        port: await listen(server),
        evidence: c.provider,
        verify: { policy, trustAnchors: anchors, offline: true },
        ...(batch === false ? { batch } : {}),
      });
      mutual.destroy();
      expect(c.overlaps).toEqual([true]);
      expect(s.overlaps).toEqual([true]);
      await closeServer(server);

      const o = recordingProvider();
      server = createAttestedServer({ evidence: o.provider, ...(batch === false ? { batch } : {}) }, (ch) =>
        ch.resume(),
      );
      const one = await attestedConnect({
        host: '127.0.0.1',
        port: await listen(server),
        verify: { policy, trustAnchors: anchors, offline: true },
      });
      expect(one.peer?.format).toBe('sev-snp');
      one.destroy();
      expect(o.overlaps).toEqual([false]);
      await closeServer(server);
    }
  });

  it('a one-way server asks with overlap: true while another connection is opening', async () => {
    const o = recordingProvider();
    server = createAttestedServer({ evidence: o.provider }, (ch) => ch.resume());
    const port = await listen(server);
    // A TCP connection that never starts its TLS handshake: a channel pending on the server.
    const idle = connectTcp(port, '127.0.0.1');
    await once(idle, 'connect');
    while (server.pendingCount === 0) await new Promise((r) => setImmediate(r));
    const busy = await attestedConnect({
      host: '127.0.0.1',
      port,
      verify: { policy, trustAnchors: anchors, offline: true },
    });
    busy.destroy();
    idle.destroy();
    while (server.pendingCount > 0) await new Promise((r) => setImmediate(r));
    const alone = await attestedConnect({
      host: '127.0.0.1',
      port,
      verify: { policy, trustAnchors: anchors, offline: true },
    });
    alone.destroy();
    expect(o.overlaps).toEqual([true, false]);
  });
});

describe('channel verification off the event loop', () => {
  it('a server and a mutual client offload; a client that only verifies does not', async () => {
    const s = recordingVerifier();
    server = createAttestedServer(
      { evidence: simulated.snp(), verify: { policy, verifier: s.verifier } },
      (c) => c.resume(),
    );
    const port = await listen(server);
    const c = recordingVerifier();
    const mutual = await attestedConnect({
      host: '127.0.0.1',
      port,
      evidence: simulated.snp(),
      verify: { policy, verifier: c.verifier },
    });
    expect(mutual.peer?.format).toBe('sev-snp');
    mutual.destroy();
    expect(c.offloads).toEqual([true]);
    await new Promise((r) => setImmediate(r));
    expect(s.offloads).toEqual([true]);

    const one = createAttestedServer({ evidence: simulated.snp() }, (ch) => ch.resume());
    const onePort = await listen(one);
    const v = recordingVerifier();
    const ch = await attestedConnect({
      host: '127.0.0.1',
      port: onePort,
      verify: { policy, verifier: v.verifier },
    });
    ch.destroy();
    expect(v.offloads).toEqual([false]);
    await closeServer(one);
  });

  it("a server refuses a client's report whose signature was tampered with", async () => {
    server = createAttestedServer(
      { evidence: simulated.snp(), verify: { policy, trustAnchors: anchors } },
      (c) => c.resume(),
    );
    const port = await listen(server);
    const serverError = nextServerError(server);
    const err = await rejectionOf(
      attestedConnect({
        host: '127.0.0.1',
        port,
        evidence: badSignature(),
        verify: { policy, trustAnchors: anchors },
      }),
    );
    expect(err.code).toBe('ERR_PEER_REJECTED');
    expect(err.details['peerCode']).toBe('ERR_EVIDENCE_SIGNATURE');
    expect((await serverError).code).toBe('ERR_EVIDENCE_SIGNATURE');
  });

  it("a mutual client refuses a server's report whose signature was tampered with", async () => {
    server = createAttestedServer(
      { evidence: badSignature(), verify: { policy, trustAnchors: anchors } },
      (c) => c.resume(),
    );
    const port = await listen(server);
    const err = await rejectionOf(
      attestedConnect({
        host: '127.0.0.1',
        port,
        evidence: simulated.snp(),
        verify: { policy, trustAnchors: anchors },
      }),
    );
    expect(err.code).toBe('ERR_EVIDENCE_SIGNATURE');
  });
});
