/**
 * A tiny benchmark harness. Every figure is reported next to a baseline measured in the same
 * run (machines here are noisy, so absolute numbers mean little and ratios mean more).
 */
import { performance } from 'node:perf_hooks';

export interface Row {
  section: string;
  metric: string;
  value: number;
  unit: string;
  baseline?: { metric: string; value: number };
  /** value / baseline (or baseline / value where lower is better), compared with target. */
  ratio?: number;
  target?: string;
  pass?: boolean;
}

export const rows: Row[] = [];

export function record(row: Row): void {
  rows.push(row);
  const base = row.baseline ? `  vs ${row.baseline.metric} ${fmt(row.baseline.value)}` : '';
  const ratio = row.ratio !== undefined ? `  ratio ${row.ratio.toFixed(3)}` : '';
  const target = row.target ? `  target ${row.target} ${row.pass ? 'PASS' : 'FAIL'}` : '';
  console.log(`[${row.section}] ${row.metric}: ${fmt(row.value)} ${row.unit}${base}${ratio}${target}`);
}

export function fmt(n: number): string {
  if (Number.isNaN(n)) return '—';
  if (n >= 100) return n.toFixed(0);
  if (n >= 1) return n.toFixed(2);
  return n.toPrecision(3);
}

/** Runs `fn` repeatedly for about `ms` milliseconds (after a warm-up) and returns ops per second. */
export async function opsPerSecond(fn: () => unknown | Promise<unknown>, ms = 1500): Promise<number> {
  const warmEnd = performance.now() + Math.min(300, ms / 4);
  while (performance.now() < warmEnd) await fn();
  let n = 0;
  const start = performance.now();
  const end = start + ms;
  while (performance.now() < end) {
    await fn();
    n++;
  }
  return (n * 1000) / (performance.now() - start);
}

/** Per-contender timings of `interleaved()`, in milliseconds. */
export interface Timings {
  median: number;
  best: number;
  all: number[];
}

/**
 * What a contender may return: work to finish after the clock stopped (closing a connection and
 * waiting for the far end to see it), so that no contender's leftovers land in another's time.
 */
export type Settle = () => Promise<void>;

/**
 * Times each contender once per round, rotating which goes first, for `rounds` rounds. The machines
 * here lose the CPU for whole stretches (identical work swings by 10×), so contenders timed one
 * after another in separate blocks meet different weather; interleaved, they meet the same.
 */
export async function interleaved<K extends string>(
  contenders: Record<K, () => Promise<Settle | unknown>>,
  rounds: number,
): Promise<Record<K, Timings>> {
  const names = Object.keys(contenders) as K[];
  const times = new Map<K, number[]>(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(r + i) % names.length]!;
      const t0 = performance.now();
      const settle = await contenders[name]();
      times.get(name)!.push(performance.now() - t0);
      if (typeof settle === 'function') await (settle as Settle)();
    }
  }
  const out = {} as Record<K, Timings>;
  for (const name of names) {
    const all = times.get(name)!.sort((a, b) => a - b);
    out[name] = { median: all[Math.floor(all.length / 2)]!, best: all[0]!, all };
  }
  return out;
}

export function markdownTable(): string {
  const head =
    '| section | metric | value | baseline (same run) | ratio | target |\n|---|---|---|---|---|---|';
  const body = rows.map((r) => {
    const base = r.baseline ? `${r.baseline.metric}: ${fmt(r.baseline.value)}` : '';
    const ratio = r.ratio !== undefined ? r.ratio.toFixed(3) : '';
    const target = r.target ? `${r.target} ${r.pass ? '✓' : '✗'}` : '';
    return `| ${r.section} | ${r.metric} | ${fmt(r.value)} ${r.unit} | ${base} | ${ratio} | ${target} |`;
  });
  return [head, ...body].join('\n');
}

/**
 * `n` distinct 64-byte REPORT_DATA values (round i's is i, big-endian, in its first four bytes),
 * for benches that must give the verifier a new report each round: the Verifier keeps signature
 * verdicts by content (src/evidence/verdicts.ts), so a report seen before costs no signature check.
 */
export function distinctReportData(n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => {
    const d = new Uint8Array(64).fill(1);
    new DataView(d.buffer).setUint32(0, i);
    return d;
  });
}

/**
 * Runs `fn` and checks, from the verifier's counters, that the signature cache `cache` was
 * consulted `expected` times and never answered: every timed verification checked its signature.
 */
export async function signatureMisses<T>(
  verifier: { stats(): Record<string, { hits: number; misses: number }> },
  cache: string,
  expected: number,
  fn: () => Promise<T>,
): Promise<T> {
  const counts = () => {
    const s = verifier.stats()[cache];
    if (!s) throw new Error(`the verifier has no ${cache} cache`);
    return s;
  };
  const before = counts();
  const out = await fn();
  const after = counts();
  const hits = after.hits - before.hits;
  const misses = after.misses - before.misses;
  if (hits !== 0 || misses !== expected)
    throw new Error(
      `${cache}: ${hits} hits and ${misses} misses in the timed rounds, expected 0 and ${expected}`,
    );
  return out;
}
