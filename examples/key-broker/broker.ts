/**
 * The key broker: an HTTP service reachable only over attested channels on which the CLIENT must
 * attest. The channel proves the evidence is genuine and bound to this very connection; each
 * request is then judged against the policy of the secret it names.
 *
 * Two stages, on purpose: the channel appraises with a policy that accepts any genuine evidence
 * (debug, migration agent, any TDX TCB status), so that the audit log names the field of the secret's
 * own policy that refused. Authenticity (signatures, chains, binder) is never
 * relaxed: evidence that is not genuine and bound never yields a channel, hence never a request.
 */
import {
  createServer,
  type Server as HttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { type AttestedServer, createAttestedServer } from '../../src/channel/server.js';
import { AttestationError } from '../../src/errors.js';
import { appraiseClaims, FORMAT_SECTIONS } from '../../src/evidence/appraise.js';
import type { Policy } from '../../src/evidence/policy.js';
import {
  type Claims,
  type EvidenceProvider,
  TDX_LEVEL_STATUSES,
  type TrustAnchors,
} from '../../src/evidence/types.js';
import { peerClaims, serveHttp } from '../../src/http/server.js';
import { type AuditEntry, AuditLog, clip, peerSummary } from './audit.js';
import { type BrokerConfig, SECRET_NAME } from './config.js';

/** Accepts every genuine report: the per-secret policy decides (see the file comment). */
export const CHANNEL_POLICY: Policy = {
  snp: { allowDebug: true, allowMigrationAgent: true },
  tdx: {
    allowDebug: true,
    allowServiceTd: true,
    requireSeptVeDisable: false,
    acceptTcbStatus: [...TDX_LEVEL_STATUSES],
  },
};

export interface BrokerOptions {
  config: BrokerConfig;
  /** Roots for client evidence (default: the vendors' built-in roots). */
  trustAnchors?: TrustAnchors;
  /** The broker's own evidence, when it runs in a CVM and clients want proof of it. */
  evidence?: EvidenceProvider;
  /** Fixed verification time (tests); default: the wall clock at each verification. */
  now?: Date;
  /** Handshake + attestation timeout per channel, ms. */
  timeout?: number;
}

export interface Broker {
  readonly attested: AttestedServer;
  readonly http: HttpServer;
  readonly audit: AuditLog;
  /** Listens on the configured (or given) address; resolves with the bound address. */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  close(): Promise<void>;
}

interface Verdict {
  status: number;
  body: Uint8Array | Record<string, unknown>;
  audit: Omit<AuditEntry, 'time' | 'event' | 'remote' | 'peer'>;
}

const SECRETS_PATH = /^\/v1\/secrets\/([^/]*)$/;
/**
 * The one answer to a request for a secret the client may not have, whether the name is unknown or
 * its policy refused: were they told apart, any attested VM could list the names (and see which
 * policy field guards each). The audit log keeps the real reason.
 */
const FORBIDDEN = { error: 'forbidden' } as const;

/** The decision for one request. Pure except for reading the configured value on release. */
export function decide(
  config: BrokerConfig,
  method: string,
  url: string,
  claims: Claims | undefined,
): Verdict {
  const path = url.split('?')[0] ?? '';
  const match = SECRETS_PATH.exec(path);
  if (!match) {
    return {
      status: 404,
      body: { error: 'not_found' },
      audit: { decision: 'not_found', reason: `no such endpoint: ${clip(path, 100)}` },
    };
  }
  let name: string;
  try {
    name = decodeURIComponent(match[1] ?? '');
  } catch {
    name = match[1] ?? '';
  }
  const secret = clip(name, 128);
  if (method !== 'GET') {
    return {
      status: 405,
      body: { error: 'method_not_allowed' },
      audit: { decision: 'denied', secret, reason: `method ${clip(method, 16)} not allowed` },
    };
  }
  if (!claims) {
    // Unreachable while the channel requires client evidence; kept so a misconfiguration fails closed.
    return {
      status: 403,
      body: FORBIDDEN,
      audit: { decision: 'denied', secret, field: '(evidence)', reason: 'the client did not attest' },
    };
  }
  const entry = SECRET_NAME.test(name) ? config.secrets.get(name) : undefined;
  if (!entry) {
    return {
      status: 403,
      body: FORBIDDEN,
      audit: { decision: 'not_found', secret, reason: 'unknown secret' },
    };
  }
  try {
    // The config admits only policies that pin the workload (config.ts); fail closed all the same.
    if (!appraiseClaims(claims, entry.policy))
      throw new AttestationError('ERR_EVIDENCE_POLICY', 'the policy pins no workload', {
        details: { field: FORMAT_SECTIONS[claims.format] },
      });
  } catch (err) {
    const e =
      err instanceof AttestationError ? err : new AttestationError('ERR_EVIDENCE_POLICY', 'appraisal failed');
    // A TDX TCB status refusal carries no field; the policy field that governs it is acceptTcbStatus.
    const field =
      typeof e.details.field === 'string'
        ? e.details.field
        : e.code === 'ERR_EVIDENCE_TCB' && claims.format === 'tdx'
          ? 'tdx.acceptTcbStatus'
          : FORMAT_SECTIONS[claims.format];
    return {
      status: 403,
      body: FORBIDDEN,
      audit: { decision: 'denied', secret, field, code: e.code, reason: clip(e.message, 300) },
    };
  }
  return {
    status: 200,
    body: entry.value,
    audit: { decision: 'released', secret, reason: 'policy satisfied' },
  };
}

function remoteOf(req: IncomingMessage): string | undefined {
  const sock = req.socket as unknown as { socket?: { remoteAddress?: string; remotePort?: number } };
  const inner = sock.socket;
  return inner?.remoteAddress ? `${inner.remoteAddress}:${inner.remotePort}` : undefined;
}

function send(res: ServerResponse, status: number, body: Uint8Array | Record<string, unknown>): void {
  const bytes = body instanceof Uint8Array ? body : Buffer.from(`${JSON.stringify(body)}\n`);
  res.writeHead(status, {
    'content-type': body instanceof Uint8Array ? 'application/octet-stream' : 'application/json',
    'content-length': bytes.length,
    'cache-control': 'no-store',
  });
  res.end(bytes);
}

export async function startBroker(options: BrokerOptions): Promise<Broker> {
  const { config } = options;
  const audit = await AuditLog.open(config.auditLog);
  const attested = createAttestedServer({
    ...(options.evidence ? { evidence: options.evidence } : {}),
    ...(options.timeout ? { timeout: options.timeout } : {}),
    verify: {
      policy: CHANNEL_POLICY,
      ...(options.trustAnchors ? { trustAnchors: options.trustAnchors } : {}),
      ...(options.now ? { now: options.now } : {}),
    },
  });
  attested.on('attestationError', (err) => {
    audit
      .write({
        event: 'channel',
        decision: 'refused',
        code: err.code,
        reason: clip(err.message, 300),
        ...(typeof err.details.remote === 'string' ? { remote: err.details.remote } : {}),
      })
      .catch(() => {});
  });
  // Errors of the listening socket itself; per-connection errors arrive as attestationError.
  attested.on('error', () => {});

  const http = serveHttp(
    attested,
    createServer((req, res) => {
      const claims = peerClaims(req);
      const verdict = decide(config, req.method ?? '', req.url ?? '', claims);
      const peer = peerSummary(claims);
      const remote = remoteOf(req);
      audit
        .write({
          event: 'request',
          ...verdict.audit,
          ...(remote ? { remote } : {}),
          ...(peer ? { peer } : {}),
        })
        .then(
          () => send(res, verdict.status, verdict.body),
          // Fail closed: a decision that could not be recorded is not carried out.
          () => send(res, 500, { error: 'audit_unavailable' }),
        );
    }),
  );
  // A request is small; a client that trickles headers must not hold a channel forever.
  http.headersTimeout = 10_000;
  http.requestTimeout = 15_000;

  return {
    attested,
    http,
    audit,
    listen(port = config.listen.port, host = config.listen.host) {
      return new Promise((resolve, reject) => {
        attested.once('error', reject);
        attested.listen(port, host, () => {
          attested.off('error', reject);
          resolve(attested.address() as AddressInfo);
        });
      });
    },
    async close() {
      // Stop accepting first, then end the open channels: close() waits for them to go.
      const stopped = new Promise<void>((resolve) => attested.close(() => resolve()));
      const httpClosed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await Promise.all([stopped, httpClosed]);
      await audit.close();
    },
  };
}
