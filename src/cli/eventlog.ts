/**
 * `attested-channel eventlog <file> [--ccel [--ccel-table F]] [--json]`: every event of a
 * measured-boot log (type, register, digests, decoded content, whether the digest was recomputed
 * from the data) and the registers it replays to. Nothing is checked against a quote: the output
 * says so. Every string from the log is escaped in text mode (a log is attacker-supplied and must
 * not drive the terminal).
 */
import { readFile } from 'node:fs/promises';
import { AttestationError } from '../errors.js';
import { parseEventLog } from '../evidence/eventlog/parse.js';
import { replayEventLog } from '../evidence/eventlog/replay.js';
import { bootSummary } from '../evidence/eventlog/summary.js';
import type { CliIo } from './io.js';
import { startJsonCommand } from './io.js';

const USAGE = `usage: attested-channel eventlog <file> [--ccel [--ccel-table <file>]] [--json]

Prints every event of a TPM event log (TCG PC Client, crypto-agile or SHA-1 format) or, with
--ccel, of a TDX CC event log, and the PCR banks or RTMRs it replays to. Nothing is verified
against a quote.

  --ccel               the file is a TDX CCEL log area (/sys/firmware/acpi/tables/data/CCEL)
  --ccel-table <file>  the ACPI CCEL table (/sys/firmware/acpi/tables/CCEL), checked against it
  --json               one JSON object: {"ok": true, "kind", "events", "pcrs" | "rtmrs", ...}
`;

const OPTIONS = {
  ccel: { type: 'boolean' },
  'ccel-table': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Plain JSON: bytes as lowercase hex. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = plain(v);
    return out;
  }
  return value;
}

/**
 * Escapes C0/C1 controls, DEL, and the Unicode format characters that reorder or hide text
 * (bidi overrides and isolates, zero-width characters, the BOM), so a log's strings print as
 * themselves.
 */
export function escapeText(s: string): string {
  return s.replace(
    /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g,
    (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`,
  );
}

function flatten(value: unknown, prefix: string, out: string[]): void {
  if (Array.isArray(value)) {
    if (value.length === 0) out.push(`${prefix}  []`);
    for (const [i, v] of value.entries()) flatten(v, `${prefix}[${i}]`, out);
    return;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value))
      if (v !== undefined) flatten(v, prefix ? `${prefix}.${k}` : k, out);
    return;
  }
  // Variable contents (certificate lists, dbx) are long hex: --json has them whole.
  const v = String(value);
  const long = /(^|\.)data$/.test(prefix) && v.length > 96;
  out.push(`${prefix}  ${long ? `${v.slice(0, 64)}… (${v.length / 2} bytes)` : v}`);
}

export async function run(args: string[], io: CliIo): Promise<number> {
  const start = startJsonCommand(args, OPTIONS, io, USAGE);
  if ('exit' in start) return start.exit;
  const { parsed, usage } = start;
  const o = parsed.values;
  if (parsed.positionals.length !== 1) return start.missing('give exactly one event log file');
  if (o['ccel-table'] !== undefined && !o.ccel) return usage('--ccel-table needs --ccel');
  const file = parsed.positionals[0]!;
  let bytes: Uint8Array;
  let table: Uint8Array | undefined;
  try {
    bytes = new Uint8Array(await readFile(file));
    if (o['ccel-table'] !== undefined) table = new Uint8Array(await readFile(o['ccel-table']));
  } catch (err) {
    return usage(`cannot read ${(err as Error & { path?: string }).path ?? file}: ${(err as Error).message}`);
  }
  try {
    const log = parseEventLog(bytes, { ccel: o.ccel === true, ...(table ? { ccelTable: table } : {}) });
    const replayed = replayEventLog(log);
    const summary = bootSummary(log);
    const registers =
      log.kind === 'ccel'
        ? { rtmrs: replayed.rtmrs!.map((r) => Buffer.from(r).toString('hex')) }
        : { pcrs: plain(replayed.pcrs) };
    if (o.json) {
      const { pcrs: _p, rtmrs: _r, anomalies: _a, ...rest } = summary;
      io.out(
        `${JSON.stringify({
          ok: true,
          kind: log.kind,
          format: log.format,
          banks: log.banks,
          events: plain(log.events),
          ...registers,
          ...(log.anomalies.length > 0 ? { anomalies: log.anomalies } : {}),
          summary: plain(rest),
          ...(log.ccelTable ? { ccelTable: log.ccelTable } : {}),
        })}\n`,
      );
      return 0;
    }
    const lines: string[] = [
      `kind      ${log.kind} (${log.format}; banks ${log.banks.join(', ')}) — not verified against any quote`,
      `events    ${log.events.length} (digests verified ${summary.digestsVerified}); ${log.size} bytes of records, ${log.trailing} of fill`,
    ];
    if (log.ccelTable)
      lines.push(
        `table     CCEL, CC type ${log.ccelTable.ccType}, LAML ${log.ccelTable.laml}, LASA ${log.ccelTable.lasa}`,
      );
    for (const e of log.events) {
      lines.push('', `#${e.index}  ${e.register}  ${e.typeName}  ${e.digestCheck}`);
      for (const [bank, d] of Object.entries(e.digests))
        lines.push(`    ${bank.padEnd(7)} ${Buffer.from(d).toString('hex')}`);
      const rows: string[] = [];
      if (e.decoded) flatten(plain(e.decoded), '', rows);
      else if (e.decodeError) rows.push(`undecoded  ${e.decodeError}`);
      else rows.push(`data  ${e.data.length} bytes`);
      for (const r of rows) lines.push(`    ${escapeText(r)}`);
    }
    lines.push('', 'replayed');
    if (log.kind === 'ccel')
      for (const [i, r] of replayed.rtmrs!.entries())
        lines.push(`  RTMR${i}  ${Buffer.from(r).toString('hex')}`);
    else
      for (const [bank, values] of Object.entries(replayed.pcrs))
        for (const [i, v] of Object.entries(values))
          lines.push(`  ${bank.padEnd(7)} PCR${i.padEnd(3)} ${Buffer.from(v).toString('hex')}`);
    if (log.anomalies.length > 0) {
      lines.push('', 'anomalies (single events are not interpreted)');
      for (const a of log.anomalies) lines.push(`  ${a.kind}: ${escapeText(a.message)}`);
    } else {
      lines.push('', 'summary');
      const rows: string[] = [];
      flatten(
        {
          secureBoot: summary.secureBoot,
          kernelCmdline: summary.kernelCmdline,
          kernel: summary.kernel,
          initrd: summary.initrd,
          efiApps: summary.efiApps,
        },
        '',
        rows,
      );
      for (const r of rows) lines.push(`  ${escapeText(r)}`);
    }
    io.out(`${lines.join('\n')}\n`);
    return 0;
  } catch (err) {
    const e =
      err instanceof AttestationError ? err : new AttestationError('ERR_EVIDENCE_MALFORMED', String(err));
    if (o.json) io.out(`${JSON.stringify({ ok: false, error: { code: e.code, message: e.message } })}\n`);
    else io.err(`attested-channel: ${e.code}: ${escapeText(e.message)}\n`);
    return 1;
  }
}
