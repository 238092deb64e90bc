/** Loads the real Azure CVM fixtures (test/fixtures/azure/<id>/) and applies their tamper mutations. */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AttestationError } from '../../src/errors.js';
import { parseHclReport, parseRuntimeClaims } from '../../src/evidence/azure/hcl.js';
import type { AzureEvidenceInput, AzureVerifyOptions } from '../../src/evidence/azure/verify.js';

export const AZURE_DIR = fileURLToPath(new URL('../fixtures/azure/', import.meta.url));
export const FIXTURES_DIR = fileURLToPath(new URL('../fixtures/', import.meta.url));

type Mutation =
  | { file: string; op: 'xor' | 'set' | 'add'; offset: number; value: number }
  | { file: string; op: 'truncate'; length: number }
  | { file: string; op: 'reverse'; start: number; end: number }
  | { file: string; op: 'replace'; from: { vector?: string; file?: string; fixture?: string } }
  | { file: 'pcrs.json'; pcr: string; byte: number; op: 'xor'; value: number };

export interface TamperCase {
  id: string;
  cli?: boolean;
  mutations?: Mutation[];
  extra_args?: Array<[string, { derive: string }]>;
  check?: { claim: string; must_differ_from: string };
  expect?: { ok: boolean; codes?: string[] };
}

export interface AzureMeta {
  id: string;
  format: 'azure-sev-snp' | 'azure-tdx';
  verify_at: string;
  cli: { inputs: Record<string, string>; at: string; policy: { azure?: Record<string, unknown> } | null };
  expected_claims: Record<string, unknown>;
  values: Record<string, unknown>;
  tamper: TamperCase[];
  expected_without_policy?: { codes: string[] };
  expected_without_collateral?: { codes: string[] };
}

export interface AzureFixture {
  id: string;
  meta: AzureMeta;
  files: Map<string, Uint8Array>;
}

export function azureFixtures(): AzureFixture[] {
  return readdirSync(AZURE_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => loadFixture(d.name));
}

export function loadFixture(id: string): AzureFixture {
  const dir = `${AZURE_DIR}${id}/`;
  const meta = JSON.parse(readFileSync(`${dir}meta.json`, 'utf8')) as AzureMeta;
  const files = new Map<string, Uint8Array>();
  for (const name of Object.values(meta.cli.inputs))
    files.set(name, new Uint8Array(readFileSync(dir + name)));
  for (const extra of ['chain.pem'])
    try {
      files.set(extra, new Uint8Array(readFileSync(dir + extra)));
    } catch {}
  return { id, meta, files };
}

/** Applies a tamper case's mutations to copies of the fixture's files. */
export function mutate(fx: AzureFixture, mutations: Mutation[]): Map<string, Uint8Array> {
  const files = new Map([...fx.files].map(([k, v]) => [k, new Uint8Array(v)]));
  for (const m of mutations) {
    const b = files.get(m.file);
    if (!b) throw new Error(`${fx.id}: no file ${m.file}`);
    if ('pcr' in m) {
      const pcrs = JSON.parse(Buffer.from(b).toString('utf8')) as { sha256: Record<string, string> };
      const v = Buffer.from(pcrs.sha256[m.pcr]!, 'hex');
      v[m.byte]! ^= m.value;
      pcrs.sha256[m.pcr] = v.toString('hex');
      files.set(m.file, new Uint8Array(Buffer.from(JSON.stringify(pcrs))));
    } else if (m.op === 'xor') b[m.offset]! ^= m.value;
    else if (m.op === 'set') b[m.offset] = m.value;
    else if (m.op === 'add') b[m.offset] = (b[m.offset]! + m.value) & 0xff;
    else if (m.op === 'truncate') files.set(m.file, b.subarray(0, m.length));
    else if (m.op === 'reverse') b.subarray(m.start, m.end).reverse();
    else if (m.op === 'replace') {
      const path = m.from.fixture
        ? FIXTURES_DIR + m.from.fixture
        : `${AZURE_DIR}${m.from.vector}/${m.from.file ?? m.file}`;
      files.set(m.file, new Uint8Array(readFileSync(path)));
    }
  }
  return files;
}

export function inputOf(fx: AzureFixture, files = fx.files): AzureEvidenceInput {
  const inputs = fx.meta.cli.inputs;
  const get = (opt: string) => (inputs[opt] !== undefined ? files.get(inputs[opt]!) : undefined);
  const pcrs = JSON.parse(Buffer.from(get('--pcrs')!).toString('utf8'));
  const vek = get('--vek');
  const tdQuote = get('--td-quote');
  const collateral = get('--collateral');
  const chain = files.get('chain.pem');
  return {
    report: get('evidence')!,
    ...(vek ? { vek } : {}),
    ...(chain ? { chain: Buffer.from(chain).toString('utf8') } : {}),
    ...(tdQuote ? { tdQuote } : {}),
    ...(collateral ? { collateral: Buffer.from(collateral).toString('utf8') } : {}),
    tpm: { quote: get('--tpm-quote')!, signature: get('--tpm-signature')!, pcrs },
  };
}

export function optionsOf(fx: AzureFixture): AzureVerifyOptions {
  const azure = fx.meta.cli.policy?.azure;
  return { now: new Date(fx.meta.verify_at), offline: true, ...(azure ? { policy: { azure } } : {}) };
}

/** The report's own HCLAkPub (for `--ak` equal to it). */
export function akOfReport(report: Uint8Array) {
  return parseRuntimeClaims(parseHclReport(report)).ak;
}

export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AttestationError) return err.code;
    return `not an AttestationError: ${String(err)}`;
  }
  return 'accepted';
}
