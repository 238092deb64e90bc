/**
 * REQUEST contexts (docs/protocol.md §4.2: 32 bytes from a CSPRNG, fresh per REQUEST). Cut from a
 * block read in one call (NonceSource, evidence/challenger.ts) by whoever opens many channels: an
 * AttestedServer for its channels, a Verifier for the channels that verify with it; never by a
 * module: the block's lifetime and memory (1 KiB) are its owner's.
 */
import { randomFillSync } from 'node:crypto';
import { CHALLENGE_SIZE, NonceSource } from '../evidence/challenger.js';
import { CONTEXT_SIZE } from './frames.js';

if (CHALLENGE_SIZE !== CONTEXT_SIZE) throw new Error('a challenge nonce is a REQUEST context');

export class ContextSource extends NonceSource {
  constructor() {
    super(CONTEXT_SIZE);
  }
}

/** A context from its own CSPRNG read, for a channel without an owner that keeps a ContextSource. */
export function freshContext(): Uint8Array {
  return randomFillSync(new Uint8Array(CONTEXT_SIZE));
}
