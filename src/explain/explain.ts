/**
 * The trust report of docs/trust-model.md, computed for one piece of evidence: which TEE and
 * signing key vouch for it, whose code its measurement covers, whether the user's OS is covered,
 * and the facts that change what it proves (VMPL, debug, migration agent, TCB, revocation, the
 * REPORT_DATA binder, simulation). Plain data with fixed field names (docs/api.md
 * "explainClaims"), so a server can log it, and one sentence per fact for people.
 *
 * It explains; it does not appraise: nothing here accepts or refuses evidence. Claims that were
 * not verified (`verified: false`) are explained as what the evidence says about itself.
 */
import { AttestationError } from '../errors.js';
import type { AzureClaims } from '../evidence/azure/verify.js';
import type { EventLog } from '../evidence/eventlog/parse.js';
import { checkReplay, replayEventLog } from '../evidence/eventlog/replay.js';
import { type BootSummary, bootSummary } from '../evidence/eventlog/summary.js';
import type { LaunchEndorsement } from '../evidence/gce/endorsement.js';
import type { EndorsementClaims } from '../evidence/gce/launch.js';
import type { GceVtpmClaims } from '../evidence/gce/vtpm.js';
import type { Claims, RevocationStatus, SnpClaims, TcbVersion, TdxClaims } from '../evidence/types.js';
import { badArgument, checkClaims, checkEndorsement, checkOptions, isPlainObject } from './args.js';
import { knownImage } from './known-images.js';
import { explainVtpm, type VtpmExplainReport } from './vtpm.js';

/** Claims explainClaims() reads: those of verifyEvidence() or verifyAzure(). */
export type ExplainableClaims = Claims | AzureClaims;

export interface ExplainOptions {
  /** Whether the claims come from a verification (default true); false for parsed-only evidence. */
  verified?: boolean;
  /** A boot event log of this VM: replayed and checked against the evidence's registers here. */
  eventLog?: EventLog;
  /** A launch endorsement already verified with verifyLaunchEndorsement(). */
  endorsement?: LaunchEndorsement;
}

export interface ExplainReport {
  /** Signatures, chain and collateral were checked (false: parsed only, nothing is established). */
  verified: boolean;
  tee: {
    format: ExplainableClaims['format'];
    /** 'AMD SEV-SNP' or 'Intel TDX'. */
    technology: string;
    /** 'Milan' | 'Genoa' | 'Turin' for SEV-SNP; undefined for TDX. */
    product?: string;
    /** 'azure' when Microsoft's paravisor made the report; 'direct' when the guest asked the hardware. */
    via: 'azure' | 'direct';
    text: string;
  };
  signer: {
    /** 'vcek' (one chip), 'vlek' (a cloud provider's fleet) or 'pck' (one Intel platform). */
    key: 'vcek' | 'vlek' | 'pck';
    /** Whether the signing key identifies one machine. */
    pinsChip: boolean;
    text: string;
  };
  measurement: {
    register: 'measurement' | 'mrTd';
    value: string;
    /** The provider image it is, from the library's table (with its source) or a verified endorsement. */
    knownImage: { owner: string; image: string; source: string } | null;
    text: string;
  };
  os: {
    /** A boot log replayed to registers the evidence vouches for: the user's OS is measured and readable. */
    covered: boolean;
    /** Where this kind of evidence records the boot ('pcrs': a vTPM, 'rtmrs': TDX) or null (nowhere). */
    measuredIn: 'pcrs' | 'rtmrs' | null;
    /** From the verified boot log, when there is one. */
    secureBoot: boolean | null;
    kernelCmdline: string | null;
    /** Registers the log was checked against ('RTMR0', 'sha256:PCR4', …). */
    matched: string[];
    text: string;
  };
  vmpl: { value: number; text: string } | null;
  debug: { value: boolean; text: string };
  migrationAgent: { value: boolean; text: string } | null;
  tcb: {
    /** TDX: Intel's TCB status for this platform; SEV-SNP: null (AMD publishes no status). */
    status: string | null;
    advisoryIds: string[];
    /** SEV-SNP: REPORTED_TCB (the VCEK is issued for it). */
    reported: TcbVersion | null;
    text: string;
  };
  revocation: RevocationStatus & { text: string };
  reportData: {
    value: string;
    allZero: boolean;
    /** Whether the evidence carries a binder (key or nonce) chosen by the guest. */
    binder: boolean;
    text: string;
  };
  /** Verified claims: the evidence is from the library's simulator. null when not verified. */
  simulated: boolean | null;
  /** The claims' workloadPinned (the policy they passed pins the workload); null when not verified. */
  workloadPinned: boolean | null;
  /**
   * Google Cloud's vTPM evidence beside the report (`claims.vtpm`): explainVtpm()'s report; its
   * sentences follow the hardware's in `summary`.
   */
  vtpm?: VtpmExplainReport;
  /** One sentence per fact above, in that order: the text output of `attested-channel explain`. */
  summary: string[];
}

function allZero(hex: string): boolean {
  return /^0*$/.test(hex);
}

function isSnp(c: ExplainableClaims): c is SnpClaims | Extract<AzureClaims, { format: 'azure-sev-snp' }> {
  return c.format === 'sev-snp' || c.format === 'azure-sev-snp';
}

function isAzure(c: ExplainableClaims): c is AzureClaims {
  return c.format === 'azure-sev-snp' || c.format === 'azure-tdx';
}

function tcbText(t: TcbVersion): string {
  return `bootloader ${t.bootloader}, TEE ${t.tee}, SNP ${t.snp}, microcode ${t.microcode}${t.fmc !== undefined ? `, FMC ${t.fmc}` : ''}`;
}

function revocationText(r: RevocationStatus, verified: boolean): string {
  if (!verified) return 'Revocation: not checked (the evidence was not verified).';
  if (!r.checked)
    return `Revocation: NOT checked (${r.reason ?? 'no CRL'}); a revoked key would not have been noticed.`;
  const crls = r.crls.map((c) => `${c.issuer} (thisUpdate ${c.thisUpdate})`).join(', ');
  const from = {
    kds: 'fetched from AMD KDS',
    cache: 'from the cache',
    collateral: 'from the collateral',
    none: '',
  }[r.source];
  return `Revocation: checked against ${crls}, ${from}.`;
}

function endorsedImage(
  claims: ExplainableClaims,
  e: LaunchEndorsement | undefined,
): ExplainReport['measurement']['knownImage'] {
  if (!e) return carriedEndorsement(claims);
  const firmware = Buffer.from(e.uefiDigest).toString('hex');
  const signed = e.timestamp.toISOString();
  if (isSnp(claims) && e.sevSnp) {
    for (const [vcpus, m] of e.sevSnp.measurements)
      if (Buffer.from(m).toString('hex') === claims.measurement)
        return {
          owner: 'Google',
          image: `Google Compute Engine firmware (UEFI SHA-384 ${firmware}) for ${vcpus} vCPUs`,
          source: `Google launch endorsement signed ${signed}, verified under GCE-cc-tcb-root`,
        };
  }
  if (!isSnp(claims) && e.tdx) {
    for (const m of e.tdx.measurements)
      if (Buffer.from(m.mrtd).toString('hex') === claims.mrTd)
        return {
          owner: 'Google',
          image: `Google Compute Engine TDX firmware (UEFI SHA-384 ${firmware}) for ${m.ramGib} GiB of RAM${m.earlyAccept ? ', early accept' : ''}`,
          source: `Google launch endorsement signed ${signed}, verified under GCE-cc-tcb-root`,
        };
  }
  return null;
}

/** The endorsement the evidence itself carried, as the verifier checked it (claims.endorsement). */
function carriedEndorsement(claims: ExplainableClaims): ExplainReport['measurement']['knownImage'] {
  const e = (claims as { endorsement?: EndorsementClaims }).endorsement;
  if (!isPlainObject(e) || e.verified !== true || e.matches !== true) return null;
  const fit =
    typeof e.vcpus === 'number'
      ? ` for ${e.vcpus} vCPUs`
      : typeof e.ramGib === 'number'
        ? ` for ${e.ramGib} GiB of RAM${e.earlyAccept ? ', early accept' : ''}`
        : e.svsm
          ? ' under an SVSM'
          : '';
  return {
    owner: 'Google',
    image: `Google Compute Engine ${isSnp(claims) ? '' : 'TDX '}firmware (UEFI SHA-384 ${e.firmwareSha384})${fit}`,
    source: `Google launch endorsement carried in the evidence, signed ${e.timestamp}, verified under GCE-cc-tcb-root (SHA-256 ${e.rootSha256.slice(0, 16)}…)`,
  };
}

/** The registers a log can be checked against in these claims, or undefined. */
function quotedRegisters(claims: ExplainableClaims): Parameters<typeof checkReplay>[1] | undefined {
  // An HCL report alone (parsedClaims()) has no PCR values: they come with the TPM quote.
  if (isAzure(claims))
    return Object.keys(claims.tpm.pcrs).length > 0
      ? { pcrs: claims.tpm.pcrs as Record<string, Record<string, string>> }
      : undefined;
  if (claims.format === 'tdx') return { rtmrs: [claims.rtmr0, claims.rtmr1, claims.rtmr2, claims.rtmr3] };
  return undefined;
}

/**
 * The claims' `boot` (issue 13: a log the verifier itself replayed to the quoted registers), read
 * structurally so that claims without it explain as before.
 */
interface VerifiedBoot {
  source: 'tpm' | 'ccel';
  pcrs?: Record<string, Record<string, string>>;
  rtmrs?: string[];
  secureBoot: boolean | null;
  kernelCmdline: string | null;
  interpreted: boolean;
}

export function verifiedBootOf(claims: object): VerifiedBoot | undefined {
  const b = (claims as { boot?: unknown }).boot;
  return typeof b === 'object' && b !== null && 'source' in b ? (b as VerifiedBoot) : undefined;
}

function explainOs(
  claims: ExplainableClaims,
  verified: boolean,
  log: EventLog | undefined,
): ExplainReport['os'] {
  const boot = verified && !log ? verifiedBootOf(claims) : undefined;
  if (boot) {
    const matched =
      boot.source === 'ccel'
        ? (boot.rtmrs ?? []).flatMap((v, i) => (/^0*$/.test(v) ? [] : [`RTMR${i}`]))
        : Object.entries(boot.pcrs ?? {}).flatMap(([bank, v]) =>
            Object.keys(v).map((i) => `${bank}:PCR${i}`),
          );
    const secureBoot = boot.interpreted ? boot.secureBoot : null;
    const kernelCmdline = boot.interpreted ? boot.kernelCmdline : null;
    return {
      covered: true,
      measuredIn: boot.source === 'ccel' ? 'rtmrs' : 'pcrs',
      secureBoot,
      kernelCmdline,
      matched,
      text: `Your OS: covered by the boot log the verifier replayed to ${matched.join(', ')}; Secure Boot ${secureBoot === null ? 'not measured' : secureBoot ? 'on' : 'OFF'}; kernel command line ${kernelCmdline === null ? 'not measured' : JSON.stringify(kernelCmdline)}.`,
    };
  }
  const measuredIn: ExplainReport['os']['measuredIn'] = isAzure(claims)
    ? 'pcrs'
    : claims.format === 'tdx'
      ? 'rtmrs'
      : null;
  const none = { secureBoot: null, kernelCmdline: null, matched: [] as string[] };
  const where =
    measuredIn === 'pcrs'
      ? "the vTPM's PCRs (signed by the AK the report vouches for) measure the boot, but nothing here reads them: give the boot log, or pin the PCRs (`attested-channel policy --from-evidence`)"
      : measuredIn === 'rtmrs'
        ? 'RTMR0-3 may measure the boot, but nothing here reads them: give the CCEL boot log (--event-log --ccel), or pin the RTMRs'
        : 'an SEV-SNP report has no register for the OS: the launch measurement covers the firmware (and a direct-boot kernel only if its hashes were measured; compare with `measure`)';
  if (!log) return { covered: false, measuredIn, ...none, text: `Your OS: NOT covered — ${where}.` };
  const expected = quotedRegisters(claims);
  if (!expected)
    return {
      covered: false,
      measuredIn,
      ...none,
      text: `Your OS: NOT covered — a boot log was given, but this evidence has no registers to check it against (${isAzure(claims) ? 'an HCL report alone has no PCR values: they come with its TPM quote' : 'an SEV-SNP report has none'}).`,
    };
  let matched: string[];
  try {
    matched = checkReplay(replayEventLog(log), expected).matched;
  } catch (err) {
    const why = err instanceof AttestationError ? err.message : String(err);
    return {
      covered: false,
      measuredIn,
      ...none,
      text: `Your OS: NOT covered — the boot log does not replay to this evidence's registers (${why}).`,
    };
  }
  let summary: BootSummary;
  try {
    summary = bootSummary(log);
  } catch {
    summary = { interpreted: false } as BootSummary;
  }
  const secureBoot = summary.interpreted ? (summary.secureBoot ?? null) : null;
  const kernelCmdline = summary.interpreted ? (summary.kernelCmdline ?? null) : null;

  const facts = [
    `Secure Boot ${secureBoot === null ? 'not measured' : secureBoot ? 'on' : 'OFF'}`,
    `kernel command line ${kernelCmdline === null ? 'not measured' : JSON.stringify(kernelCmdline)}`,
    ...(summary.interpreted ? [] : ['single events not interpreted: the log has anomalies']),
  ];
  return {
    covered: verified,
    measuredIn,
    secureBoot,
    kernelCmdline,
    matched,
    text: verified
      ? `Your OS: covered by the boot log, which replays to ${matched.join(', ')}; ${facts.join('; ')}.`
      : `Your OS: NOT established — the boot log replays to ${matched.join(', ')}, but the evidence holding them was not verified; ${facts.join('; ')}.`,
  };
}

/**
 * Explains verified claims (or, with `verified: false`, what parsed evidence says). Pure: reads
 * the claims and options, touches no network or clock.
 */
export function explainClaims(claims: ExplainableClaims, options: ExplainOptions = {}): ExplainReport {
  checkClaims('explainClaims', claims);
  const o = checkOptions('explainClaims', options);
  if (o.verified !== undefined && typeof o.verified !== 'boolean')
    throw badArgument('explainClaims: options.verified must be a boolean');
  const log = o.eventLog as Record<string, unknown> | undefined;
  if (log !== undefined && !(isPlainObject(log) && typeof log.kind === 'string' && Array.isArray(log.events)))
    throw badArgument('explainClaims: options.eventLog must be one parseEventLog() returned');
  if (o.endorsement !== undefined) checkEndorsement('explainClaims', o.endorsement);
  const verified = options.verified !== false;
  const azure = isAzure(claims);
  const snp = isSnp(claims);
  const technology = snp ? 'AMD SEV-SNP' : 'Intel TDX';
  const product = snp ? (claims as SnpClaims).product : undefined;

  const tee: ExplainReport['tee'] = {
    format: claims.format,
    technology,
    ...(product ? { product } : {}),
    via: azure ? 'azure' : 'direct',
    text: `TEE: ${technology}${product ? ` (${product})` : ''}${
      azure
        ? ", reported by Microsoft's Azure paravisor, which hashes its runtime claims (with the vTPM's AK) into REPORT_DATA"
        : ', reported to the guest directly by the hardware'
    }${verified ? '' : ' — NOT VERIFIED: nothing below is established'}.`,
  };

  let signer: ExplainReport['signer'];
  if (snp) {
    const key = (claims as SnpClaims).signer;
    signer =
      key === 'vcek'
        ? {
            key,
            pinsChip: true,
            text: "Signer: VCEK, a key unique to one AMD chip and its TCB (the report's CHIP_ID names it).",
          }
        : {
            key,
            pinsChip: false,
            text: 'Signer: VLEK, a key AMD issued to a cloud provider and shared by its fleet: it proves a genuine AMD chip at the provider, not which one (CHIP_ID is zero).',
          };
  } else if (azure && !verified && (claims as { fmspc?: string }).fmspc === '') {
    // parsedClaims() of an HCL report alone: its TDREPORT is MACed for this platform, not signed.
    signer = {
      key: 'pck',
      pinsChip: false,
      text: "Signer: none in this file — the HCL report's TDREPORT is MACed for the platform, not signed; Intel's quoting enclave signs the TD quote of it (IMDS /acc/tdquote), certified by a PCK certificate.",
    };
  } else {
    // The PCK certificate names its platform by PPID (Intel SGX PCK Certificate and CRL Profile),
    // which tdx.ppids pins; claims parsed from a quote that did not verify may lack it.
    const ppid = (claims as { ppid?: unknown }).ppid;
    const named = typeof ppid === 'string' && ppid !== '';
    signer = {
      key: 'pck',
      pinsChip: named,
      text: named
        ? `Signer: Intel's quoting enclave, certified by the PCK certificate of one Intel platform (FMSPC ${(claims as TdxClaims).fmspc}, PPID ${ppid}); tdx.ppids pins that platform.`
        : `Signer: Intel's quoting enclave, certified by the PCK certificate of one Intel platform (FMSPC ${(claims as TdxClaims).fmspc}).`,
    };
  }

  const register = snp ? 'measurement' : 'mrTd';
  const value = snp ? (claims as SnpClaims).measurement : (claims as TdxClaims).mrTd;
  const table = knownImage(register, value);
  const image = table
    ? { owner: table.owner, image: table.image, source: table.source }
    : endorsedImage(claims, options.endorsement);
  const regName = snp ? 'MEASUREMENT' : 'MRTD';
  const measurement: ExplainReport['measurement'] = {
    register,
    value,
    knownImage: image,
    text: image
      ? `${regName} ${value.slice(0, 16)}…: ${image.owner}'s code — ${image.image} (source: ${image.source}). It pins the provider's image, not your workload.`
      : `${regName} ${value.slice(0, 16)}…: unknown image — compare with \`attested-channel measure\` on the firmware (and kernel) you built, or with the provider's published values.`,
  };

  const vtpmClaims = verified ? (claims as { vtpm?: GceVtpmClaims }).vtpm : undefined;
  const vtpm = vtpmClaims !== undefined ? explainVtpm(vtpmClaims) : undefined;
  let os = explainOs(claims, verified, options.eventLog);
  // The report measures no OS; Google's vTPM beside it did (outside the TEE: its own sentences say so).
  if (!os.covered && vtpm?.os.covered) {
    const { secureBoot, kernelCmdline, matched } = vtpm.os;
    os = {
      covered: true,
      measuredIn: 'pcrs',
      secureBoot,
      kernelCmdline,
      matched,
      text: `Your OS: covered by Google's vTPM (outside the TEE, see below), whose boot log the verifier replayed to ${matched.join(', ')}; the hardware report itself measures no OS.`,
    };
  }

  let vmpl: ExplainReport['vmpl'] = null;
  let migrationAgent: ExplainReport['migrationAgent'] = null;
  let debug: ExplainReport['debug'];
  if (snp) {
    const c = claims as SnpClaims;
    vmpl = {
      value: c.vmpl,
      text:
        c.vmpl === 0
          ? azure
            ? "VMPL 0: the report was asked for by Microsoft's paravisor, the most privileged software in the VM; your OS runs below it."
            : 'VMPL 0: asked for by the most privileged software in the VM (the guest kernel, or a paravisor/SVSM if one runs there).'
          : `VMPL ${c.vmpl}: asked for by software below VMPL 0; something more privileged (a paravisor or SVSM at VMPL 0) can see and change it.`,
    };
    debug = {
      value: c.policy.debug,
      text: c.policy.debug
        ? 'Debug: ALLOWED by the guest policy — the host can read and change guest memory; nothing the VM holds is confidential.'
        : 'Debug: off (guest policy forbids the host from reading guest memory).',
    };
    migrationAgent = {
      value: c.policy.migrateMa,
      text: c.policy.migrateMa
        ? 'Migration agent: ALLOWED — a migration agent may move the VM and its memory to another machine.'
        : 'Migration agent: none allowed.',
    };
  } else {
    const c = claims as TdxClaims;
    debug = {
      value: c.tdAttributes.debug,
      text: c.tdAttributes.debug
        ? 'Debug: ON (TDATTRIBUTES.DEBUG) — the host can read and change TD memory; nothing the TD holds is confidential.'
        : 'Debug: off (TDATTRIBUTES.DEBUG clear).',
    };
  }

  let tcb: ExplainReport['tcb'];
  if (snp) {
    const reported = (claims as SnpClaims).reportedTcb;
    tcb = {
      status: null,
      advisoryIds: [],
      reported,
      text: `TCB: reported ${tcbText(reported)}; AMD publishes no up-to-date status, so only a policy's minTcb says whether this level is acceptable.`,
    };
  } else {
    const c = claims as TdxClaims;
    const status = verified ? c.tcbStatus : null;
    tcb = {
      status,
      advisoryIds: verified ? [...c.advisoryIds] : [],
      reported: null,
      text:
        status === null
          ? 'TCB: status unknown (not verified against Intel collateral).'
          : `TCB: ${status} per Intel's collateral${c.advisoryIds.length ? ` (advisories ${c.advisoryIds.join(', ')})` : ''}.`,
    };
  }

  const revocation = { ...claims.revocation, text: revocationText(claims.revocation, verified) };

  const rd = claims.reportData;
  const zero = allZero(rd);
  let reportData: ExplainReport['reportData'];
  if (azure) {
    const a = claims as AzureClaims;
    const user = a.userData !== null && !allZero(a.userData);
    // parsedClaims() of an HCL report alone: no quote was read.
    const noQuote = !verified && a.tpm.extraData === '' && Object.keys(a.tpm.pcrs).length === 0;
    const quote = noQuote
      ? 'no TPM quote was given'
      : `the TPM quote's extraData is ${a.tpm.extraData.length / 2} bytes`;
    reportData = {
      value: rd,
      allZero: zero,
      binder: user,
      text: user
        ? `REPORT_DATA: the hash of the paravisor's runtime claims, whose user-data ${a.userData!.slice(0, 16)}… the guest chose (a binder in the hardware report); ${quote}.`
        : noQuote
          ? "REPORT_DATA: the hash of the paravisor's runtime claims; user-data is zero, so a binder can only be in a TPM quote's extraData, signed by the vTPM's AK (no quote was given)."
          : `REPORT_DATA: the hash of the paravisor's runtime claims; user-data is zero, so a binder can only be in the TPM quote's extraData (${a.tpm.extraData.length / 2} bytes), signed by the vTPM's AK.`,
    };
  } else {
    reportData = {
      value: rd,
      allZero: zero,
      binder: !zero,
      text: zero
        ? 'REPORT_DATA: all zero — the evidence binds no key or nonce, so anyone holding a copy can replay it.'
        : 'REPORT_DATA: 64 bytes the guest chose (a binder: a key hash or a nonce); an attested channel checks it against its own handshake.',
    };
  }

  const simulated = verified ? claims.simulated : null;
  const workloadPinned = verified ? claims.workloadPinned : null;
  const simText =
    simulated === null
      ? 'Simulated: unknown (not verified).'
      : simulated
        ? "Simulated: YES — signed by this library's simulator, not by hardware."
        : 'Simulated: no — signed under the vendor roots.';
  const pinText =
    workloadPinned === null
      ? null
      : workloadPinned
        ? 'Policy: the workload was pinned by the policy the evidence passed.'
        : 'Policy: the workload was NOT pinned — any genuine guest of this kind passes the policy used (`attested-channel policy` writes one that pins it).';

  const summary = [
    tee.text,
    signer.text,
    measurement.text,
    os.text,
    ...(vmpl ? [vmpl.text] : []),
    debug.text,
    ...(migrationAgent ? [migrationAgent.text] : []),
    tcb.text,
    revocation.text,
    reportData.text,
    simText,
    ...(pinText ? [pinText] : []),
    ...(vtpm ? vtpm.summary : []),
  ];
  return {
    verified,
    tee,
    signer,
    measurement,
    os,
    vmpl,
    debug,
    migrationAgent,
    tcb,
    revocation,
    reportData,
    simulated,
    workloadPinned,
    ...(vtpm ? { vtpm } : {}),
    summary,
  };
}
