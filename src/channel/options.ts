/**
 * The options both ends of a channel share, and their validation. Kept apart from the driver
 * (channel.ts) so the pure modules (session.ts, binder.ts) can name a `Role` without importing it.
 */
import type { TLSSocket } from 'node:tls';
import { AttestationError } from '../errors.js';
import type { EndorsementRoot } from '../evidence/gce/launch.js';
import type { GceVtpmRoots } from '../evidence/gce/vtpm.js';
import { type Policy, parsePolicy } from '../evidence/policy.js';
import { evidenceMemoryOf } from '../evidence/reuse.js';
import type {
  Claims,
  CollateralClient,
  CollateralFetchOptions,
  EvidenceInput,
  EvidenceProvider,
  TrustAnchors,
  Verifier,
  VerifyOptions,
} from '../evidence/types.js';
import { type BatchScheduler, type BatchSetting, checkBatchSetting } from './batch-scheduler.js';
import type { ChainEncoder } from './cmw.js';
import { type FrameLimits, resolveFrameLimits } from './frames.js';
import type { TlsIdentity } from './identity.js';

export type Role = 'client' | 'server';

/** How a side appraises the peer's evidence (passed to verifyEvidence). */
export interface ChannelVerifyOptions {
  /**
   * The Verifier (createVerifier) to verify every peer's evidence with: its anchors, collateral
   * clients and caches are shared by all channels given it. When set, `trustAnchors`, `offline`,
   * `kds` and `pcs` belong to it and must not be given here. Without it, the default Verifier for
   * those options is used (verifyEvidence).
   */
  verifier?: Verifier;
  policy?: Policy;
  trustAnchors?: TrustAnchors;
  /** Google vTPM EK/AK CA roots for a peer's `vtpm` evidence, replacing the pinned ones. */
  vtpmRoots?: GceVtpmRoots;
  /** Google's GCE-cc-tcb-root for a peer's launch endorsement (replacing the Verifier's). */
  endorsementRoot?: EndorsementRoot;
  /** Time for certificate, CRL and collateral checks. Default: the wall clock at each verification. */
  now?: Date;
  check?: (claims: Claims) => boolean | undefined | Promise<boolean | undefined>;
  offline?: boolean;
  kds?: CollateralFetchOptions | CollateralClient;
  pcs?: CollateralFetchOptions | CollateralClient;
}

/** Options both ends share. */
export interface ChannelOptions {
  /** Produces this side's evidence when the peer asks for it. */
  evidence?: EvidenceProvider;
  /** When set, the peer must attest; its evidence is appraised with these options. */
  verify?: ChannelVerifyOptions;
  /** Whole TLS handshake plus attestation, and each re-attestation, in ms. Default 30 000. */
  timeout?: number;
  /** Re-attest the peer every this many ms after open (needs `verify`). Default: never. */
  reattestEvery?: number;
  /**
   * Caps the payload of every control frame (REQUEST, EVIDENCE, RESULT, ALERT), bytes, over the
   * per-type limits of `frameLimits`. Default: no cap beyond those.
   */
  maxControlPayload?: number;
  /**
   * Largest payload accepted per control frame type, bytes (each at least 1 024). Defaults:
   * DEFAULT_FRAME_LIMITS (request 4 KiB, evidence 4 MiB, result and alert 8 KiB).
   */
  frameLimits?: Partial<FrameLimits>;
  /**
   * Keep our writable side open after the peer ended its side (net.Socket semantics). Default
   * false: when the peer ends, the channel ends too, so a server that only reads cannot pin
   * connections open. Tunnels that forward half-close set it to true.
   */
  allowHalfOpen?: boolean;
  /**
   * Answer a peer's REQUEST that lists a report this side produced for its TLS key with a
   * key-continuity proof instead of new evidence (docs/protocol.md §4.7). Default true: the peer's
   * policy decides whether it accepts one. False: always new evidence.
   */
  keyProof?: boolean;
  /**
   * Batched binders (docs/protocol.md §5.1), on unless `false`. As challenger this side asks for
   * batches (`"batch": true` in its REQUESTs) and accepts batched or plain evidence; as attester it
   * answers a REQUEST that asked with one report for every exchange waiting at that moment
   * (BatchOptions: maxSize, reportsPerSecond, burst), and a REQUEST that did not with a plain one.
   * A BatchScheduler from createBatchScheduler() (for the same `evidence`) is shared with the
   * other sides given it. `false`: neither asks for nor makes batches.
   */
  batch?: BatchSetting;
}

export const DEFAULT_TIMEOUT_MS = 30_000;

const PROVIDER_FORMATS: readonly unknown[] = ['sev-snp', 'tdx', 'azure-sev-snp', 'azure-tdx', 'azure'];

/** Test seams, reachable only through this symbol (not exported from the package). */
export const INTERNAL: unique symbol = Symbol('attested-channel.internal');
export interface ChannelInternals {
  verifier?: (input: EvidenceInput, options: VerifyOptions) => Promise<Claims>;
  random?: () => Uint8Array;
}

/**
 * Validates the options both ends share; throws ERR_INVALID_ARGUMENT / ERR_POLICY_INVALID.
 * Returns verify.policy parsed (undefined without verify), by `parse` when given (a Verifier's
 * memo of parsed policies) once `verify` is known to be an object.
 */
export function checkChannelOptions(
  options: ChannelOptions,
  who: string,
  parse: (policy: unknown) => Policy = parsePolicy,
): Policy | undefined {
  if (typeof options !== 'object' || options === null)
    throw new AttestationError('ERR_INVALID_ARGUMENT', `${who}: options must be an object`);
  const { evidence, verify, timeout, reattestEvery, maxControlPayload, allowHalfOpen } = options;
  let policy: Policy | undefined;
  if (allowHalfOpen !== undefined && typeof allowHalfOpen !== 'boolean')
    throw new AttestationError('ERR_INVALID_ARGUMENT', `${who}: allowHalfOpen must be a boolean`);
  if (options.keyProof !== undefined && typeof options.keyProof !== 'boolean')
    throw new AttestationError('ERR_INVALID_ARGUMENT', `${who}: keyProof must be a boolean`);
  if (evidence !== undefined) {
    if (typeof evidence?.getEvidence !== 'function' || !PROVIDER_FORMATS.includes(evidence.format))
      throw new AttestationError('ERR_INVALID_ARGUMENT', `${who}: evidence must be an EvidenceProvider`);
  }
  if (verify !== undefined) {
    if (typeof verify !== 'object' || verify === null)
      throw new AttestationError('ERR_INVALID_ARGUMENT', `${who}: verify must be an object`);
    policy = parse(verify.policy);
    if (verify.now !== undefined && !(verify.now instanceof Date && Number.isFinite(verify.now.getTime())))
      throw new AttestationError('ERR_INVALID_ARGUMENT', `${who}: verify.now must be a valid Date`);
    if (verify.verifier !== undefined) {
      if (typeof verify.verifier !== 'object' || typeof verify.verifier?.verify !== 'function')
        throw new AttestationError('ERR_INVALID_ARGUMENT', `${who}: verify.verifier must be a Verifier`);
      const clash = (['trustAnchors', 'offline', 'kds', 'pcs'] as const).find((k) => verify[k] !== undefined);
      if (clash)
        throw new AttestationError(
          'ERR_INVALID_ARGUMENT',
          `${who}: verify.${clash} belongs to the Verifier: give it to createVerifier() instead`,
        );
    }
    // The Verifier is what remembers evidence between channels: without one there is no owner.
    if ((policy.reuse?.maxEvidenceAge ?? 0) > 0 && !evidenceMemoryOf(verify.verifier))
      throw new AttestationError(
        'ERR_INVALID_ARGUMENT',
        `${who}: a policy with reuse.maxEvidenceAge needs verify.verifier (createVerifier): it remembers the evidence`,
      );
  }
  if (evidence === undefined && verify === undefined)
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      `${who}: give verify (the peer attests) or evidence (this side attests); neither would be plain TLS`,
    );
  if (timeout !== undefined && !(Number.isFinite(timeout) && timeout > 0 && timeout <= 2_147_483_647))
    throw new AttestationError('ERR_INVALID_ARGUMENT', `${who}: timeout must be a positive number of ms`);
  if (reattestEvery !== undefined) {
    if (!(Number.isFinite(reattestEvery) && reattestEvery > 0 && reattestEvery <= 2_147_483_647))
      throw new AttestationError(
        'ERR_INVALID_ARGUMENT',
        `${who}: reattestEvery must be a positive number of ms`,
      );
    if (verify === undefined)
      throw new AttestationError(
        'ERR_INVALID_ARGUMENT',
        `${who}: reattestEvery needs verify (the peer re-attests)`,
      );
  }
  if (
    maxControlPayload !== undefined &&
    !(Number.isSafeInteger(maxControlPayload) && maxControlPayload >= 1024 && maxControlPayload <= 0xffffffff)
  )
    throw new AttestationError('ERR_INVALID_ARGUMENT', `${who}: maxControlPayload must be an integer ≥ 1024`);
  resolveFrameLimits(options.frameLimits, maxControlPayload, `${who}: frameLimits`);
  checkBatchSetting(options.batch, evidence, who);
  return policy;
}

/** @internal What connect.ts and server.ts hand to the channel. */
export interface ChannelParams {
  socket: TLSSocket;
  role: Role;
  /** This side's TLS identity (needed when it attests). */
  identity: TlsIdentity | undefined;
  options: ChannelOptions;
  /** ms left of the whole-handshake budget when the channel is created. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  internals?: ChannelInternals | undefined;
  /** verify.policy as parsed when the channel was asked for; else it is read at each verification. */
  policy?: Policy | undefined;
  /**
   * The Verifier of `options.verify`, found when the channel was asked for (attestedConnect copies
   * its options then); else it is looked up at each verification (a server's anchors are read then).
   */
  verifier?: Verifier | undefined;
  /** The chain encodings of whoever serves many connections with one provider (the server). */
  chains?: ChainEncoder | undefined;
  /** The batch scheduler of this side's provider (none: batching is off, or it cannot attest). */
  batcher?: BatchScheduler | undefined;
  /** Where this side's REQUEST contexts come from (contexts.ts): its owner's source, else one read each. */
  contexts?: (() => Uint8Array) | undefined;
  /** Whether this side's owner has other connections opening now (a server's pending channels). */
  othersOpening?: (() => boolean) | undefined;
}
