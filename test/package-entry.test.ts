/**
 * The package's entry points as a user loads them (the built dist/, through package.json
 * "exports", by package self-reference), each in a child process whose module loads are recorded
 * by a loader hook (test/helpers/record-loads.mjs):
 *
 * - `import('attested-channel')` loads no simulator module: the simulated platform's private keys
 *   are published, and production code must not load (or come to trust) them by accident;
 * - `import('attested-channel/simulated')` does load them (so the recording can see a simulator
 *   load at all) and works: its evidence verifies under its own roots, `simulated: true`;
 * - the command line loads the simulator only for the commands and flags that ask for it.
 *
 * Needs `npm run build` (npm test builds first); a dist/ older than src/ is refused, not tested.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'ac-entry-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A module of the simulated platform (the entry or any of providers/simulated*), as dist/ names it. */
const SIMULATOR = /\/dist\/(?:simulated\.js|evidence\/providers\/simulated[^/]*\.js)$/;

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

let runs = 0;
/** Runs `node --import record-loads.mjs …args` in the repository; returns stdout and the URLs loaded. */
function run(args: string[]): { out: string; loaded: string[] } {
  const log = join(work, `loads-${++runs}.txt`);
  const out = execFileSync(
    process.execPath,
    ['--import', join(root, 'test', 'helpers', 'record-loads.mjs'), ...args],
    {
      cwd: root,
      env: { ...process.env, RECORD_LOADS: log },
      encoding: 'utf8',
      timeout: 60_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let text = '';
  try {
    text = readFileSync(log, 'utf8');
  } catch {}
  return { out, loaded: text.split('\n').filter(Boolean) };
}

const evalModule = (code: string) => ['--input-type=module', '--eval', code];

beforeAll(() => {
  const built = statSync(join(root, 'dist', 'index.js'), { throwIfNoEntry: false });
  if (!built) throw new Error('dist/ is missing: run `npm run build` first');
  if (built.mtimeMs < newest(join(root, 'src')))
    throw new Error('dist/ is older than src/: run `npm run build` first');
});

describe("import('attested-channel')", () => {
  it('loads the library and no simulator module', () => {
    const r = run(
      evalModule("const m = await import('attested-channel'); console.log(JSON.stringify(Object.keys(m)));"),
    );
    const exported: string[] = JSON.parse(r.out);
    expect(exported).toContain('verifyEvidence');
    expect(exported).not.toContain('simulated');
    const ours = r.loaded.filter((u) => u.includes('/dist/'));
    // The recording works: the verifiers were loaded through it.
    expect(ours.some((u) => u.endsWith('/dist/index.js'))).toBe(true);
    expect(ours.some((u) => u.endsWith('/dist/evidence/snp/verify.js'))).toBe(true);
    expect(ours.some((u) => u.endsWith('/dist/evidence/tdx/verify.js'))).toBe(true);
    expect(ours.filter((u) => SIMULATOR.test(u))).toEqual([]);
  });
});

describe("import('attested-channel/simulated')", () => {
  it('loads the simulator, and its evidence verifies only under its own roots', () => {
    const r = run(
      evalModule(`
        import { randomBytes } from 'node:crypto';
        const { verifyEvidence } = await import('attested-channel');
        const { simulated } = await import('attested-channel/simulated');
        const out = {};
        for (const provider of [simulated.snp(), simulated.tdx()]) {
          const evidence = await provider.getEvidence(randomBytes(64));
          const claims = await verifyEvidence(evidence, { trustAnchors: simulated.trustAnchors(), offline: true });
          let refused;
          try { await verifyEvidence(evidence, { offline: true }); } catch (err) { refused = err.code; }
          out[provider.format] = { format: claims.format, simulated: claims.simulated, refused };
        }
        console.log(JSON.stringify(out));`),
    );
    expect(JSON.parse(r.out)).toEqual({
      'sev-snp': { format: 'sev-snp', simulated: true, refused: 'ERR_EVIDENCE_CHAIN' },
      tdx: { format: 'tdx', simulated: true, refused: 'ERR_EVIDENCE_CHAIN' },
    });
    const simulator = r.loaded.filter((u) => SIMULATOR.test(u));
    expect(simulator.some((u) => u.endsWith('/dist/simulated.js'))).toBe(true);
    expect(simulator.some((u) => u.endsWith('/dist/evidence/providers/simulated-keys.js'))).toBe(true);
  });
});

describe('the command line', () => {
  const bin = join(root, 'dist', 'cli', 'bin.js');
  const fixture = (name: string) => join(root, 'test', 'fixtures', 'snp', 'ms-tav__milan-v3', name);

  it('inspect and verify on real evidence load no simulator module', () => {
    for (const args of [
      ['inspect', fixture('report.bin')],
      ['verify', fixture('report.bin'), '--vek', fixture('vek.der'), '--offline', '--json'],
      ['serve', '--help'],
      ['tunnel', '--help'],
    ]) {
      let loaded: string[];
      try {
        loaded = run([bin, ...args]).loaded;
      } catch (err) {
        // verify exits 1 when it refuses (here: the VCEK has expired since): the loads are what matter.
        loaded = readFileSync(join(work, `loads-${runs}.txt`), 'utf8').split('\n');
        expect((err as { status?: number }).status, `${args.join(' ')}`).toBe(1);
      }
      expect(loaded.some((u) => u.endsWith('/dist/cli/bin.js'))).toBe(true);
      expect(
        loaded.filter((u) => SIMULATOR.test(u)),
        args.join(' '),
      ).toEqual([]);
    }
  });

  it('serve --simulate and demo load it (only when asked)', () => {
    // 192.0.2.1 (TEST-NET-1) is no local address: serve fails to listen after choosing its provider.
    const args = [
      bin,
      'serve',
      '--listen',
      '192.0.2.1:7000',
      '--forward',
      '127.0.0.1:9',
      '--simulate',
      'snp',
    ];
    let status: number | undefined;
    try {
      run(args);
    } catch (err) {
      status = (err as { status?: number }).status;
    }
    expect(status).toBe(1);
    const loaded = readFileSync(join(work, `loads-${runs}.txt`), 'utf8').split('\n');
    expect(loaded.some((u) => u.endsWith('/dist/evidence/providers/simulated-keys.js'))).toBe(true);
    const demo = run([bin, 'demo']);
    expect(demo.out).toContain('simulated');
    expect(demo.loaded.some((u) => u.endsWith('/dist/evidence/providers/simulated-keys.js'))).toBe(true);
  });
});
