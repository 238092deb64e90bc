/**
 * What an AttestedChannel holds until its exchange completes: the promise attestedConnect() and
 * the server's 'channel' event wait on, the one write the Writable side lets through before open
 * (Writable serialises writes, so there is at most one), and _final's callback. On open they are
 * handed back to run; on failure, to be failed. No DATA leaves before open (protocol.md §4).
 */
import type { AttestationError } from '../errors.js';

type Callback = (error?: Error | null) => void;
export type HeldWrite = { chunks: Buffer[]; callback: Callback };

/** What #settle becomes once settled: later calls change nothing, as on a settled promise. */
const SETTLED = Object.freeze({ resolve: () => {}, reject: () => {} });

export class Opening<T> {
  readonly promise: Promise<T>;
  /** SETTLED once the promise has settled (the resolving functions are not kept for the channel's life). */
  #settle!: { resolve: (value: T) => void; reject: (error: AttestationError) => void };
  #held: HeldWrite | undefined;
  #final: Callback | undefined;

  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    // Nobody may be listening yet; the error is also delivered through the promise or event.
    this.promise.catch(() => {});
  }

  resolve(value: T): void {
    const settle = this.#settle;
    this.#settle = SETTLED;
    settle.resolve(value);
  }

  reject(error: AttestationError): void {
    const settle = this.#settle;
    this.#settle = SETTLED;
    settle.reject(error);
  }

  hold(write: HeldWrite): void {
    this.#held = write;
  }

  holdFinal(callback: Callback): void {
    this.#final = callback;
  }

  /** The held write and final callback, once: the channel runs them (open) or fails them. */
  release(): { held: HeldWrite | undefined; final: Callback | undefined } {
    const released = { held: this.#held, final: this.#final };
    this.#held = undefined;
    this.#final = undefined;
    return released;
  }
}
