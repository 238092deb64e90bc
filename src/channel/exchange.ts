/**
 * What each side of the attestation exchange does with evidence, apart from the driver's I/O and
 * state: produce this side's evidence bound to this connection (binder → provider → CMW), and
 * verify the peer's against the binder this connection expects (a cheap REPORT_DATA check before
 * the signatures, the verifier, then the verified REPORT_DATA again).
 */
import { AttestationError, asAttestationError } from '../errors.js';
import { checkAzureBinding, quoteClaimsBinder } from '../evidence/azure/binding.js';
import { base64url, bytesToHex, equalBytes } from '../evidence/bytes.js';
import { checkGceVtpmBinding } from '../evidence/gce/vtpm.js';
import { parsePolicy } from '../evidence/policy.js';
import type { Claims, EvidenceInput } from '../evidence/types.js';
import { detectFormat, reportDataOf, verifierFor } from '../evidence/verify.js';
import { encodeBatchPath, expectedBatchReportData, MERKLE_PATH_MEDIA_TYPE } from './batch.js';
import { computeBinder, exportBinderSecret } from './binder.js';
import { type CmwCollection, type DecodedCmw, encodeCmw } from './cmw.js';
import type { ChannelParams, Role } from './options.js';

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
  readonly #abort = new AbortController();
  #inFlight = 0;

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  async run<T>(operation: () => Promise<T>): Promise<T> {
    this.#inFlight++;
    try {
      return await operation();
    } finally {
      this.#inFlight--;
    }
  }

  stop(reason: AttestationError | null): void {
    if (this.#inFlight === 0 || this.#abort.signal.aborted) return;
    this.#abort.abort(reason ?? new AttestationError('ERR_CONNECTION_CLOSED', 'the channel was destroyed'));
  }
}

/**
 * This side's evidence for the peer's REQUEST `context`, as the CMW collection to send. When the
 * REQUEST asked for batches (`batch`) and this side batches, the binder becomes a leaf of the next
 * batch (batch-scheduler.ts): the provider is given the batch's REPORT_DATA, and the collection
 * carries this leaf's audit path. The binder is always computed here from our own TLS session;
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
  let input: EvidenceInput;
  let reportData = binder;
  let path: Uint8Array | undefined;
  try {
    if (batcher) {
      const batched = await scope.run(() => batcher.submit(binder, scope.signal));
      input = batched.input;
      reportData = batched.reportData;
      path = encodeBatchPath(batched.index, batched.size, batched.path);
    } else input = await scope.run(() => provider.getEvidence(binder, { signal: scope.signal }));
  } catch (err) {
    throw asAttestationError(err, 'ERR_PROVIDER_FAILED', 'the evidence provider failed');
  }
  const cmw = encodeCmw(input, provider.format, params.chains);
  if (!claimsBinder(input, reportData))
    throw new AttestationError(
      'ERR_PROVIDER_FAILED',
      'the provider returned evidence with other REPORT_DATA',
    );
  if (path) cmw['batch'] = [MERKLE_PATH_MEDIA_TYPE, base64url(path)];
  return cmw;
}

/** The peer's claims from its evidence for our REQUEST `context`, bound to this connection. */
export async function verifyPeerEvidence(
  params: ChannelParams,
  peerSpki: Uint8Array | undefined,
  context: Uint8Array,
  evidence: DecodedCmw,
  scope: OperationScope,
): Promise<Claims> {
  const { options, internals, role, socket } = params;
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
  const policy = params.policy ?? verify.policy;
  const now = verify.now ?? new Date();
  const seam = internals?.verifier;
  const claims = await scope.run(() => {
    if (seam) return seam(evidence.input, { ...verify, policy, now, signal: scope.signal });
    // What verifyEvidence() would do, once: its checks of the input and the call are the
    // Verifier's own (verifier.verify makes them), and the channel checked the rest when made.
    const { check, vtpmRoots } = verify;
    return (params.verifier ?? verifierFor(verify)).verify(evidence.input, {
      policy,
      now,
      signal: scope.signal,
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

function batchedClaim(batch: DecodedCmw['batch']): { batched?: { index: number; size: number } } {
  return batch ? { batched: { index: batch.index, size: batch.size } } : {};
}

function bindingMismatch(): AttestationError {
  return new AttestationError(
    'ERR_BINDING_MISMATCH',
    'REPORT_DATA does not equal the binder of this connection (relayed, replayed or reflected evidence)',
  );
}
