/**
 * The timers the pure session asks for ('arm-timer' / 'clear-timer' actions, session.ts), one per
 * key: a re-armed key replaces its timer, and a fired one is forgotten before the session hears of it.
 */
import type { TimerKey } from './session.js';

export class SessionTimers {
  #timers = new Map<TimerKey, NodeJS.Timeout>();
  #onTimeout: (key: TimerKey) => void;

  constructor(onTimeout: (key: TimerKey) => void) {
    this.#onTimeout = onTimeout;
  }

  arm(key: TimerKey, ms: number): void {
    clearTimeout(this.#timers.get(key));
    this.#timers.set(
      key,
      setTimeout(() => {
        this.#timers.delete(key);
        this.#onTimeout(key);
      }, ms),
    );
  }

  clear(key: TimerKey): void {
    clearTimeout(this.#timers.get(key));
    this.#timers.delete(key);
  }

  clearAll(): void {
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
  }
}
