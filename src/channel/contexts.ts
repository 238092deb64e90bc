/**
 * REQUEST contexts (docs/protocol.md §4.2: 32 bytes from a CSPRNG, fresh per REQUEST). One
 * randomFillSync per context costs ~1.7 µs in a tight loop but ~8–20 µs between handshakes, when
 * OpenSSL's DRBG is out of the caches (measured with node --cpu-prof over 1 500 connects); cut
 * from a block read in one call, a context costs a copy. The block belongs to whoever opens many
 * channels (an AttestedServer), never to a module: its lifetime and memory (1 KiB) are its owner's.
 */
import { randomFillSync } from 'node:crypto';
import { CONTEXT_SIZE } from './frames.js';

/** Contexts per CSPRNG read. */
const PER_READ = 32;

export class ContextSource {
  readonly #block = new Uint8Array(CONTEXT_SIZE * PER_READ);
  /** Where the next unused context starts; the block's end when all are used. */
  #next = this.#block.length;

  /** A context never handed out before: a copy, so that a refill cannot change one in use. */
  readonly next = (): Uint8Array => {
    if (this.#next === this.#block.length) {
      randomFillSync(this.#block);
      this.#next = 0;
    }
    const context = this.#block.slice(this.#next, this.#next + CONTEXT_SIZE);
    this.#next += CONTEXT_SIZE;
    return context;
  };
}

/** A context from its own CSPRNG read, for a channel without an owner that keeps a ContextSource. */
export function freshContext(): Uint8Array {
  return randomFillSync(new Uint8Array(CONTEXT_SIZE));
}
