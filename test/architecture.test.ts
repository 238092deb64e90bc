/**
 * The house rules of docs/architecture.md, read from the sources of src/ (imports and top-level
 * declarations), so that breaking one fails a test rather than a review:
 *
 * - src/evidence/ never imports src/channel/, src/http/ or src/cli/ (evidence is below transport);
 * - the simulator (providers/simulated*) is imported statically only by itself and the
 *   `attested-channel/simulated` entry (src/simulated.ts), and dynamically only by the CLI; the
 *   production entry (src/index.ts) reaches none of it;
 * - src/channel/channel.ts (the driver) stays at most 450 lines.
 *
 * (No import cycles: test/imports.test.ts. The DER/X.509 layer knows no vendor:
 * test/x509/layering.test.ts. No module-level mutable state: test/architecture/module-state.test.ts.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

interface Imports {
  /** Static imports and re-exports, type-only included (paths relative to src/). */
  static: string[];
  /** import('…') expressions. */
  dynamic: string[];
}

/** Every relative import of every module of src/, keyed by its path relative to src/. */
function importsOf(files = sources(SRC)): Map<string, Imports> {
  const out = new Map<string, Imports>();
  const at = (file: string, spec: string) =>
    relative(SRC, resolve(dirname(file), spec.replace(/\.js$/, '.ts'))).replace(/\\/g, '/');
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const staticSpecs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/g)];
    const sideEffect = [...text.matchAll(/(?:^|\n)\s*import\s+'(\.{1,2}\/[^']+)'/g)];
    const dynamic = [...text.matchAll(/\bimport\(\s*'(\.{1,2}\/[^']+)'\s*\)/g)];
    out.set(relative(SRC, file).replace(/\\/g, '/'), {
      static: [...staticSpecs, ...sideEffect].map((m) => at(file, m[1]!)),
      dynamic: dynamic.map((m) => at(file, m[1]!)),
    });
  }
  return out;
}

const isSimulator = (path: string) => /^evidence\/providers\/simulated[^/]*\.ts$/.test(path);

/** Modules reachable from `entry` through static imports. */
function staticClosure(graph: Map<string, Imports>, entry: string): Set<string> {
  const seen = new Set<string>();
  const walk = (m: string) => {
    if (seen.has(m)) return;
    seen.add(m);
    for (const d of graph.get(m)?.static ?? []) walk(d);
  };
  walk(entry);
  return seen;
}

/** Every breach of the layering rules in `graph`, one line each. */
function layeringProblems(graph: Map<string, Imports>): string[] {
  const bad: string[] = [];
  const simulatorish = (m: string) => isSimulator(m) || m === 'simulated.ts';
  for (const [file, { static: s, dynamic: d }] of graph) {
    if (file.startsWith('evidence/'))
      for (const dep of [...s, ...d])
        if (/^(channel|http|cli)\//.test(dep)) bad.push(`${file} → ${dep} (evidence is below transport)`);
    for (const dep of s)
      if (simulatorish(dep) && !isSimulator(file) && file !== 'simulated.ts')
        bad.push(`${file} imports ${dep} (only src/simulated.ts may)`);
    for (const dep of d)
      if (simulatorish(dep) && !file.startsWith('cli/')) bad.push(`${file} loads ${dep} (only the CLI may)`);
  }
  for (const m of staticClosure(graph, 'index.ts'))
    if (simulatorish(m)) bad.push(`index.ts reaches ${m} (the production entry loads no simulator)`);
  return bad;
}

describe('layering', () => {
  const graph = importsOf();

  it('reads the graph: static and dynamic imports resolve to modules of src/', () => {
    expect(graph.size).toBeGreaterThan(40);
    for (const [file, { static: s, dynamic: d }] of graph)
      for (const dep of [...s, ...d]) expect(graph.has(dep), `${file} imports ${dep}`).toBe(true);
    // The CLI's dynamic loads are seen (so the rules are not vacuous).
    expect(graph.get('cli/endpoint-args.ts')?.dynamic).toContain('simulated.ts');
    expect(staticClosure(graph, 'index.ts').has('evidence/verify.ts')).toBe(true);
    expect([...staticClosure(graph, 'simulated.ts')].filter(isSimulator).length).toBeGreaterThan(2);
  });

  it('holds in src/: evidence imports no channel/http/cli; the simulator only from src/simulated.ts and the CLI; index.ts reaches none of it', () => {
    expect(layeringProblems(graph)).toEqual([]);
  });

  it('catches each kind of breach', () => {
    const fake = new Map(graph);
    fake.set('evidence/bad.ts', { static: ['channel/channel.ts'], dynamic: ['http/server.ts'] });
    fake.set('channel/bad.ts', {
      static: ['evidence/providers/simulated-keys.ts'],
      dynamic: ['simulated.ts'],
    });
    fake.set('index.ts', { static: [...graph.get('index.ts')!.static, 'simulated.ts'], dynamic: [] });
    expect(layeringProblems(fake).sort()).toEqual(
      [
        'evidence/bad.ts → channel/channel.ts (evidence is below transport)',
        'evidence/bad.ts → http/server.ts (evidence is below transport)',
        'channel/bad.ts imports evidence/providers/simulated-keys.ts (only src/simulated.ts may)',
        'channel/bad.ts loads simulated.ts (only the CLI may)',
        'index.ts imports simulated.ts (only src/simulated.ts may)',
        ...[...staticClosure(fake, 'simulated.ts')]
          .filter((m) => isSimulator(m) || m === 'simulated.ts')
          .map((m) => `index.ts reaches ${m} (the production entry loads no simulator)`),
      ].sort(),
    );
  });
});

describe('the channel driver stays readable (issue 11)', () => {
  it('channel.ts is at most 450 lines: a new concern goes into a module of its own', () => {
    const lines = readFileSync(join(SRC, 'channel/channel.ts'), 'utf8').split('\n').length;
    expect(lines).toBeLessThanOrEqual(450);
  });
});
