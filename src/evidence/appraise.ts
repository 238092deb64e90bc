/**
 * What a whole policy says about verified claims: which formats it lets in, which of its fields
 * pin the workload, and the format's own appraisal (snp/appraise.ts, tdx/appraise.ts).
 *
 * A policy means "only what I listed", formats included: naming a section (`snp`, `tdx`) is
 * listing that format, so evidence of a format the policy does not name is refused. A policy that
 * names no format is the vendors' strict defaults alone: any genuine evidence of any format, of
 * any workload, passes it, and the claims say so (`workloadPinned: false`).
 */
import { AttestationError } from '../errors.js';
import { appraiseAzure } from './azure/appraise.js';
import { BOOT_PINS } from './boot.js';
import type { Policy } from './policy.js';
import { appraiseSnp } from './snp/appraise.js';
import { appraiseTdx } from './tdx/appraise.js';
import type { Claims, EvidenceFormat } from './types.js';

/** The policy section that governs each evidence format. */
export const FORMAT_SECTIONS: Readonly<Record<EvidenceFormat, 'snp' | 'tdx' | 'azure'>> = Object.freeze({
  'sev-snp': 'snp',
  tdx: 'tdx',
  'azure-sev-snp': 'azure',
  'azure-tdx': 'azure',
});

const FORMATS: readonly EvidenceFormat[] = ['sev-snp', 'tdx', 'azure-sev-snp', 'azure-tdx'];

/**
 * Policy fields that pin the workload (what runs in the guest), per format, as
 * "section.field". Hardware and platform fields (chip IDs, TCB levels, MRSEAM, the TDX module)
 * are not workload pins: a policy of those alone admits any guest on that platform. A policy
 * field added later that pins the workload (a measured-boot pin, a vTPM PCR) is listed here too,
 * and workloadPinned, workloadPins() and the CLI's refusal all follow.
 */
const WORKLOAD_PINS: Readonly<Record<EvidenceFormat, readonly string[]>> = Object.freeze({
  'sev-snp': ['snp.measurements', 'snp.hostData', 'snp.idKeyDigests', ...BOOT_PINS],
  tdx: [
    ...BOOT_PINS,
    'tdx.mrTd',
    'tdx.rtmr0',
    'tdx.rtmr1',
    'tdx.rtmr2',
    'tdx.rtmr3',
    'tdx.mrConfigId',
    'tdx.mrOwner',
    'tdx.mrOwnerConfig',
  ],
  // The hardware report of Azure evidence measures Microsoft's paravisor, the same for every
  // customer on one paravisor build: only the vTPM's PCRs describe the user's guest.
  'azure-sev-snp': ['azure.pcrs', ...BOOT_PINS],
  'azure-tdx': ['azure.pcrs', ...BOOT_PINS],
});

function has(obj: object | undefined, key: string): boolean {
  return obj !== undefined && Object.hasOwn(obj, key);
}

/** The formats a (parsed) policy lets in: those whose section it has, or all when it has none. */
export function policyFormats(policy: Policy): EvidenceFormat[] {
  const named = FORMATS.filter((f) => {
    if (!has(policy, FORMAT_SECTIONS[f])) return false;
    if (FORMAT_SECTIONS[f] !== 'azure') return true;
    // Inside `azure`, naming `snp` or `tdx` lists that hardware; naming neither admits both.
    const azure = policy.azure!;
    if (!has(azure, 'snp') && !has(azure, 'tdx')) return true;
    return has(azure, f === 'azure-sev-snp' ? 'snp' : 'tdx');
  });
  return named.length > 0 ? named : [...FORMATS];
}

/**
 * The fields of a (parsed) policy that pin the workload of `format` evidence; empty when any
 * workload of that format passes it (no section for it, or a section without such a field).
 */
export function workloadPins(format: EvidenceFormat, policy: Policy): string[] {
  const out: string[] = [];
  for (const [path, section, field] of PIN_PARTS[format]) {
    const s = has(policy, section) ? (policy[section] as object | undefined) : undefined;
    if (has(s, field) && (s as Record<string, unknown>)[field] !== undefined) out.push(path);
  }
  return out;
}

/** WORKLOAD_PINS split once into [path, section, field] (every appraisal reads them). */
const PIN_PARTS = Object.freeze(
  Object.fromEntries(
    FORMATS.map((f) => [
      f,
      Object.freeze(
        WORKLOAD_PINS[f].map((path) => {
          const [section, field] = path.split('.') as [keyof Policy, string];
          return Object.freeze([path, section, field] as const);
        }),
      ),
    ]),
  ) as Record<EvidenceFormat, readonly (readonly [string, keyof Policy, string])[]>,
);

/**
 * Formats a (parsed) policy admits without pinning their workload: what `serve` and `tunnel`
 * refuse unless told otherwise. `{}` gives every format.
 */
export function unpinnedFormats(policy: Policy): EvidenceFormat[] {
  return policyFormats(policy).filter((f) => workloadPins(f, policy).length === 0);
}

/** Refuses evidence of a format the (parsed) policy does not let in (ERR_EVIDENCE_POLICY, field "format"). */
export function checkFormat(format: EvidenceFormat, policy: Policy): void {
  const allowed = policyFormats(policy);
  if (!allowed.includes(format))
    throw new AttestationError(
      'ERR_EVIDENCE_POLICY',
      `policy: ${format} evidence is not allowed (the policy names only ${allowed.join(', ')})`,
      { details: { field: 'format', format, allowed } },
    );
}

/**
 * Appraises verified claims against a whole (parsed) policy: the format, then that format's
 * section. Returns whether the section pins the workload (the claims' `workloadPinned`); the
 * claims themselves are not changed. Throws ERR_EVIDENCE_POLICY / ERR_EVIDENCE_TCB.
 */
export function appraiseClaims(claims: Claims, policy: Policy): boolean {
  checkFormat(claims.format, policy);
  if (claims.format === 'sev-snp') appraiseSnp(claims, policy.snp);
  else if (claims.format === 'tdx') appraiseTdx(claims, policy.tdx);
  // The hardware report inside was appraised against azure.snp / azure.tdx by verifyAzure().
  else appraiseAzure(claims, policy.azure);
  return workloadPins(claims.format, policy).length > 0;
}
