/**
 * Batched binders on real connections (docs/protocol.md §5.1): many exchanges served by one report
 * with the simulated SEV-SNP platform and the real verifier; a relaying attacker whose own
 * connection shares the victim's batch; one report for server- and client-role leaves; peers that
 * predate batching, both ways; tampered batched evidence; re-attestation.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  batchReportData,
  decodeBatchPath,
  encodeBatchPath,
  expectedBatchReportData,
  MERKLE_PATH_MEDIA_TYPE,
  merkleBatch,
  merkleLeaf,
} from '../../src/channel/batch.js';
import { type BatchScheduler, createBatchScheduler } from '../../src/channel/batch-scheduler.js';
import type { AttestedChannel } from '../../src/channel/channel.js';
import { encodeCmw, REPORT_MEDIA_TYPES } from '../../src/channel/cmw.js';
import { attestedConnect } from '../../src/channel/connect.js';
import {
  encodeEvidence,
  encodeRequest,
  encodeResult,
  FrameType,
  parseRequest,
} from '../../src/channel/frames.js';
import { INTERNAL } from '../../src/channel/options.js';
import { type AttestedServer, createAttestedServer } from '../../src/channel/server.js';
import { base64url, fromBase64url } from '../../src/evidence/bytes.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import type { EvidenceInput, EvidenceProvider, VerifyOptions } from '../../src/evidence/types.js';
import { reportDataOf, verifyEvidence } from '../../src/evidence/verify.js';
import { adversaryServer, binderFor, json, type RawPeer, rawClient, rawServer } from './adversary.js';
import { activeHandles, closeServer, expectNoLeaks, listen, rejectionOf } from './helpers.js';

const anchors = simulated.trustAnchors();
const verify = {
  policy: { snp: { measurements: [simulated.defaults.snpMeasurement] } },
  trustAnchors: anchors,
};
const sim = simulated.snp();

/**
 * The simulated platform behind a gate: every getEvidence waits until release(), so a test decides
 * which exchanges are waiting when a report is made (the scheduler batches whatever waits).
 */
function gated(inner: EvidenceProvider = sim) {
  const calls: Uint8Array[] = [];
  const waiting: Array<() => void> = [];
  let open = false;
  const provider: EvidenceProvider & {
    calls: Uint8Array[];
    release: () => void;
    openAll: () => void;
    readonly blocked: number;
  } = {
    format: inner.format,
    calls,
    async getEvidence(reportData: Uint8Array, options?: { signal?: AbortSignal }): Promise<EvidenceInput> {
      calls.push(reportData);
      if (!open) await new Promise<void>((r) => waiting.push(r));
      return inner.getEvidence(reportData, options);
    },
    release: () => {
      for (const w of waiting.splice(0)) w();
    },
    openAll: () => {
      open = true;
      provider.release();
    },
    get blocked() {
      return waiting.length;
    },
  };
  return provider;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (condition()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const cleanups: Array<() => Promise<void> | void> = [];
let baseline: Record<string, number>;
beforeEach(() => {
  baseline = activeHandles();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await expectNoLeaks(baseline);
});

/**
 * A server whose channels read to the end and end in turn (a channel that opens after its client
 * left would otherwise stay half-open, unread), and are destroyed at the end of the test.
 */
async function ourServer(
  options: Parameters<typeof createAttestedServer>[0],
  onChannel?: (channel: AttestedChannel) => void,
): Promise<[AttestedServer, number]> {
  const channels: AttestedChannel[] = [];
  const server = createAttestedServer(options, (c) => {
    channels.push(c);
    c.on('end', () => c.end());
    c.on('error', () => {});
    c.resume();
    onChannel?.(c);
  });
  const port = await listen(server);
  cleanups.push(() => {
    closeAll(channels);
    return closeServer(server);
  });
  return [server, port];
}

/** A raw adversary server (adversary.ts), closed after each test; `done` settles when its handler returns. */
const adversary = (onPeer: (peer: RawPeer) => Promise<void>) => adversaryServer(cleanups, onPeer);

function closeAll(channels: AttestedChannel[]): void {
  for (const c of channels) c.destroy();
}

/** Occupies the provider with one exchange (a batch of one, blocked at the gate). */
async function blocker(
  port: number,
  provider: ReturnType<typeof gated>,
): Promise<{ first: Promise<AttestedChannel> }> {
  const before = provider.calls.length;
  const first = attestedConnect({ host: '127.0.0.1', port, verify });
  await until(() => provider.calls.length === before + 1, 'the first report to be asked for');
  return { first }; // wrapped: an async function would wait for a promise it returns
}

describe('batched binders on the channel', () => {
  it('20 clients waiting while a report is made are all served by the next single report', async () => {
    const provider = gated();
    const [server, port] = await ourServer({ evidence: provider });
    const { first } = await blocker(port, provider);
    const rest = Array.from({ length: 20 }, () => attestedConnect({ host: '127.0.0.1', port, verify }));
    await until(() => server.batchScheduler?.stats().queued === 20, '20 exchanges to queue');
    provider.openAll();
    const channels = [await first, ...(await Promise.all(rest))];
    expect(provider.calls).toHaveLength(2);
    expect(server.batchScheduler?.stats()).toEqual({
      reports: 2,
      leaves: 21,
      plain: 1,
      largest: 20,
      queued: 0,
    });
    // The first was alone in its report: a plain answer, bound to its own binder.
    expect(channels[0]!.peer?.batched).toBeUndefined();
    expect(channels[0]!.peer?.reportData).toBe(Buffer.from(provider.calls[0]!).toString('hex'));
    const batched = channels.slice(1).map((c) => c.peer!.batched!);
    expect(batched.every((b) => b.size === 20)).toBe(true);
    expect(batched.map((b) => b.index).sort((a, b) => a - b)).toEqual([...Array(20).keys()]);
    // One report: the same REPORT_DATA in every claim, the one the provider was given.
    expect(new Set(channels.slice(1).map((c) => c.peer!.reportData))).toEqual(
      new Set([Buffer.from(provider.calls[1]!).toString('hex')]),
    );
    closeAll(channels);
  });

  it('maxSize splits the waiting exchanges into several reports, oldest first', async () => {
    const provider = gated();
    const [server, port] = await ourServer({ evidence: provider, batch: { maxSize: 4 } });
    const { first } = await blocker(port, provider);
    const rest = Array.from({ length: 10 }, () => attestedConnect({ host: '127.0.0.1', port, verify }));
    await until(() => server.batchScheduler?.stats().queued === 10, '10 exchanges to queue');
    provider.openAll();
    const channels = [await first, ...(await Promise.all(rest))];
    expect(provider.calls).toHaveLength(1 + 3);
    expect(
      channels
        .slice(1)
        .map((c) => c.peer!.batched!.size)
        .sort(),
    ).toEqual([2, 2, 4, 4, 4, 4, 4, 4, 4, 4]);
    closeAll(channels);
  });

  it('relay: an attacker whose own connection lands in the same batch as the victim’s still fails', async () => {
    const provider = gated();
    const [server, sPort] = await ourServer({ evidence: provider });
    const { first } = await blocker(sPort, provider);

    // The attacker M terminates the victim's TLS and asks the genuine server S, on M's own
    // connection, for evidence with the victim's context (batch: true, as the victim asked).
    let victimSocket: RawPeer | undefined;
    let victimContext: Uint8Array | undefined;
    let relayed: Record<string, unknown> | undefined;
    let sawAtVictim: unknown[] = [];
    const mitm = await adversary(async (peer) => {
      victimSocket = peer;
      const request = parseRequest((await peer.reader.next())!.payload);
      expect(request.batch).toBe(true);
      victimContext = request.context;
      peer.socket.write(encodeRequest(new Uint8Array(32).fill(0x5a), []));
      const upstream = await rawClient(sPort);
      upstream.socket.write(encodeRequest(request.context, REPORT_MEDIA_TYPES, { batch: true }));
      await upstream.reader.next(); // S's REQUEST
      relayed = json(await upstream.reader.next());
      peer.socket.write(encodeEvidence(request.context, relayed['evidence']));
      sawAtVictim = (await peer.reader.rest()).map((f) => [f.type, json(f)]);
      upstream.socket.destroy();
    });
    const victim = rejectionOf(attestedConnect({ host: '127.0.0.1', port: mitm.port, verify }));
    // Colluders (raw clients of S that share their paths with M) and the victim's own honest,
    // direct connection to S join the same batch.
    const colluders = await Promise.all(Array.from({ length: 3 }, () => rawClient(sPort)));
    cleanups.push(() => {
      for (const c of colluders) c.socket.destroy();
    });
    const contexts = colluders.map((_, i) => new Uint8Array(32).fill(0x70 + i));
    colluders.forEach((c, i) => {
      c.socket.write(encodeRequest(contexts[i]!, REPORT_MEDIA_TYPES, { batch: true }));
    });
    const direct = attestedConnect({ host: '127.0.0.1', port: sPort, verify });
    await until(
      () => server.batchScheduler?.stats().queued === 5,
      'the relay, 3 colluders and the victim to queue',
    );
    provider.openAll();

    const err = await victim;
    expect(err.code).toBe('ERR_BINDING_MISMATCH');
    await mitm.done;
    expect(sawAtVictim[0]).toEqual([
      FrameType.RESULT,
      expect.objectContaining({ ok: false, code: 'ERR_BINDING_MISMATCH' }),
    ]);
    const directChannel = await direct;
    expect(directChannel.peer?.batched?.size).toBe(5);

    // The batch was genuine: each colluder's own binder and path lead to the report's REPORT_DATA.
    const evidenceOf = async (c: RawPeer) => {
      await c.reader.next(); // S's REQUEST
      return json(await c.reader.next())['evidence'] as Record<string, [string, string]>;
    };
    const collected = await Promise.all(colluders.map(evidenceOf));
    const relayedEvidence = relayed!['evidence'] as Record<string, [string, string]>;
    const reportData = reportDataOf(fromBase64url(relayedEvidence['report']![1])!)!;
    const paths = [...collected, relayedEvidence].map((e) => decodeBatchPath(fromBase64url(e['batch']![1])!));
    expect(paths.every((p) => p.size === 5)).toBe(true);
    collected.forEach((e, i) => {
      expect(fromBase64url(e['report']![1])).toEqual(fromBase64url(relayedEvidence['report']![1]));
      const own = binderFor(colluders[i]!.socket, 'server', server.identity!.spki, contexts[i]!);
      expect(Buffer.from(expectedBatchReportData(own, paths[i]!)!).equals(Buffer.from(reportData))).toBe(
        true,
      );
    });
    // The victim's binder (M knows it: M holds the victim's TLS session) fits no path of the batch.
    const victimBinder = binderFor(victimSocket!.socket, 'server', mitm.identity.spki, victimContext!);
    for (const p of paths)
      for (let index = 0; index < p.size; index++) {
        const forged = { ...p, index, path: p.path };
        let got: Uint8Array | undefined;
        try {
          got = expectedBatchReportData(
            victimBinder,
            decodeBatchPath(encodeBatchPath(index, 5, forged.path)),
          );
        } catch {
          continue; // a path of another length does not fit this index
        }
        expect(Buffer.from(got!).equals(Buffer.from(reportData))).toBe(false);
      }
    for (const c of colluders) c.socket.destroy();
    closeAll([await first, directChannel]);
  });

  it('one report serves server- and client-role leaves (mutual, one scheduler shared by a server and a client)', async () => {
    const provider = gated();
    const shared = createBatchScheduler(provider);
    let serverSide: AttestedChannel | undefined;
    const [, port] = await ourServer({ evidence: provider, batch: shared, verify });
    const channels: AttestedChannel[] = [];
    const [, port2] = await ourServer({ evidence: provider, batch: shared, verify }, (c) => {
      serverSide = c;
    });
    // A first exchange occupies the provider (it needs a client that attests: the server verifies).
    const first = attestedConnect({ host: '127.0.0.1', port, verify, evidence: sim });
    await until(() => provider.calls.length === 1, 'the first report');
    const mutual = attestedConnect({
      host: '127.0.0.1',
      port: port2,
      verify,
      evidence: provider,
      batch: shared,
    });
    await until(() => shared.stats().queued === 2, 'both roles of the mutual connection to queue');
    provider.openAll();
    const client = await mutual;
    channels.push(await first, client);
    await until(() => serverSide !== undefined, "the server's channel");
    expect(provider.calls).toHaveLength(2);
    const ofServer = client.peer!; // the server's evidence, as the client verified it
    const ofClient = serverSide!.peer!; // the client's, as the server verified it
    expect(ofServer.batched?.size).toBe(2);
    expect(ofClient.batched?.size).toBe(2);
    expect(new Set([ofServer.batched!.index, ofClient.batched!.index])).toEqual(new Set([0, 1]));
    expect(ofServer.reportData).toBe(ofClient.reportData);
    expect(ofServer.reportData).toBe(Buffer.from(provider.calls[1]!).toString('hex'));
    closeAll(channels);
  });

  it('every format batches: TDX, Azure SEV-SNP and Azure TDX (the quote and user-data carry the batch REPORT_DATA)', async () => {
    for (const [inner, policy, format] of [
      [simulated.tdx(), { tdx: {} }, 'tdx'],
      [simulated.azure({ tee: 'snp' }), { azure: {} }, 'azure-sev-snp'],
      [simulated.azure({ tee: 'tdx' }), { azure: {} }, 'azure-tdx'],
    ] as const) {
      const provider = gated(inner);
      const [server, port] = await ourServer({ evidence: provider });
      const v = { policy, trustAnchors: anchors };
      const first = attestedConnect({ host: '127.0.0.1', port, verify: v });
      await until(() => provider.calls.length === 1, 'the first report');
      const rest = Array.from({ length: 3 }, () => attestedConnect({ host: '127.0.0.1', port, verify: v }));
      await until(() => server.batchScheduler?.stats().queued === 3, '3 exchanges to queue');
      provider.openAll();
      const channels = [await first, ...(await Promise.all(rest))];
      for (const c of channels.slice(1)) {
        expect(c.peer?.format).toBe(format);
        expect(c.peer?.batched?.size).toBe(3);
        // Azure: both bindings held on the batch REPORT_DATA (the quote's, and the HCL report's user-data).
        if (format !== 'tdx')
          expect(c.peer && 'binding' in c.peer ? c.peer.binding : undefined).toBe('report');
      }
      expect(provider.calls).toHaveLength(2);
      closeAll(channels);
    }
  });

  it('a re-attestation joins a batch too', async () => {
    const provider = gated();
    const [server, port] = await ourServer({ evidence: provider });
    const opening = attestedConnect({ host: '127.0.0.1', port, verify });
    await until(() => provider.blocked === 1, 'the first report');
    provider.release();
    const ch = await opening;
    const { first } = await blocker(port, provider);
    const again = ch.reattest();
    const other = attestedConnect({ host: '127.0.0.1', port, verify });
    await until(
      () => server.batchScheduler?.stats().queued === 2,
      'the re-attestation and a connect to queue',
    );
    provider.openAll();
    const claims = await again;
    expect(claims.batched?.size).toBe(2);
    expect((await other).peer?.batched?.size).toBe(2);
    expect(provider.calls).toHaveLength(3);
    closeAll([ch, await first, await other]);
  });
});

describe('batched binders: peers that do not batch', () => {
  it('an old attester (ignores "batch", answers a plain binder) serves a new client', async () => {
    let request: Record<string, unknown> | undefined;
    const old = await rawServer(async (peer) => {
      const frame = (await peer.reader.next())!;
      request = json(frame);
      const ctx = parseRequest(frame.payload).context;
      peer.socket.write(encodeRequest(new Uint8Array(32).fill(0x11), []));
      const input = await sim.getEvidence(binderFor(peer.socket, 'server', peer.identity.spki, ctx));
      peer.socket.write(encodeEvidence(ctx, encodeCmw(input, 'sev-snp')));
      await peer.reader.rest();
    });
    cleanups.push(old.close);
    const ch = await attestedConnect({ host: '127.0.0.1', port: old.port, verify });
    expect(request?.['batch']).toBe(true);
    expect(ch.peer?.format).toBe('sev-snp');
    expect(ch.peer?.batched).toBeUndefined();
    ch.destroy();
  });

  it('an old challenger (no "batch") gets plain evidence from a new server, bound to the plain binder', async () => {
    const [server, port] = await ourServer({ evidence: sim });
    const old = await rawClient(port);
    const ctx = new Uint8Array(32).fill(0x33);
    old.socket.write(Buffer.from(encodeRequest(ctx, REPORT_MEDIA_TYPES)));
    expect(json(await old.reader.next())['batch']).toBeUndefined(); // S's REQUEST asks nothing
    const evidence = json(await old.reader.next())['evidence'] as Record<string, [string, string]>;
    expect(Object.keys(evidence)).not.toContain('batch');
    const rd = reportDataOf(fromBase64url(evidence['report']![1])!)!;
    const expected = binderFor(old.socket, 'server', server.identity!.spki, ctx);
    expect(Buffer.from(rd).equals(Buffer.from(expected))).toBe(true);
    old.socket.write(encodeResult(ctx));
    old.socket.destroy();
  });

  it('batch: false on the client sends no "batch" and gets plain evidence; on the server it answers plainly', async () => {
    const provider = gated();
    const [server, port] = await ourServer({ evidence: provider });
    const { first } = await blocker(port, provider);
    // While a report is being made: a client with batch: false, and (positive control) two that
    // batch, which are served by one batch of two.
    const a = attestedConnect({ host: '127.0.0.1', port, verify, batch: false });
    const c = [1, 2].map(() => attestedConnect({ host: '127.0.0.1', port, verify }));
    await until(
      () => server.batchScheduler?.stats().queued === 2 && provider.calls.length === 2,
      'two exchanges to queue, and the one that does not batch to ask the provider itself',
    );
    provider.openAll();
    const plain = await a;
    expect(plain.peer?.batched).toBeUndefined();
    const batched = await Promise.all(c);
    expect(batched.map((ch) => ch.peer?.batched?.size)).toEqual([2, 2]);
    const [offServer, offPort] = await ourServer({ evidence: sim, batch: false });
    expect(offServer.batchScheduler).toBeUndefined();
    const b = await attestedConnect({ host: '127.0.0.1', port: offPort, verify });
    expect(b.peer?.batched).toBeUndefined();
    closeAll([await first, plain, b, ...batched]);
  });

  it('a "batch" record the client did not ask for is ERR_EVIDENCE_MALFORMED', async () => {
    let seen: unknown[] = [];
    const adv = await adversary(async (peer) => {
      const ctx = parseRequest((await peer.reader.next())!.payload).context;
      peer.socket.write(encodeRequest(new Uint8Array(32).fill(0x11), []));
      const binder = binderFor(peer.socket, 'server', peer.identity.spki, ctx);
      const { root } = merkleBatch([merkleLeaf(binder)]);
      const input = await sim.getEvidence(batchReportData(1, root));
      const cmw = {
        ...encodeCmw(input, 'sev-snp'),
        batch: [MERKLE_PATH_MEDIA_TYPE, base64url(encodeBatchPath(0, 1, []))],
      };
      peer.socket.write(encodeEvidence(ctx, cmw));
      seen = (await peer.reader.rest()).map((f) => json(f));
    });
    const err = await rejectionOf(
      attestedConnect({ host: '127.0.0.1', port: adv.port, verify, batch: false }),
    );
    expect(err.code).toBe('ERR_EVIDENCE_MALFORMED');
    await adv.done;
    // Refused as it is decoded, before any verification: an ALERT with the code.
    expect(seen).toEqual([expect.objectContaining({ code: 'ERR_EVIDENCE_MALFORMED' })]);
  });
});

describe('batched binders: tampered batched evidence from a hand-built attester', () => {
  /**
   * An attester that puts the client's genuine binder at `index` of a batch of `size` (the other
   * leaves random), gets one genuine simulated report for it, and lets `tamper` change the bytes.
   */
  async function tamperedAttester(
    size: number,
    index: number,
    tamper: (report: Uint8Array, record: Uint8Array) => void,
  ) {
    const adv = await rawServer(async (peer) => {
      const ctx = parseRequest((await peer.reader.next())!.payload).context;
      peer.socket.write(encodeRequest(new Uint8Array(32).fill(0x11), []));
      const binder = binderFor(peer.socket, 'server', peer.identity.spki, ctx);
      const leaves = Array.from({ length: size }, (_, i) =>
        i === index ? merkleLeaf(binder) : merkleLeaf(new Uint8Array(64).fill(i)),
      );
      const { root, paths } = merkleBatch(leaves);
      const input = await sim.getEvidence(batchReportData(size, root));
      const report = Uint8Array.from(input.report);
      const record = encodeBatchPath(index, size, paths[index]!);
      tamper(report, record);
      const cmw = {
        ...encodeCmw({ ...input, report }, 'sev-snp'),
        batch: [MERKLE_PATH_MEDIA_TYPE, base64url(record)],
      };
      peer.socket.write(encodeEvidence(ctx, cmw));
      await peer.reader.rest();
    });
    cleanups.push(adv.close);
    return attestedConnect({ host: '127.0.0.1', port: adv.port, verify });
  }

  it('positive control: untampered, the client opens with batched { index, size }', async () => {
    const ch = await tamperedAttester(6, 4, () => {});
    expect(ch.peer?.batched).toEqual({ index: 4, size: 6 });
    ch.destroy();
  });

  it('a flipped bit in the report’s REPORT_DATA, the path, the index or n is refused; in the signature too', async () => {
    type Tamper = (report: Uint8Array, record: Uint8Array) => void;
    // [what, batch size, index, tamper, code]
    const cases: Array<[string, number, number, Tamper, string]> = [
      [
        'REPORT_DATA',
        6,
        4,
        (r) => {
          r[0x50 + 17]! ^= 0x04;
        },
        'ERR_BINDING_MISMATCH',
      ],
      [
        'a path hash',
        6,
        4,
        (_, p) => {
          p[8 + 64 + 3]! ^= 0x01;
        },
        'ERR_BINDING_MISMATCH',
      ],
      [
        'index (another index with a path of the same length)',
        6,
        4,
        (_, p) => {
          p[3]! ^= 0x01;
        },
        'ERR_BINDING_MISMATCH',
      ],
      [
        'index (out of range)',
        6,
        4,
        (_, p) => {
          p[0]! ^= 0x80;
        },
        'ERR_EVIDENCE_MALFORMED',
      ],
      [
        'n (5 → 7: a path of the same length)',
        5,
        0,
        (_, p) => {
          p[7]! ^= 0x02;
        },
        'ERR_BINDING_MISMATCH',
      ],
      [
        'n (another path length)',
        6,
        4,
        (_, p) => {
          p[7]! ^= 0x01;
        },
        'ERR_EVIDENCE_MALFORMED',
      ],
      [
        'n (huge)',
        6,
        4,
        (_, p) => {
          p[4]! ^= 0x80;
        },
        'ERR_EVIDENCE_MALFORMED',
      ],
      [
        'the signature',
        6,
        4,
        (r) => {
          r[0x2a0 + 5]! ^= 0x01;
        },
        'ERR_EVIDENCE_SIGNATURE',
      ],
    ];
    for (const [what, size, index, tamper, code] of cases) {
      const err = await rejectionOf(tamperedAttester(size, index, tamper));
      expect(err.code, what).toBe(code);
    }
  });
});

describe('batched binders: checks in order', () => {
  it('a batched answer that does not fit our binder is refused before the verifier runs (no signature work)', async () => {
    for (const [tamper, calls, code] of [
      [() => {}, 1, undefined],
      [
        (_: Uint8Array, p: Uint8Array) => {
          p[8 + 5]! ^= 0x01;
        },
        0,
        'ERR_BINDING_MISMATCH',
      ],
    ] as const) {
      let verifierCalls = 0;
      const adv = await adversary(async (peer) => {
        const ctx = parseRequest((await peer.reader.next())!.payload).context;
        peer.socket.write(encodeRequest(new Uint8Array(32).fill(0x11), []));
        const binder = binderFor(peer.socket, 'server', peer.identity.spki, ctx);
        const leaves = [merkleLeaf(new Uint8Array(64)), merkleLeaf(binder)];
        const { root, paths } = merkleBatch(leaves);
        const input = await sim.getEvidence(batchReportData(2, root));
        const record = encodeBatchPath(1, 2, paths[1]!);
        tamper(input.report, record);
        const cmw = { ...encodeCmw(input, 'sev-snp'), batch: [MERKLE_PATH_MEDIA_TYPE, base64url(record)] };
        peer.socket.write(encodeEvidence(ctx, cmw));
        await peer.reader.rest();
      });
      const options = {
        host: '127.0.0.1',
        port: adv.port,
        verify,
        [INTERNAL]: {
          verifier: (input: EvidenceInput, o: VerifyOptions) => {
            verifierCalls++;
            return verifyEvidence(input, o);
          },
        },
      };
      if (code === undefined) (await attestedConnect(options)).destroy();
      else expect((await rejectionOf(attestedConnect(options))).code).toBe(code);
      expect(verifierCalls).toBe(calls);
    }
  });

  it('an attester whose provider ignores the batch REPORT_DATA fails with ERR_PROVIDER_FAILED', async () => {
    const liar: EvidenceProvider = {
      format: 'sev-snp',
      getEvidence: () => sim.getEvidence(new Uint8Array(64)),
    };
    const [server, port] = await ourServer({ evidence: liar });
    const failed = new Promise<{ code: string }>((r) => server.once('attestationError', r));
    const err = await rejectionOf(attestedConnect({ host: '127.0.0.1', port, verify }));
    expect(err.details['peerCode']).toBe('ERR_PROVIDER_FAILED');
    expect((await failed).code).toBe('ERR_PROVIDER_FAILED');
    expect(server.batchScheduler?.stats()).toMatchObject({ reports: 1, plain: 1 }); // through the scheduler
  });
});

describe('batch options', () => {
  it('are checked: maxSize 1..4096, reportsPerSecond > 0, burst ≥ 1 with a rate, no unknown keys, a scheduler of this provider', async () => {
    const bad: unknown[] = [
      { maxSize: 0 },
      { maxSize: 4097 },
      { maxSize: 1.5 },
      { reportsPerSecond: 0 },
      { reportsPerSecond: Number.POSITIVE_INFINITY },
      { burst: 2 },
      { reportsPerSecond: 1, burst: 0 },
      { max: 3 },
      true,
      null,
      createBatchScheduler(simulated.snp()),
    ];
    for (const batch of bad) {
      expect(() => createAttestedServer({ evidence: sim, batch: batch as false })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
      );
      const err = await rejectionOf(
        attestedConnect({ host: '127.0.0.1', port: 1, verify, evidence: sim, batch: batch as false }),
      );
      expect(err.code).toBe('ERR_INVALID_ARGUMENT');
    }
    expect(() => createBatchScheduler({} as EvidenceProvider)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
    const ok: BatchScheduler = createBatchScheduler(sim, { maxSize: 4096, reportsPerSecond: 0.5, burst: 10 });
    expect(ok.maxSize).toBe(4096);
    createAttestedServer({ evidence: sim, batch: ok });
  });
});
