// Each example runs with one command (npx tsx examples/<name>/index.ts), exits 0 on its own (no
// handle left open) and prints what its README promises.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { simulated } from '../src/evidence/providers/simulated.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsx = fileURLToPath(new URL('../node_modules/.bin/tsx', import.meta.url));

function runExample(name: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(tsx, [`examples/${name}/index.ts`], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

describe('examples', () => {
  it('quickstart: attests over TCP, round trip, exits 0', async () => {
    const r = await runExample('quickstart');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain(
      `attested: sev-snp Milan, measurement ${simulated.defaults.snpMeasurement}, simulated true`,
    );
    expect(r.out).toContain('reply: echo: hello');
    expect(r.out.trim().endsWith('done')).toBe(true);
  }, 120_000);

  it('websocket: plain HTTP and the attested channel on one http server, exits 0', async () => {
    const r = await runExample('websocket');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('http: plain HTTP on /health');
    expect(r.out).toContain(
      `attested over WebSocket: sev-snp measurement ${simulated.defaults.snpMeasurement}`,
    );
    expect(r.out).toContain('reply: echo over WebSocket: hello');
    expect(r.out.trim().endsWith('done')).toBe(true);
  }, 120_000);
});
