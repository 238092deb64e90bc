/** Loads the real SEV-SNP fixtures (test/fixtures/snp/<name>/) that drive the SNP tests. */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AttestationError } from '../../src/errors.js';

export const SNP_DIR = fileURLToPath(new URL('../fixtures/snp/', import.meta.url));

export interface SnpMeta {
  id: string;
  version: number;
  product: string;
  signer: 'VCEK' | 'VLEK';
  suggested_verify_at: string;
  chain_valid_window: [string, string];
  reported_tcb_parts: { bl: number; tee: number; snp: number; ucode: number; fmc?: number };
  vek_hwid: string | null;
  vek_product_name_ext: string;
  fields: Record<string, unknown> & {
    guest_svn: number;
    policy: string;
    vmpl: number;
    platform_info: string;
    report_data: string;
    measurement: string;
    host_data: string;
    id_key_digest: string;
    author_key_digest: string;
    report_id: string;
    report_id_ma: string;
    chip_id: string;
    family_id: string;
    image_id: string;
    cpuid_fam_id: number;
    cpuid_mod_id: number;
    cpuid_step: number;
    current_tcb: string;
    reported_tcb: string;
    committed_tcb: string;
    launch_tcb: string;
    current_fw: string;
    committed_fw: string;
    launch_mit_vector: string;
    current_mit_vector: string;
    signer_info: { raw: string; author_key_en: number; mask_chip_key: number; signing_key: number };
  };
}

export interface SnpFixture {
  name: string;
  dir: string;
  meta: SnpMeta;
  report: Uint8Array;
  vek: Uint8Array;
  ask: Uint8Array;
  ark: Uint8Array;
  at: Date;
  /** Product as the verifier names it. */
  product: 'Milan' | 'Genoa' | 'Turin';
}

const read = (p: string) => new Uint8Array(readFileSync(p));

export function loadFixture(name: string): SnpFixture {
  const dir = `${SNP_DIR}${name}/`;
  const meta = JSON.parse(readFileSync(`${dir}meta.json`, 'utf8')) as SnpMeta;
  return {
    name,
    dir,
    meta,
    report: read(`${dir}report.bin`),
    vek: read(`${dir}vek.der`),
    ask: read(`${dir}ask.der`),
    ark: read(`${dir}ark.der`),
    at: new Date(meta.suggested_verify_at),
    product: meta.product.split(' ')[0] as SnpFixture['product'],
  };
}

export const FIXTURE_NAMES = readdirSync(SNP_DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory() && d.name !== 'roots')
  .map((d) => d.name)
  .sort();

export function allFixtures(): SnpFixture[] {
  return FIXTURE_NAMES.map(loadFixture);
}

/** `verify`/`explain`/`policy` arguments for a fixture: its report, VEK, ASK and ARK, at its suggested time, offline. */
export function snpCliArgs(name: string): string[] {
  const d = `${SNP_DIR}${name}/`;
  const at = loadFixture(name).meta.suggested_verify_at;
  return [
    `${d}report.bin`,
    '--vek',
    `${d}vek.der`,
    '--ask',
    `${d}ask.der`,
    '--ark',
    `${d}ark.der`,
    '--at',
    at,
    '--offline',
  ];
}

export function root(name: string): Uint8Array {
  return read(`${SNP_DIR}roots/${name}`);
}

/** The error code a promise rejects with ('accepted' when it resolves): test/helpers/codes.ts. */
export { rejectionCode as codeOf } from '../helpers/codes.js';

export async function errorOf(p: Promise<unknown>): Promise<AttestationError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AttestationError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

export function flipped(bytes: Uint8Array, offset: number, mask = 0x01): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[offset] = out[offset]! ^ mask;
  return out;
}
