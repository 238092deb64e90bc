/**
 * What each side of the attestation exchange does with evidence, apart from the driver's I/O and
 * state: produce this side's evidence bound to this connection (binder → provider → CMW), and
 * verify the peer's against the binder this connection expects (a cheap REPORT_DATA check before
 * the signatures, the verifier, then the verified REPORT_DATA again).
 */
import { createHash } from 'node:crypto';
import { AttestationError, asAttestationError } from '../errors.js';
import { checkAzureBinding, quoteClaimsBinder } from '../evidence/azure/binding.js';
import { base64url, bytesToHex, equalBytes } from '../evidence/bytes.js';
import { checkGceVtpmBinding } from '../evidence/gce/vtpm.js';
import { type Policy, parsePolicy } from '../evidence/policy.js';
import {
  type EvidenceMemory,
  evidenceMemoryOf,
  REUSE_MAX_EVIDENCE_BYTES,
  type RememberedEvidence,
} from '../evidence/reuse.js';
import type { Claims, EvidenceInput } from '../evidence/types.js';
import { detectFormat, reportDataOf, verifierFor } from '../evidence/verify.js';
import { encodeBatchPath, expectedBatchReportData, MERKLE_PATH_MEDIA_TYPE } from './batch.js';
import { computeBinder, exportBinderSecret } from './binder.js';
import { type CmwCollection, type DecodedCmw, encodeCmw } from './cmw.js';
import type { KeyProofMessage } from './frames.js';
import { chainsOf, producedFor, rememberProduced } from './identity.js';
import { keyProofInput, proofKeyOf, reportDigest, signKeyProof, verifyKeyProof } from './key-proof.js';
import type { ChannelParams, Role } from './options.js';

/**
 * The peer's claims as a channel shows them: `reused` is true when they come from evidence verified
 * on an earlier connection to the same TLS key and accepted through a key proof (§4.7), verified
 * again for this one; `evidenceAge` is then its age in seconds on this side's clock (0 otherwise).
 */
export type PeerClaims = Claims & { reused: boolean; evidenceAge: number };

/** How the driver lets provider and verifier calls be aborted and counted while they run. */
export interface OperationScope {
  signal: AbortSignal;
  run<T>(operation: () => Promise<T>): Promise<T>;
}

/**
 * The provider and verifier calls of one channel: abortable together, and counted while in flight,
 * because only they need to hear of a close (an abort builds an error: only when one is running).
 */
export class Operations implements OperationScope {
  /**
   * Made for the first call and dropped when none is in flight any more: an open channel, which
   * runs none until it re-attests, holds no AbortController (with its signal and listener maps).
   * An aborted one is kept: the channel is closing and nothing may start on it.
   */
  #abort: AbortController | undefined;
  #inFlight = 0;

  get signal(): AbortSignal {
    this.#abort ??= new AbortController();
    return this.#abort.signal;
  }

  async run<T>(operation: () => Promise<T>): Promise<T> {
    this.#inFlight++;
    try {
      return await operation();
    } finally {
      this.#inFlight--;
      if (this.#inFlight === 0 && this.#abort?.signal.aborted === false) this.#abort = undefined;
    }
  }

  stop(reason: AttestationError | null): void {
    if (this.#inFlight === 0 || !this.#abort || this.#abort.signal.aborted) return;
    this.#abort.abort(reason ?? new AttestationError('ERR_CONNECTION_CLOSED', 'the channel was destroyed'));
  }
}

/**
 * Whether this side's evidence work has other work to overlap with: in a mutual channel each side
 * makes its evidence while the peer's arrives to be checked, and a server with other connections
 * opening has their handshakes and exchanges to run. CPU-bound work (the simulated platform's
 * signature, a report's verification) is then worth a thread hand-off. A lone one-way exchange
 * has nothing to do meanwhile: the hand-off's two thread wake-ups would only add to the connect
 * (docs/benchmarks.md, one-way connect).
 */
function overlaps(params: ChannelParams): boolean {
  return (
    (params.options.evidence !== undefined && params.options.verify !== undefined) ||
    params.othersOpening?.() === true
  );
}

/**
 * This side's evidence for the peer's REQUEST `context`, as the CMW collection to send. When the
 * REQUEST asked for batches (`batch`) and this side batches, the binder becomes a leaf of the next
 * batch (batch-scheduler.ts): the provider is given the batch's REPORT_DATA, and the collection
 * carries this leaf's audit path (or, alone in its report, the plain binder and no path). The binder is always computed here from our own TLS session;
 * nothing a peer sends becomes a leaf.
 */
export async function produceEvidence(
  params: ChannelParams,
  context: Uint8Array,
  scope: OperationScope,
  batch = false,
): Promise<CmwCollection> {
  const { options, identity, role, socket } = params;
  const provider = options.evidence;
  if (!provider || !identity)
    throw new AttestationError('ERR_UNSUPPORTED_EVIDENCE', 'this side cannot attest');
  const binder = computeBinder(role, identity.spki, exportBinderSecret(socket, role, context));
  const batcher = batch ? params.batcher : undefined;
  const overlap = overlaps(params);
  let input: EvidenceInput;
  let reportData = binder;
  let path: Uint8Array | undefined;
  try {
    if (batcher) {
      const batched = await scope.run(() => batcher.submit(binder, scope.signal, overlap));
      input = batched.input;
      reportData = batched.reportData;
      const leaf = batched.leaf;
      if (leaf) path = encodeBatchPath(leaf.index, leaf.size, leaf.path);
    } else input = await scope.run(() => provider.getEvidence(binder, { signal: scope.signal, overlap }));
  } catch (err) {
    throw asAttestationError(err, 'ERR_PROVIDER_FAILED', 'the evidence provider failed');
  }
  const cmw = encodeCmw(input, provider.format, params.chains ?? chainsOf(identity));
  if (!claimsBinder(input, reportData))
    throw new AttestationError(
      'ERR_PROVIDER_FAILED',
      'the provider returned evidence with other REPORT_DATA',
    );
  // Bound to this identity's key: a later connection with this key may prove continuity for it.
  rememberProduced(identity, bytesToHex(reportDigest(input.report)));
  if (path) cmw['batch'] = [MERKLE_PATH_MEDIA_TYPE, base64url(path)];
  return cmw;
}

/**
 * Our key proof for the peer's REQUEST `context` that listed `known` (§4.7): for the first listed
 * digest of a report this side produced for its own TLS key, signed by that key. Undefined when
 * there is none (or `keyProof: false`, or a key without a fixed scheme): then evidence answers.
 */
export function keyProofFor(
  params: ChannelParams,
  context: Uint8Array,
  known: readonly Uint8Array[],
): KeyProofMessage | undefined {
  const { options, identity, role, socket } = params;
  if (options.keyProof === false || !identity || !options.evidence) return undefined;
  const digest = known.find((d) => producedFor(identity, bytesToHex(d)));
  if (!digest) return undefined;
  const input = keyProofInput(role, identity.spki, digest, exportBinderSecret(socket, role, context));
  const proof = signKeyProof(identity.key, input);
  return proof ? { known: digest, proof } : undefined;
}

/** The peer's claims from its evidence for our REQUEST `context`, bound to this connection. */
export async function verifyPeerEvidence(
  params: ChannelParams,
  peerSpki: Uint8Array | undefined,
  context: Uint8Array,
  evidence: DecodedCmw,
  scope: OperationScope,
): Promise<{ claims: Claims; boundTo: Uint8Array }> {
  const { options, role, socket } = params;
  const verify = options.verify;
  if (!verify) throw new AttestationError('ERR_PROTOCOL', 'evidence arrived though none was asked for');
  const peerRole: Role = role === 'client' ? 'server' : 'client';
  if (!peerSpki)
    throw new AttestationError(
      'ERR_BINDING_MISMATCH',
      'the peer presented no TLS certificate to bind evidence to',
    );
  const binder = computeBinder(peerRole, peerSpki, exportBinderSecret(socket, peerRole, context));
  // Batched: the 64 bytes the report must carry are the batch's REPORT_DATA, recomputed from our
  // own binder and the path (§5.1); every check below then compares against them exactly as it
  // compares against a plain binder (REPORT_DATA, an Azure or vTPM quote's qualifyingData, user-data).
  const batch = evidence.batch;
  const expected = batch ? expectedBatchReportData(binder, batch) : binder;
  if (expected === undefined) throw bindingMismatch();
  // Checked before the signatures: evidence bound elsewhere is refused as such, and cheaply.
  if (claimsBinder(evidence.input, expected) === false) throw bindingMismatch();
  const claims = await appraiseBound(
    params,
    evidence.input,
    expected,
    verify.now ?? new Date(),
    scope,
    batch,
  );
  return { claims, boundTo: expected };
}

/**
 * Verifies `input` under this channel's verify options and policy at `now`, and that it is bound
 * to `expected`: the binder of this exchange, or (on reuse) of the exchange it first answered.
 */
async function appraiseBound(
  params: ChannelParams,
  input: EvidenceInput,
  expected: Uint8Array,
  now: Date,
  scope: OperationScope,
  batch?: DecodedCmw['batch'],
): Promise<Claims> {
  const { options, internals } = params;
  const verify = options.verify!;
  const policy = params.policy ?? verify.policy;
  const seam = internals?.verifier;
  const claims = await scope.run(() => {
    if (seam) return seam(input, { ...verify, policy, now, signal: scope.signal });
    // What verifyEvidence() would do, once: its checks of the input and the call are the
    // Verifier's own (verifier.verify makes them), and the channel checked the rest when made.
    const { check, vtpmRoots } = verify;
    return (params.verifier ?? verifierFor(verify)).verify(input, {
      policy,
      now,
      signal: scope.signal,
      // Off the event loop where something can run meanwhile (src/evidence/offload.ts): a server's
      // other connections, or this side's own evidence and the other direction of a mutual
      // exchange. A client that only verifies has nothing to overlap: the round trip would be lost.
      offload: params.role === 'server' || overlaps(params),
      ...(check !== undefined ? { check } : {}),
      ...(vtpmRoots !== undefined ? { vtpmRoots } : {}),
    });
  });
  if (claims.format === 'azure-sev-snp' || claims.format === 'azure-tdx') {
    // REPORT_DATA is the paravisor's hash of its runtime claims: the binder is in the quote's
    // qualifyingData (always required) and, with report binding, in the claims' user-data.
    const binding = checkAzureBinding(claims, expected, {
      requireReportBinding: parsePolicy(policy).azure?.requireReportBinding === true,
    });
    return { ...claims, binding, ...batchedClaim(batch) };
  }
  if (claims.reportData.toLowerCase() !== bytesToHex(expected)) throw bindingMismatch();
  // Google's vTPM beside the report: its quote must be bound to the same binder (SHA-384 of it).
  if (claims.vtpm) checkGceVtpmBinding(claims.vtpm, expected);
  return batch ? { ...claims, ...batchedClaim(batch) } : claims;
}

/**
 * Whether the evidence claims (unverified) to be bound to `binder`: REPORT_DATA for raw reports,
 * the TPM quote's qualifyingData for Azure. Undefined when the bytes do not say.
 */
function claimsBinder(input: EvidenceInput, binder: Uint8Array): boolean | undefined {
  const format = detectFormat(input.report);
  if (format === 'azure-sev-snp' || format === 'azure-tdx')
    return quoteClaimsBinder(input.tpm?.quote, binder);
  const claimed = reportDataOf(input.report);
  return claimed === undefined ? undefined : equalBytes(claimed, binder);
}

/** The Verifier's evidence memory, when this channel's policy allows reuse (else undefined). */
export function reuseMemory(params: ChannelParams): { memory: EvidenceMemory; maxAge: number } | undefined {
  const verify = params.options.verify;
  if (!verify) return undefined;
  const maxAge = reuseAge(params.policy ?? parsePolicy(verify.policy));
  const memory = evidenceMemoryOf(verify.verifier);
  return maxAge > 0 && memory ? { memory, maxAge } : undefined;
}

function reuseAge(policy: Policy): number {
  return policy.reuse?.maxEvidenceAge ?? 0;
}

/** The memory's key for a peer: SHA-256 of the SPKI it presented, hex. */
export function peerKeyOf(spki: Uint8Array): string {
  return createHash('sha256').update(spki).digest('hex');
}

/**
 * The evidence this side holds for the peer's key, if it may still be reused at `now` (ms): what
 * the first REQUEST lists in `known`.
 */
export function reusableEvidence(
  params: ChannelParams,
  peerSpki: Uint8Array | undefined,
  now: number,
): RememberedEvidence | undefined {
  const reuse = reuseMemory(params);
  if (!reuse || !peerSpki) return undefined;
  const entry = reuse.memory.get(peerKeyOf(peerSpki));
  if (!entry) return undefined;
  const age = now - entry.requestedAt;
  return age >= 0 && age <= reuse.maxAge * 1000 ? entry : undefined;
}

/**
 * Remembers evidence just verified for the peer's key (initial exchanges only; `requestedAt` is
 * when this side sent the REQUEST it answers), when the policy allows reuse and it is small enough.
 * `boundTo` is what its report was checked against (verifyPeerEvidence): the binder, or for
 * batched evidence the batch's REPORT_DATA (§5.1), so that reuse checks the same 64 bytes again.
 */
export function rememberEvidence(
  params: ChannelParams,
  peerSpki: Uint8Array,
  boundTo: Uint8Array,
  input: EvidenceInput,
  requestedAt: number,
): void {
  const reuse = reuseMemory(params);
  if (!reuse || inputSize(input) > REUSE_MAX_EVIDENCE_BYTES) return;
  reuse.memory.set(peerKeyOf(peerSpki), {
    digest: reportDigest(input.report),
    input,
    binder: boundTo,
    requestedAt,
  });
}

/** Bytes an EvidenceInput holds (byte arrays and strings, however nested): what reuse keeps. */
function inputSize(value: unknown, depth = 0): number {
  if (value instanceof Uint8Array) return value.byteLength;
  if (typeof value === 'string') return value.length;
  if (typeof value !== 'object' || value === null || depth > 4) return 0;
  let n = 0;
  for (const v of Object.values(value)) n += inputSize(v, depth + 1);
  return n;
}

/**
 * The peer's claims from a key proof for our REQUEST `context` (§4.7), about `entry`, the evidence
 * we listed: the signature must be by the key of this handshake over this exchange's exporter
 * (else ERR_BINDING_MISMATCH); the evidence must still be young enough on our clock and pass our
 * current policy and collateral, verified again now (its code otherwise, and it is forgotten).
 */
export async function verifyPeerKeyProof(
  params: ChannelParams,
  peerSpki: Uint8Array | undefined,
  context: Uint8Array,
  keyProof: KeyProofMessage,
  entry: RememberedEvidence | undefined,
  scope: OperationScope,
): Promise<PeerClaims> {
  const { options, role, socket } = params;
  const reuse = reuseMemory(params);
  if (!options.verify || !reuse || !entry || !equalBytes(entry.digest, keyProof.known))
    throw new AttestationError('ERR_PROTOCOL', 'a key proof for a report this side did not list');
  if (!peerSpki)
    throw new AttestationError('ERR_BINDING_MISMATCH', 'the peer presented no TLS certificate to bind to');
  const peerRole: Role = role === 'client' ? 'server' : 'client';
  const input = keyProofInput(
    peerRole,
    peerSpki,
    keyProof.known,
    exportBinderSecret(socket, peerRole, context),
  );
  // Made once per remembered peer: the entry is found by the hash of this same SPKI (compared
  // anyway, so a key kept for other bytes is never used).
  let proofKey = entry.proofKey;
  if (!proofKey || !equalBytes(proofKey.spki, peerSpki)) {
    proofKey = proofKeyOf(peerSpki);
    if (proofKey) entry.proofKey = proofKey;
  }
  if (!proofKey || !verifyKeyProof(proofKey, input, keyProof.proof))
    throw new AttestationError(
      'ERR_BINDING_MISMATCH',
      "the key proof is not this connection's peer key signing this exchange (relayed, replayed or forged)",
    );
  const key = peerKeyOf(peerSpki);
  const now = options.verify.now ?? new Date();
  const ageMs = now.getTime() - entry.requestedAt;
  if (!(ageMs >= 0 && ageMs <= reuse.maxAge * 1000)) {
    reuse.memory.forget(key, entry);
    throw new AttestationError(
      'ERR_EVIDENCE_POLICY',
      `policy reuse.maxEvidenceAge: the evidence is ${ageMs / 1000} s old (at most ${reuse.maxAge} s)`,
      { details: { field: 'reuse.maxEvidenceAge' } },
    );
  }
  let claims: Claims;
  try {
    claims = await appraiseBound(params, entry.input, entry.binder, now, scope);
  } catch (err) {
    // What no longer passes is not offered again: the next connection brings new evidence.
    reuse.memory.forget(key, entry);
    throw err;
  }
  return { ...claims, reused: true, evidenceAge: ageMs / 1000 };
}

function batchedClaim(batch: DecodedCmw['batch']): { batched?: { index: number; size: number } } {
  return batch ? { batched: { index: batch.index, size: batch.size } } : {};
}

function bindingMismatch(): AttestationError {
  return new AttestationError(
    'ERR_BINDING_MISMATCH',
    'REPORT_DATA does not equal the binder of this connection (relayed, replayed or reflected evidence)',
  );
}
