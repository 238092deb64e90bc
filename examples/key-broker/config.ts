/**
 * The broker's configuration: which secrets exist, where each value comes from and which VMs may
 * have it. Validated strictly at start-up so that a typo stops the service instead of silently
 * releasing a key to the wrong VM.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { AttestationError } from '../../src/errors.js';
import { FORMAT_SECTIONS, unpinnedFormats } from '../../src/evidence/appraise.js';
import { type Policy, parsePolicy } from '../../src/evidence/policy.js';

export type BrokerEvidence = 'none' | 'configfs' | 'simulated-snp' | 'simulated-tdx';

export interface SecretEntry {
  name: string;
  /** Where the value came from, for messages (never the value itself). */
  source: { file: string } | { env: string };
  /** The value, read once at start-up. */
  value: Uint8Array;
  policy: Policy;
}

export interface BrokerConfig {
  listen: { host: string; port: number };
  /** Absolute path of the JSON-lines audit log. */
  auditLog: string;
  /** Evidence the broker itself presents ("none": only clients attest). */
  evidence: BrokerEvidence;
  /** "vendor": AMD and Intel roots; "simulated": the simulator's test roots (demo only). */
  trust: 'vendor' | 'simulated';
  secrets: Map<string, SecretEntry>;
}

/** Secret names are path segments: keep them to a safe alphabet so URLs and logs stay unambiguous. */
export const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Secrets are keys and passwords, not bulk data; a cap keeps a misconfigured path from loading a disk image. */
const MAX_SECRET_BYTES = 64 * 1024;

function bad(path: string, why: string): AttestationError {
  return new AttestationError('ERR_INVALID_ARGUMENT', `config ${path}: ${why}`, { details: { field: path } });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function onlyKeys(path: string, obj: Record<string, unknown>, allowed: string[]): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw bad(`${path}.${k}`, `unknown field (allowed: ${allowed.join(', ')})`);
  }
}

/**
 * A secret's policy must pin the workload of every format it admits: one that pins none would
 * give the secret to every VM on genuine hardware. The library decides what pins a workload
 * (workloadPins) and that a policy admits only the formats it names, so a policy with no section
 * (which admits every format) is refused here too.
 */
function checkSecretPolicy(path: string, raw: unknown): Policy {
  let policy: Policy;
  try {
    policy = parsePolicy(raw);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw bad(path, msg);
  }
  const unpinned = unpinnedFormats(policy);
  if (unpinned.length > 0) {
    const section = FORMAT_SECTIONS[unpinned[0]!];
    throw Object.hasOwn(policy, section)
      ? bad(
          `${path}.${section}`,
          'must pin the workload (a measurement, host data, ID key, MRTD, RTMR, config ID or owner)',
        )
      : bad(path, 'must have an "snp" and/or a "tdx" section that pins the workload');
  }
  if (policy.snp?.requireCrl !== undefined)
    throw bad(
      `${path}.snp.requireCrl`,
      'is a verification setting, not a property of the claims; not supported here',
    );
  return policy;
}

function readSecret(
  path: string,
  raw: unknown,
  baseDir: string,
  env: NodeJS.ProcessEnv,
): Pick<SecretEntry, 'source' | 'value'> {
  if (!isObject(raw)) throw bad(path, 'must be {"file": PATH} or {"env": NAME}');
  onlyKeys(path, raw, ['file', 'env']);
  const hasFile = raw.file !== undefined;
  const hasEnv = raw.env !== undefined;
  if (hasFile === hasEnv) throw bad(path, 'needs exactly one of "file" and "env"');
  let value: Buffer;
  let source: SecretEntry['source'];
  if (hasFile) {
    if (typeof raw.file !== 'string' || raw.file === '')
      throw bad(`${path}.file`, 'must be a non-empty path');
    const file = isAbsolute(raw.file) ? raw.file : resolve(baseDir, raw.file);
    try {
      value = readFileSync(file);
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw bad(`${path}.file`, `cannot read ${JSON.stringify(raw.file)} (${why})`);
    }
    source = { file };
  } else {
    if (typeof raw.env !== 'string' || !ENV_NAME.test(raw.env))
      throw bad(`${path}.env`, 'must be an environment variable name');
    // Own variables only: "constructor" or "toString" must not name Object.prototype's members.
    const text = Object.hasOwn(env, raw.env) ? env[raw.env] : undefined;
    if (text === undefined || text === '')
      throw bad(`${path}.env`, `environment variable ${raw.env} is not set`);
    value = Buffer.from(text, 'utf8');
    source = { env: raw.env };
  }
  if (value.length === 0) throw bad(path, 'the secret is empty');
  if (value.length > MAX_SECRET_BYTES) throw bad(path, `the secret is larger than ${MAX_SECRET_BYTES} bytes`);
  return { source, value: new Uint8Array(value) };
}

/** Validates a parsed config object. Relative paths are resolved against `baseDir`. */
export function parseConfig(
  raw: unknown,
  baseDir: string,
  env: NodeJS.ProcessEnv = process.env,
): BrokerConfig {
  if (!isObject(raw)) throw bad('(root)', 'must be a JSON object');
  onlyKeys('(root)', raw, ['$schema', 'comment', 'listen', 'auditLog', 'evidence', 'trust', 'secrets']);

  const listenRaw = raw.listen ?? { host: '127.0.0.1', port: 8443 };
  if (!isObject(listenRaw)) throw bad('listen', 'must be {"host": ..., "port": ...}');
  onlyKeys('listen', listenRaw, ['host', 'port']);
  const host = listenRaw.host ?? '127.0.0.1';
  const port = listenRaw.port ?? 8443;
  if (typeof host !== 'string' || host === '') throw bad('listen.host', 'must be a host name or address');
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535)
    throw bad('listen.port', 'must be an integer from 0 to 65535');

  if (typeof raw.auditLog !== 'string' || raw.auditLog === '')
    throw bad('auditLog', 'is required: the path of the JSON-lines audit log');
  const auditLog = isAbsolute(raw.auditLog) ? raw.auditLog : resolve(baseDir, raw.auditLog);

  const evidence = raw.evidence ?? 'none';
  const kinds: BrokerEvidence[] = ['none', 'configfs', 'simulated-snp', 'simulated-tdx'];
  if (!kinds.includes(evidence as BrokerEvidence))
    throw bad('evidence', `must be one of ${kinds.join(', ')}`);

  const trust = raw.trust ?? 'vendor';
  if (trust !== 'vendor' && trust !== 'simulated') throw bad('trust', 'must be "vendor" or "simulated"');

  if (!isObject(raw.secrets) || Object.keys(raw.secrets).length === 0)
    throw bad('secrets', 'must be an object with at least one secret');
  const secrets = new Map<string, SecretEntry>();
  for (const [name, spec] of Object.entries(raw.secrets)) {
    const path = `secrets.${name}`;
    if (!SECRET_NAME.test(name))
      throw bad(path, 'name must be 1-128 of A-Z a-z 0-9 . _ - (not starting with . _ -)');
    if (!isObject(spec)) throw bad(path, 'must be {"source": ..., "policy": ...}');
    onlyKeys(path, spec, ['source', 'policy', 'comment']);
    const { source, value } = readSecret(`${path}.source`, spec.source, baseDir, env);
    const policy = checkSecretPolicy(`${path}.policy`, spec.policy);
    secrets.set(name, { name, source, value, policy });
  }

  return {
    listen: { host, port },
    auditLog,
    evidence: evidence as BrokerEvidence,
    trust,
    secrets,
  };
}

/** Reads and validates the config file. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): BrokerConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw bad(
      'file',
      `cannot read ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw bad('file', `${JSON.stringify(file)} is not valid JSON: ${(err as Error).message}`);
  }
  return parseConfig(raw, dirname(resolve(file)), env);
}
