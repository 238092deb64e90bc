/**
 * The measured-boot parts of `verify` (issue 13): `--event-log F` (with a TDX quote, its CCEL,
 * `--ccel-table F` beside it), and a vTPM quote verified on its own (no HCL report, no hardware
 * report): `--tpm-quote F --tpm-signature F --pcrs F --ak-cert F [--tpm-roots F|DIR]
 * [--event-log F] [--nonce HEX]`, under Google's pinned EK/AK CA roots unless --tpm-roots
 * replaces them. verify.ts declares the options and calls into here.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AttestationError } from '../errors.js';
import {
  type GceVtpmInput,
  type GceVtpmRoots,
  type GceVtpmVerifyOptions,
  splitTpmRoots,
  verifyGceVtpm,
} from '../evidence/gce/vtpm.js';
import { type Policy, parsePolicy } from '../evidence/policy.js';
import type { EvidenceInput } from '../evidence/types.js';
import type { CliIo } from './io.js';
import { oneLine } from './io.js';

export const BOOT_OPTIONS = {
  'event-log': { type: 'string' },
  'ccel-table': { type: 'string' },
  'tpm-quote': { type: 'string' },
  'tpm-signature': { type: 'string' },
  pcrs: { type: 'string' },
  'ak-cert': { type: 'string' },
  'tpm-roots': { type: 'string' },
  nonce: { type: 'string' },
} as const;

export const BOOT_USAGE = `  --event-log F  boot event log: with a TDX quote its CCEL (--ccel-table F: the ACPI table), with
                 --tpm-quote the TPM's log; replayed to the quoted registers (claims.boot)
  --tpm-quote F --tpm-signature F --pcrs F --ak-cert F
                 a vTPM quote (TPMS_ATTEST, TPMT_SIGNATURE, {"sha256":{"0":hex,…}}) and its AK
                 certificate, verified without a hardware report (no <file>): Google Cloud's vTPM
  --tpm-roots F|DIR  CA certificates for --ak-cert (a folder: self-signed ones are anchors, the
                 others intermediates); replaces Google's pinned EK/AK CA roots
  --nonce HEX    the vTPM quote's qualifyingData must be these bytes
`;

interface BootValues {
  'event-log'?: string | undefined;
  'ccel-table'?: string | undefined;
  'tpm-quote'?: string | undefined;
  'tpm-signature'?: string | undefined;
  pcrs?: string | undefined;
  'ak-cert'?: string | undefined;
  'tpm-roots'?: string | undefined;
  nonce?: string | undefined;
}

type Fail = (message: string) => Error;

async function read(path: string, what: string, fail: Fail): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw fail(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

/** `--event-log` / `--ccel-table` with a report: a TDX quote takes the CCEL. */
export async function applyBootOptions(
  v: BootValues,
  input: EvidenceInput,
  tdx: boolean,
  fail: Fail,
): Promise<void> {
  if (v['ccel-table'] !== undefined && v['event-log'] === undefined)
    throw fail('--ccel-table needs --event-log');
  if (v['event-log'] === undefined) return;
  const log = await read(v['event-log'], '--event-log', fail);
  if (!tdx) {
    if (v['ccel-table'] !== undefined) throw fail('--ccel-table goes with a TDX quote');
    // Raw SNP has no register for a log: the verifier refuses it with ERR_EVIDENCE_MALFORMED.
    input.eventLog = { log };
    return;
  }
  input.eventLog = {
    log,
    ccel: true,
    ...(v['ccel-table'] !== undefined
      ? { ccelTable: await read(v['ccel-table'], '--ccel-table', fail) }
      : {}),
  };
}

/** True when the command line asks for a vTPM quote on its own. */
export function isVtpmRequest(v: BootValues): boolean {
  return v['tpm-quote'] !== undefined;
}

const CERT_FILE = /\.(cer|crt|der|pem)$/i;

/** `--tpm-roots`: one file (DER, or PEM with one or more certificates) or every certificate file of a folder. */
async function readRoots(path: string, fail: Fail): Promise<GceVtpmRoots> {
  let files: string[];
  try {
    files = (await stat(path)).isDirectory()
      ? (await readdir(path))
          .filter((n) => CERT_FILE.test(n))
          .sort()
          .map((n) => join(path, n))
      : [path];
  } catch (err) {
    throw fail(`cannot read --tpm-roots ${path}: ${(err as Error).message}`);
  }
  const certs = await Promise.all(files.map((f) => read(f, '--tpm-roots', fail)));
  let roots: GceVtpmRoots;
  try {
    roots = splitTpmRoots(certs);
  } catch (err) {
    throw fail(`--tpm-roots ${path}: ${(err as Error).message}`);
  }
  if (roots.anchors.length === 0) throw fail(`--tpm-roots ${path} holds no self-signed certificate`);
  return roots;
}

/** `--policy` and `--at` for a vTPM request (as verify reads them for a report). */
async function vtpmOptions(
  v: { policy?: string | undefined; at?: string | undefined },
  iso: RegExp,
  fail: Fail,
  policyFail: Fail,
): Promise<{ policy?: Policy; now?: Date }> {
  const out: { policy?: Policy; now?: Date } = {};
  if (v.policy !== undefined) {
    const text = Buffer.from(await read(v.policy, '--policy', fail)).toString('utf8');
    try {
      out.policy = parsePolicy(text);
    } catch (err) {
      throw policyFail(`--policy ${v.policy}: ${(err as Error).message}`);
    }
  }
  if (v.at !== undefined) {
    const at = new Date(v.at);
    if (!iso.test(v.at) || !Number.isFinite(at.getTime()))
      throw fail(`--at ${v.at} is not an ISO-8601 time with Z or an offset (e.g. 2021-12-22T00:00:00Z)`);
    out.now = at;
  }
  return out;
}

/** What the vTPM options of the command line name: the evidence and its verification options. */
export interface VtpmRequest {
  input: GceVtpmInput;
  options: GceVtpmVerifyOptions;
  /** --tpm-roots was given (they replace Google's pinned roots). */
  roots: boolean;
  /** --nonce was given (the quote is checked for freshness). */
  nonce: boolean;
}

/**
 * Reads `--tpm-quote F --tpm-signature F --pcrs F --ak-cert F [--tpm-roots] [--event-log]
 * [--nonce] [--policy] [--at]` into a verifyGceVtpm() request (verify, policy, explain).
 */
export async function readVtpmRequest(
  v: BootValues & { policy?: string | undefined; at?: string | undefined },
  errors: { fail: Fail; policyFail: Fail; iso: RegExp },
): Promise<VtpmRequest> {
  const fail = errors.fail;
  const options = await vtpmOptions(v, errors.iso, fail, errors.policyFail);
  const missing = ['tpm-signature', 'pcrs', 'ak-cert'].filter((k) => v[k as keyof BootValues] === undefined);
  if (missing.length > 0) throw fail(`--tpm-quote needs ${missing.map((m) => `--${m}`).join(', ')}`);
  if (v['ccel-table'] !== undefined) throw fail('--ccel-table goes with a TDX quote, not --tpm-quote');
  let pcrs: unknown;
  const pcrText = Buffer.from(await read(v.pcrs!, '--pcrs', fail)).toString('utf8');
  try {
    pcrs = JSON.parse(pcrText);
  } catch {
    throw fail(`--pcrs ${v.pcrs} is not JSON`);
  }
  if (typeof pcrs !== 'object' || pcrs === null || Array.isArray(pcrs))
    throw fail(`--pcrs ${v.pcrs} is not a JSON object of banks`);
  let nonce: Uint8Array | undefined;
  if (v.nonce !== undefined) {
    if (!/^([0-9a-fA-F]{2})+$/.test(v.nonce)) throw fail(`--nonce ${v.nonce} is not hex`);
    nonce = new Uint8Array(Buffer.from(v.nonce, 'hex'));
  }
  const input: GceVtpmInput = {
    akCert: await read(v['ak-cert']!, '--ak-cert', fail),
    tpm: {
      quote: await read(v['tpm-quote']!, '--tpm-quote', fail),
      signature: await read(v['tpm-signature']!, '--tpm-signature', fail),
      pcrs: pcrs as GceVtpmInput['tpm']['pcrs'],
    },
    ...(v['event-log'] !== undefined
      ? { eventLog: { log: await read(v['event-log'], '--event-log', fail) } }
      : {}),
  };
  const roots = v['tpm-roots'] !== undefined ? await readRoots(v['tpm-roots'], fail) : undefined;
  return {
    input,
    options: {
      now: options.now ?? new Date(),
      ...(options.policy ? { policy: options.policy } : {}),
      ...(roots ? { roots } : {}),
      ...(nonce ? { expectedExtraData: nonce } : {}),
    },
    roots: roots !== undefined,
    nonce: nonce !== undefined,
  };
}

/** Runs `verify` for a vTPM quote alone; prints like verify and returns the exit status. */
export async function runVtpmVerify(
  v: BootValues & { json?: boolean | undefined; policy?: string | undefined; at?: string | undefined },
  positionals: string[],
  io: CliIo,
  errors: { fail: Fail; policyFail: Fail; iso: RegExp },
): Promise<number> {
  if (positionals.length !== 0) throw errors.fail('--tpm-quote takes no evidence file');
  const request = await readVtpmRequest(v, errors);
  const { input } = request;
  const roots = request.roots;
  const nonce = request.nonce;
  try {
    const claims = verifyGceVtpm(input, request.options);
    if (v.json)
      io.out(
        `${JSON.stringify({ ok: true, format: claims.format, workloadPinned: claims.workloadPinned, claims })}\n`,
      );
    else {
      io.out(
        `OK: vTPM quote verified under ${roots ? '--tpm-roots' : "Google's pinned EK/AK CA roots"}\n${JSON.stringify(claims, null, 2)}\n`,
      );
      if (!nonce) io.err('WARNING: no --nonce: the quote is not known to be fresh\n');
    }
    return 0;
  } catch (err) {
    const e =
      err instanceof AttestationError ? err : new AttestationError('ERR_EVIDENCE_MALFORMED', String(err));
    if (v.json)
      io.out(
        `${JSON.stringify({
          ok: false,
          format: 'gce-vtpm',
          error: {
            code: e.code,
            message: oneLine(e.message),
            ...(Object.keys(e.details).length ? { details: e.details } : {}),
          },
        })}\n`,
      );
    else io.err(`REJECTED: ${e.code}: ${oneLine(e.message)}\n`);
    return 1;
  }
}
