/** Loads the real TDX vectors of test/fixtures/tdx (quote, optional collateral, meta.json). */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AttestationError } from '../../src/errors.js';
import type { TdxCollateral } from '../../src/evidence/types.js';
import { rejectionCode } from '../helpers/codes.js';

export const TDX_DIR = fileURLToPath(new URL('../fixtures/tdx/', import.meta.url));
export const INTEL_DIR = fileURLToPath(new URL('../fixtures/intel/', import.meta.url));

export interface Meta {
  id: string;
  quote_version: number;
  body_type: number;
  fmspc: string;
  evaluate_at: string;
  expect: 'ok' | 'reject';
  expected_tcb_status: string | null;
  expected_reason: string | null;
  td_attributes: string;
  debug: boolean;
  mr_td: string;
  rtmr0: string;
  rtmr1: string;
  rtmr2: string;
  rtmr3: string;
  report_data: string;
  mr_seam: string;
  mr_signer_seam: string;
  mr_config_id: string;
  mr_owner: string;
  mr_owner_config: string;
  xfam: string;
  tee_tcb_svn: string;
  tee_tcb_svn2?: string;
  mr_servicetd?: string;
  seam_attributes: string;
  sept_ve_disable: boolean;
  quote_size: number;
  trailing_bytes: number;
  has_collateral: boolean;
  collateral_valid_window?: [string, string];
  tcb_advisory_ids: string[];
}

export interface Vector {
  id: string;
  quote: Uint8Array;
  collateralText?: string;
  collateral?: TdxCollateral;
  meta: Meta;
  now: Date;
}

export function loadVector(id: string): Vector {
  const dir = `${TDX_DIR}${id}/`;
  const meta = JSON.parse(readFileSync(`${dir}meta.json`, 'utf8')) as Meta;
  const v: Vector = {
    id,
    quote: new Uint8Array(readFileSync(`${dir}quote.bin`)),
    meta,
    now: new Date(meta.evaluate_at),
  };
  if (existsSync(`${dir}collateral.json`)) {
    v.collateralText = readFileSync(`${dir}collateral.json`, 'utf8');
    v.collateral = JSON.parse(v.collateralText) as TdxCollateral;
  }
  return v;
}

export const VECTOR_IDS = readdirSync(TDX_DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

/** The error code `fn` rejects with ('accepted' when it resolves): test/helpers/codes.ts. */
export async function codeOf(fn: () => unknown): Promise<string> {
  return rejectionCode(fn);
}

export async function errorOf(fn: () => unknown): Promise<AttestationError> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof AttestationError) return err;
    throw err;
  }
  throw new Error('expected an AttestationError, got success');
}
