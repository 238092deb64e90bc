/**
 * What a Verifier keeps for the exchanges in which it is the challenger (a channel's client, or
 * any side verifying with an explicit Verifier): the nonces it sends and the decoded chains of the
 * evidence it receives. Per-exchange work that a long-lived owner saves, owned by the Verifier so
 * that it lives and dies with it and two Verifiers share nothing (module-state.test.ts forbids
 * keeping it in a module).
 */
import { randomFillSync } from 'node:crypto';
import type { CacheStats } from './lru.js';

/**
 * Bytes of one challenge nonce: the channel's REQUEST context (docs/protocol.md §4.2: 32 bytes
 * from a CSPRNG, fresh per REQUEST).
 */
export const CHALLENGE_SIZE = 32;

/** Nonces per CSPRNG read. */
const PER_READ = 32;

/**
 * Challenge nonces cut from one CSPRNG read per PER_READ. One randomFillSync per nonce costs
 * ~1.7 µs in a tight loop but ~8–20 µs between handshakes, when OpenSSL's DRBG is out of the
 * caches (node --cpu-prof over 1 500 connects); cut from a block, a nonce costs a copy. Every
 * nonce is handed out once: the block is refilled only after all of it was used.
 */
export class NonceSource {
  readonly size: number;
  readonly #block: Uint8Array;
  /** Where the next unused nonce starts; the block's end when all are used. */
  #next: number;
  #issued = 0;

  constructor(size: number) {
    this.size = size;
    this.#block = new Uint8Array(size * PER_READ);
    this.#next = this.#block.length;
  }

  /** Nonces handed out so far. */
  get issued(): number {
    return this.#issued;
  }

  /** A nonce never handed out before: a copy, so that a refill cannot change one in use. */
  readonly next = (): Uint8Array => {
    if (this.#next === this.#block.length) {
      randomFillSync(this.#block);
      this.#next = 0;
    }
    const nonce = this.#block.slice(this.#next, this.#next + this.size);
    this.#next += this.size;
    this.#issued++;
    return nonce;
  };
}

/** Entries of `channel.chains`. */
export const CHAIN_TEXT_CACHE_SIZE = 8;

/**
 * The longest base64url text `channel.chains` keeps (16 KiB; a real ASK/ARK bundle is ~4.5 KiB of
 * PEM, a PCK chain ~4 KiB): a longer one is decoded every time. A key of 16 Ki one-byte characters
 * and the text of its 12 KiB (at most 12 KiB however encoded: 12 Ki one-byte characters or 6 Ki
 * two-byte ones) make at most 8 × 28 KiB = 224 KiB (bench/verifier.ts fills it so).
 */
export const MAX_KEPT_CHAIN_BASE64 = 16 * 1024;

/**
 * A few texts, each by the exact string it was derived from, most recently used first. Looked up
 * by comparing the whole key (===) with each entry, not through a Map: a Map hashes a fresh
 * 6 000-character string from JSON.parse on every lookup (~15 µs, as much as the decode it would
 * save), while === on a string of another length is one comparison and on an equal one a memcmp
 * (~1 µs). With 8 entries a miss costs at most 8 such comparisons.
 */
export class RecentTexts {
  readonly max: number;
  readonly #keys: string[] = [];
  readonly #values: string[] = [];
  #hits = 0;
  #misses = 0;
  #evictions = 0;

  constructor(max: number) {
    this.max = max;
  }

  /** The text kept for exactly `key` (now the most recently used), counted as a hit or a miss. */
  get(key: string): string | undefined {
    const i = this.#keys.indexOf(key);
    if (i < 0) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    const value = this.#values[i]!;
    if (i > 0) {
      this.#keys.splice(i, 1);
      this.#values.splice(i, 1);
      this.#keys.unshift(key);
      this.#values.unshift(value);
    }
    return value;
  }

  set(key: string, value: string): void {
    const i = this.#keys.indexOf(key);
    if (i >= 0) {
      this.#keys.splice(i, 1);
      this.#values.splice(i, 1);
    } else if (this.#keys.length >= this.max) {
      this.#keys.pop();
      this.#values.pop();
      this.#evictions++;
    }
    this.#keys.unshift(key);
    this.#values.unshift(value);
  }

  stats(): CacheStats {
    return {
      size: this.#keys.length,
      max: this.max,
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
    };
  }
}

export class ChallengerState {
  /** The nonces of the challenges the Verifier's exchanges send. */
  readonly nonces = new NonceSource(CHALLENGE_SIZE);
  /**
   * Decoded chain texts by their exact base64url text: a hit returns the decoding of exactly
   * those characters (the whole key is compared), so no other bytes can be answered for.
   */
  readonly chains = new RecentTexts(CHAIN_TEXT_CACHE_SIZE);
}

/** Where a Verifier keeps its ChallengerState (not exported from the package). */
export const CHALLENGER_STATE: unique symbol = Symbol('attested-channel.challenger-state');

/** The challenger state of a Verifier made by createVerifier(); undefined for any other object. */
export function challengerStateOf(verifier: unknown): ChallengerState | undefined {
  if (typeof verifier !== 'object' || verifier === null) return undefined;
  const state = (verifier as { [CHALLENGER_STATE]?: unknown })[CHALLENGER_STATE];
  return state instanceof ChallengerState ? state : undefined;
}
