/**
 * What a Verifier remembers for evidence reuse (policy `reuse.maxEvidenceAge`, docs/protocol.md
 * §4.7): per peer TLS key, the last evidence it fully verified for that key, so that a later
 * channel to the same key can accept a key-continuity proof instead of new hardware evidence, after
 * verifying this evidence again under the policy, collateral and clock of that later channel.
 *
 * It lives in the Verifier (createVerifier) the channels share, bounded like its caches; nothing
 * else in the library remembers peers. The channel layer fills and reads it; this layer only
 * holds bytes (the key is an opaque string, the SHA-256 of the peer's SPKI in hex).
 */
import type { KeyObject } from 'node:crypto';
import { Lru } from './lru.js';
import type { EvidenceInput } from './types.js';

/** Peers (TLS keys) remembered per Verifier; the least recently used is forgotten first. */
export const REUSE_ENTRIES = 128;
/**
 * Evidence larger than this on the wire (EVIDENCE payload bytes) is not remembered, so the memory
 * holds at most REUSE_ENTRIES × this (8 MiB). Raw SEV-SNP evidence with its VEK and chain is about
 * 12 KB; what exceeds it carries an event log, and such peers are simply attested afresh each time.
 */
export const REUSE_MAX_EVIDENCE_BYTES = 64 * 1024;

export interface RememberedEvidence {
  /** SHA-256 of the report record's bytes: what REQUEST `known` names. */
  readonly digest: Uint8Array;
  /** The evidence as decoded, verified again on every reuse. */
  readonly input: EvidenceInput;
  /** The 64 bytes its REPORT_DATA (or quote) was checked against — the binder, or a batch's REPORT_DATA — checked again on every reuse. */
  readonly binder: Uint8Array;
  /** The verifier's clock (ms since the epoch) when it sent the REQUEST this evidence answered. */
  readonly requestedAt: number;
  /**
   * The peer's TLS key, parsed on the first key proof checked against this entry and kept with it
   * (channel/key-proof.ts): building a KeyObject from an SPKI costs more than the proof's signature
   * check, and every reuse of the entry comes from the same key.
   */
  proofKey?: ProofKey;
}

/** A public key ready to check signatures: its SPKI (DER), the KeyObject and the scheme it fixes. */
export interface ProofKey {
  readonly spki: Uint8Array;
  readonly key: KeyObject;
  readonly hash: string | null;
  readonly options: { dsaEncoding?: 'ieee-p1363'; padding?: number; saltLength?: number };
}

export class EvidenceMemory {
  readonly #entries = new Lru<string, RememberedEvidence>(REUSE_ENTRIES);

  get(key: string): RememberedEvidence | undefined {
    return this.#entries.get(key);
  }

  set(key: string, entry: RememberedEvidence): void {
    this.#entries.set(key, entry);
  }

  /** Forgets `key`, but only while it still holds `entry` (a newer one may have replaced it). */
  forget(key: string, entry: RememberedEvidence): void {
    if (this.#entries.get(key) === entry) this.#entries.delete(key);
  }

  get lru(): Lru<string, RememberedEvidence> {
    return this.#entries;
  }
}

/** Where a Verifier keeps its EvidenceMemory (not exported from the package). */
export const EVIDENCE_MEMORY: unique symbol = Symbol('attested-channel.evidence-memory');

/** The memory of a Verifier made by createVerifier(); undefined for any other object. */
export function evidenceMemoryOf(verifier: unknown): EvidenceMemory | undefined {
  if (typeof verifier !== 'object' || verifier === null) return undefined;
  const memory = (verifier as { [EVIDENCE_MEMORY]?: unknown })[EVIDENCE_MEMORY];
  return memory instanceof EvidenceMemory ? memory : undefined;
}
