/**
 * Re-attestation as the driver (channel.ts) runs it: when a request for fresh evidence cannot be
 * sent, and the `reattestEvery` schedule.
 */
import { AttestationError } from '../errors.js';

/** What reattest() needs to know of the channel to tell whether a REQUEST can go out now. */
export interface ReattestState {
  failure: AttestationError | undefined;
  open: boolean;
  destroyed: boolean;
  verifies: boolean;
  sessionOpen: boolean;
  peerEnded: boolean;
  weEnded: boolean;
}

/** Why a re-attestation cannot start, or undefined when it can. */
export function reattestRefusal(s: ReattestState): AttestationError | undefined {
  if (s.failure) return s.failure;
  if (!s.open || s.destroyed) return new AttestationError('ERR_CONNECTION_CLOSED', 'the channel is not open');
  if (!s.verifies)
    return new AttestationError(
      'ERR_INVALID_ARGUMENT',
      'this side does not verify the peer (no verify options)',
    );
  if (!s.sessionOpen || s.peerEnded)
    return new AttestationError('ERR_CONNECTION_CLOSED', 'the peer has ended the connection');
  if (s.weEnded)
    return new AttestationError(
      'ERR_CONNECTION_CLOSED',
      'this side has ended the connection (no REQUEST can be sent)',
    );
  return undefined;
}

/** The `reattestEvery` timer: one at a time, re-armed after each success, never keeping the process alive. */
export class ReattestSchedule {
  #timer: NodeJS.Timeout | undefined;
  readonly #every: number | undefined;
  readonly #run: () => void;

  constructor(every: number | undefined, run: () => void) {
    this.#every = every;
    this.#run = run;
  }

  arm(): void {
    if (this.#every === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#run();
    }, this.#every);
    this.#timer.unref();
  }

  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
