/**
 * The evidence work a channel's session asks its driver for (session.ts actions 'attest',
 * 'verify', 'verify-proof'): each runs under the channel's Operations (abortable, counted) and is
 * answered with the event the session waits for. It also owns the channel's reuse state
 * (protocol.md §4.7): the evidence its first REQUEST listed as known, and when that REQUEST went out.
 */
import { asAttestationError, internalError } from '../errors.js';
import type { RememberedEvidence } from '../evidence/reuse.js';
import type { DecodedCmw } from './cmw.js';
import {
  keyProofFor,
  type Operations,
  type PeerClaims,
  produceEvidence,
  rememberEvidence,
  reusableEvidence,
  verifyPeerEvidence,
  verifyPeerKeyProof,
} from './exchange.js';
import type { KeyProofMessage } from './frames.js';
import type { ChannelParams } from './options.js';
import type { SessionEvent } from './session.js';

export class EvidenceTasks {
  readonly #params: ChannelParams;
  readonly #operations: Operations;
  readonly #feed: (event: SessionEvent) => void;
  #offered: RememberedEvidence | undefined;
  #requestedAt = 0;

  constructor(params: ChannelParams, operations: Operations, feed: (event: SessionEvent) => void) {
    this.#params = params;
    this.#operations = operations;
    this.#feed = feed;
  }

  /**
   * Our first REQUEST is about to go out: the digests it may list as known for the peer's key.
   * The clock now is when the age of the evidence that answers it counts from.
   */
  firstRequest(peerSpki: Uint8Array | undefined): Uint8Array[] | undefined {
    this.#requestedAt = (this.#params.options.verify?.now ?? new Date()).getTime();
    this.#offered = reusableEvidence(this.#params, peerSpki, this.#requestedAt);
    return this.#offered ? [this.#offered.digest] : undefined;
  }

  async attest(context: Uint8Array, known: Uint8Array[] | undefined, batch: boolean): Promise<void> {
    try {
      const keyProof = known ? keyProofFor(this.#params, context, known) : undefined;
      if (keyProof) {
        this.#feed({ type: 'key-proof', context, keyProof });
        return;
      }
      const cmw = await produceEvidence(this.#params, context, this.#operations, batch);
      this.#feed({ type: 'evidence', context, cmw });
    } catch (err) {
      this.#feed({ type: 'attest-failed', context, error: asAttestationError(err, 'ERR_PROVIDER_FAILED') });
    }
  }

  /** `first`: the channel's initial exchange, the only one whose evidence may be remembered. */
  async verify(
    context: Uint8Array,
    evidence: DecodedCmw,
    peerSpki: Uint8Array | undefined,
    first: boolean,
  ): Promise<void> {
    try {
      const verified = await verifyPeerEvidence(this.#params, peerSpki, context, evidence, this.#operations);
      const claims: PeerClaims = { ...verified.claims, reused: false, evidenceAge: 0 };
      // Only the first exchange's evidence: its REQUEST time is the one this channel knows.
      if (first && peerSpki)
        rememberEvidence(this.#params, peerSpki, verified.boundTo, evidence.input, this.#requestedAt);
      this.#feed({ type: 'verified', context, claims });
    } catch (err) {
      // Verifiers throw only AttestationError: anything else is our bug, not the peer's evidence.
      this.#feed({
        type: 'verify-failed',
        context,
        error: internalError(err, "verifying the peer's evidence"),
      });
    }
  }

  async verifyProof(
    context: Uint8Array,
    keyProof: KeyProofMessage,
    peerSpki: Uint8Array | undefined,
  ): Promise<void> {
    try {
      const claims = await verifyPeerKeyProof(
        this.#params,
        peerSpki,
        context,
        keyProof,
        this.#offered,
        this.#operations,
      );
      this.#feed({ type: 'verified', context, claims });
    } catch (err) {
      this.#feed({
        type: 'verify-failed',
        context,
        error: internalError(err, "verifying the peer's key proof"),
      });
    }
  }
}
