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

/** Median of `n` timed runs of `fn`, in milliseconds. */
export async function medianMs(fn: () => Promise<unknown>, n = 50): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
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
