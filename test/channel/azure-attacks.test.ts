/**
 * The attacks of attacks.test.ts on Azure evidence (issue 12): the binder is in the TPM quote's
 * qualifyingData (SHA-384(binder)) and, with report binding, in the HCL report's user-data. A
 * hand-built adversary server speaks the wire format over real node:tls; a positive control
 * shows its honest path is accepted, so each refusal is the check at work.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { encodeCmw, MediaType, REPORT_MEDIA_TYPES } from '../../src/channel/cmw.js';
import { attestedConnect } from '../../src/channel/connect.js';
import { encodeRequest, FrameType } from '../../src/channel/frames.js';
import { createTlsIdentity } from '../../src/channel/identity.js';
import { INTERNAL } from '../../src/channel/options.js';
import { type AttestedServer, createAttestedServer } from '../../src/channel/server.js';
import type { Policy } from '../../src/evidence/policy.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import type { EvidenceInput, VerifyOptions } from '../../src/evidence/types.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { adversaryServer, binderFor, type Cleanups, json, rawClient, serveEvidence } from './adversary.js';
import { closeServer, listen, rejectionOf } from './helpers.js';

const trustAnchors = simulated.trustAnchors();
const sim = simulated.azure({ tee: 'snp' });
const stale = simulated.azure({ tee: 'snp', reportBinding: false, ak: undefined });
const verifyWith = (policy: Policy = { azure: {} }) => ({ policy, trustAnchors });

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function ourServer(
  options: Parameters<typeof createAttestedServer>[0],
): Promise<[AttestedServer, number]> {
  // Reads to the end and ends too, so an opened channel closes when the client ends it.
  const server = createAttestedServer(options, (ch) => {
    ch.resume();
    ch.on('end', () => ch.end());
  });
  const port = await listen(server);
  cleanups.push(() => closeServer(server));
  return [server, port];
}

/** Evidence from a genuine Azure server for `ctx`, over a connection of its own. */
async function upstreamEvidence(port: number, ctx: Uint8Array): Promise<Record<string, unknown>> {
  const upstream = await rawClient(port);
  upstream.socket.write(encodeRequest(ctx, REPORT_MEDIA_TYPES));
  await upstream.reader.next(); // its REQUEST
  const evidence = json(await upstream.reader.next())['evidence'] as Record<string, unknown>;
  upstream.socket.destroy();
  return evidence;
}

describe('Azure evidence on a channel', () => {
  it('positive control: genuine evidence bound to this connection and key opens, binding "report"', async () => {
    let seen: unknown[] = [];
    const adv = await adversaryServer(cleanups, async (peer) => {
      seen = await serveEvidence(peer, async (ctx) =>
        encodeCmw(
          await sim.getEvidence(binderFor(peer.socket, 'server', peer.identity.spki, ctx)),
          sim.format,
        ),
      );
    });
    const ch = await attestedConnect({ host: '127.0.0.1', port: adv.port, verify: verifyWith() });
    expect(ch.peer?.format).toBe('azure-sev-snp');
    expect(ch.peer && 'binding' in ch.peer ? ch.peer.binding : undefined).toBe('report');
    ch.end();
    await adv.done;
    expect(seen[0]).toEqual([FrameType.RESULT, expect.objectContaining({ ok: true })]);
  });

  it('our server with simulated.azure(): both TEEs open, binding "report"; a boot-time report gives "tpm-quote"', async () => {
    for (const [provider, format, binding] of [
      [sim, 'azure-sev-snp', 'report'],
      [simulated.azure({ tee: 'tdx' }), 'azure-tdx', 'report'],
      [stale, 'azure-sev-snp', 'tpm-quote'],
    ] as const) {
      const [, port] = await ourServer({ evidence: provider });
      const ch = await attestedConnect({ host: '127.0.0.1', port, verify: verifyWith() });
      expect(ch.peer?.format).toBe(format);
      expect(ch.peer && 'binding' in ch.peer ? ch.peer.binding : undefined).toBe(binding);
      ch.end();
    }
  });

  it('a stale HCL report (user-data not the binder) is refused when azure.requireReportBinding', async () => {
    const [, port] = await ourServer({ evidence: stale });
    const err = await rejectionOf(
      attestedConnect({
        host: '127.0.0.1',
        port,
        verify: verifyWith({ azure: { requireReportBinding: true } }),
      }),
    );
    expect(err.code).toBe('ERR_BINDING_MISMATCH');
    expect(err.details.field).toBe('azure.requireReportBinding');
  });

  it('relay: evidence from another live connection is ERR_BINDING_MISMATCH', async () => {
    const [, sPort] = await ourServer({ evidence: sim });
    let seen: unknown[] = [];
    const adv = await adversaryServer(cleanups, async (peer) => {
      seen = await serveEvidence(peer, (ctx) => upstreamEvidence(sPort, ctx));
    });
    const err = await rejectionOf(
      attestedConnect({ host: '127.0.0.1', port: adv.port, verify: verifyWith() }),
    );
    expect(err.code).toBe('ERR_BINDING_MISMATCH');
    await adv.done;
    expect(seen).toContainEqual([FrameType.ALERT, expect.objectContaining({ code: 'ERR_BINDING_MISMATCH' })]);
  });

  it('relayed evidence is refused from the quote bytes, before the verifier runs', async () => {
    const [, sPort] = await ourServer({ evidence: sim });
    const adv = await adversaryServer(cleanups, async (peer) => {
      await serveEvidence(peer, (ctx) => upstreamEvidence(sPort, ctx));
    });
    let verifierCalls = 0;
    const err = await rejectionOf(
      attestedConnect({
        host: '127.0.0.1',
        port: adv.port,
        verify: verifyWith(),
        [INTERNAL]: {
          verifier: (input: EvidenceInput, options: VerifyOptions) => {
            verifierCalls++;
            return verifyEvidence(input, options);
          },
        },
      } as never),
    );
    expect(err.code).toBe('ERR_BINDING_MISMATCH');
    expect(verifierCalls).toBe(0);
  });

  it('replay: evidence recorded on an old connection is ERR_BINDING_MISMATCH', async () => {
    const [, sPort] = await ourServer({ evidence: sim });
    const recorded = await upstreamEvidence(sPort, new Uint8Array(32).fill(1));
    const adv = await adversaryServer(cleanups, async (peer) => {
      await serveEvidence(peer, async () => recorded);
    });
    const err = await rejectionOf(
      attestedConnect({ host: '127.0.0.1', port: adv.port, verify: verifyWith() }),
    );
    expect(err.code).toBe('ERR_BINDING_MISMATCH');
  });

  it('key substitution: genuine evidence for this connection but another TLS key is ERR_BINDING_MISMATCH', async () => {
    const teeKey = createTlsIdentity();
    const adv = await adversaryServer(cleanups, async (peer) => {
      await serveEvidence(peer, async (ctx) =>
        encodeCmw(await sim.getEvidence(binderFor(peer.socket, 'server', teeKey.spki, ctx)), sim.format),
      );
    });
    const err = await rejectionOf(
      attestedConnect({ host: '127.0.0.1', port: adv.port, verify: verifyWith() }),
    );
    expect(err.code).toBe('ERR_BINDING_MISMATCH');
  });

  it('an HCL report bound to this connection with an old quote of the same AK is ERR_BINDING_MISMATCH', async () => {
    // Report binding alone is not enough: the PCRs appraised must be those of a fresh quote.
    const adv = await adversaryServer(cleanups, async (peer) => {
      await serveEvidence(peer, async (ctx) => {
        const fresh = encodeCmw(
          await sim.getEvidence(binderFor(peer.socket, 'server', peer.identity.spki, ctx)),
          sim.format,
        );
        const old = encodeCmw(await sim.getEvidence(new Uint8Array(64).fill(3)), sim.format);
        return { ...fresh, 'tpm-quote': old['tpm-quote'], 'tpm-signature': old['tpm-signature'] };
      });
    });
    const err = await rejectionOf(
      attestedConnect({ host: '127.0.0.1', port: adv.port, verify: verifyWith() }),
    );
    expect(err.code).toBe('ERR_BINDING_MISMATCH');
  });

  it('our server refuses to send Azure evidence its provider did not bind to this connection', async () => {
    // A provider that ignores the binder it is given: the quote carries another one.
    const unbound = { format: sim.format, getEvidence: () => sim.getEvidence(new Uint8Array(64).fill(7)) };
    const [server, port] = await ourServer({ evidence: unbound });
    const failed = new Promise<{ code: string }>((resolve) => server.once('attestationError', resolve));
    const err = await rejectionOf(attestedConnect({ host: '127.0.0.1', port, verify: verifyWith() }));
    expect(err.code).toBe('ERR_PEER_REJECTED');
    expect((await failed).code).toBe('ERR_PROVIDER_FAILED');
  });

  it('a policy without an azure section does not offer the HCL media type and refuses Azure evidence', async () => {
    const [, port] = await ourServer({ evidence: sim });
    const err = await rejectionOf(
      attestedConnect({
        host: '127.0.0.1',
        port,
        verify: verifyWith({ snp: { measurements: [simulated.defaults.snpMeasurement] } }),
      }),
    );
    expect(err.code).toBe('ERR_PEER_REJECTED');
    expect(err.details.peerCode).toBe('ERR_UNSUPPORTED_EVIDENCE');
    expect(REPORT_MEDIA_TYPES).toContain(MediaType.AZURE_HCL_REPORT);
  });
});
