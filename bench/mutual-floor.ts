/**
 * The mutual exchange at its floor on node:tls, for the channel section's mutual rows: what any
 * implementation of docs/protocol.md §4 with both sides attesting does at least, with none of the
 * library's machinery (no frame decoder, session, CMW decoding, chain lookup, policy or verifier).
 *
 * - TLS 1.3 with a client certificate (the client's context kept, as `identity` keeps it);
 * - the exchange's bytes in the protocol's order, made once by the library's own encoders: each
 *   side's REQUEST, then its EVIDENCE (a real simulated SEV-SNP report with its VCEK and chain,
 *   ~9.8 KB), then its RESULT;
 * - per side, the exporter and binder of its own evidence when the peer's REQUEST is in, and of the
 *   peer's when the peer's EVIDENCE is in;
 * - per side, one P-384 sign (its report) and one P-384 verify (the peer's), on libuv's threadpool
 *   as soon as their input is there, so the two signatures and then the two verifications overlap
 *   as far as the machine's cores allow (the library does the same in a mutual channel).
 *
 * A side is open when its verification is done and the peer's RESULT is in.
 */
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { once } from 'node:events';
import {
  createSecureContext,
  createServer as createTlsServer,
  type Server,
  type TLSSocket,
  connect as tlsConnect,
} from 'node:tls';
import { computeBinder, exportBinderSecret } from '../dist/channel/binder.js';
import { encodeCmw } from '../dist/channel/cmw.js';
import { encodeEvidence, encodeRequest, encodeResult } from '../dist/channel/frames.js';
import type { TlsIdentity } from '../dist/channel/identity.js';
import { simulated } from '../dist/evidence/providers/simulated.js';

const ALPN = 'attested-channel/1';

interface Frames {
  request: Buffer;
  evidence: Buffer;
  result: Buffer;
}

/** The exchange's frames, the same each way (sizes are what the floor's I/O depends on). */
async function frames(): Promise<Frames> {
  const context = randomBytes(32);
  const input = await simulated.snp().getEvidence(randomBytes(64));
  return {
    request: encodeRequest(context, ['application/vnd.amd.sev-snp.report'], { batch: true }),
    evidence: encodeEvidence(context, encodeCmw(input, 'sev-snp')),
    result: encodeResult(context),
  };
}

/** A report-sized message, a P-384 key and a signature of the message, for both sides. */
function reportCrypto() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const message = randomBytes(0x2a0);
  const signKey = { key: privateKey, dsaEncoding: 'ieee-p1363' as const };
  const verifyKey = { key: publicKey, dsaEncoding: 'ieee-p1363' as const };
  return { message, signKey, verifyKey, signature: sign('sha384', message, signKey) };
}

type Crypto = ReturnType<typeof reportCrypto>;

/** One side's exchange on `s`; resolves when that side is open. */
function side(
  s: TLSSocket,
  role: 'client' | 'server',
  spki: Uint8Array,
  f: Frames,
  c: Crypto,
  context: Uint8Array,
): Promise<void> {
  const peer = role === 'client' ? 'server' : 'client';
  const afterRequest = f.request.length;
  const afterEvidence = afterRequest + f.evidence.length;
  const afterResult = afterEvidence + f.result.length;
  return new Promise<void>((resolve, reject) => {
    let got = 0;
    let verified = false;
    let peerResult = false;
    const maybeOpen = () => {
      if (!verified || !peerResult) return;
      s.off('data', onData);
      resolve();
    };
    const onData = (d: Buffer) => {
      const before = got;
      got += d.length;
      if (before < afterRequest && got >= afterRequest) {
        computeBinder(role, spki, exportBinderSecret(s, role, context));
        sign('sha384', c.message, c.signKey, (err) => (err ? reject(err) : s.write(f.evidence)));
      }
      if (before < afterEvidence && got >= afterEvidence) {
        computeBinder(peer, spki, exportBinderSecret(s, peer, context));
        verify('sha384', c.message, c.verifyKey, c.signature, (err, ok) => {
          if (err || !ok) return reject(err ?? new Error('mutual floor: the signature does not verify'));
          s.write(f.result);
          verified = true;
          maybeOpen();
        });
      }
      if (before < afterResult && got >= afterResult) {
        peerResult = true;
        maybeOpen();
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(f.request);
  });
}

export interface MutualFloor {
  server: Server;
  /** Resolves with the client's socket once the client side is open. */
  connect(port: number): Promise<TLSSocket>;
}

/**
 * A floor server with `serverIdentity`'s certificate and a connect function presenting
 * `clientIdentity`'s. The binders hash one SPKI for both roles: which one changes no cost.
 */
export async function mutualFloor(
  serverIdentity: TlsIdentity,
  clientIdentity: TlsIdentity,
): Promise<MutualFloor> {
  const f = await frames();
  const c = reportCrypto();
  const context = randomBytes(32);
  const server = createTlsServer(
    {
      key: serverIdentity.keyPem,
      cert: serverIdentity.certPem,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      ALPNProtocols: [ALPN],
      requestCert: true,
      rejectUnauthorized: false,
    },
    (s) => {
      s.on('error', () => {});
      side(s, 'server', serverIdentity.spki, f, c, context).catch(() => s.destroy());
    },
  );
  const clientContext = createSecureContext({
    key: clientIdentity.keyPem,
    cert: clientIdentity.certPem,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
  });
  return {
    server,
    async connect(port: number): Promise<TLSSocket> {
      const s = tlsConnect({
        host: '127.0.0.1',
        port,
        secureContext: clientContext,
        ALPNProtocols: [ALPN],
        rejectUnauthorized: false,
      });
      await once(s, 'secureConnect');
      await side(s, 'client', serverIdentity.spki, f, c, context);
      return s;
    },
  };
}
