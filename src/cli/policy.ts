/**
 * `attested-channel policy --from-… [--out F]`: writes a strict policy file from known-good values
 * (a `measure` result, a verified evidence file, a boot event log, a Google launch endorsement),
 * every pin with a comment. It never writes a policy that pins no workload (ERR_POLICY_INVALID,
 * exit 1). Exit 0 written, 1 a source was refused or unusable, 2 usage error.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { AttestationError } from '../errors.js';
import { parseEventLog } from '../evidence/eventlog/parse.js';
import { bootSummary } from '../evidence/eventlog/summary.js';
import { verifyLaunchEndorsement } from '../evidence/gce/endorsement.js';
import { verifyGceVtpm } from '../evidence/gce/vtpm.js';
import { parsePolicy } from '../evidence/policy.js';
import { verifyEvidence } from '../evidence/verify.js';
import {
  bootSectionSupported,
  finishPolicy,
  formatPolicy,
  mergePolicyDrafts,
  type PolicyDraft,
  policyFromBootSummary,
  policyFromClaims,
  policyFromEndorsement,
  policyFromMeasurement,
  policyFromVtpmClaims,
} from '../explain/policy-builder.js';
import type { CliIo } from './io.js';
import { oneLine, parseOptions, usageError } from './io.js';
import { ISO_TIME, readEndorsementRoot, toRequest, VERIFY_OPTIONS, VerifyUsageError } from './verify.js';
import { isVtpmRequest, readVtpmRequest } from './vtpm.js';

const USAGE = `usage: attested-channel policy [sources] [--out FILE]

Writes a strict policy (JSON, every pin with a comment) from known-good values. Sources, any mix:

  --from-measure F      the JSON of 'attested-channel measure snp --json' (repeatable)
  --from-evidence F     a report or quote, verified first with the options of 'verify'
                        (--vek, --ask, --ark, --collateral, --at, --offline, --kds-url, --pcs-url;
                        --policy F: verify under F and carry its settings over); pins measurement
                        or MRTD/RTMRs, host data, ID key digest, VMPL, signer, guest SVN, TCB floor;
                        with --event-log (verified with it) also Secure Boot, command line, EFI apps;
                        with --launch-endorsement F (Google Cloud, verified with it under
                        --endorsement-root) also the endorsed firmware build
      --pin-chip        also pin this one machine: the CHIP_ID (VCEK-signed SEV-SNP) or the
                        PPID of the PCK certificate (TDX, raw or Azure)
      --pin-pcrs LIST   Azure or Google Cloud vTPM evidence: the PCRs to pin (default 0-9,11-14)
  --tpm-quote F --tpm-signature F --pcrs F --ak-cert F [--event-log F] [--tpm-roots F|DIR] [--nonce HEX]
                        Google Cloud vTPM evidence (without --from-evidence), verified as 'verify'
                        does: pins the instance (gce: project, instance id, zone) and, with the
                        vTPM's --event-log, the PCRs it replays to, Secure Boot, command line, EFI apps
  --from-eventlog F     a boot event log (add --ccel for a TDX CCEL log): RTMRs or PCRs, Secure
                        Boot, kernel command line, EFI application digests (repeatable)
  --from-endorsement F  a Google launch endorsement (VMLaunchEndorsement) on its own, verified at
                        --at (default now) under
      --endorsement-root F  Google's GCE-cc-tcb-root certificate (DER or PEM; also the root of
                        --launch-endorsement)
      --endorsement-root-sha256 HEX  the SHA-256 the root must have (default: Google's, pinned)
      --vcpus N         SEV-SNP: the VM's vCPU count; or
      --ram-gib N       TDX: the VM's RAM in GiB
  --comment TEXT        a comment for the whole policy
  --out FILE            write the policy there (default: stdout)

Exit status: 0 written, 1 a source was refused or the policy would pin no workload, 2 usage error.
`;

const OPTIONS = {
  ...VERIFY_OPTIONS,
  'from-measure': { type: 'string', multiple: true },
  'from-evidence': { type: 'string' },
  'pin-chip': { type: 'boolean' },
  'pin-pcrs': { type: 'string' },
  'from-eventlog': { type: 'string', multiple: true },
  ccel: { type: 'boolean' },
  'from-endorsement': { type: 'string' },
  vcpus: { type: 'string' },
  'ram-gib': { type: 'string' },
  comment: { type: 'string' },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

class UsageError extends Error {}

async function read(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

function count(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9][0-9]{0,5}$/.test(value)) throw new UsageError(`${name} takes a positive decimal number`);
  return Number(value);
}

function pcrList(value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  const out = new Set<number>();
  for (const part of value.split(',')) {
    const m = /^(\d{1,2})(?:-(\d{1,2}))?$/.exec(part.trim());
    const lo = m ? Number(m[1]) : Number.NaN;
    const hi = m?.[2] !== undefined ? Number(m[2]) : lo;
    if (!m || lo > hi || hi > 23)
      throw new UsageError(`--pin-pcrs ${value}: give PCR numbers 0-23, e.g. 0-9,11-14`);
    for (let i = lo; i <= hi; i++) out.add(i);
  }
  return [...out].sort((a, b) => a - b);
}

export async function run(args: string[], io: CliIo): Promise<number> {
  let values: ReturnType<typeof parseOptions<typeof OPTIONS>>['values'];
  try {
    ({ values } = parseOptions(args, OPTIONS));
  } catch (err) {
    return usageError(io, `${(err as Error).message}\n\n${USAGE}`);
  }
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  const v = values;
  try {
    if (v.json) throw new UsageError('policy always prints JSON: drop --json');
    // --tpm-quote without --from-evidence: Google Cloud vTPM evidence on its own (as for verify);
    // with it, Azure evidence's quote.
    const vtpmAlone = isVtpmRequest(v) && !v['from-evidence'];
    const sources =
      (v['from-measure']?.length ?? 0) +
      (v['from-evidence'] ? 1 : 0) +
      (vtpmAlone ? 1 : 0) +
      (v['from-eventlog']?.length ?? 0) +
      (v['from-endorsement'] ? 1 : 0);
    if (sources === 0) throw new UsageError(`give at least one source\n\n${USAGE}`);
    if (v['pin-chip'] && !v['from-evidence']) throw new UsageError('--pin-chip needs --from-evidence');
    if (v['pin-pcrs'] !== undefined && !v['from-evidence'] && !vtpmAlone)
      throw new UsageError('--pin-pcrs needs --from-evidence or --tpm-quote');
    if (v.ccel && !v['from-eventlog']) throw new UsageError('--ccel needs --from-eventlog');
    if ((v.vcpus !== undefined || v['ram-gib'] !== undefined) && !v['from-endorsement'])
      throw new UsageError('--vcpus and --ram-gib need --from-endorsement');
    if (v['launch-endorsement'] !== undefined && !v['from-evidence'])
      throw new UsageError('--launch-endorsement goes with the evidence of --from-evidence');
    if (
      (v['endorsement-root'] !== undefined || v['endorsement-root-sha256'] !== undefined) &&
      !v['from-endorsement'] &&
      v['launch-endorsement'] === undefined
    )
      throw new UsageError(
        '--endorsement-root and --endorsement-root-sha256 need --from-endorsement or --launch-endorsement',
      );

    const drafts: PolicyDraft[] = [];
    const notes: string[] = [];
    for (const f of v['from-measure'] ?? []) {
      const text = Buffer.from(await read(f, '--from-measure')).toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new UsageError(`--from-measure ${f} is not JSON (the output of 'measure snp --json')`);
      }
      drafts.push(policyFromMeasurement(json as Parameters<typeof policyFromMeasurement>[0], f));
    }
    if (v['from-evidence']) {
      const file = v['from-evidence'];
      const { input, options } = await toRequest(file, v as Parameters<typeof toRequest>[1]);
      const claims = await verifyEvidence(input, options);
      const pcrs = pcrList(v['pin-pcrs']);
      drafts.push(
        policyFromClaims(claims, {
          origin: file,
          ...(v['pin-chip'] ? { pinChip: true } : {}),
          ...(options.policy ? { base: parsePolicy(options.policy) } : {}),
          ...(pcrs ? { pcrs } : {}),
        }),
      );
    } else if (vtpmAlone) {
      const request = await readVtpmRequest(v, {
        fail: (m) => new UsageError(m),
        policyFail: (m) => new UsageError(m),
        iso: ISO_TIME,
      });
      const claims = verifyGceVtpm(request.input, request.options);
      const pcrs = pcrList(v['pin-pcrs']);
      if (!claims.boot) {
        const why =
          "no --event-log: only the instance is known, which pins no workload (the vTPM's PCRs are pinned through the log that replays to them)";
        if (sources === 1) throw new AttestationError('ERR_POLICY_INVALID', why);
        notes.push(why);
      }
      drafts.push(policyFromVtpmClaims(claims, { origin: v['tpm-quote']!, ...(pcrs ? { pcrs } : {}) }));
      if (!request.nonce) notes.push('no --nonce: the quote was not checked for freshness');
    } else if (v.policy !== undefined) throw new UsageError('--policy needs --from-evidence or --tpm-quote');
    const boot = bootSectionSupported();
    for (const f of v['from-eventlog'] ?? []) {
      const log = parseEventLog(await read(f, '--from-eventlog'), { ccel: v.ccel === true });
      const summary = bootSummary(log);
      if (!boot && log.kind !== 'ccel')
        throw new AttestationError(
          'ERR_POLICY_INVALID',
          `--from-eventlog ${f}: a TPM log's pins go in the policy's boot section, which this version of the library does not have yet`,
        );
      if (!boot)
        notes.push(
          `${f}: RTMR pins only (this version's policies have no boot section for Secure Boot, command line and EFI apps; the RTMRs cover them)`,
        );
      drafts.push(policyFromBootSummary(summary, { origin: f, boot }));
    }
    if (v['from-endorsement']) {
      const root = await readEndorsementRoot(v, '--from-endorsement');
      const vcpus = count(v.vcpus, '--vcpus');
      const ramGib = count(v['ram-gib'], '--ram-gib');
      if ((vcpus === undefined) === (ramGib === undefined))
        throw new UsageError(
          '--from-endorsement needs --vcpus N (SEV-SNP) or --ram-gib N (TDX), one of them',
        );
      const at = v.at === undefined ? new Date() : new Date(v.at);
      if (!Number.isFinite(at.getTime())) throw new UsageError(`--at ${v.at} is not an ISO-8601 time`);
      const e = verifyLaunchEndorsement(await read(v['from-endorsement'], '--from-endorsement'), {
        root: root.certificate,
        ...(root.sha256 !== undefined ? { rootSha256: root.sha256 } : {}),
        now: at,
      });
      drafts.push(policyFromEndorsement(e, { ...(vcpus ? { vcpus } : {}), ...(ramGib ? { ramGib } : {}) }));
      if (sources === 1)
        notes.push(
          "the endorsement pins Google's firmware, the same for every customer: add --from-eventlog to pin your OS",
        );
    }
    const draft = mergePolicyDrafts(drafts);
    if (v.comment !== undefined) draft.comment = v.comment;
    finishPolicy(draft);
    const text = formatPolicy(draft);
    if (v.out !== undefined) {
      try {
        await writeFile(v.out, text, { mode: 0o644 });
      } catch (err) {
        throw new UsageError(`cannot write --out ${v.out}: ${(err as Error).message}`);
      }
      io.err(`wrote ${v.out}\n`);
    } else io.out(text);
    for (const n of notes) io.err(`note: ${n}\n`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError || err instanceof VerifyUsageError) return usageError(io, err.message);
    const e =
      err instanceof AttestationError ? err : new AttestationError('ERR_INVALID_ARGUMENT', String(err));
    io.err(`attested-channel: ${e.code}: ${oneLine(e.message)}\n`);
    return 1;
  }
}
