/**
 * No module-level mutable state in src/ (issue 11 item 1): everything verification keeps lives in
 * a Verifier (src/evidence/verifier.ts), everything a channel keeps in its objects. A scan of every
 * source file for top-level `let`/`var`, top-level weak collections, and top-level collections,
 * array or object literals and buffers that the file then changes (a constant lookup table built
 * once is not state), and static class collections.
 *
 * ALLOWED lists what may remain, each with why: only the one documented exception,
 * verifyEvidence()'s small registry of default Verifiers. The test fails for an entry that no
 * longer matches anything, so the list only shrinks.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** "file: name" → why it may stay. */
const ALLOWED: Record<string, string> = {
  // The one exception (docs/api.md "verifyEvidence"): bounded, found by content.
  'evidence/verify.ts: defaultVerifiers': 'the registry of default Verifiers behind verifyEvidence()',
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

const COLLECTION = /^new (Map|Set|WeakMap|WeakSet|Array)\b/;
/**
 * Built-in values a module may hold as constants: immutable ones (Date, URL, RegExp), stateless
 * codecs (TextDecoder without `stream`), and typed arrays and views, which the mutation check below
 * still covers. An instance of any other class (one of ours, say) may carry state of its own.
 */
const VALUE_CLASS =
  /^new (Date|URL|RegExp|TextDecoder|TextEncoder|DataView|(Ui|I)nt(8|16|32)Array|Uint8ClampedArray|Float(32|64)Array|Big(Ui|I)nt64Array)\b/;
const MUTATORS = 'push|pop|shift|unshift|splice|sort|reverse|fill|copyWithin|set|add|delete|clear';

/** Names of the module-level mutable state that `text` declares. */
function moduleState(text: string): string[] {
  const found: string[] = [];
  // Comments out, so that prose never counts (and code in a comment does not either).
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  for (const m of code.matchAll(
    /^(?:export\s+)?(let|var|const)\s+([A-Za-z_$][\w$]*)\s*(?::[^=\n;]+)?(?:=\s*([^\n]*))?/gm,
  )) {
    const [, kind, name, init = ''] = m as unknown as [string, string, string, string | undefined];
    if (kind !== 'const') {
      found.push(name);
      continue;
    }
    // Weak collections are caches by nature; a Map, Set or array only when the module changes it
    // (a constant lookup table built once is not state).
    if (/^new (WeakMap|WeakSet)\b/.test(init)) {
      found.push(name);
      continue;
    }
    // An object of a class of its own (a nonce source, a cache) at module level is state whatever
    // the module does with it.
    if (/^new [A-Za-z_$]/.test(init) && !COLLECTION.test(init) && !VALUE_CLASS.test(init)) {
      found.push(name);
      continue;
    }
    // A literal or buffer that the module itself changes is state too.
    if (COLLECTION.test(init) || /^(\[|\{|Buffer\.alloc|new Uint8Array|randomBytes)/.test(init)) {
      const mutated = new RegExp(
        `(randomFillSync\\(\\s*${name}\\b|\\b${name}(\\.(${MUTATORS})\\(|\\[[^\\]]*\\]\\s*(=[^=]|\\+=|-=|\\+\\+|--)|\\.[A-Za-z_$][\\w$]*\\s*=[^=]))`,
      );
      if (mutated.test(code)) found.push(name);
    }
  }
  // Static class fields are module-level state in a class's clothing.
  for (const m of code.matchAll(
    /^\s+(?:(?:private|protected|public|readonly)\s+)*static\s+(?:readonly\s+)?#?([A-Za-z_$][\w$]*)\s*(?::[^=\n]+)?=\s*([^\n]*)/gm,
  )) {
    const [, name, init] = m as unknown as [string, string, string];
    if (COLLECTION.test(init) || /^(\[|\{)/.test(init)) found.push(name);
  }
  return found;
}

describe('module-level mutable state in src/', () => {
  it('the scan finds each kind of state it looks for, and passes constants', () => {
    const sample = [
      'let last: string | undefined;',
      'export let count = 0;',
      'const cache = new Map<string, number>();',
      'cache.set("a", 1);',
      'const TABLE = new Set([1, 2]);',
      'const seen = new WeakSet<object>();',
      'const pool: Buffer[] = [];',
      'pool.push(Buffer.alloc(1));',
      'const table = {} as Record<string, number>;',
      'table[key] = 1;',
      'const bytes = Buffer.alloc(8);',
      'randomFillSync(bytes);',
      'class A {',
      '  private static readonly registry = new Map();',
      '}',
      'const SHARED = new ChallengerState();',
      "const WHEN = new Date('2024-01-01T00:00:00Z');",
      "const UTF8 = new TextDecoder('utf-8', { fatal: true });",
      'const FROZEN = Object.freeze({ a: 1 });',
      "const LIST = ['a', 'b'];",
      'const OID = { x: "1.2" };',
      '// let commented = 1;',
      '/* const hidden = new Map(); */',
      'function f() {',
      '  let local = 0;',
      '  const inner = new Map();',
      '}',
    ].join('\n');
    expect(moduleState(sample)).toEqual([
      'last',
      'count',
      'cache',
      'seen',
      'pool',
      'table',
      'bytes',
      'SHARED',
      'registry',
    ]);
  });

  const found = sources(SRC).flatMap((path) => {
    const file = relative(SRC, path).split('\\').join('/');
    return moduleState(readFileSync(path, 'utf8')).map((name) => `${file}: ${name}`);
  });

  it('src/ holds none beyond the allowlist', () => {
    expect(found.filter((entry) => !(entry in ALLOWED))).toEqual([]);
  });

  it('every allowlist entry still names something (remove an entry once its state is gone)', () => {
    expect(Object.keys(ALLOWED).filter((entry) => !found.includes(entry))).toEqual([]);
  });

  it('src/evidence keeps nothing outside the Verifier but the default-Verifier registry and the simulators', () => {
    const evidence = found.filter((e) => e.startsWith('evidence/') && !e.startsWith('evidence/providers/'));
    expect(evidence).toEqual(['evidence/verify.ts: defaultVerifiers']);
  });
});
