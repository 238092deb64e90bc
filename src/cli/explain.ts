/**
 * `attested-channel explain <evidence…> [--json] [--no-verify]`: verifies each evidence file (the
 * options of `verify`) or, with --no-verify, only parses it, and says in plain words what it
 * proves: explainClaims() (src/explain/explain.ts), one sentence per fact, or its report as JSON
 * (`{"ok": true, "file", "report"}` per file, one line each). Exit 0 explained, 1 evidence refused
 * or unreadable, 2 usage error.
 */
import { readFile } from 'node:fs/promises';
import { AttestationError } from '../errors.js';
import { parseEventLog } from '../evidence/eventlog/parse.js';
import { verifyLaunchEndorsement } from '../evidence/gce/endorsement.js';
import { verifyGceVtpm } from '../evidence/gce/vtpm.js';
import { verifyEvidence } from '../evidence/verify.js';
import { type ExplainOptions, explainClaims } from '../explain/explain.js';
import { parsedClaims } from '../explain/unverified.js';
import { explainVtpm } from '../explain/vtpm.js';
import { escapeText } from './eventlog.js';
import type { CliIo } from './io.js';
import { oneLine, startJsonCommand } from './io.js';
import { ISO_TIME, readEndorsementRoot, toRequest, VERIFY_OPTIONS, VerifyUsageError } from './verify.js';
import { isVtpmRequest, readVtpmRequest } from './vtpm.js';

const USAGE = `usage: attested-channel explain <evidence…> [options]

Verifies the evidence (with the options of 'verify': --vek, --ask, --ark, --collateral, --policy,
--at, --offline, --kds-url, --pcs-url, --launch-endorsement) and says what it proves: TEE and signing key, whose code the
measurement covers, whether your OS is covered, VMPL, debug, migration agent, TCB, revocation,
the REPORT_DATA binder, simulation.

  --no-verify          parse only: what the evidence says about itself (nothing is established);
                       an SEV-SNP report, a TDX quote or an Azure HCL report alone (no quote);
                       the options of verification are then usage errors
  --event-log F        the VM's boot event log (a TDX quote's CCEL, or the vTPM's log with the
                       TPM options of 'verify'), replayed by the verifier to the quoted registers
  --launch-endorsement F  Google Cloud: the launch endorsement that came with the evidence,
                       verified with it (claims.endorsement) under --endorsement-root
  --endorsement F      a Google launch endorsement on its own, to recognise the firmware by
                       (also with --no-verify), verified under --endorsement-root
  --endorsement-root F Google's GCE-cc-tcb-root certificate (DER or PEM)
  --endorsement-root-sha256 HEX  the SHA-256 the root must have (default: Google's, pinned)
  --tpm-quote F --tpm-signature F --pcrs F --ak-cert F [--event-log F] [--tpm-roots F|DIR] [--nonce HEX]
                       without <evidence>: Google Cloud vTPM evidence (AK certificate, instance, boot)
  --json               one JSON object per file: {"ok": true, "file", "report": {…}}

Exit status: 0 explained, 1 evidence refused or unreadable, 2 usage error.
`;

const OPTIONS = {
  ...VERIFY_OPTIONS,
  'no-verify': { type: 'boolean' },
  endorsement: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The options of `verify` that --no-verify uses. */
const NO_VERIFY_OPTIONS = ['json', 'help', 'event-log', 'ccel-table'];
/** The options of `verify` that a stand-alone --endorsement uses, with or without --no-verify. */
const ENDORSEMENT_OPTIONS = ['at', 'endorsement-root', 'endorsement-root-sha256'];

class UsageError extends Error {}

async function read(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

export async function run(args: string[], io: CliIo): Promise<number> {
  const start = startJsonCommand(args, OPTIONS, io, USAGE);
  if ('exit' in start) return start.exit;
  const { parsed, json, usage } = start;
  const v = parsed.values;
  // --tpm-quote without an evidence file: Google Cloud vTPM evidence on its own (as for verify).
  if (isVtpmRequest(v) && parsed.positionals.length === 0) {
    if (v['launch-endorsement'] !== undefined)
      return usage(
        '--launch-endorsement: for SEV-SNP reports and TDX quotes only; the evidence is a vTPM quote on its own',
      );
    return explainVtpmRequest(v, io, usage);
  }
  if (parsed.positionals.length === 0) return start.missing('give at least one evidence file');
  let status = 0;
  let extra: ExplainOptions;
  try {
    const rooted = v.endorsement !== undefined || v['launch-endorsement'] !== undefined;
    if (!rooted && (v['endorsement-root'] !== undefined || v['endorsement-root-sha256'] !== undefined))
      throw new UsageError(
        '--endorsement-root and --endorsement-root-sha256 go with --endorsement or --launch-endorsement',
      );
    extra = {};
    // Verified evidence takes its log through the verifier (claims.boot); parsed-only evidence here.
    if (v['no-verify'] && v['ccel-table'] !== undefined)
      throw new UsageError('--ccel-table is checked by verification: drop --no-verify');
    if (v['no-verify']) {
      // Options of verification would be ignored by a parse: refused, so that none is taken as applied.
      const unused = Object.keys(VERIFY_OPTIONS).filter(
        (k) =>
          !NO_VERIFY_OPTIONS.includes(k) &&
          (!ENDORSEMENT_OPTIONS.includes(k) || v.endorsement === undefined) &&
          (v as Record<string, unknown>)[k] !== undefined,
      );
      if (unused.length > 0)
        throw new UsageError(
          `${unused.map((k) => `--${k}`).join(', ')}: for verification; --no-verify only parses the evidence (drop ${unused.length > 1 ? 'them' : 'it'}, or --no-verify)`,
        );
    }
    if (v['event-log'] !== undefined && v['no-verify'] && parsed.positionals.length !== 1)
      throw new UsageError('--no-verify --event-log explains one evidence file');
    if (v.endorsement) {
      const now = v.at === undefined ? new Date() : new Date(v.at);
      if (!Number.isFinite(now.getTime())) throw new UsageError(`--at ${v.at} is not an ISO-8601 time`);
      const root = await readEndorsementRoot(v, '--endorsement');
      extra.endorsement = verifyLaunchEndorsement(await read(v.endorsement, '--endorsement'), {
        root: root.certificate,
        ...(root.sha256 !== undefined ? { rootSha256: root.sha256 } : {}),
        now,
      });
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof VerifyUsageError) return usage(err.message);
    const e =
      err instanceof AttestationError ? err : new AttestationError('ERR_INVALID_ARGUMENT', String(err));
    if (json)
      io.out(`${JSON.stringify({ ok: false, error: { code: e.code, message: oneLine(e.message) } })}\n`);
    else io.err(`attested-channel: ${e.code}: ${escapeText(oneLine(e.message))}\n`);
    return 1;
  }
  for (const file of parsed.positionals) {
    try {
      let report: ReturnType<typeof explainClaims>;
      if (v['no-verify']) {
        const claims = parsedClaims(await read(file, 'evidence'));
        const eventLog =
          v['event-log'] === undefined
            ? undefined
            : parseEventLog(await read(v['event-log'], '--event-log'), { ccel: claims.format === 'tdx' });
        report = explainClaims(claims, { ...extra, ...(eventLog ? { eventLog } : {}), verified: false });
      } else {
        const { input, options } = await toRequest(file, v as Parameters<typeof toRequest>[1]);
        report = explainClaims(await verifyEvidence(input, options), extra);
      }
      if (v.json) io.out(`${JSON.stringify({ ok: true, file, report })}\n`);
      else
        io.out(
          `${parsed.positionals.length > 1 ? `${file}:\n` : ''}${report.summary.map((s) => `${escapeText(s)}\n`).join('')}`,
        );
    } catch (err) {
      if (err instanceof UsageError || err instanceof VerifyUsageError) return usage(err.message);
      const e =
        err instanceof AttestationError ? err : new AttestationError('ERR_EVIDENCE_MALFORMED', String(err));
      if (v.json)
        io.out(
          `${JSON.stringify({ ok: false, file, error: { code: e.code, message: oneLine(e.message) } })}\n`,
        );
      else
        io.err(
          `REFUSED: ${file}: ${e.code}: ${escapeText(oneLine(e.message))}\n${v['no-verify'] ? '' : "Nothing in it is established; 'explain --no-verify' says what it claims.\n"}`,
        );
      status = 1;
    }
  }
  return status;
}

/** `explain --tpm-quote …`: verifies the vTPM evidence as `verify` does and explains it (explainVtpm()). */
async function explainVtpmRequest(
  v: Parameters<typeof readVtpmRequest>[0] & {
    json?: boolean | undefined;
    'no-verify'?: boolean | undefined;
  },
  io: CliIo,
  usage: (message: string) => number,
): Promise<number> {
  const file = v['tpm-quote']!;
  let request: Awaited<ReturnType<typeof readVtpmRequest>>;
  try {
    if (v['no-verify'])
      throw new UsageError('--tpm-quote evidence is explained only verified: drop --no-verify');
    request = await readVtpmRequest(v, {
      fail: (m) => new UsageError(m),
      policyFail: (m) => new UsageError(m),
      iso: ISO_TIME,
    });
  } catch (err) {
    if (err instanceof UsageError) return usage(err.message);
    throw err;
  }
  try {
    const report = explainVtpm(verifyGceVtpm(request.input, request.options), {
      nonceChecked: request.nonce,
    });
    if (v.json) io.out(`${JSON.stringify({ ok: true, file, report })}\n`);
    else io.out(report.summary.map((s) => `${escapeText(s)}\n`).join(''));
    return 0;
  } catch (err) {
    const e =
      err instanceof AttestationError ? err : new AttestationError('ERR_EVIDENCE_MALFORMED', String(err));
    if (v.json)
      io.out(
        `${JSON.stringify({ ok: false, file, error: { code: e.code, message: oneLine(e.message) } })}\n`,
      );
    else
      io.err(
        `REFUSED: ${file}: ${e.code}: ${escapeText(oneLine(e.message))}\nNothing in it is established.\n`,
      );
    return 1;
  }
}
