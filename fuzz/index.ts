/**
 * `npm run fuzz`: mutated real inputs through every parser and decoder (fuzz/targets.ts), each with
 * an input count and a time budget. Counts per target: inputs, crashes (anything thrown that is not
 * an AttestationError, or ERR_INTERNAL), hangs (one input taking over 100 ms, twice) and accepted
 * mutations of signed data. Exits 1 if any of those is non-zero or fewer than --min inputs ran.
 *
 *   npm run fuzz                      # everything, >= 1 000 000 inputs
 *   npm run fuzz -- --scale 0.05      # a quick pass
 *   npm run fuzz -- --only frames,pem --seed 7
 *
 * Not part of `npm test`: it takes minutes. Findings are written to fuzz-findings/ (git-ignored).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { AttestationError } from '../dist/errors.js';
import { Rng } from './mutate.js';
import { TARGETS } from './targets.js';

const HANG_MS = 100;
const { values } = parseArgs({
  options: {
    scale: { type: 'string', default: '1' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    only: { type: 'string' },
    min: { type: 'string' },
  },
});
const scale = Number(values.scale);
const seed = Number(values.seed);
const only = values.only?.split(',');
const minTotal = values.min !== undefined ? Number(values.min) : Math.floor(1_000_000 * scale);
const findingsDir = new URL('../fuzz-findings/', import.meta.url);

interface Row {
  name: string;
  inputs: number;
  crashes: number;
  hangs: number;
  accepted: number;
  maxMs: number;
  seconds: number;
}

function describe(input: unknown): string {
  const replacer = (_k: string, v: unknown) =>
    v instanceof Uint8Array
      ? { hex: Buffer.from(v).toString('hex') }
      : v instanceof Date
        ? v.toISOString()
        : v;
  return JSON.stringify(input, replacer);
}

function record(name: string, kind: string, n: number, input: unknown, detail: string): void {
  mkdirSync(findingsDir, { recursive: true });
  const file = new URL(`${name}-${kind}-${seed}-${n}.json`, findingsDir);
  writeFileSync(file, `${JSON.stringify({ target: name, kind, seed, detail })}\n${describe(input)}\n`);
  if (n < 3) console.log(`  ${kind}: ${detail.split('\n')[0]} (input in ${file.pathname})`);
}

async function runOne(
  run: (input: unknown) => unknown,
  input: unknown,
): Promise<{ ms: number; error?: unknown }> {
  const t0 = performance.now();
  try {
    const r = run(input);
    if (r instanceof Promise) await r;
    return { ms: performance.now() - t0 };
  } catch (error) {
    return { ms: performance.now() - t0, error };
  }
}

const rows: Row[] = [];
console.log(`fuzz seed ${seed}, scale ${scale}`);
for (const target of TARGETS) {
  if (only && !only.includes(target.name)) continue;
  const prepared = await target.prepare();
  const rng = new Rng(seed ^ hash(target.name));
  const want = Math.max(1, Math.floor(target.inputs * scale));
  const budget = target.budgetMs * Math.max(scale, 0.05);
  const row: Row = { name: target.name, inputs: 0, crashes: 0, hangs: 0, accepted: 0, maxMs: 0, seconds: 0 };
  if (prepared.seeds.length === 0) {
    console.log(`${target.name}: no seeds`);
    row.crashes = 1;
    rows.push(row);
    continue;
  }
  // Unmeasured first runs of every seed: JIT compilation is not a hang.
  for (const s of prepared.seeds) await runOne(prepared.run, s);
  const started = performance.now();
  while (row.inputs < want && performance.now() - started < budget) {
    const index = rng.int(prepared.seeds.length);
    const input = prepared.mutate(rng, prepared.seeds[index], index);
    row.inputs++;
    const { ms, error } = await runOne(prepared.run, input);
    if (ms > row.maxMs) row.maxMs = ms;
    if (ms > HANG_MS) {
      // Up to three more runs, the fastest counting: a GC pause or a busy machine is not a hang.
      let again = await runOne(prepared.run, input);
      for (let i = 0; i < 2 && again.ms > HANG_MS; i++) {
        const next = await runOne(prepared.run, input);
        if (next.ms < again.ms) again = next;
      }
      if (again.ms > HANG_MS)
        record(
          target.name,
          'hang',
          row.hangs++,
          input,
          `${ms.toFixed(0)} ms, then ${again.ms.toFixed(0)} ms`,
        );
    }
    if (error !== undefined) {
      const internal = error instanceof AttestationError && error.code === 'ERR_INTERNAL';
      if (!(error instanceof AttestationError) || internal) {
        const e = (internal ? (error as AttestationError).cause : error) as Error;
        record(
          target.name,
          'crash',
          row.crashes++,
          input,
          `${e?.constructor?.name}: ${e?.message}\n${e?.stack ?? ''}`,
        );
      }
    } else if (prepared.unchanged && !prepared.unchanged(input)) {
      record(target.name, 'accepted', row.accepted++, input, 'mutated signed data was accepted');
    }
  }
  row.seconds = (performance.now() - started) / 1000;
  rows.push(row);
  console.log(
    `${target.name.padEnd(16)} ${String(row.inputs).padStart(8)} inputs  ${row.crashes} crashes  ${row.hangs} hangs  ${row.accepted} accepted  max ${row.maxMs.toFixed(1)} ms  ${row.seconds.toFixed(1)} s`,
  );
}

const total = rows.reduce((n, r) => n + r.inputs, 0);
const bad = rows.reduce((n, r) => n + r.crashes + r.hangs + r.accepted, 0);
console.log('\n| target | inputs | crashes | hangs (>100 ms) | accepted mutations | slowest input |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const r of rows)
  console.log(
    `| ${r.name} | ${r.inputs} | ${r.crashes} | ${r.hangs} | ${r.accepted} | ${r.maxMs.toFixed(1)} ms |`,
  );
console.log(`| **total** | ${total} | | | | |`);
console.log(
  `\nseed ${seed}: ${total} inputs, ${bad} findings${total < minTotal ? `, fewer than ${minTotal} inputs` : ''}`,
);
process.exitCode = bad > 0 || total < minTotal ? 1 : 0;

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}
