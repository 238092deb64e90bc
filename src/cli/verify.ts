/**
 * `attested-channel verify <file> [options]`: verifies evidence against the vendor roots and a
 * policy. Exit 0 accepted, 1 rejected (or collateral missing), 2 usage error. With --json every
 * outcome, usage errors included, is one object {"ok","format","workloadPinned","claims",
 * "unverified","error":{"code","message"}}: claims only for accepted evidence; a rejected report
 * that parsed shows its fields under unverified instead, so nothing unverified can be read as a
 * verified claim; workloadPinned (accepted evidence only) says whether the policy pinned the workload.
 *
 * All options are declared in OPTIONS and turned into verifyEvidence() options in toRequest() (the
 * collateral settings make the run's Verifier, the rest are verify()'s);
 * a new option (e.g. TDX's --collateral) is one entry there and a few lines in toRequest().
 */
import { readFile } from 'node:fs/promises';
import { AttestationError } from '../errors.js';
import { workloadPins } from '../evidence/appraise.js';
import { formatOf } from '../evidence/formats.js';
import type { EndorsementRoot } from '../evidence/gce/launch.js';
import { parsePolicy } from '../evidence/policy.js';
import type { EvidenceInput, RevocationStatus, VerifyOptions } from '../evidence/types.js';
import { createVerifier } from '../evidence/verifier.js';
import { detectFormat } from '../evidence/verify.js';
import { parseCertificate } from '../evidence/x509/cert.js';
import { toDerList } from '../evidence/x509/pem.js';
import { AZURE_OPTIONS, AZURE_USAGE, applyAzureOptions, unverifiedAzureClaims } from './azure.js';
import type { CliIo } from './io.js';
import { oneLine, parseOptions, usageError } from './io.js';
import { applyTdxOptions } from './tdx.js';
import { applyBootOptions, BOOT_OPTIONS, BOOT_USAGE, isVtpmRequest, runVtpmVerify } from './vtpm.js';

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
  'launch-endorsement': { type: 'string' },
  'endorsement-root': { type: 'string' },
  'endorsement-root-sha256': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  ...BOOT_OPTIONS,
  ...AZURE_OPTIONS,
} as const;

const USAGE = `usage: attested-channel verify <file> [options]
       attested-channel verify --tpm-quote F --tpm-signature F --pcrs F --ak-cert F [options]

  --vek F        VCEK or VLEK certificate (DER or PEM); default: fetched from AMD KDS (VCEK only)
  --ask F        ASK or ASVK certificate, or the ASK+ARK bundle KDS serves (cert_chain);
                 default: the embedded one of the report's product
  --ark F        ARK certificate; must be one of AMD's pinned ARKs
  --policy F     policy JSON file (fields snp.* / tdx.*; only the formats it names pass);
                 default: strict defaults (any genuine evidence, workload not pinned)
  --at ISO-8601  time at which certificates must be valid, with Z or an offset
                 (2026-02-06T01:04:33Z); default: now
  --offline      never touch the network
  --kds-url URL  AMD KDS base URL (default https://kdsintf.amd.com)
  --collateral F TDX collateral JSON (schema: "TDX collateral schema" in docs/api.md); default: fetched from Intel PCS
  --pcs-url URL  Intel PCS or PCCS base URL (default https://api.trustedservices.intel.com)
  --launch-endorsement F  Google Cloud: the firmware's launch endorsement (VMLaunchEndorsement)
                 that came with the evidence; verified under --endorsement-root and matched
                 with the measurement (claims.endorsement; required by a policy's endorsement)
  --endorsement-root F  Google's GCE-cc-tcb-root certificate (DER or PEM)
  --endorsement-root-sha256 HEX  the SHA-256 the root must have (default: Google's, pinned)
${BOOT_USAGE}  --json         print one JSON object (also for usage errors)
${AZURE_USAGE}(--vek, --ask, --ark, --kds-url are for SEV-SNP reports; --collateral, --pcs-url for TDX quotes;
 --launch-endorsement for SEV-SNP reports and TDX quotes (not Azure's);
 with an Azure HCL report file, --tpm-quote, --tpm-signature, --pcrs, --nonce are its vTPM quote's;
 --ak-cert, --tpm-roots are for a vTPM quote without a file. An option that does not apply to the
 evidence given is a usage error.)

Exit status: 0 accepted, 1 rejected, 2 usage error.
`;

type Values = ReturnType<typeof parseOptions<typeof OPTIONS>>['values'];

class UsageError extends Error {
  constructor(
    message: string,
    readonly code: 'ERR_INVALID_ARGUMENT' | 'ERR_POLICY_INVALID' = 'ERR_INVALID_ARGUMENT',
  ) {
    super(message);
  }
}

/** "2026-02-06T01:04:33Z" or "…+01:00": a time without Z or an offset would be read in the local zone. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/i;

/** The evidence of a vTPM quote verified on its own (no evidence file): `--tpm-quote … --ak-cert`. */
const VTPM_ALONE = 'gce-vtpm';
const SNP = ['sev-snp', 'azure-sev-snp'];
const TDX = ['tdx', 'azure-tdx'];
const AZURE = ['azure-sev-snp', 'azure-tdx'];

/**
 * The evidence each option applies to, and how to say so; an option not listed (--policy, --at,
 * --offline, --json) applies to all. One given with other evidence is a usage error: ignored, it
 * would give a verdict that was not asked for.
 */
const OPTION_FORMATS: Record<string, { formats: readonly string[]; for: string }> = {
  vek: { formats: SNP, for: 'SEV-SNP reports' },
  ask: { formats: SNP, for: 'SEV-SNP reports' },
  ark: { formats: SNP, for: 'SEV-SNP reports' },
  'kds-url': { formats: SNP, for: 'SEV-SNP reports' },
  collateral: { formats: TDX, for: 'TDX quotes' },
  'pcs-url': { formats: TDX, for: 'TDX quotes' },
  // Google's endorsement lists the launch measurement of its own firmware: Azure's is the
  // paravisor's, and a vTPM quote has none (endorsementClaims() refuses other formats).
  'launch-endorsement': { formats: ['sev-snp', 'tdx'], for: 'SEV-SNP reports and TDX quotes' },
  // An SEV-SNP report has no register a boot log could be replayed to.
  'event-log': {
    formats: ['tdx', ...AZURE, VTPM_ALONE],
    for: 'TDX quotes, Azure HCL reports and vTPM quotes',
  },
  'ccel-table': { formats: ['tdx'], for: 'TDX quotes (with --event-log)' },
  'tpm-quote': { formats: [...AZURE, VTPM_ALONE], for: 'Azure HCL reports and vTPM quotes' },
  'tpm-signature': { formats: [...AZURE, VTPM_ALONE], for: 'Azure HCL reports and vTPM quotes' },
  pcrs: { formats: [...AZURE, VTPM_ALONE], for: 'Azure HCL reports and vTPM quotes' },
  'td-quote': { formats: ['azure-tdx'], for: 'Azure TDX HCL reports' },
  ak: { formats: AZURE, for: 'Azure HCL reports' },
  'ak-cert': { formats: [VTPM_ALONE], for: 'a vTPM quote verified on its own (no evidence file)' },
  'tpm-roots': { formats: [VTPM_ALONE], for: 'a vTPM quote verified on its own (no evidence file)' },
  nonce: { formats: [...AZURE, VTPM_ALONE], for: 'Azure HCL reports and vTPM quotes' },
};

const FORMAT_NAMES: Record<string, string> = {
  'sev-snp': 'an SEV-SNP report',
  tdx: 'a TDX quote',
  'azure-sev-snp': 'an Azure SEV-SNP HCL report',
  'azure-tdx': 'an Azure TDX HCL report',
};

/**
 * The usage error for the options given that do not apply to `format` (undefined: none), e.g.
 * "--ak-cert, --tpm-roots: for a vTPM quote verified on its own (no evidence file) only; r.bin is an
 * Azure SEV-SNP HCL report".
 */
function inapplicableOptions(
  format: string,
  values: Record<string, unknown>,
  file?: string,
): string | undefined {
  const byUse = new Map<string, string[]>();
  for (const [option, use] of Object.entries(OPTION_FORMATS))
    if (values[option] !== undefined && !use.formats.includes(format))
      byUse.set(use.for, [...(byUse.get(use.for) ?? []), `--${option}`]);
  if (byUse.size === 0) return undefined;
  const what =
    format === VTPM_ALONE
      ? 'the evidence is a vTPM quote on its own (--tpm-quote without an evidence file)'
      : `${file} is ${FORMAT_NAMES[format] ?? format}`;
  return `${[...byUse].map(([use, options]) => `${options.join(', ')}: for ${use} only`).join('; ')}; ${what}`;
}

async function readInput(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

/** The certificates of a DER or PEM file: exactly one, or up to `max` (a PEM bundle). */
async function readCerts(path: string, what: string, max = 1): Promise<Uint8Array[]> {
  const bytes = await readInput(path, what);
  let list: Uint8Array[];
  try {
    list = toDerList(bytes, 'ERR_EVIDENCE_CHAIN');
  } catch {
    list = [];
  }
  if (list.length < 1 || list.length > max)
    throw new UsageError(
      `${what} ${path} is not ${max === 1 ? 'one certificate' : `one to ${max} certificates`} (DER or PEM)`,
    );
  return list;
}

async function readCert(path: string, what: string): Promise<Uint8Array> {
  return (await readCerts(path, what))[0]!;
}

function isSelfIssued(der: Uint8Array, what: string): boolean {
  let cert: ReturnType<typeof parseCertificate>;
  try {
    cert = parseCertificate(der, 'ERR_EVIDENCE_CHAIN');
  } catch {
    throw new UsageError(`${what} does not parse as a certificate`);
  }
  return Buffer.from(cert.subjectDer).equals(Buffer.from(cert.issuerDer));
}

/**
 * --ask: one ASK/ASVK, or the two-certificate PEM AMD KDS serves at /{vcek,vlek}/v1/{product}/
 * cert_chain (ASK or ASVK, then ARK: KdsClient.getCertChain reads the same); the self-issued one
 * of a bundle is taken as the ARK, so either order works.
 */
async function readAsk(path: string): Promise<{ ask: Uint8Array; ark?: Uint8Array }> {
  const certs = await readCerts(path, '--ask', 2);
  if (certs.length === 1) return { ask: certs[0]! };
  const roots = certs.map((c) => isSelfIssued(c, `a certificate of --ask ${path}`));
  if (roots[0] === roots[1])
    throw new UsageError(`--ask ${path} holds two certificates but not an ASK and its ARK`);
  return roots[1] ? { ask: certs[0]!, ark: certs[1]! } : { ask: certs[1]!, ark: certs[0]! };
}

/**
 * --endorsement-root F [--endorsement-root-sha256 HEX]: the GCE-cc-tcb-root of every command that
 * verifies a launch endorsement (verify, explain, policy), as an EndorsementRoot.
 */
async function readEndorsementRoot(
  v: { 'endorsement-root'?: string | undefined; 'endorsement-root-sha256'?: string | undefined },
  neededBy: string,
): Promise<EndorsementRoot> {
  const sha256 = v['endorsement-root-sha256'];
  if (v['endorsement-root'] === undefined)
    throw new UsageError(
      `${neededBy} needs --endorsement-root (Google's GCE-cc-tcb-root certificate, DER or PEM)`,
    );
  if (sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(sha256))
    throw new UsageError(`--endorsement-root-sha256 ${sha256} is not 64 hex digits`);
  return {
    certificate: await readInput(v['endorsement-root'], '--endorsement-root'),
    ...(sha256 !== undefined ? { sha256 } : {}),
  };
}

async function toRequest(file: string, v: Values): Promise<{ input: EvidenceInput; options: VerifyOptions }> {
  const input: EvidenceInput = { report: await readInput(file, 'evidence') };
  const options: VerifyOptions = {};
  const format = detectFormat(input.report);
  // Unrecognised bytes (a broken HCL magic) are refused by verification: ERR_EVIDENCE_MALFORMED.
  const inapplicable = format === undefined ? undefined : inapplicableOptions(format, v, file);
  if (inapplicable !== undefined) throw new UsageError(inapplicable);
  if (v.vek) input.vek = await readCert(v.vek, '--vek');
  const bundle = v.ask ? await readAsk(v.ask) : undefined;
  if (bundle?.ark && v.ark)
    throw new UsageError(`--ask ${v.ask} already holds an ARK: drop --ark, or give --ask the ASK alone`);
  const ask = bundle?.ask;
  const ark = v.ark ? await readCert(v.ark, '--ark') : bundle?.ark;
  if (ark) {
    // The verifier reads a lone certificate by whether it is self-issued; an ASK passed as --ark
    // must not slip into the intermediate's place.
    if (!isSelfIssued(ark, `--ark ${v.ark}`))
      throw new AttestationError(
        'ERR_EVIDENCE_CHAIN',
        `--ark "${parseCertificate(ark, 'ERR_EVIDENCE_CHAIN').subject.CN}" is not a root certificate`,
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
      throw new UsageError(`--policy ${v.policy}: ${(err as Error).message}`, 'ERR_POLICY_INVALID');
    }
  }
  if (v.at !== undefined) {
    const at = new Date(v.at);
    if (!ISO_TIME.test(v.at) || !Number.isFinite(at.getTime()))
      throw new UsageError(
        `--at ${v.at} is not an ISO-8601 time with Z or an offset (e.g. 2026-02-06T01:04:33Z or 2026-02-06T02:04:33+01:00)`,
      );
    options.now = at;
  }
  if (v.offline) options.offline = true;
  if (v['kds-url'] !== undefined) {
    if (!/^https?:\/\/./.test(v['kds-url']))
      throw new UsageError(`--kds-url ${v['kds-url']} is not an http(s) URL`);
    options.kds = { baseUrl: v['kds-url'] };
  }
  if (v['launch-endorsement'] !== undefined) {
    options.endorsementRoot = await readEndorsementRoot(v, '--launch-endorsement');
    input.launchEndorsement = await readInput(v['launch-endorsement'], '--launch-endorsement');
  }
  await applyTdxOptions(v, input, options, (m) => new UsageError(m));
  await applyAzureOptions(v, input, options, (m) => new UsageError(m));
  await applyBootOptions(v, input, detectFormat(input.report) === 'tdx', (m) => new UsageError(m));
  return { input, options };
}

/**
 * Claims of a report that parsed, for the JSON output of a rejected report: the format's
 * unverified view, built by its parser (formats.ts); nothing in it is trusted.
 */
function parsedClaims(report: Uint8Array): unknown {
  try {
    // Azure: the HCL header, runtime claims and hardware report, as inspect shows them.
    if (formatOf(report)?.policySection === 'azure') return unverifiedAzureClaims(report);
    return formatOf(report)?.view(report);
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
  // Known before the arguments parse, so that with --json a usage error is one JSON object too.
  const json = args.includes('--json');
  const usage = (message: string, code: UsageError['code'] = 'ERR_INVALID_ARGUMENT'): number => {
    if (!json) return usageError(io, message);
    io.out(`${JSON.stringify({ ok: false, format: null, error: { code, message: oneLine(message) } })}\n`);
    return 2;
  };
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseOptions(args, OPTIONS, true));
  } catch (err) {
    return json ? usage((err as Error).message) : usageError(io, `${(err as Error).message}\n\n${USAGE}`);
  }
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  // A root with nothing to verify under it would be ignored.
  if (
    (values['endorsement-root'] !== undefined || values['endorsement-root-sha256'] !== undefined) &&
    values['launch-endorsement'] === undefined
  )
    return usage('--endorsement-root and --endorsement-root-sha256 go with --launch-endorsement');
  // --tpm-quote without an evidence file: a vTPM quote on its own (Google Cloud); with an HCL
  // report file it is Azure evidence's quote.
  if (isVtpmRequest(values) && positionals.length === 0) {
    const inapplicable = inapplicableOptions(VTPM_ALONE, values);
    if (inapplicable !== undefined) return usage(inapplicable);
    return runVtpmVerify(values, positionals, io, {
      fail: (m) => new UsageError(m),
      policyFail: (m) => new UsageError(m, 'ERR_POLICY_INVALID'),
      iso: ISO_TIME,
    }).catch((err) => {
      if (err instanceof UsageError) return usage(err.message, err.code);
      throw err;
    });
  }
  if (positionals.length !== 1) return json ? usage('give exactly one evidence file') : usageError(io, USAGE);
  const file = positionals[0]!;

  let request: { input: EvidenceInput; options: VerifyOptions } | undefined;
  let format: string | null = null;
  try {
    request = await toRequest(file, values);
    format = detectFormat(request.input.report) ?? null;
    // The collateral settings make this run's Verifier; the rest are the verification's inputs.
    const { offline, kds, pcs, trustAnchors, ...call } = request.options;
    const verifier = createVerifier({
      ...(offline !== undefined ? { offline } : {}),
      ...(kds !== undefined ? { kds } : {}),
      ...(pcs !== undefined ? { pcs } : {}),
      ...(trustAnchors !== undefined ? { trustAnchors } : {}),
    });
    const claims = await verifier.verify(request.input, call);
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
    if (err instanceof UsageError) return usage(err.message, err.code);
    const e =
      err instanceof AttestationError
        ? err
        : new AttestationError('ERR_EVIDENCE_MALFORMED', String(err), { cause: err });
    const message = oneLine(e.message);
    if (values.json) {
      const out: Record<string, unknown> = { ok: false, format };
      // Not claims: nothing in them was verified (the signature may be what failed). Whether the
      // evidence is simulated is a verdict on its chain, so it is not shown either.
      const fields = request ? parsedClaims(request.input.report) : undefined;
      if (fields && typeof fields === 'object') {
        const { simulated: _s, ...unverified } = fields as Record<string, unknown>;
        out.unverified = unverified;
      }
      out.error = {
        code: e.code,
        message,
        ...(Object.keys(e.details).length ? { details: e.details } : {}),
      };
      io.out(`${JSON.stringify(out)}\n`);
    } else {
      io.err(
        `REJECTED: ${e.code}: ${message}\n${request ? `Nothing in ${file} is verified; 'attested-channel inspect ${file}' shows its fields.\n` : ''}`,
      );
    }
    return 1;
  }
}

// For the commands that take the same evidence options (policy --from-evidence, explain).
export {
  ISO_TIME,
  OPTIONS as VERIFY_OPTIONS,
  readEndorsementRoot,
  toRequest,
  UsageError as VerifyUsageError,
};
