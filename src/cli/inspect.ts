/**
 * `attested-channel inspect <file> [--json]`: every field of a report or quote, without verifying
 * anything (the output says so). One printer per evidence format, chosen by detectFormat.
 */
import { readFile } from 'node:fs/promises';
import { AttestationError } from '../errors.js';
import { parseSnpReport } from '../evidence/snp/report.js';
import type { EvidenceFormat } from '../evidence/types.js';
import { detectFormat } from '../evidence/verify.js';
import { inspectHclFields, inspectTpmsAttest, isTpmsAttest } from './azure.js';
import type { CliIo } from './io.js';
import { startJsonCommand } from './io.js';
import { inspectTdxFields } from './tdx.js';

const USAGE = `usage: attested-channel inspect <file> [--json]

Prints every field of an SEV-SNP report, a TDX quote, an Azure HCL report or a TPM quote
(TPMS_ATTEST). Nothing is verified.
`;

/** Plain JSON view of a parsed structure: bytes as lowercase hex, bigints as decimal strings. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = plain(v);
    return out;
  }
  return value;
}

function snpFields(bytes: Uint8Array): Record<string, unknown> {
  const { raw: _raw, product, ...report } = parseSnpReport(bytes);
  return {
    product:
      product ??
      'unknown (v2 reports name no product: it comes from the VEK; TCBs shown in the Milan/Genoa layout)',
    ...report,
  };
}

const PRINTERS: Record<EvidenceFormat, (bytes: Uint8Array) => Record<string, unknown>> = {
  'sev-snp': snpFields,
  tdx: inspectTdxFields,
  'azure-sev-snp': inspectHclFields,
  'azure-tdx': inspectHclFields,
};

function rows(value: unknown, prefix: string, out: Array<[string, string]>): void {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) rows(v, prefix ? `${prefix}.${k}` : k, out);
    return;
  }
  out.push([prefix, Array.isArray(value) ? JSON.stringify(value) : String(value)]);
}

export function table(fields: Record<string, unknown>): string {
  const out: Array<[string, string]> = [];
  rows(fields, '', out);
  const width = Math.max(...out.map(([k]) => k.length));
  return `${out.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n`;
}

export async function run(args: string[], io: CliIo): Promise<number> {
  const options = { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;
  const start = startJsonCommand(args, options, io, USAGE, { format: null });
  if ('exit' in start) return start.exit;
  const { parsed, usage } = start;
  if (parsed.positionals.length !== 1) return start.missing('give exactly one evidence file');
  const file = parsed.positionals[0]!;
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (err) {
    return usage(`cannot read ${file}: ${(err as Error).message}`);
  }
  const format = detectFormat(bytes) ?? (isTpmsAttest(bytes) ? 'tpm-quote' : undefined);
  try {
    if (!format)
      throw new AttestationError(
        'ERR_EVIDENCE_MALFORMED',
        `${file} is not an SEV-SNP report (1184 bytes), a TDX quote, an HCL report or a TPMS_ATTEST (${bytes.length} bytes)`,
      );
    const fields = format === 'tpm-quote' ? inspectTpmsAttest(bytes) : PRINTERS[format](bytes);
    if (parsed.values.json)
      io.out(`${JSON.stringify({ format, verified: false, fields: plain(fields) }, null, 2)}\n`);
    else
      io.out(
        `format    ${format} (not verified: use 'attested-channel verify')\n${table(plain(fields) as Record<string, unknown>)}`,
      );
    return 0;
  } catch (err) {
    const e =
      err instanceof AttestationError ? err : new AttestationError('ERR_EVIDENCE_MALFORMED', String(err));
    if (parsed.values.json)
      io.out(`${JSON.stringify({ format: format ?? null, error: { code: e.code, message: e.message } })}\n`);
    else io.err(`attested-channel: ${e.code}: ${e.message}\n`);
    return 1;
  }
}
