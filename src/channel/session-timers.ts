/**
 * The timers the pure session asks for ('arm-timer' / 'clear-timer' actions, session.ts), one per
 * key: a re-armed key replaces its timer, and a fired one is forgotten before the session hears of it.
 * One slot per key (there are three), not a Map: every channel has these, and most only ever arm
 * and clear 'handshake'.
 */
import type { TimerKey } from './session.js';

export class SessionTimers {
  #slots: Record<TimerKey, NodeJS.Timeout | undefined> = {
    handshake: undefined,
    challenge: undefined,
    response: undefined,
  };
  #onTimeout: (key: TimerKey) => void;

  constructor(onTimeout: (key: TimerKey) => void) {
    this.#onTimeout = onTimeout;
  }

  arm(key: TimerKey, ms: number): void {
    clearTimeout(this.#slots[key]);
    this.#slots[key] = setTimeout(() => {
      this.#slots[key] = undefined;
      this.#onTimeout(key);
    }, ms);
  }

  clear(key: TimerKey): void {
    const timer = this.#slots[key];
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#slots[key] = undefined;
  }

  clearAll(): void {
    this.clear('handshake');
    this.clear('challenge');
    this.clear('response');
  }
}
