/**
 * `attested-channel verify <file> [options]`: verifies evidence against the vendor roots and a
 * policy. Exit 0 accepted, 1 rejected (or collateral missing), 2 usage error. With --json it
 * prints one object {"ok","format","workloadPinned","claims","error":{"code","message"}}; claims
 * appear whenever the report parsed, even when verification failed, so a rejected report can still
 * be examined; workloadPinned (accepted evidence only) says whether the policy pinned the workload.
 *
 * All options are declared in OPTIONS and turned into verifyEvidence() arguments in toRequest();
 * a new option (e.g. TDX's --collateral) is one entry there and a few lines in toRequest().
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { AttestationError } from '../errors.js';
import { workloadPins } from '../evidence/appraise.js';
import { parsePolicy } from '../evidence/policy.js';
import { snpClaims } from '../evidence/snp/appraise.js';
import { parseSnpReport } from '../evidence/snp/report.js';
import type { EvidenceInput, RevocationStatus, VerifyOptions } from '../evidence/types.js';
import { detectFormat, verifyEvidence } from '../evidence/verify.js';
import { parseCertificate } from '../evidence/x509/cert.js';
import { toDerList } from '../evidence/x509/pem.js';
import type { CliIo } from './io.js';
import { usageError } from './io.js';
import { applyTdxOptions, unverifiedTdxClaims } from './tdx.js';

const OPTIONS = {
  vek: { type: 'string' },
  ask: { type: 'string' },
  ark: { type: 'string' },
  policy: { type: 'string' },
  at: { type: 'string' },
  offline: { type: 'boolean' },
  'kds-url': { type: 'string' },
  collateral: { type: 'string' },
  'pcs-url': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const USAGE = `usage: attested-channel verify <file> [options]

  --vek F        VCEK or VLEK certificate (DER or PEM); default: fetched from AMD KDS (VCEK only)
  --ask F        ASK or ASVK certificate; default: the embedded one of the report's product
  --ark F        ARK certificate; must be one of AMD's pinned ARKs
  --policy F     policy JSON file (fields snp.* / tdx.*; only the formats it names pass);
                 default: strict defaults (any genuine evidence, workload not pinned)
  --at ISO-8601  time at which certificates must be valid; default: now
  --offline      never touch the network
  --kds-url URL  AMD KDS base URL (default https://kdsintf.amd.com)
  --collateral F TDX collateral JSON (schema: "TDX collateral schema" in docs/api.md); default: fetched from Intel PCS
  --pcs-url URL  Intel PCS or PCCS base URL (default https://api.trustedservices.intel.com)
  --json         print one JSON object

Exit status: 0 accepted, 1 rejected, 2 usage error.
`;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

class UsageError extends Error {}

async function readInput(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

/** One certificate from a DER or PEM file. */
async function readCert(path: string, what: string): Promise<Uint8Array> {
  const bytes = await readInput(path, what);
  let list: Uint8Array[];
  try {
    list = toDerList(bytes, 'ERR_EVIDENCE_CHAIN');
  } catch {
    list = [];
  }
  if (list.length !== 1 || !list[0])
    throw new UsageError(`${what} ${path} is not one certificate (DER or PEM)`);
  return list[0];
}

async function toRequest(file: string, v: Values): Promise<{ input: EvidenceInput; options: VerifyOptions }> {
  const input: EvidenceInput = { report: await readInput(file, 'evidence') };
  const options: VerifyOptions = {};
  if (v.vek) input.vek = await readCert(v.vek, '--vek');
  const ask = v.ask ? await readCert(v.ask, '--ask') : undefined;
  const ark = v.ark ? await readCert(v.ark, '--ark') : undefined;
  if (ark) {
    // The verifier reads a lone certificate by whether it is self-issued; an ASK passed as --ark
    // must not slip into the intermediate's place.
    const cert = (() => {
      try {
        return parseCertificate(ark, 'ERR_EVIDENCE_CHAIN');
      } catch {
        throw new UsageError(`--ark ${v.ark} does not parse as a certificate`);
      }
    })();
    if (!Buffer.from(cert.subjectDer).equals(Buffer.from(cert.issuerDer)))
      throw new AttestationError(
        'ERR_EVIDENCE_CHAIN',
        `--ark "${cert.subject.CN}" is not a root certificate`,
      );
  }
  if (ask && ark) input.chain = [ask, ark];
  else if (ask) input.chain = [ask];
  else if (ark) input.chain = [ark];
  if (v.policy) {
    const text = Buffer.from(await readInput(v.policy, '--policy')).toString('utf8');
    try {
      options.policy = parsePolicy(text);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  if (v.at !== undefined) {
    const at = new Date(v.at);
    if (!/^\d{4}-\d{2}-\d{2}/.test(v.at) || !Number.isFinite(at.getTime()))
      throw new UsageError(`--at ${v.at} is not an ISO-8601 time`);
    options.now = at;
  }
  if (v.offline) options.offline = true;
  if (v['kds-url'] !== undefined) {
    if (!/^https?:\/\/./.test(v['kds-url']))
      throw new UsageError(`--kds-url ${v['kds-url']} is not an http(s) URL`);
    options.kds = { baseUrl: v['kds-url'] };
  }
  await applyTdxOptions(v, input, options, (m) => new UsageError(m));
  return { input, options };
}

/** Claims of a report that parsed, for the JSON output of a rejected report. */
function parsedClaims(report: Uint8Array): unknown {
  if (detectFormat(report) === 'tdx') return unverifiedTdxClaims(report);
  if (detectFormat(report) !== 'sev-snp') return undefined;
  try {
    const parsed = parseSnpReport(report);
    if (parsed.product) {
      // Nothing was appraised: no workloadPinned and no revocation status to report.
      const {
        revocation: _r,
        workloadPinned: _w,
        ...fields
      } = snpClaims(parsed, parsed.product, false, { checked: false, source: 'none', crls: [] });
      return fields;
    }
    const { raw: _raw, ...fields } = parsed;
    return fields;
  } catch {
    return undefined;
  }
}

/** One line on what the revocation check covered: "verified" alone would overstate it. */
export function revocationLine(r: RevocationStatus): string {
  if (!r.checked) return `revocation NOT checked: ${r.reason ?? 'no CRL'}`;
  const crls = r.crls
    .map((c) => `${c.issuer} CRL (thisUpdate ${c.thisUpdate}, nextUpdate ${c.nextUpdate ?? 'none'})`)
    .join(' and ');
  const from =
    r.source === 'kds' ? 'fetched from KDS' : r.source === 'cache' ? 'from the cache' : 'from the collateral';
  return `revocation checked against the ${crls}, ${from}${r.reason ? ` (${r.reason})` : ''}`;
}

export async function run(args: string[], io: CliIo): Promise<number> {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true }));
  } catch (err) {
    return usageError(io, `${(err as Error).message}\n\n${USAGE}`);
  }
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  if (positionals.length !== 1) return usageError(io, USAGE);
  const file = positionals[0]!;

  let request: { input: EvidenceInput; options: VerifyOptions } | undefined;
  let format: string | null = null;
  try {
    request = await toRequest(file, values);
    format = detectFormat(request.input.report) ?? null;
    const claims = await verifyEvidence(request.input, request.options);
    const { revocation, workloadPinned } = claims;
    if (values.json) io.out(`${JSON.stringify({ ok: true, format, workloadPinned, revocation, claims })}\n`);
    else {
      io.out(
        `OK: ${format} evidence verified; ${revocationLine(revocation)}\n${JSON.stringify(claims, null, 2)}\n`,
      );
      const pins = workloadPins(claims.format, parsePolicy(request.options.policy));
      io.err(
        workloadPinned
          ? `workload pinned by ${pins.join(', ')}\n`
          : `WARNING: workload NOT pinned: the policy names no measurement for ${claims.format}, so any genuine ${claims.format} guest passes it\n`,
      );
    }
    return 0;
  } catch (err) {
    if (err instanceof UsageError) return usageError(io, err.message);
    const e =
      err instanceof AttestationError
        ? err
        : new AttestationError('ERR_EVIDENCE_MALFORMED', String(err), { cause: err });
    const claims = request ? parsedClaims(request.input.report) : undefined;
    if (values.json) {
      const out: Record<string, unknown> = { ok: false, format };
      if (claims !== undefined) out.claims = claims;
      out.error = {
        code: e.code,
        message: e.message,
        ...(Object.keys(e.details).length ? { details: e.details } : {}),
      };
      io.out(`${JSON.stringify(out)}\n`);
    } else {
      io.err(`REJECTED: ${e.code}: ${e.message}\n`);
    }
    return 1;
  }
}
