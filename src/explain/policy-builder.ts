/**
 * Strict policies written from known-good values: a `measure` result, verified claims, a boot
 * event log, a Google launch endorsement. Each source gives a draft (plain JSON in the policy
 * format, every pin with a `comments` entry saying what it covers and where its value came from);
 * mergePolicyDrafts() joins drafts; finishPolicy() refuses a result that parsePolicy() refuses or
 * that pins no workload for a format it admits (a policy of firmware or TCB alone admits any guest).
 *
 * Nothing here loosens a default: no draft sets allowDebug, allowMigrationAgent, a TDX TCB status
 * or requireSeptVeDisable unless the caller's base policy did (the base is the policy the evidence
 * was verified under, and its settings are carried over with a comment saying so).
 */
import { AttestationError } from '../errors.js';
import { unpinnedFormats } from '../evidence/appraise.js';
import type { AzureClaims } from '../evidence/azure/verify.js';
import type { BootSummary } from '../evidence/eventlog/summary.js';
import type { LaunchEndorsement } from '../evidence/gce/endorsement.js';
import type { EndorsementClaims } from '../evidence/gce/launch.js';
import type { GceVtpmClaims } from '../evidence/gce/vtpm.js';
import { type Policy, parsePolicy } from '../evidence/policy.js';
import type { Claims, SnpClaims, TdxClaims } from '../evidence/types.js';
import {
  badArgument,
  checkClaims,
  checkCount,
  checkEndorsement,
  checkOptionalString,
  checkOptions,
  isPlainObject,
} from './args.js';
import { knownImage } from './known-images.js';

/** A policy in its JSON form, with `comments` members: what finishPolicy() checks and a file holds. */
export type PolicyDraft = Record<string, unknown>;

type Section = Record<string, unknown> & { comments?: Record<string, string> };

function section(draft: PolicyDraft, path: string[]): Section {
  let s = draft as Record<string, unknown>;
  for (const p of path) {
    if (typeof s[p] !== 'object' || s[p] === null) s[p] = {};
    s = s[p] as Record<string, unknown>;
  }
  return s as Section;
}

function pin(s: Section, field: string, value: unknown, comment: string): void {
  s[field] = value;
  s.comments = { ...(s.comments ?? {}), [field]: comment };
}

function short(hex: string): string {
  return `${hex.slice(0, 16)}…`;
}

/**
 * PCRs pinned by default from a vTPM quote: firmware, option ROMs, boot manager and loader
 * (0-7), GRUB's command line and files (8-9) and the kernel/UKI, systemd and shim registers
 * (11-14). Left out: PCR10 (IMA extends it while the OS runs), 15-16 (systemd's runtime values,
 * debug), 17-22 (DRTM) and 23 (applications) — TCG PC Client PFP §3.3.4 and the UAPI group's
 * "Linux TPM PCR Registry".
 */
export const DEFAULT_PCRS: readonly number[] = Object.freeze([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14]);

const PCR_MEANING: Record<number, string> = {
  0: 'firmware code (SRTM, UEFI)',
  1: 'firmware configuration',
  2: 'option ROMs and drivers',
  3: 'option ROM configuration',
  4: 'boot manager and the EFI applications it loaded (shim, GRUB, kernel)',
  5: 'boot manager configuration and the GPT',
  6: 'platform-specific events',
  7: 'Secure Boot state and the keys that verified the boot',
  8: "GRUB's commands and the kernel command line",
  9: 'files GRUB read (kernel, initrd)',
  11: 'the unified kernel image (systemd-stub)',
  12: 'kernel command line and credentials (systemd-stub)',
  13: 'system extensions (systemd-stub)',
  14: "shim's MOK certificates",
};

export interface PolicyFromClaimsOptions {
  /**
   * Pin the machine: the CHIP_ID (SEV-SNP, VCEK-signed only) or the PCK certificate's PPID (TDX,
   * raw or under Azure): the policy then admits this one machine (and may allow evidence reuse).
   */
  pinChip?: boolean;
  /** The policy the claims were verified under: its non-pin settings are carried over. */
  base?: Policy;
  /** Where the claims came from, for the comments (a file name). */
  origin?: string;
  /** Azure: the PCRs to pin (default DEFAULT_PCRS). */
  pcrs?: readonly number[];
}

function carryBase(
  target: Section,
  base: Record<string, unknown> | undefined,
  pins: readonly string[],
): void {
  if (!base) return;
  for (const [k, v] of Object.entries(base)) {
    if (pins.includes(k) || k in target || v === undefined) continue;
    pin(target, k, v, 'carried over from the policy the evidence was verified under');
  }
}

function snpPins(s: Section, c: SnpClaims, options: PolicyFromClaimsOptions, azure: boolean): void {
  const from = options.origin ? ` (from ${options.origin})` : '';
  const known = knownImage('measurement', c.measurement);
  pin(
    s,
    'measurements',
    [c.measurement],
    known
      ? `${short(c.measurement)}: ${known.owner}'s image (${known.image}); it pins the provider's code, not your workload`
      : azure
        ? `${short(c.measurement)}${from}: the Azure paravisor's launch measurement (Microsoft's code, not your workload)`
        : `${short(c.measurement)}${from}: the launch measurement — firmware, and a direct-boot kernel/initrd/command line if measured; compare with \`attested-channel measure\``,
  );
  pin(s, 'hostData', [c.hostData], `HOST_DATA${from}: set by whoever launched the VM`);
  pin(
    s,
    'idKeyDigests',
    [c.idKeyDigest],
    /^0+$/.test(c.idKeyDigest)
      ? `ID_KEY_DIGEST${from} is zero: no ID block signed this launch`
      : `ID_KEY_DIGEST${from}: the ID key that signed this launch's ID block`,
  );
  pin(s, 'vmpls', [c.vmpl], `VMPL${from}: the privilege level that asked for the report`);
  pin(
    s,
    'signers',
    [c.signer],
    c.signer === 'vcek'
      ? 'reports signed by a chip key (VCEK)'
      : "reports signed by the cloud provider's VLEK",
  );
  pin(s, 'minGuestSvn', c.guestSvn, `GUEST_SVN${from}: a lower one is refused`);
  const t = c.reportedTcb;
  pin(
    s,
    'minTcb',
    {
      bootloader: t.bootloader,
      tee: t.tee,
      snp: t.snp,
      microcode: t.microcode,
      ...(t.fmc !== undefined ? { fmc: t.fmc } : {}),
    },
    `REPORTED_TCB${from}: older firmware or microcode is refused; updates still pass`,
  );
  if (options.pinChip) {
    if (/^0+$/.test(c.chipId))
      throw new AttestationError(
        'ERR_INVALID_ARGUMENT',
        'cannot pin the chip: CHIP_ID is zero (VLEK-signed or MASK_CHIP_ID): the report names no chip',
      );
    pin(s, 'chipIds', [c.chipId], `CHIP_ID${from}: only this one AMD chip`);
  }
}

function tdxPins(s: Section, c: TdxClaims, options: PolicyFromClaimsOptions, azure: boolean): void {
  const from = options.origin ? ` (from ${options.origin})` : '';
  const known = knownImage('mrTd', c.mrTd);
  pin(
    s,
    'mrTd',
    [c.mrTd],
    known
      ? `${short(c.mrTd)}: ${known.owner}'s image (${known.image}); it pins the provider's code, not your workload`
      : `${short(c.mrTd)}${from}: MRTD, the TD's initial memory (the firmware)${azure ? " — the Azure paravisor's" : ''}`,
  );
  const rtmrWhat = [
    'firmware configuration and Secure Boot (TDVF measures what PCR1/7 would hold)',
    'the boot loader and the EFI applications (PCR2-5 in TDVF)',
    'the OS loader: GRUB commands, kernel command line, kernel and initrd (PCR8-15)',
    'extended by the OS at run time',
  ];
  for (const i of [0, 1, 2, 3] as const) {
    const v = c[`rtmr${i}`];
    pin(
      s,
      `rtmr${i}`,
      [v],
      /^0+$/.test(v)
        ? `RTMR${i}${from} is zero: nothing was extended into it`
        : `RTMR${i}${from}: ${rtmrWhat[i]}`,
    );
  }
  pin(s, 'mrConfigId', [c.mrConfigId], `MRCONFIGID${from}: set by whoever launched the TD`);
  pin(s, 'mrOwner', [c.mrOwner], `MROWNER${from}: set by whoever launched the TD`);
  pin(s, 'mrOwnerConfig', [c.mrOwnerConfig], `MROWNERCONFIG${from}: set by whoever launched the TD`);
  if (options.pinChip) {
    if (typeof c.ppid !== 'string' || c.ppid === '')
      throw new AttestationError(
        'ERR_INVALID_ARGUMENT',
        'cannot pin the platform: the claims carry no PPID (no PCK certificate was verified)',
      );
    pin(s, 'ppids', [c.ppid], `PPID of the PCK certificate${from}: only this one Intel platform`);
  }
}

/**
 * A draft pinning what verified claims show: SEV-SNP measurement, HOST_DATA, ID key digest,
 * VMPL, signer, guest SVN and TCB floor (and CHIP_ID when asked); TDX MRTD, RTMR0-3, MRCONFIGID,
 * MROWNER, MROWNERCONFIG (and the PCK's PPID when asked). Azure claims: the hardware fields under `azure.snp` / `azure.tdx` and
 * the workload through the vTPM's PCRs (`azure.pcrs`), as issue 12's policy section has it.
 */
export function policyFromClaims(
  claims: Claims | AzureClaims,
  options: PolicyFromClaimsOptions = {},
): PolicyDraft {
  checkClaims('policyFromClaims', claims);
  const o = checkOptions('policyFromClaims', options);
  checkOptionalString('policyFromClaims', 'options.origin', o.origin);
  if (o.pinChip !== undefined && typeof o.pinChip !== 'boolean')
    throw badArgument('policyFromClaims: options.pinChip must be a boolean');
  if (o.base !== undefined && !isPlainObject(o.base))
    throw badArgument('policyFromClaims: options.base must be a parsed policy');
  checkPcrList('policyFromClaims', o.pcrs);
  const draft = registerPins(claims, options);
  // A boot log the verifier replayed (claims.boot): its registers are pinned above (RTMRs, or
  // Azure's PCRs). Google's vTPM beside the report (claims.vtpm): its instance and the PCRs its
  // log replayed to. What the logs read from single events goes to the boot section.
  const boots: BootClaimsLike[] = [];
  const boot = (claims as { boot?: BootClaimsLike }).boot;
  if (boot && typeof boot === 'object') boots.push(boot);
  const vtpm = (claims as { vtpm?: GceVtpmClaims }).vtpm;
  if (vtpm !== undefined) {
    if (!isVtpmClaims(vtpm))
      throw badArgument('policyFromClaims: claims.vtpm must be the claims verifyGceVtpm() returned');
    vtpmPins(draft, vtpm, options);
    if (vtpm.boot) boots.push(vtpm.boot);
  }
  if (bootSectionSupported()) bootEventPins(draft, boots, options.origin);
  // Google's launch endorsement the evidence carried, verified and matching: required again, for
  // the same firmware build (Google's code, not a workload pin).
  const e = (claims as { endorsement?: EndorsementClaims }).endorsement;
  if (isPlainObject(e) && e.verified === true && e.matches === true && typeof e.firmwareSha384 === 'string') {
    const from = options.origin ? ` (from ${options.origin})` : '';
    pin(
      section(draft, ['endorsement']),
      'firmwareSha384s',
      [e.firmwareSha384],
      `the firmware build Google's launch endorsement in the evidence names${from}; the section requires such an endorsement, verified and listing the report's measurement`,
    );
  }
  return draft;
}

function checkPcrList(fn: string, pcrs: unknown): void {
  if (
    pcrs !== undefined &&
    !(Array.isArray(pcrs) && pcrs.length > 0 && pcrs.every((i) => Number.isInteger(i) && i >= 0 && i <= 23))
  )
    throw badArgument(`${fn}: options.pcrs must be a non-empty list of PCR indices 0-23`);
}

function isVtpmClaims(c: unknown): c is GceVtpmClaims {
  const x = c as Record<string, unknown>;
  return (
    isPlainObject(c) &&
    x.format === 'gce-vtpm' &&
    isPlainObject(x.gce) &&
    isPlainObject(x.tpm) &&
    (x.boot === undefined || isPlainObject(x.boot))
  );
}

/**
 * The instance (`gce`) and the PCRs the vTPM's log replayed to (`boot.pcrs`, the bank the EFI
 * digests were read from, DEFAULT_PCRS or `options.pcrs`). The quoted PCRs the log does not
 * explain are not pinned: `boot.pcrs` holds only values a log replays to (boot.ts).
 */
function vtpmPins(draft: PolicyDraft, c: GceVtpmClaims, options: PolicyFromClaimsOptions): void {
  const from = options.origin ? ` (from ${options.origin})` : '';
  const g = section(draft, ['gce']);
  const id = "in the AK certificate's instance identity, which Google's EK/AK CA signs";
  pin(g, 'projectIds', [c.gce.projectId], `the Google Cloud project ${id}${from}`);
  pin(g, 'instanceIds', [c.gce.instanceId], `the VM instance "${c.gce.instanceName}" ${id}${from}`);
  pin(g, 'zones', [c.gce.zone], `the zone ${id}${from}`);
  const replayed = c.boot?.pcrs;
  if (!replayed) return;
  const want = options.pcrs ?? DEFAULT_PCRS;
  const banks = Object.keys(replayed);
  const bank = banks.includes('sha256') ? 'sha256' : banks[0];
  if (bank === undefined) return;
  const pcrs: Record<string, string[]> = {};
  const comments: Record<string, string> = {};
  for (const i of want) {
    const v = replayed[bank]?.[String(i)];
    if (v === undefined) continue;
    pcrs[String(i)] = [v];
    comments[`pcrs.${bank}.${i}`] =
      `PCR${i} as the vTPM quoted it and its log replays${from}: ${PCR_MEANING[i] ?? 'see the TCG PC Client PFP'}`;
  }
  if (Object.keys(pcrs).length === 0) return;
  const s = section(draft, ['boot']);
  pin(
    s,
    'pcrs',
    { [bank]: pcrs },
    `your OS's boot as Google's vTPM measured it (outside the TEE; vouched for by Google's EK/AK CA)${from}`,
  );
  s.comments = { ...s.comments, ...comments };
}

/**
 * What the verified logs read from single events. With two logs (a TDX CCEL and the vTPM's) a
 * pin applies to each (boot.ts bootSectionFor), so a field is pinned only where every log gives
 * it: Secure Boot when every log says on, command lines and EFI applications united when every
 * log has them. A log with anomalies the policy does not accept gives none.
 */
function bootEventPins(draft: PolicyDraft, boots: BootClaimsLike[], origin: string | undefined): void {
  if (boots.length === 0 || !boots.every((b) => b.interpreted)) return;
  const from = origin ? ` (from ${origin})` : '';
  const logs = boots.length > 1 ? 'every verified boot log' : 'the verified boot log';
  const s = section(draft, ['boot']);
  if (boots.every((b) => b.secureBoot === true))
    pin(s, 'secureBoot', true, `Secure Boot was on in ${logs}${from}`);
  if (boots.every((b) => typeof b.kernelCmdline === 'string'))
    pin(
      s,
      'kernelCmdlines',
      [...new Set(boots.map((b) => b.kernelCmdline as string))],
      `the kernel command line GRUB measured in ${logs}${from}`,
    );
  if (boots.every((b) => (b.efiApps ?? []).length > 0)) {
    const all = boots.flatMap((b) => b.efiApps ?? []);
    pin(
      s,
      'efiAppDigests',
      [...new Set(all.map((a) => a.digest))],
      `the EFI applications booted${from}: ${[...new Set(all.map((a) => a.path ?? '?'))].join(', ')}`,
    );
  }
  if (Object.keys(s).length === 0) delete draft.boot;
}

/**
 * A draft from Google Cloud vTPM claims alone (verifyGceVtpm(): `verify --tpm-quote`): the
 * instance (`gce`: project, instance, zone) and what booted (`boot`: the PCRs the log replays
 * to, Secure Boot, command line, EFI applications). Without a log only the instance is known,
 * which pins no workload: finishPolicy() then refuses the draft.
 */
export function policyFromVtpmClaims(
  claims: GceVtpmClaims,
  options: Pick<PolicyFromClaimsOptions, 'origin' | 'pcrs'> = {},
): PolicyDraft {
  if (!isVtpmClaims(claims))
    throw badArgument('policyFromVtpmClaims: claims must be the claims verifyGceVtpm() returned');
  const o = checkOptions('policyFromVtpmClaims', options);
  checkOptionalString('policyFromVtpmClaims', 'options.origin', o.origin);
  checkPcrList('policyFromVtpmClaims', o.pcrs);
  const draft: PolicyDraft = {};
  vtpmPins(draft, claims, options);
  if (bootSectionSupported()) bootEventPins(draft, claims.boot ? [claims.boot] : [], options.origin);
  return draft;
}

/** The claims' `boot` as issue 13's verifiers add it, read structurally. */
interface BootClaimsLike {
  interpreted: boolean;
  secureBoot: boolean | null;
  kernelCmdline: string | null;
  efiApps: Array<{ path: string | null; digest: string }> | null;
}

function registerPins(claims: Claims | AzureClaims, options: PolicyFromClaimsOptions): PolicyDraft {
  const draft: PolicyDraft = {};
  const base = options.base ?? {};
  if (claims.format === 'sev-snp' || claims.format === 'tdx') {
    const name = claims.format === 'sev-snp' ? 'snp' : 'tdx';
    const s = section(draft, [name]);
    if (claims.format === 'sev-snp') snpPins(s, claims, options, false);
    else tdxPins(s, claims, options, false);
    carryBase(s, (base as Record<string, Record<string, unknown>>)[name], []);
    return draft;
  }
  const a = claims as AzureClaims;
  const hw = a.format === 'azure-sev-snp' ? 'snp' : 'tdx';
  const s = section(draft, ['azure', hw]);
  if (a.format === 'azure-sev-snp') snpPins(s, a as unknown as SnpClaims, options, true);
  else tdxPins(s, a as unknown as TdxClaims, options, true);
  const baseAzure = (base as Record<string, Record<string, Record<string, unknown>>>).azure;
  carryBase(s, baseAzure?.[hw], []);
  const want = options.pcrs ?? DEFAULT_PCRS;
  const az = section(draft, ['azure']);
  const pcrs: Record<string, Record<string, string[]>> = {};
  const comments: Record<string, string> = {};
  for (const [bank, values] of Object.entries(a.tpm.pcrs)) {
    for (const i of want) {
      const v = values?.[String(i)];
      if (v === undefined) continue;
      const b = pcrs[bank] ?? {};
      b[String(i)] = [v];
      pcrs[bank] = b;
      comments[`pcrs.${bank}.${i}`] = `PCR${i}: ${PCR_MEANING[i] ?? 'see the TCG PC Client PFP'}`;
    }
  }
  if (Object.keys(pcrs).length === 0)
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      `the TPM quote covers none of PCRs ${want.join(', ')}`,
    );
  az.pcrs = pcrs;
  az.comments = {
    ...(az.comments ?? {}),
    pcrs: "your OS's boot as the vTPM measured it (the paravisor's measurement alone pins Microsoft's code)",
    ...comments,
  };
  return draft;
}

/** The JSON `attested-channel measure snp --json` prints (`{"ok": true, "measurement", "inputs"}`). */
export interface MeasureResult {
  ok: true;
  measurement: string;
  inputs?: Record<string, unknown>;
}

/** A draft pinning a computed SEV-SNP launch measurement, its inputs in the comment. */
export function policyFromMeasurement(result: MeasureResult, origin?: string): PolicyDraft {
  checkOptionalString('policyFromMeasurement', 'origin', origin);
  if (isPlainObject(result) && result.inputs !== undefined && !isPlainObject(result.inputs))
    throw badArgument('policyFromMeasurement: inputs must be an object');
  if (
    typeof result !== 'object' ||
    result === null ||
    result.ok !== true ||
    typeof result.measurement !== 'string'
  )
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      'not the JSON of a successful `attested-channel measure snp --json`',
    );
  if (!/^[0-9a-f]{96}$/i.test(result.measurement))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'measure output: measurement is not 96 hex digits');
  const i = result.inputs ?? {};
  const firmware = (i.firmware as { sha384?: string } | undefined)?.sha384;
  const parts = [
    typeof i.ovmf === 'string'
      ? `firmware ${i.ovmf}${firmware ? ` (SHA-384 ${short(firmware)})` : ''}`
      : null,
    i.vcpus !== undefined ? `${i.vcpus} vCPUs` : null,
    typeof i.vmmType === 'string' ? `VMM ${i.vmmType}` : null,
    typeof i.kernel === 'string' ? `kernel ${i.kernel}` : null,
    typeof i.initrd === 'string' ? `initrd ${i.initrd}` : null,
    typeof i.append === 'string' ? `command line ${JSON.stringify(i.append)}` : null,
  ].filter((p): p is string => p !== null);
  const covers =
    typeof i.kernel === 'string'
      ? 'the firmware, kernel, initrd and command line (measured direct boot)'
      : 'the firmware only: the OS it boots is not in the measurement';
  const draft: PolicyDraft = {};
  pin(
    section(draft, ['snp']),
    'measurements',
    [result.measurement.toLowerCase()],
    `${short(result.measurement.toLowerCase())}: computed by \`measure\`${origin ? ` (${origin})` : ''} from ${parts.join(', ') || 'its inputs'}; covers ${covers}`,
  );
  return draft;
}

export interface PolicyFromEndorsementOptions {
  /** SEV-SNP: the VM's vCPU count (the endorsement has one measurement per count). */
  vcpus?: number;
  /** TDX: the VM's RAM in GiB (the endorsement has one MRTD per size). */
  ramGib?: number;
}

/**
 * A draft pinning the measurement Google's launch endorsement gives for this VM shape. The
 * endorsement must have been verified (verifyLaunchEndorsement). This pins Google's firmware,
 * the same for every customer: combine it with pins of your OS (a boot log).
 */
export function policyFromEndorsement(
  e: LaunchEndorsement,
  options: PolicyFromEndorsementOptions,
): PolicyDraft {
  checkEndorsement('policyFromEndorsement', e);
  const o = checkOptions('policyFromEndorsement', options);
  checkCount('policyFromEndorsement', 'options.vcpus', o.vcpus, 0xffffffff);
  checkCount('policyFromEndorsement', 'options.ramGib', o.ramGib, 0xffffffff);
  const draft: PolicyDraft = {};
  const fw = Buffer.from(e.uefiDigest).toString('hex');
  const about = `Google's firmware (UEFI SHA-384 ${short(fw)}), endorsed ${e.timestamp.toISOString()}; Google's code, the same for every customer`;
  if (options.vcpus !== undefined) {
    const m = e.sevSnp?.measurements.get(options.vcpus);
    if (!m)
      throw new AttestationError(
        'ERR_INVALID_ARGUMENT',
        `the endorsement has no SEV-SNP measurement for ${options.vcpus} vCPUs (it has ${[...(e.sevSnp?.measurements.keys() ?? [])].join(', ') || 'none'})`,
      );
    const hex = Buffer.from(m).toString('hex');
    pin(section(draft, ['snp']), 'measurements', [hex], `${short(hex)}: ${options.vcpus} vCPUs on ${about}`);
  }
  if (options.ramGib !== undefined) {
    const ms = (e.tdx?.measurements ?? []).filter((m) => m.ramGib === options.ramGib);
    if (ms.length === 0)
      throw new AttestationError(
        'ERR_INVALID_ARGUMENT',
        `the endorsement has no TDX MRTD for ${options.ramGib} GiB`,
      );
    const hexes = [...new Set(ms.map((m) => Buffer.from(m.mrtd).toString('hex')))];
    pin(section(draft, ['tdx']), 'mrTd', hexes, `${options.ramGib} GiB of RAM on ${about}`);
  }
  if (options.vcpus === undefined && options.ramGib === undefined)
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      'give the vCPU count (SEV-SNP) or the RAM size (TDX) of the VM',
    );
  return draft;
}

/** Whether this library's parsePolicy() knows the `boot` section (issue 13's measured-boot policy). */
export function bootSectionSupported(): boolean {
  try {
    parsePolicy({ boot: {} });
    return true;
  } catch {
    return false;
  }
}

/**
 * A draft pinning what a boot event log shows. A CCEL log's RTMRs go to `tdx.rtmr0-2` (the
 * registers the log extends); a TPM log's PCRs to `boot.pcrs`; Secure Boot (when on), the kernel
 * command line and the EFI application digests to `boot.secureBoot`, `boot.kernelCmdlines`,
 * `boot.efiAppDigests`. The log is not trusted here: the pins only ever match evidence whose
 * signed registers the same log replays to. With `boot: false` the boot section is left out
 * (a library without it refuses the section).
 */
export function policyFromBootSummary(
  summary: BootSummary,
  options: { origin?: string; boot?: boolean } = {},
): PolicyDraft {
  const b = summary as unknown as Record<string, unknown>;
  if (!isPlainObject(summary) || (b.source !== 'tpm' && b.source !== 'ccel') || typeof b.bank !== 'string')
    throw badArgument('policyFromBootSummary: summary must be one bootSummary() returned');
  const o = checkOptions('policyFromBootSummary', options);
  checkOptionalString('policyFromBootSummary', 'options.origin', o.origin);
  const draft: PolicyDraft = {};
  const from = options.origin ? ` (${options.origin})` : '';
  const withBoot = options.boot !== false;
  if (summary.source === 'ccel') {
    const s = section(draft, ['tdx']);
    const what = [
      'firmware configuration and Secure Boot',
      'the boot loader and EFI applications',
      'GRUB, the kernel command line, kernel and initrd',
    ];
    for (const [i, v] of (summary.rtmrs ?? []).entries()) {
      if (i > 2 || /^0+$/.test(v)) continue;
      pin(s, `rtmr${i}`, [v], `RTMR${i} replayed from the boot log${from}: ${what[i]}`);
    }
  } else if (withBoot) {
    const bank = summary.bank;
    const values = summary.pcrs?.[bank] ?? {};
    const pcrs: Record<string, string[]> = {};
    const s = section(draft, ['boot']);
    const comments: Record<string, string> = {};
    for (const [i, v] of Object.entries(values)) {
      if (Number(i) === 10 || Number(i) > 15) continue;
      pcrs[i] = [v];
      comments[`pcrs.${bank}.${i}`] =
        `PCR${i} replayed from the boot log${from}: ${PCR_MEANING[Number(i)] ?? 'see the TCG PC Client PFP'}`;
    }
    pin(s, 'pcrs', { [bank]: pcrs }, `the ${bank} PCRs the boot log${from} replays to`);
    s.comments = { ...s.comments, ...comments };
  }
  if (withBoot && summary.interpreted) {
    const s = section(draft, ['boot']);
    if (summary.secureBoot === true) pin(s, 'secureBoot', true, `Secure Boot was on in the boot log${from}`);
    if (summary.kernelCmdline != null)
      pin(s, 'kernelCmdlines', [summary.kernelCmdline], `the kernel command line GRUB measured${from}`);
    const apps = [...new Set((summary.efiApps ?? []).map((a) => a.digest))];
    if (apps.length > 0)
      pin(
        s,
        'efiAppDigests',
        apps,
        `Authenticode digests of the EFI applications booted${from}: ${(summary.efiApps ?? []).map((a) => a.path ?? '?').join(', ')}`,
      );
  }
  return draft;
}

function mergeValue(a: unknown, b: unknown, path: string): unknown {
  if (a === undefined) return b;
  if (b === undefined) return a;
  if (Array.isArray(a) && Array.isArray(b)) return [...new Set([...a, ...b])];
  if (typeof a === 'number' && typeof b === 'number') return Math.min(a, b);
  if (typeof a === 'string' && typeof b === 'string') return a === b ? a : `${a}; ${b}`;
  if (
    typeof a === 'object' &&
    a !== null &&
    typeof b === 'object' &&
    b !== null &&
    !Array.isArray(a) &&
    !Array.isArray(b)
  ) {
    const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
    for (const [k, v] of Object.entries(b)) out[k] = mergeValue(out[k], v, `${path}.${k}`);
    return out;
  }
  if (a === b) return a;
  throw new AttestationError(
    'ERR_INVALID_ARGUMENT',
    `the sources disagree on ${path} (${JSON.stringify(a)} and ${JSON.stringify(b)})`,
  );
}

/**
 * Joins drafts: lists are united (a policy listing both values admits both), numeric floors
 * (minTcb, minGuestSvn) take the lower (admitting every source), comments are joined; a boolean
 * two sources set differently is an error.
 */
export function mergePolicyDrafts(drafts: readonly PolicyDraft[]): PolicyDraft {
  if (!Array.isArray(drafts)) throw badArgument('mergePolicyDrafts: drafts must be a list');
  for (const d of drafts) checkDraft('mergePolicyDrafts', d);
  let out: PolicyDraft = {};
  for (const d of drafts) out = mergeValue(out, d, '(root)') as PolicyDraft;
  return out;
}

/** A draft is a plain object of JSON values (what a policy file can hold). */
function checkDraft(fn: string, d: unknown): void {
  let json: string | undefined;
  try {
    json = isPlainObject(d) ? JSON.stringify(d) : undefined;
  } catch {
    json = undefined;
  }
  if (json === undefined) throw badArgument(`${fn}: a draft must be a plain object of JSON values`);
}

/** The policy file's text: two-space JSON, each section's `comments` after its pins. */
export function formatPolicy(draft: PolicyDraft): string {
  checkDraft('formatPolicy', draft);
  const order = (v: unknown): unknown => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
    const entries = Object.entries(v).map(([k, x]) => [k, k === 'comments' ? x : order(x)] as const);
    return Object.fromEntries([
      ...entries.filter(([k]) => k !== 'comments'),
      ...entries.filter(([k]) => k === 'comments'),
    ]);
  };
  return `${JSON.stringify(order(draft), null, 2)}\n`;
}

/**
 * Checks a draft: parsePolicy() must accept it, and it must pin the workload of every format it
 * admits (ERR_POLICY_INVALID with `details.unpinned` otherwise). Returns the parsed policy.
 */
export function finishPolicy(draft: PolicyDraft): Policy {
  checkDraft('finishPolicy', draft);
  const policy = parsePolicy(draft);
  const unpinned = unpinnedFormats(policy);
  if (
    Object.keys(draft).filter((k) => k !== 'comment' && k !== '$schema').length === 0 ||
    unpinned.length > 0
  )
    throw new AttestationError(
      'ERR_POLICY_INVALID',
      `the policy would pin no workload${unpinned.length ? ` for ${unpinned.join(' and ')}` : ''}: it would admit any genuine guest. Give a source that pins one (--from-measure, --from-evidence, --from-eventlog, --from-endorsement)`,
      { details: { unpinned } },
    );
  return policy;
}
