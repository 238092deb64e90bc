import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog, clip } from '../examples/key-broker/audit.js';
import { loadConfig, parseConfig } from '../examples/key-broker/config.js';
import { AttestationError } from '../src/errors.js';
import { unpinnedFormats } from '../src/evidence/appraise.js';

const M = 'ab'.repeat(48);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kb-config-'));
  await writeFile(join(dir, 'key.bin'), 'k3y-bytes');
  await writeFile(join(dir, 'empty.bin'), '');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function base(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    auditLog: 'audit.log',
    secrets: { key: { source: { file: 'key.bin' }, policy: { snp: { measurements: [M] } } } },
    ...overrides,
  };
}

function failure(raw: unknown, env: NodeJS.ProcessEnv = {}): { code: string; field: unknown } | undefined {
  try {
    parseConfig(raw, dir, env);
  } catch (err) {
    if (!(err instanceof AttestationError)) return { code: 'not-an-AttestationError', field: undefined };
    return { code: err.code, field: err.details.field };
  }
  return undefined;
}

describe('key broker config', () => {
  it('accepts a minimal config, resolving paths against the config folder and reading the value', () => {
    const c = parseConfig(base(), dir, {});
    expect(c.auditLog).toBe(join(dir, 'audit.log'));
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 8443 });
    expect(c.evidence).toBe('none');
    expect(c.trust).toBe('vendor');
    const s = c.secrets.get('key');
    expect(Buffer.from(s!.value).toString()).toBe('k3y-bytes');
    expect(s!.policy.snp?.measurements).toEqual([M]);
  });

  it('reads a value from an environment variable', () => {
    const raw = base({
      secrets: { db: { source: { env: 'DB_PASSWORD' }, policy: { tdx: { mrTd: [M.toUpperCase()] } } } },
    });
    const c = parseConfig(raw, dir, { DB_PASSWORD: 'hunter2' });
    expect(Buffer.from(c.secrets.get('db')!.value).toString()).toBe('hunter2');
    // The policy is normalised by parsePolicy (hex lower-cased).
    expect(c.secrets.get('db')!.policy.tdx?.mrTd).toEqual([M]);
  });

  it('loads the shipped example config', () => {
    const c = loadConfig(new URL('../examples/key-broker/config.example.json', import.meta.url).pathname, {});
    expect([...c.secrets.keys()].sort()).toEqual(['api-token', 'disk-key']);
    expect(c.trust).toBe('simulated');
  });

  it.each([
    ['not an object', [], '(root)'],
    ['unknown top-level field', base({ secret: {} }), '(root).secret'],
    ['missing audit log', base({ auditLog: undefined }), 'auditLog'],
    ['bad port', base({ listen: { port: 70000 } }), 'listen.port'],
    ['unknown listen field', base({ listen: { hots: 'x' } }), 'listen.hots'],
    ['unknown evidence kind', base({ evidence: 'sgx' }), 'evidence'],
    ['unknown trust', base({ trust: 'any' }), 'trust'],
    ['no secrets', base({ secrets: {} }), 'secrets'],
    [
      'bad secret name',
      base({
        secrets: { '../etc': { source: { file: 'key.bin' }, policy: { snp: { measurements: [M] } } } },
      }),
      'secrets.../etc',
    ],
    [
      'unknown secret field',
      base({
        secrets: { k: { source: { file: 'key.bin' }, policy: { snp: { measurements: [M] } }, ttl: 1 } },
      }),
      'secrets.k.ttl',
    ],
    [
      'both file and env',
      base({
        secrets: { k: { source: { file: 'key.bin', env: 'X' }, policy: { snp: { measurements: [M] } } } },
      }),
      'secrets.k.source',
    ],
    [
      'missing file',
      base({ secrets: { k: { source: { file: 'nope.bin' }, policy: { snp: { measurements: [M] } } } } }),
      'secrets.k.source.file',
    ],
    [
      'empty file',
      base({ secrets: { k: { source: { file: 'empty.bin' }, policy: { snp: { measurements: [M] } } } } }),
      'secrets.k.source',
    ],
    [
      'unset env',
      base({ secrets: { k: { source: { env: 'NOT_SET' }, policy: { snp: { measurements: [M] } } } } }),
      'secrets.k.source.env',
    ],
    [
      'invalid policy field (typo)',
      base({ secrets: { k: { source: { file: 'key.bin' }, policy: { snp: { measurement: [M] } } } } }),
      'secrets.k.policy',
    ],
    [
      'policy without a section',
      base({ secrets: { k: { source: { file: 'key.bin' }, policy: {} } } }),
      'secrets.k.policy',
    ],
    [
      'SNP policy that pins nothing',
      base({ secrets: { k: { source: { file: 'key.bin' }, policy: { snp: { allowDebug: false } } } } }),
      'secrets.k.policy.snp',
    ],
    [
      'TDX policy that pins nothing',
      base({ secrets: { k: { source: { file: 'key.bin' }, policy: { tdx: { mrSeam: [M] } } } } }),
      'secrets.k.policy.tdx',
    ],
    [
      'policy that pins SNP but admits any TDX guest',
      base({
        secrets: { k: { source: { file: 'key.bin' }, policy: { snp: { measurements: [M] }, tdx: {} } } },
      }),
      'secrets.k.policy.tdx',
    ],
    [
      'requireCrl per secret',
      base({
        secrets: {
          k: { source: { file: 'key.bin' }, policy: { snp: { measurements: [M], requireCrl: true } } },
        },
      }),
      'secrets.k.policy.snp.requireCrl',
    ],
  ])('refuses %s, naming the field', (_name, raw, field) => {
    expect(failure(raw)).toEqual({ code: 'ERR_INVALID_ARGUMENT', field });
  });

  it('refuses a file that is not JSON with a clear error', async () => {
    const f = join(dir, 'bad.json');
    await writeFile(f, '{ "auditLog": ');
    expect(() => loadConfig(f, {})).toThrow(/not valid JSON/);
  });

  it('property: any JSON value is either a valid config or an ERR_INVALID_ARGUMENT, never a crash', () => {
    const secretSpec = fc.record(
      {
        source: fc.oneof(
          fc.record({ file: fc.constantFrom('key.bin', 'nope', '') }),
          fc.record({ env: fc.string() }),
        ),
        policy: fc.oneof(fc.jsonValue(), fc.constant({ snp: { measurements: [M] } })),
      },
      { requiredKeys: [] },
    );
    const config = fc.oneof(
      fc.jsonValue(),
      fc.record(
        {
          auditLog: fc.oneof(fc.string(), fc.jsonValue()),
          listen: fc.jsonValue(),
          evidence: fc.oneof(fc.constantFrom('none', 'configfs'), fc.jsonValue()),
          trust: fc.oneof(fc.constantFrom('vendor', 'simulated'), fc.jsonValue()),
          secrets: fc.dictionary(fc.string(), secretSpec),
        },
        { requiredKeys: [] },
      ),
    );
    fc.assert(
      fc.property(config, (raw) => {
        try {
          const c = parseConfig(raw, dir, { X: 'v' });
          // Accepted configs hold only pinned policies and non-empty values.
          for (const s of c.secrets.values()) {
            expect(s.value.length).toBeGreaterThan(0);
            expect(unpinnedFormats(s.policy)).toEqual([]);
          }
        } catch (err) {
          expect(err).toBeInstanceOf(AttestationError);
          expect((err as AttestationError).code).toBe('ERR_INVALID_ARGUMENT');
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe('audit log', () => {
  it('appends one JSON line per entry, in order, with mode 0600, never rewriting earlier lines', async () => {
    const path = join(dir, 'audit-order.log');
    await writeFile(path, '{"earlier":"line"}\n', { mode: 0o600 });
    const log = await AuditLog.open(path);
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        log.write({ event: 'request', decision: 'denied', secret: `s${i}`, reason: 'r' }),
      ),
    );
    await log.close();
    const lines = (await readFile(path, 'utf8')).trimEnd().split('\n');
    expect(lines[0]).toBe('{"earlier":"line"}');
    const entries = lines.slice(1).map((l) => JSON.parse(l));
    expect(entries.map((e) => e.secret)).toEqual(Array.from({ length: 50 }, (_, i) => `s${i}`));
    expect(entries.every((e) => typeof e.time === 'string' && !Number.isNaN(Date.parse(e.time)))).toBe(true);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('rejects writes after close so a caller never believes an unrecorded decision was recorded', async () => {
    const log = await AuditLog.open(join(dir, 'audit-closed.log'));
    await log.close();
    await expect(log.write({ event: 'request', decision: 'denied', reason: 'x' })).rejects.toThrow();
  });

  it('clips attacker-chosen text', () => {
    expect(clip('a'.repeat(1000)).length).toBeLessThanOrEqual(201);
    expect(clip('short')).toBe('short');
  });
});
