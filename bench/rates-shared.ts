/** What bench/rates.ts and its server process (bench/rates-server.ts) share: names, messages, probes. */

export const ALPN = 'attested-channel/1';

/** The simulated SNP platform's CHIP_ID, so key-proof policies can pin the platform as they must. */
export const CHIP_ID = 'c5'.repeat(64);

export const CONTENDERS = ['plain', 'today', 'batched', 'keyProof', 'batchedKeyProof'] as const;
export type Contender = (typeof CONTENDERS)[number];

export const LABELS: Record<Contender, string> = {
  plain: 'plain TLS',
  today: 'per-connection evidence (today)',
  batched: 'batched',
  keyProof: 'key proof (warm)',
  batchedKeyProof: 'batched + key proof',
};

/** Which of the options under test the build knows. */
export interface Features {
  /** `batch` (false | { maxSize, reportsPerSecond, burst }), server or connector. */
  batch: boolean;
  /** Attester `keyProof`, or (client side) policy `reuse`. */
  keyProof: boolean;
}

export interface ServerCounters {
  cpu: NodeJS.CpuUsage;
  reports: number;
  refused: number;
  /** Server-side failures by code since `begin`. */
  errors: Record<string, number>;
}

export type ToServer = { type: 'begin' } | { type: 'end' } | { type: 'idle' } | { type: 'exit' };
export type FromServer =
  | { type: 'ready'; ports: Partial<Record<Contender, number>>; features: Features }
  | { type: 'counters'; counters: ServerCounters }
  | { type: 'idle' };

/**
 * Whether a build knows option `key`: `make` passes it a value of the wrong type, which a build
 * that validates it refuses (ERR_INVALID_ARGUMENT naming it) and one that does not know it ignores.
 */
export function probeOption(make: () => unknown, key: string): boolean {
  let made: unknown;
  try {
    made = make();
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    return e.code === 'ERR_INVALID_ARGUMENT' && String(e.message).includes(key);
  }
  try {
    (made as { close?: () => void } | undefined)?.close?.();
  } catch {}
  return false;
}
