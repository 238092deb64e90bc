/**
 * The appraisal policy: plain JSON so it can live in a file. The field names are fixed (outside
 * tools and docs use them). Defaults are strict: an absent field never loosens a check that is on
 * by default (debug, migration agent, TDX TCB status, SEPT_VE_DISABLE, service TDs).
 *
 * This file only defines and validates the shape; snp/appraise.ts and tdx/appraise.ts apply it.
 */
import { AttestationError } from '../errors.js';
import { TDX_LEVEL_STATUSES, TDX_RELAUNCH_STATUSES } from './tdx/statuses.js';

export interface SnpPolicy {
  /** Allowed launch measurements (96 hex chars each). Absent: any measurement. */
  measurements?: string[];
  allowDebug?: boolean;
  allowMigrationAgent?: boolean;
  /** Minimum REPORTED_TCB per component. */
  minTcb?: { bootloader?: number; tee?: number; snp?: number; microcode?: number; fmc?: number };
  /** Allowed CHIP_IDs (128 hex chars; Turin: 16 hex chars of the 8-byte ID are accepted too). */
  chipIds?: string[];
  /** Allowed VMPLs. */
  vmpls?: number[];
  /** Allowed HOST_DATA values (64 hex chars). */
  hostData?: string[];
  /** Allowed ID_KEY_DIGEST values (96 hex chars). */
  idKeyDigests?: string[];
  minGuestSvn?: number;
  /** Allowed signing keys (default both). */
  signers?: Array<'vcek' | 'vlek'>;
  /** A missing CRL is fatal (default false: a CRL is used whenever one is at hand). */
  requireCrl?: boolean;
}

export interface TdxPolicy {
  mrTd?: string[];
  rtmr0?: string[];
  rtmr1?: string[];
  rtmr2?: string[];
  rtmr3?: string[];
  mrConfigId?: string[];
  mrOwner?: string[];
  mrOwnerConfig?: string[];
  mrSeam?: string[];
  allowDebug?: boolean;
  /** Default ["UpToDate"]. */
  acceptTcbStatus?: string[];
  allowServiceTd?: boolean;
  /** Default true. */
  requireSeptVeDisable?: boolean;
  /** Allowed PPIDs of the quote's PCK certificate (32 hex chars): the Intel platforms. */
  ppids?: string[];
}

/**
 * Azure confidential VMs (formats azure-sev-snp and azure-tdx). The hardware report inside the HCL
 * report measures Microsoft's paravisor, the same for every customer on one paravisor build; the
 * user's workload is pinned only through `pcrs`.
 */
export interface AzurePolicy {
  /** Applied to the SEV-SNP report inside the HCL report, as the top-level `snp` section. */
  snp?: SnpPolicy;
  /** Applied to the TD quote of the HCL report's TDREPORT, as the top-level `tdx` section. */
  tdx?: TdxPolicy;
  /**
   * Allowed values of quoted PCRs: bank (`sha1`, `sha256`, `sha384`, `sha512`) → PCR index
   * ("0"–"23") → list of hex values. Each listed PCR must be in the quote with one of its values.
   */
  pcrs?: Partial<Record<'sha1' | 'sha256' | 'sha384' | 'sha512', Record<string, string[]>>>;
  /** Refuse a channel whose HCL report's user-data is not the binder (default false). */
  requireReportBinding?: boolean;
}

/**
 * Measured boot (issue 13): applied to the claims' `boot`, i.e. to an event log that replayed to
 * the registers a verified quote vouches for. Usable with any evidence that carries a log; a
 * policy with this section refuses evidence without one.
 */
export interface BootPolicy {
  /** Allowed values per bank and PCR index: `{ "sha256": { "4": [hex, …] } }`. */
  pcrs?: Record<string, Record<string, string[]>>;
  /** Allowed values per RTMR index 0-3 (CCEL logs): `{ "1": [hex, …] }`. */
  rtmrs?: Record<string, string[]>;
  /** The measured SecureBoot variable must have this value. */
  secureBoot?: boolean;
  /** Allowed kernel command lines (GRUB's last measured line, exact, without the trailing NUL). */
  kernelCmdlines?: string[];
  /** Allowed EFI boot application digests: every application the log records must be listed. */
  efiAppDigests?: string[];
  /** Refuse a log in which any event's digest does not match the data it is defined to cover. */
  requireDigestsVerified?: boolean;
  /** Anomaly kinds under which single events are still read (default none). */
  acceptAnomalies?: string[];
}

/** Google Cloud vTPM evidence (gce/vtpm.ts): the instance identity in the AK certificate. */
export interface GcePolicy {
  /** Allowed project ids (e.g. "my-project"). */
  projectIds?: string[];
  /** Allowed instance ids (decimal strings). */
  instanceIds?: string[];
  /** Allowed zones (e.g. "us-central1-a"). */
  zones?: string[];
}

/**
 * Google's launch endorsement (gce/launch.ts): a policy with this section refuses evidence unless
 * it carries a VMLaunchEndorsement that verifies under the Verifier's endorsement root and whose
 * golden measurement is the report's (SEV-SNP MEASUREMENT for some vCPU count; TDX MRTD).
 */
export interface EndorsementPolicy {
  /** Allowed SHA-384 digests of the endorsed firmware binary (default: any endorsed build). */
  firmwareSha384s?: string[];
  /** The endorsement's SVN must be at least this. */
  minSvn?: number;
}

/**
 * Evidence reuse through key-continuity proofs (docs/protocol.md §4.7): how long a channel may
 * accept, instead of new hardware evidence, a signature by the peer's TLS key over this connection,
 * for a report it fully verified earlier for that same key.
 */
export interface ReusePolicy {
  /** Seconds (integer, 0 to REUSE_MAX_EVIDENCE_AGE); 0, the default, turns reuse off. */
  maxEvidenceAge?: number;
}

export interface Policy {
  snp?: SnpPolicy;
  tdx?: TdxPolicy;
  azure?: AzurePolicy;
  boot?: BootPolicy;
  gce?: GcePolicy;
  endorsement?: EndorsementPolicy;
  reuse?: ReusePolicy;
}

/**
 * The longest evidence reuse a policy may allow, seconds: the window in which a TLS key extracted
 * from the CVM passes as the CVM to clients holding its evidence (docs/threat-model.md).
 */
export const REUSE_MAX_EVIDENCE_AGE = 3600;

type FieldKind = 'hexList' | 'bool' | 'uint' | 'uintList' | 'stringList' | 'tcb' | 'signers';

const SNP_FIELDS: Record<keyof SnpPolicy, { kind: FieldKind; hexLen?: number[] }> = {
  measurements: { kind: 'hexList', hexLen: [96] },
  allowDebug: { kind: 'bool' },
  allowMigrationAgent: { kind: 'bool' },
  minTcb: { kind: 'tcb' },
  chipIds: { kind: 'hexList', hexLen: [128, 16] },
  vmpls: { kind: 'uintList' },
  hostData: { kind: 'hexList', hexLen: [64] },
  idKeyDigests: { kind: 'hexList', hexLen: [96] },
  minGuestSvn: { kind: 'uint' },
  signers: { kind: 'signers' },
  requireCrl: { kind: 'bool' },
};

const TDX_STATUSES: readonly string[] = [...TDX_LEVEL_STATUSES, ...TDX_RELAUNCH_STATUSES];

const TDX_FIELDS: Record<keyof TdxPolicy, { kind: FieldKind; hexLen?: number[] }> = {
  mrTd: { kind: 'hexList', hexLen: [96] },
  rtmr0: { kind: 'hexList', hexLen: [96] },
  rtmr1: { kind: 'hexList', hexLen: [96] },
  rtmr2: { kind: 'hexList', hexLen: [96] },
  rtmr3: { kind: 'hexList', hexLen: [96] },
  mrConfigId: { kind: 'hexList', hexLen: [96] },
  mrOwner: { kind: 'hexList', hexLen: [96] },
  mrOwnerConfig: { kind: 'hexList', hexLen: [96] },
  mrSeam: { kind: 'hexList', hexLen: [96] },
  allowDebug: { kind: 'bool' },
  acceptTcbStatus: { kind: 'stringList' },
  allowServiceTd: { kind: 'bool' },
  requireSeptVeDisable: { kind: 'bool' },
  ppids: { kind: 'hexList', hexLen: [32] },
};

const TCB_KEYS = ['bootloader', 'tee', 'snp', 'microcode', 'fmc'];

function invalid(path: string, why: string): AttestationError {
  return new AttestationError('ERR_POLICY_INVALID', `policy ${path}: ${why}`, { details: { field: path } });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isUint(v: unknown, max = 0xffffffff): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}

function checkField(path: string, kind: FieldKind, value: unknown, hexLen?: number[]): unknown {
  switch (kind) {
    case 'bool':
      if (typeof value !== 'boolean') throw invalid(path, 'must be true or false');
      return value;
    case 'uint':
      if (!isUint(value)) throw invalid(path, 'must be an integer from 0 to 2^32-1');
      return value;
    case 'uintList':
      if (!Array.isArray(value) || !value.every((v) => isUint(v, 3)))
        throw invalid(path, 'must be a list of integers from 0 to 3');
      return [...value];
    case 'hexList': {
      if (!Array.isArray(value)) throw invalid(path, 'must be a list of hex strings');
      return value.map((v, i) => {
        if (typeof v !== 'string' || !/^[0-9a-fA-F]*$/.test(v) || !(hexLen ?? []).includes(v.length))
          throw invalid(`${path}[${i}]`, `must be a hex string of ${(hexLen ?? []).join(' or ')} characters`);
        return v.toLowerCase();
      });
    }
    case 'stringList': {
      if (!Array.isArray(value)) throw invalid(path, 'must be a list of TCB status names');
      for (const [i, v] of value.entries()) {
        if (typeof v !== 'string' || !TDX_STATUSES.includes(v))
          throw invalid(`${path}[${i}]`, `must be one of ${TDX_STATUSES.join(', ')}`);
      }
      return [...value];
    }
    case 'signers':
      if (!Array.isArray(value) || !value.every((v) => v === 'vcek' || v === 'vlek'))
        throw invalid(path, 'must be a list of "vcek" and/or "vlek"');
      return [...value];
    case 'tcb': {
      if (!isPlainObject(value)) throw invalid(path, 'must be an object');
      const out: Record<string, number> = {};
      for (const [k, v] of Object.entries(value)) {
        if (!TCB_KEYS.includes(k))
          throw invalid(`${path}.${k}`, `unknown component (use ${TCB_KEYS.join(', ')})`);
        if (!isUint(v, 255)) throw invalid(`${path}.${k}`, 'must be an integer from 0 to 255');
        out[k] = v;
      }
      return out;
    }
  }
}

function checkSection(
  name: string,
  raw: unknown,
  fields: Record<string, { kind: FieldKind; hexLen?: number[] }>,
): Record<string, unknown> {
  if (!isPlainObject(raw)) throw invalid(name, 'must be an object');
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (k === 'comments') {
      checkComments(name, v, raw);
      continue;
    }
    // Own properties only: "constructor", "toString" or "__proto__" are unknown fields, not Object.prototype's.
    const spec = Object.hasOwn(fields, k) ? fields[k] : undefined;
    if (!spec) throw invalid(`${name}.${k}`, 'unknown field');
    out[k] = checkField(`${name}.${k}`, spec.kind, v, spec.hexLen);
  }
  return out;
}

const PCR_BANK_SIZES: Readonly<Record<string, number>> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

function checkPcrs(path: string, raw: unknown): Record<string, Record<string, string[]>> {
  if (!isPlainObject(raw)) throw invalid(path, 'must be an object of PCR banks');
  const out: Record<string, Record<string, string[]>> = {};
  for (const [bank, indices] of Object.entries(raw)) {
    const size = Object.hasOwn(PCR_BANK_SIZES, bank) ? PCR_BANK_SIZES[bank] : undefined;
    if (size === undefined)
      throw invalid(`${path}.${bank}`, 'unknown PCR bank (use sha1, sha256, sha384, sha512)');
    if (!isPlainObject(indices)) throw invalid(`${path}.${bank}`, 'must be an object of PCR indices');
    const values: Record<string, string[]> = {};
    for (const [index, list] of Object.entries(indices)) {
      if (!/^(0|[1-9][0-9]?)$/.test(index) || Number(index) > 23)
        throw invalid(`${path}.${bank}.${index}`, 'must be a PCR index from "0" to "23"');
      values[index] = checkField(`${path}.${bank}.${index}`, 'hexList', list, [2 * size]) as string[];
    }
    if (Object.keys(values).length === 0) throw invalid(`${path}.${bank}`, 'lists no PCR');
    out[bank] = values;
  }
  // An empty object would read as a PCR pin (workloadPinned) while pinning nothing.
  if (Object.keys(out).length === 0) throw invalid(path, 'lists no PCR bank');
  return out;
}

function checkAzure(raw: unknown): AzurePolicy {
  if (!isPlainObject(raw)) throw invalid('azure', 'must be an object');
  const out: AzurePolicy = {};
  for (const [k, v] of Object.entries(raw)) {
    if (k === 'comments') checkComments('azure', v, raw);
    else if (k === 'snp') out.snp = checkSection('azure.snp', v, SNP_FIELDS) as SnpPolicy;
    else if (k === 'tdx') out.tdx = checkSection('azure.tdx', v, TDX_FIELDS) as TdxPolicy;
    else if (k === 'pcrs') out.pcrs = checkPcrs('azure.pcrs', v);
    else if (k === 'requireReportBinding')
      out.requireReportBinding = checkField(`azure.${k}`, 'bool', v) as boolean;
    else throw invalid(`azure.${k}`, 'unknown field');
  }
  return out;
}

/** Anomaly kinds of eventlog/parse.ts that boot.acceptAnomalies may list. */
export const BOOT_ANOMALY_KINDS: readonly string[] = [
  'duplicate-separator',
  'missing-separator',
  'separator-error',
  'digest-mismatch',
  'ccel-log-area-size',
  'unmeasured-records',
];

const BANK_HEX: Record<string, number> = { sha1: 40, sha256: 64, sha384: 96, sha512: 128 };
const BOOT_KEYS = [
  'pcrs',
  'rtmrs',
  'secureBoot',
  'kernelCmdlines',
  'efiAppDigests',
  'requireDigestsVerified',
  'acceptAnomalies',
];

function nonEmptyHexList(path: string, value: unknown, hexLen: number[]): string[] {
  const list = checkField(path, 'hexList', value, hexLen) as string[];
  if (list.length === 0) throw invalid(path, 'must list at least one value');
  return list;
}

/** The boot section: nested maps, so checked here rather than through the field table. */
function checkBootSection(raw: unknown): BootPolicy {
  if (!isPlainObject(raw)) throw invalid('boot', 'must be an object');
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    const path = `boot.${k}`;
    if (k === 'comments') {
      checkComments('boot', v, raw);
      continue;
    }
    if (!BOOT_KEYS.includes(k)) throw invalid(path, 'unknown field');
    if (k === 'pcrs') {
      if (!isPlainObject(v) || Object.keys(v).length === 0)
        throw invalid(path, 'must be an object of banks, e.g. {"sha256": {"4": [hex]}}');
      const banks: Record<string, Record<string, string[]>> = {};
      for (const [bank, indices] of Object.entries(v)) {
        if (!Object.hasOwn(BANK_HEX, bank))
          throw invalid(`${path}.${bank}`, `unknown bank (use ${Object.keys(BANK_HEX).join(', ')})`);
        if (!isPlainObject(indices) || Object.keys(indices).length === 0)
          throw invalid(`${path}.${bank}`, 'must be an object of PCR indices');
        const values: Record<string, string[]> = {};
        for (const [index, list] of Object.entries(indices)) {
          if (!/^(0|[1-9][0-9]?)$/.test(index) || Number(index) > 23)
            throw invalid(`${path}.${bank}.${index}`, 'is not a PCR index 0-23');
          values[index] = nonEmptyHexList(`${path}.${bank}.${index}`, list, [BANK_HEX[bank]!]);
        }
        banks[bank] = values;
      }
      out.pcrs = banks;
    } else if (k === 'rtmrs') {
      if (!isPlainObject(v) || Object.keys(v).length === 0)
        throw invalid(path, 'must be an object of RTMR indices, e.g. {"1": [hex]}');
      const values: Record<string, string[]> = {};
      for (const [index, list] of Object.entries(v)) {
        if (!/^[0-3]$/.test(index)) throw invalid(`${path}.${index}`, 'is not an RTMR index 0-3');
        values[index] = nonEmptyHexList(`${path}.${index}`, list, [96]);
      }
      out.rtmrs = values;
    } else if (k === 'secureBoot' || k === 'requireDigestsVerified') out[k] = checkField(path, 'bool', v);
    else if (k === 'kernelCmdlines') {
      if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string'))
        throw invalid(path, 'must be a non-empty list of strings');
      out[k] = [...v];
    } else if (k === 'efiAppDigests') out[k] = nonEmptyHexList(path, v, [40, 64, 96, 128]);
    else {
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && BOOT_ANOMALY_KINDS.includes(x)))
        throw invalid(path, `must be a list of ${BOOT_ANOMALY_KINDS.join(', ')}`);
      out[k] = [...v];
    }
  }
  return out as BootPolicy;
}

/** The gce section: lists of non-empty strings (instance ids in decimal). */
function checkGceSection(raw: unknown): GcePolicy {
  if (!isPlainObject(raw)) throw invalid('gce', 'must be an object');
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(raw)) {
    const path = `gce.${k}`;
    if (k === 'comments') {
      checkComments('gce', v, raw);
      continue;
    }
    if (k !== 'projectIds' && k !== 'instanceIds' && k !== 'zones') throw invalid(path, 'unknown field');
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string' && x.length > 0))
      throw invalid(path, 'must be a non-empty list of non-empty strings');
    if (k === 'instanceIds' && !v.every((x) => /^(0|[1-9][0-9]{0,19})$/.test(x)))
      throw invalid(path, 'instance ids are decimal numbers');
    out[k] = [...v];
  }
  return out as GcePolicy;
}

/** The endorsement section: `{}` requires an endorsement; its fields narrow which. */
function checkEndorsementSection(raw: unknown): EndorsementPolicy {
  if (!isPlainObject(raw)) throw invalid('endorsement', 'must be an object');
  const out: EndorsementPolicy = {};
  for (const [k, v] of Object.entries(raw)) {
    const path = `endorsement.${k}`;
    if (k === 'comments') {
      checkComments('endorsement', v, raw);
      continue;
    }
    if (k === 'firmwareSha384s') out.firmwareSha384s = nonEmptyHexList(path, v, [96]);
    else if (k === 'minSvn') out.minSvn = checkField(path, 'uint', v) as number;
    else throw invalid(path, 'unknown field');
  }
  return out;
}

/** The reuse section: `maxEvidenceAge`, whole seconds from 0 to REUSE_MAX_EVIDENCE_AGE. */
function checkReuseSection(raw: unknown): ReusePolicy {
  if (!isPlainObject(raw)) throw invalid('reuse', 'must be an object');
  const out: ReusePolicy = {};
  for (const [k, v] of Object.entries(raw)) {
    if (k === 'comments') checkComments('reuse', v, raw);
    else if (k === 'maxEvidenceAge') {
      if (!isUint(v, REUSE_MAX_EVIDENCE_AGE))
        throw invalid(
          'reuse.maxEvidenceAge',
          `must be a whole number of seconds from 0 to ${REUSE_MAX_EVIDENCE_AGE}`,
        );
      out.maxEvidenceAge = v;
    } else throw invalid(`reuse.${k}`, 'unknown field');
  }
  return out;
}

/**
 * Reuse only where the policy pins the platform, so an extracted TLS key is worth something only
 * to the owner of a listed machine (Edgeless Contrast's answer to relays with extracted keys: pin
 * the hardware IDs in the manifest): SEV-SNP by `snp.chipIds`, SEV-SNP under Azure by
 * `azure.snp.chipIds`, TDX by `tdx.ppids` (the PPID of the quote's PCK certificate) and TDX under
 * Azure by `azure.tdx.ppids` (the TD quote of the HCL report's TDREPORT carries the same PCK
 * chain). Every format the policy admits must be pinned: a policy with no format section admits
 * all four.
 */
function checkReusePins(policy: Policy): void {
  const pinned = (list: string[] | undefined) => list !== undefined && list.length > 0;
  const azure = policy.azure;
  const formats: Array<[string, boolean]> = [];
  const named = policy.snp !== undefined || policy.tdx !== undefined || azure !== undefined;
  if (!named)
    formats.push(['sev-snp', false], ['tdx', false], ['azure-sev-snp', false], ['azure-tdx', false]);
  if (policy.snp !== undefined) formats.push(['sev-snp', pinned(policy.snp.chipIds)]);
  if (policy.tdx !== undefined) formats.push(['tdx', pinned(policy.tdx.ppids)]);
  if (azure !== undefined) {
    const both = azure.snp === undefined && azure.tdx === undefined;
    if (both || azure.snp !== undefined) formats.push(['azure-sev-snp', pinned(azure.snp?.chipIds)]);
    if (both || azure.tdx !== undefined) formats.push(['azure-tdx', pinned(azure.tdx?.ppids)]);
  }
  const unpinned = formats.filter(([, ok]) => !ok).map(([f]) => f);
  if (unpinned.length > 0)
    throw invalid(
      'reuse.maxEvidenceAge',
      `evidence reuse needs a platform pin for every format the policy admits (snp.chipIds, azure.snp.chipIds, tdx.ppids, azure.tdx.ppids): ${unpinned.join(', ')} ${unpinned.length === 1 ? 'is' : 'are'} not pinned`,
    );
}

/**
 * A section's `comments`: `{ "<field>": "why", "<field>.<key>": "why" }`, text for people (what a
 * pin covers, where its value came from), never read by appraisal and not kept in the parsed
 * policy. Each key names a field of the section, so a comment cannot describe a pin that is not there.
 */
function checkComments(name: string, value: unknown, section: Record<string, unknown>): void {
  if (!isPlainObject(value)) throw invalid(`${name}.comments`, 'must be an object of strings');
  for (const [k, v] of Object.entries(value)) {
    const field = k.split('.')[0]!;
    if (field === 'comments' || !Object.hasOwn(section, field))
      throw invalid(`${name}.comments.${k}`, 'names no field of this section');
    if (typeof v !== 'string') throw invalid(`${name}.comments.${k}`, 'must be a string');
  }
}

/**
 * Validates a policy (an object or its JSON text) and returns a normalised copy (hex lower-cased),
 * frozen. Unknown fields are errors: a misspelt field must never silently loosen a check. A policy
 * this function returned is returned as it is, unchecked again.
 */
export function parsePolicy(input: unknown): Policy {
  if (isNormalised(input)) return input;
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (err) {
      throw new AttestationError('ERR_POLICY_INVALID', 'policy is not valid JSON', { cause: err });
    }
  }
  if (value === undefined || value === null) return NO_POLICY;
  if (!isPlainObject(value)) throw invalid('(root)', 'must be an object with "snp" and/or "tdx"');
  const out: Policy = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === 'snp') out.snp = checkSection('snp', v, SNP_FIELDS) as SnpPolicy;
    else if (k === 'tdx') out.tdx = checkSection('tdx', v, TDX_FIELDS) as TdxPolicy;
    else if (k === 'azure') out.azure = checkAzure(v);
    else if (k === 'boot') out.boot = checkBootSection(v);
    else if (k === 'gce') out.gce = checkGceSection(v);
    else if (k === 'endorsement') out.endorsement = checkEndorsementSection(v);
    else if (k === 'reuse') out.reuse = checkReuseSection(v);
    else if (k === '$schema' || k === 'comment') continue;
    else
      throw invalid(
        k,
        'unknown section (use "snp", "tdx", "azure", "boot", "gce", "endorsement" and "reuse")',
      );
  }
  if ((out.reuse?.maxEvidenceAge ?? 0) > 0) checkReusePins(out);
  return brand(out);
}

/**
 * Policies parsePolicy() returned carry this mark, set before they are frozen (so it cannot be
 * added to a policy afterwards, nor is it copied by a spread or JSON): such a policy is used again
 * without a second check. A mark on the value, where a set of seen policies would be state.
 */
const NORMALISED: unique symbol = Symbol('attested-channel.policy.normalised');

function brand(policy: Policy): Policy {
  Object.defineProperty(policy, NORMALISED, { value: true });
  deepFreeze(policy);
  return policy;
}

function isNormalised(input: unknown): input is Policy {
  return (
    typeof input === 'object' &&
    input !== null &&
    Object.isFrozen(input) &&
    Object.getOwnPropertyDescriptor(input, NORMALISED)?.value === true
  );
}

const NO_POLICY: Policy = brand({});

function deepFreeze(value: object): void {
  for (const v of Object.values(value)) if (typeof v === 'object' && v !== null) deepFreeze(v);
  Object.freeze(value);
}
