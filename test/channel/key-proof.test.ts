/**
 * Key-continuity proofs (docs/protocol.md §4.7) end to end over loopback TCP, with the simulated
 * SEV-SNP platform and a real Verifier: a returning client whose policy allows reuse gets a
 * signature by the server's TLS key over this connection instead of a new report, and every way a
 * proof can be wrong, late or unbacked is refused. Hand-built peers (adversary.ts) play the
 * attacker: one that holds the server's key (what reuse concedes) but replays or mis-signs, and a
 * relay with a key of its own.
 */
import { createHash, randomBytes, sign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { exportBinderSecret } from '../../src/channel/binder.js';
import type { AttestedChannel } from '../../src/channel/channel.js';
import { attestedConnect } from '../../src/channel/connect.js';
import { encodeResult, FrameType } from '../../src/channel/frames.js';
import { createTlsIdentity, type TlsIdentity } from '../../src/channel/identity.js';
import { proofKeyOf } from '../../src/channel/key-proof.js';
import { type AttestedServer, createAttestedServer } from '../../src/channel/server.js';
import { base64url, fromBase64url } from '../../src/evidence/bytes.js';
import type { Policy } from '../../src/evidence/policy.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { evidenceMemoryOf } from '../../src/evidence/reuse.js';
import type { EvidenceInput, EvidenceProvider, Verifier } from '../../src/evidence/types.js';
import { createVerifier } from '../../src/evidence/verifier.js';
import { parseCertificate } from '../../src/evidence/x509/cert.js';
import { json, rawClient, rawServer } from './adversary.js';
import {
  closeServer,
  countingProvider,
  FAKE_MEASUREMENT,
  fakeReport,
  fakeVerify,
  listen,
  rejectionOf,
} from './helpers.js';

const anchors = simulated.trustAnchors();
const CHIP = 'c1'.repeat(64);
const SNP_TYPE = 'application/vnd.amd.sev-snp.report';
const T0 = new Date();
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

function policy(extra: Record<string, unknown> = {}, maxEvidenceAge = 300): Policy {
  return {
    snp: { measurements: [simulated.defaults.snpMeasurement], chipIds: [CHIP], ...extra },
    reuse: { maxEvidenceAge },
  };
}

function echo(ch: AttestedChannel): void {
  ch.on('data', (d) => ch.write(d));
  ch.on('end', () => ch.end());
  ch.on('error', () => {});
}

async function roundTrip(ch: AttestedChannel, text: string): Promise<string> {
  ch.write(text);
  return new Promise<string>((r) => ch.once('data', (d) => r(String(d))));
}

async function done(ch: AttestedChannel): Promise<void> {
  ch.end();
  if (!ch.destroyed) await new Promise((r) => ch.once('close', r));
}

const servers: AttestedServer[] = [];
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of servers.splice(0)) if (s.listening) await closeServer(s);
  for (const c of closers.splice(0)) await c();
});

async function serve(
  options: { identity?: TlsIdentity; keyProof?: boolean } = {},
): Promise<{ port: number; provider: EvidenceProvider & { reports: number }; identity: TlsIdentity }> {
  const provider = countingProvider(simulated.snp({ chipId: CHIP, product: 'Genoa' }));
  const identity = options.identity ?? createTlsIdentity();
  const server = createAttestedServer(
    {
      evidence: provider,
      identity,
      ...(options.keyProof === undefined ? {} : { keyProof: options.keyProof }),
    },
    echo,
  );
  servers.push(server);
  return { port: await listen(server), provider, identity };
}

/** `now` undefined: the wall clock at each step, as without an injected clock. */
function connect(port: number, verifier: Verifier, now: Date | undefined, pol: Policy = policy()) {
  return attestedConnect({
    host: '127.0.0.1',
    port,
    verify: { verifier, policy: pol, ...(now ? { now } : {}) },
  });
}

describe('key-continuity proof with the simulated SNP platform', () => {
  it('a returning client within maxEvidenceAge gets a key proof: no new report, reused, its age', async () => {
    const { port, provider } = await serve();
    const verifier = createVerifier({ trustAnchors: anchors });
    const first = await connect(port, verifier, T0);
    expect(first.peer).toMatchObject({ format: 'sev-snp', reused: false, evidenceAge: 0, chipId: CHIP });
    await done(first);
    expect(verifier.stats()['reuse.evidence']!.size).toBe(1);
    const second = await connect(port, verifier, at(100));
    expect(provider.reports).toBe(1);
    expect(second.peer).toMatchObject({ format: 'sev-snp', reused: true, chipId: CHIP });
    expect(second.peer!.evidenceAge).toBeGreaterThanOrEqual(100);
    expect(second.peer!.evidenceAge).toBeLessThan(101);
    expect(await roundTrip(second, 'ping')).toBe('ping');
    // Re-attestation always brings a new report, and its claims are not reused.
    const fresh = await second.reattest();
    expect(provider.reports).toBe(2);
    expect(fresh).toMatchObject({ reused: false, evidenceAge: 0 });
    expect(second.peer?.reused).toBe(false);
    await done(second);
  });

  it('after maxEvidenceAge the client lists nothing and the server attests afresh', async () => {
    const { port, provider } = await serve();
    const verifier = createVerifier({ trustAnchors: anchors });
    await done(await connect(port, verifier, T0));
    const late = await connect(port, verifier, at(301));
    expect(late.peer).toMatchObject({ reused: false, evidenceAge: 0 });
    expect(provider.reports).toBe(2);
    await done(late);
  });

  it('a policy off (maxEvidenceAge 0) or a client clock before the evidence: new evidence', async () => {
    const { port, provider } = await serve();
    const verifier = createVerifier({ trustAnchors: anchors });
    await done(await connect(port, verifier, T0));
    const off = await connect(port, verifier, at(10), policy({}, 0));
    expect(off.peer?.reused).toBe(false);
    await done(off);
    const before = await connect(port, verifier, at(-10));
    expect(before.peer?.reused).toBe(false);
    expect(provider.reports).toBe(3);
    await done(before);
  });

  it('the cached evidence is appraised again under the current policy: a changed policy refuses it', async () => {
    const { port, provider } = await serve();
    const verifier = createVerifier({ trustAnchors: anchors });
    await done(await connect(port, verifier, T0));
    // Same chip, but the measurement it allows is no longer the guest's.
    const stricter = policy({ measurements: ['ee'.repeat(48)] });
    const err = await rejectionOf(connect(port, verifier, at(10), stricter));
    expect(err.code).toBe('ERR_EVIDENCE_POLICY');
    expect(provider.reports).toBe(1); // refused on the key-proof path, not on new evidence
    // What no longer passed is forgotten: the next connection brings new evidence.
    expect(verifier.stats()['reuse.evidence']!.size).toBe(0);
    const next = await connect(port, verifier, at(20));
    expect(next.peer?.reused).toBe(false);
    expect(provider.reports).toBe(2);
    await done(next);
  });

  it('a policy that no longer lists the chip refuses the cached evidence', async () => {
    const { port } = await serve();
    const verifier = createVerifier({ trustAnchors: anchors });
    await done(await connect(port, verifier, T0));
    const otherChip = policy({ chipIds: ['c2'.repeat(64)] });
    expect((await rejectionOf(connect(port, verifier, at(10), otherChip))).code).toBe('ERR_EVIDENCE_POLICY');
  });

  describe('with a KDS on 127.0.0.1 whose CRL changes', () => {
    let kds: Server;
    let baseUrl: string;
    let crl: Uint8Array;
    beforeAll(async () => {
      kds = createServer((req, res) => {
        const hit = req.url === '/vcek/v1/Genoa/crl';
        // max-age=0: the Verifier's KDS client fetches the CRL again for every verification.
        res.writeHead(hit ? 200 : 404, {
          'content-type': 'application/pkix-crl',
          'cache-control': 'max-age=0',
        });
        res.end(hit ? Buffer.from(crl) : undefined);
      });
      await new Promise<void>((resolve) => kds.listen(0, '127.0.0.1', resolve));
      baseUrl = `http://127.0.0.1:${(kds.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise((resolve) => kds.close(resolve));
    });

    it('collateral revoked since the evidence was verified: the key proof is refused', async () => {
      const { port, provider } = await serve();
      const verifier = createVerifier({ trustAnchors: anchors, kds: { baseUrl, retries: 0 } });
      const pol = policy({ requireCrl: true });
      crl = simulated.amdCrl({ product: 'Genoa' });
      await done(await connect(port, verifier, T0, pol));
      const clean = await connect(port, verifier, at(5), pol);
      expect(clean.peer?.reused).toBe(true);
      await done(clean);
      const askSerial = Buffer.from(parseCertificate(simulated.amdChain('Genoa').ask).serialHex, 'hex');
      crl = simulated.amdCrl({ product: 'Genoa', revoked: [askSerial] });
      const err = await rejectionOf(connect(port, verifier, at(10), pol));
      expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
      expect(err.message).toMatch(/revoked/);
      expect(provider.reports).toBe(1);
    });
  });

  it('an attester with keyProof: false (as an old peer, which ignores known) sends new evidence', async () => {
    const { port, provider } = await serve({ keyProof: false });
    const verifier = createVerifier({ trustAnchors: anchors });
    await done(await connect(port, verifier, T0));
    const again = await connect(port, verifier, at(10));
    expect(again.peer?.reused).toBe(false);
    expect(provider.reports).toBe(2);
    await done(again);
  });

  it('a client without reuse (an old verifier) gets evidence from a server that answers key proofs', async () => {
    const { port, provider } = await serve();
    const ch = await attestedConnect({
      host: '127.0.0.1',
      port,
      verify: { trustAnchors: anchors, policy: { snp: { chipIds: [CHIP] } } },
    });
    expect(ch.peer?.reused).toBe(false);
    expect(provider.reports).toBe(1);
    await done(ch);
  });

  it('evidence over 64 KiB is verified but not remembered (the memory stays bounded)', async () => {
    const sized = (chainLength: number): EvidenceProvider => ({
      format: 'sev-snp',
      async getEvidence(reportData: Uint8Array): Promise<EvidenceInput> {
        // PEM armour around filler: the fake verifier reads only the report.
        const pem = `-----BEGIN CERTIFICATE-----\n${'A'.repeat(chainLength)}\n-----END CERTIFICATE-----\n`;
        // A VEK-shaped filler (one DER SEQUENCE of 4 KiB) too: each record stays under its own cap.
        const vek = new Uint8Array(4096);
        vek.set([0x30, 0x82, 0x0f, 0xfc]);
        return { report: fakeReport(reportData), vek, chain: pem };
      },
    });
    for (const [chainLength, kept] of [
      [50_000, 1],
      [62_000, 0],
    ] as const) {
      const server = createAttestedServer({ evidence: sized(chainLength) }, echo);
      servers.push(server);
      const port = await listen(server);
      const verifier = createVerifier();
      const ch = await attestedConnect({
        host: '127.0.0.1',
        port,
        verify: { verifier, policy: policy({ measurements: [FAKE_MEASUREMENT] }) },
        ...fakeVerify,
      });
      expect(ch.peer?.reused).toBe(false);
      expect(verifier.stats()['reuse.evidence']!.size).toBe(kept);
      await done(ch);
    }
  });

  it('reuse needs a Verifier to remember the evidence; keyProof must be a boolean', async () => {
    await expect(
      attestedConnect({ host: '127.0.0.1', port: 1, verify: { trustAnchors: anchors, policy: policy() } }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    expect(() =>
      createAttestedServer({ evidence: simulated.snp(), keyProof: 'yes' as unknown as boolean }),
    ).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });
});

/** The key proof an honest holder of `identity` makes on `socket` (computed here, independently). */
function proofBy(
  identity: TlsIdentity,
  socket: import('node:tls').TLSSocket,
  context: Uint8Array,
  digest: Uint8Array,
  tweak: { role?: string; spki?: Uint8Array; exporter?: Uint8Array; signed?: Uint8Array } = {},
): Uint8Array {
  const exporter = tweak.exporter ?? exportBinderSecret(socket, 'server', context);
  const input = Buffer.concat([
    Buffer.from('attested-channel/1 key-proof'),
    Buffer.of(0),
    Buffer.from(tweak.role ?? 'server'),
    Buffer.of(0),
    createHash('sha256')
      .update(tweak.spki ?? identity.spki)
      .digest(),
    tweak.signed ?? digest,
    exporter,
  ]);
  return new Uint8Array(sign('sha256', input, { key: identity.key, dsaEncoding: 'ieee-p1363' }));
}

/** One control frame, encoded here from §3 (type, u32be length, JSON). */
function frameOf(type: number, value: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(value));
  const out = Buffer.alloc(5 + body.length);
  out[0] = type;
  out.writeUInt32BE(body.length, 1);
  body.copy(out, 5);
  return out;
}

type ProofAnswer = (
  req: { context: Uint8Array; known: Uint8Array[] | undefined },
  socket: import('node:tls').TLSSocket,
) => { known: Uint8Array; proof: Uint8Array };

/**
 * A hand-built server with `identity` that answers the client's REQUEST with the key proof
 * `answer` makes; it records each REQUEST it saw.
 */
async function proofServer(identity: TlsIdentity, answer: ProofAnswer, delayMs = 0) {
  const requests: Array<Record<string, unknown>> = [];
  const raw = await rawServer(
    async ({ socket, reader }) => {
      socket.write(frameOf(FrameType.REQUEST, { v: 1, context: base64url(randomBytes(32)), accept: [] }));
      const frame = await reader.next();
      const req = json(frame);
      requests.push(req);
      const context = fromBase64url(req.context as string)!;
      const known = Array.isArray(req.known) ? req.known.map((k) => fromBase64url(k as string)!) : undefined;
      const { known: digest, proof } = answer({ context, known }, socket);
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      socket.write(
        frameOf(FrameType.EVIDENCE, {
          context: req.context,
          known: base64url(digest),
          proof: base64url(proof),
        }),
      );
      const result = await reader.next();
      if (result?.type === FrameType.RESULT) socket.end();
    },
    { identity },
  );
  closers.push(raw.close);
  return { port: raw.port, requests };
}

describe('key proofs from a hand-built peer', () => {
  /** A Verifier that verified the simulated server of `identity` once, at T0. */
  async function primed(identity: TlsIdentity): Promise<{ verifier: Verifier; digest: Uint8Array }> {
    const { port } = await serve({ identity });
    const verifier = createVerifier({ trustAnchors: anchors });
    await done(await connect(port, verifier, T0));
    const key = createHash('sha256').update(identity.spki).digest('hex');
    const entry = evidenceMemoryOf(verifier)!.get(key)!;
    expect(entry.digest).toEqual(new Uint8Array(createHash('sha256').update(entry.input.report).digest()));
    return { verifier, digest: entry.digest };
  }

  it('a proof computed from docs/protocol.md by the holder of the key is accepted', async () => {
    const identity = createTlsIdentity();
    const { verifier, digest } = await primed(identity);
    const raw = await proofServer(identity, (req, socket) => ({
      known: req.known![0]!,
      proof: proofBy(identity, socket, req.context, req.known![0]!),
    }));
    const ch = await connect(raw.port, verifier, at(30));
    expect(ch.peer).toMatchObject({ reused: true, chipId: CHIP });
    expect(raw.requests[0]!.known).toEqual([base64url(digest)]);
    ch.destroy();
  });

  it('evidence that reaches maxEvidenceAge while the proof is on its way is refused (wall clock)', async () => {
    const identity = createTlsIdentity();
    const { port } = await serve({ identity });
    const verifier = createVerifier({ trustAnchors: anchors });
    const pol = policy({}, 1);
    await done(await connect(port, verifier, undefined, pol));
    // Offered at once (well within 1 s), answered after 1.2 s: too old when it arrives.
    const raw = await proofServer(
      identity,
      (req, socket) => ({
        known: req.known![0]!,
        proof: proofBy(identity, socket, req.context, req.known![0]!),
      }),
      1200,
    );
    const err = await rejectionOf(connect(raw.port, verifier, undefined, pol));
    expect(raw.requests[0]).toHaveProperty('known');
    expect(err.code).toBe('ERR_EVIDENCE_POLICY');
    expect(err.details).toMatchObject({ field: 'reuse.maxEvidenceAge' });
    expect(verifier.stats()['reuse.evidence']!.size).toBe(0);
  });

  it('a proof replayed from another connection is refused (the exporter differs)', async () => {
    const identity = createTlsIdentity();
    const { verifier } = await primed(identity);
    let captured: { known: Uint8Array; proof: Uint8Array } | undefined;
    const raw = await proofServer(identity, (req, socket) => {
      captured ??= { known: req.known![0]!, proof: proofBy(identity, socket, req.context, req.known![0]!) };
      return captured;
    });
    const first = await connect(raw.port, verifier, at(30));
    expect(first.peer?.reused).toBe(true);
    first.destroy();
    const err = await rejectionOf(connect(raw.port, verifier, at(31)));
    expect(err.code).toBe('ERR_BINDING_MISMATCH');
  });

  it('a proof over another exchange of the same connection (another context) is refused', async () => {
    const identity = createTlsIdentity();
    const { verifier } = await primed(identity);
    const raw = await proofServer(identity, (req, socket) => ({
      known: req.known![0]!,
      proof: proofBy(identity, socket, req.context, req.known![0]!, {
        exporter: exportBinderSecret(socket, 'server', randomBytes(32)),
      }),
    }));
    expect((await rejectionOf(connect(raw.port, verifier, at(30)))).code).toBe('ERR_BINDING_MISMATCH');
  });

  it.each([
    ['the client role', { role: 'client' }],
    ['the SPKI of another key', { spki: createTlsIdentity().spki }],
    ['another report digest than the one it names', { signed: new Uint8Array(32).fill(7) }],
  ] as const)('a proof signed over %s is refused', async (_what, tweak) => {
    const identity = createTlsIdentity();
    const { verifier } = await primed(identity);
    const raw = await proofServer(identity, (req, socket) => ({
      known: req.known![0]!,
      proof: proofBy(identity, socket, req.context, req.known![0]!, tweak),
    }));
    expect((await rejectionOf(connect(raw.port, verifier, at(30)))).code).toBe('ERR_BINDING_MISMATCH');
  });

  it('a proof with one bit flipped is refused', async () => {
    const identity = createTlsIdentity();
    const { verifier } = await primed(identity);
    const raw = await proofServer(identity, (req, socket) => {
      const proof = proofBy(identity, socket, req.context, req.known![0]!);
      proof[10]! ^= 0x01;
      return { known: req.known![0]!, proof };
    });
    expect((await rejectionOf(connect(raw.port, verifier, at(30)))).code).toBe('ERR_BINDING_MISMATCH');
  });

  it('after an accepted proof the peer key is kept with the evidence; a flipped proof is still refused', async () => {
    const identity = createTlsIdentity();
    const { verifier } = await primed(identity);
    let n = 0;
    const raw = await proofServer(identity, (req, socket) => {
      const proof = proofBy(identity, socket, req.context, req.known![0]!);
      if (n++ > 0) proof[10]! ^= 0x01;
      return { known: req.known![0]!, proof };
    });
    const first = await connect(raw.port, verifier, at(30));
    expect(first.peer?.reused).toBe(true);
    first.destroy();
    const entry = evidenceMemoryOf(verifier)!.get(createHash('sha256').update(identity.spki).digest('hex'))!;
    expect(entry.proofKey?.spki).toEqual(identity.spki);
    expect((await rejectionOf(connect(raw.port, verifier, at(31)))).code).toBe('ERR_BINDING_MISMATCH');
  });

  it('a peer key kept with remembered evidence serves only the SPKI it was made from', async () => {
    const identity = createTlsIdentity();
    const { verifier } = await primed(identity);
    const entry = evidenceMemoryOf(verifier)!.get(createHash('sha256').update(identity.spki).digest('hex'))!;
    const other = createTlsIdentity();
    entry.proofKey = proofKeyOf(other.spki);
    // Signed by the other key, over this connection and this server's SPKI.
    const raw = await proofServer(identity, (req, socket) => ({
      known: req.known![0]!,
      proof: proofBy(
        { spki: identity.spki, key: other.key } as TlsIdentity,
        socket,
        req.context,
        req.known![0]!,
      ),
    }));
    expect((await rejectionOf(connect(raw.port, verifier, at(30)))).code).toBe('ERR_BINDING_MISMATCH');
    expect(entry.proofKey?.spki).toEqual(identity.spki);
  });

  it('a proof for a digest the client did not list is refused', async () => {
    const identity = createTlsIdentity();
    const { verifier } = await primed(identity);
    const other = new Uint8Array(32).fill(9);
    const raw = await proofServer(identity, (req, socket) => ({
      known: other,
      proof: proofBy(identity, socket, req.context, other),
    }));
    const err = await rejectionOf(connect(raw.port, verifier, at(30)));
    expect(err.code).toBe('ERR_PROTOCOL');
    expect(err.message).toMatch(/did not list/);
  });

  it('a relay with a TLS key of its own gets no known from the client, and its proof is refused', async () => {
    const identity = createTlsIdentity();
    const { verifier, digest } = await primed(identity);
    const relayKey = createTlsIdentity();
    const raw = await proofServer(relayKey, (req, socket) => ({
      known: digest,
      proof: proofBy(relayKey, socket, req.context, digest),
    }));
    const err = await rejectionOf(connect(raw.port, verifier, at(30)));
    expect(raw.requests[0]).not.toHaveProperty('known');
    expect(err.code).toBe('ERR_PROTOCOL');
    expect(err.message).toMatch(/listed no known/);
  });
});

describe('the attester side, from a hand-built client', () => {
  async function request(
    peer: Awaited<ReturnType<typeof rawClient>>,
    context: Uint8Array,
    known?: Uint8Array[],
  ): Promise<Record<string, unknown>> {
    peer.socket.write(
      frameOf(FrameType.REQUEST, {
        v: 1,
        context: base64url(context),
        accept: [SNP_TYPE],
        ...(known ? { known: known.map(base64url) } : {}),
      }),
    );
    for (;;) {
      const f = await peer.reader.next();
      if (!f) throw new Error('closed');
      if (f.type === FrameType.REQUEST) continue; // the server's own (it verifies nothing)
      return { type: f.type, ...json(f) };
    }
  }

  it('answers a proof only for a report it produced for its key; anything else gets evidence', async () => {
    const { port, identity } = await serve();
    const a = await rawClient(port);
    const ev = await request(a, randomBytes(32), [new Uint8Array(32).fill(3)]);
    expect(ev.type).toBe(FrameType.EVIDENCE);
    expect(ev).toHaveProperty('evidence');
    expect(ev).not.toHaveProperty('proof');
    a.socket.destroy();
    const report = fromBase64url(
      ((ev.evidence as Record<string, [string, string]>).report as [string, string])[1],
    )!;
    const digest = new Uint8Array(createHash('sha256').update(report).digest());
    const b = await rawClient(port);
    const context = randomBytes(32);
    const answer = await request(b, context, [new Uint8Array(32).fill(4), digest]);
    expect(answer).not.toHaveProperty('evidence');
    expect(answer.known).toBe(base64url(digest));
    // The proof verifies as docs/protocol.md §4.7 says, recomputed here.
    const expected = Buffer.concat([
      Buffer.from('attested-channel/1 key-proof\0server\0'),
      createHash('sha256').update(identity.spki).digest(),
      digest,
      exportBinderSecret(b.socket, 'server', context),
    ]);
    const { verify, createPublicKey } = await import('node:crypto');
    const key = createPublicKey({ key: Buffer.from(identity.spki), format: 'der', type: 'spki' });
    expect(
      verify('sha256', expected, { key, dsaEncoding: 'ieee-p1363' }, fromBase64url(answer.proof as string)!),
    ).toBe(true);
    b.socket.destroy();
  });

  it('a re-attestation REQUEST that lists known reports is ERR_PROTOCOL', async () => {
    const { port } = await serve();
    const peer = await rawClient(port);
    const context = randomBytes(32);
    const ev = await request(peer, context);
    expect(ev.type).toBe(FrameType.EVIDENCE);
    peer.socket.write(encodeResult(context));
    const again = await request(peer, randomBytes(32), [new Uint8Array(32).fill(5)]);
    expect(again.type).toBe(FrameType.ALERT);
    expect(again.code).toBe('ERR_PROTOCOL');
    expect(again.reason).toMatch(/re-attestation/);
    peer.socket.destroy();
  });
});
