/**
 * Google's launch endorsement carried in evidence (EvidenceInput.launchEndorsement): verified
 * under the GCE-cc-tcb-root the Verifier was given (endorsement.ts; pinned by fingerprint,
 * replaceable), and its golden measurement compared with the verified report's — the SEV-SNP
 * MEASUREMENT against the endorsement's measurement for each vCPU count (and its SVSM one), the
 * TDX MRTD against its MRTDs per RAM size (cloud-evidence.md §3.2, gce-tcb-verifier
 * verify/verify.go). The result is the claims' `endorsement`; the policy's `endorsement` section
 * then requires it.
 *
 * The bytes come from the host (the SNP certificate table) or wherever the guest read them: they
 * are untrusted until their signature verifies, and an endorsement that is present but does not
 * verify refuses the evidence, as any forged part of it does.
 */
import { AttestationError } from '../../errors.js';
import { bytesToHex } from '../bytes.js';
import type { EndorsementPolicy } from '../policy.js';
import { GCE_TCB_ROOT_SHA256, type LaunchEndorsement, verifyLaunchEndorsement } from './endorsement.js';

/** The GCE-cc-tcb-root certificate a Verifier checks endorsements under. */
export interface EndorsementRoot {
  /** The certificate (DER or PEM), as fetched from https://pki.goog/cloud_integrity/GCE-cc-tcb-root_1.crt. */
  certificate: Uint8Array | string;
  /** The SHA-256 (hex) its DER must have. Default GCE_TCB_ROOT_SHA256. */
  sha256?: string;
}

/** The largest endorsement accepted in evidence (one is a few KiB: a certificate and digests). */
export const MAX_LAUNCH_ENDORSEMENT_SIZE = 64 * 1024;

export type EndorsementClaims =
  | {
      verified: true;
      /** The report's measurement is one the endorsement lists. */
      matches: boolean;
      /** SHA-384 of the endorsed firmware binary (hex). */
      firmwareSha384: string;
      /** When Google signed it (ISO 8601). */
      timestamp: string;
      svn: number;
      /** SEV-SNP: the vCPU count whose golden measurement is the report's; null when none is. */
      vcpus?: number | null;
      /** SEV-SNP: the report's measurement is the endorsement's SVSM measurement. */
      svsm?: boolean;
      /** TDX: the RAM size and early-accept mode whose MRTD is the quote's; null when none is. */
      ramGib?: number | null;
      earlyAccept?: boolean | null;
      /** Build provenance: changelist (decimal) and commit (hex), empty when absent. */
      clSpec: string;
      commit: string;
      signer: { subject: string; serial: string; notAfter: string };
      rootSha256: string;
    }
  | {
      verified: false;
      /** Why it was not checked (no root given). */
      reason: string;
    };

function equalHex(a: Uint8Array, hex: string): boolean {
  return bytesToHex(a) === hex.toLowerCase();
}

/** Compares the endorsement with the report's launch measurement (the verified claims'). */
function compare(
  e: LaunchEndorsement,
  claims: { format: string; measurement?: string; mrTd?: string },
): Pick<
  Extract<EndorsementClaims, { verified: true }>,
  'matches' | 'svn' | 'vcpus' | 'svsm' | 'ramGib' | 'earlyAccept'
> {
  if (claims.format === 'sev-snp') {
    const m = claims.measurement!;
    let vcpus: number | null = null;
    for (const [n, v] of e.sevSnp?.measurements ?? []) if (equalHex(v, m)) vcpus = n;
    const svsm =
      e.sevSnp !== undefined && e.sevSnp.svsmMeasurement.length > 0 && equalHex(e.sevSnp.svsmMeasurement, m);
    return { matches: vcpus !== null || svsm, svn: e.sevSnp?.svn ?? 0, vcpus, svsm };
  }
  const found = (e.tdx?.measurements ?? []).find((x) => equalHex(x.mrtd, claims.mrTd!));
  return {
    matches: found !== undefined,
    svn: e.tdx?.svn ?? 0,
    ramGib: found?.ramGib ?? null,
    earlyAccept: found?.earlyAccept ?? null,
  };
}

/**
 * The claims' `endorsement` for `bytes` beside verified SEV-SNP or TDX claims. Without a root
 * there is nothing to verify it under: `{ verified: false, reason }`. An endorsement that does not
 * verify throws its code (ERR_EVIDENCE_MALFORMED, _CHAIN, _SIGNATURE).
 */
export function endorsementClaims(
  bytes: Uint8Array,
  claims: { format: string; measurement?: string; mrTd?: string },
  root: EndorsementRoot | undefined,
  now: Date,
): EndorsementClaims {
  if (claims.format !== 'sev-snp' && claims.format !== 'tdx')
    throw new AttestationError(
      'ERR_EVIDENCE_MALFORMED',
      `${claims.format} evidence has no launch measurement of Google's firmware to compare a launch endorsement with`,
    );
  if (bytes.length > MAX_LAUNCH_ENDORSEMENT_SIZE)
    throw new AttestationError(
      'ERR_EVIDENCE_MALFORMED',
      `launch endorsement: ${bytes.length} bytes exceeds ${MAX_LAUNCH_ENDORSEMENT_SIZE}`,
    );
  if (root === undefined)
    return {
      verified: false,
      reason: 'no endorsement root (the GCE-cc-tcb-root certificate) was given to the verifier',
    };
  const e = verifyLaunchEndorsement(bytes, {
    root: root.certificate,
    ...(root.sha256 !== undefined ? { rootSha256: root.sha256 } : {}),
    now,
  });
  return {
    verified: true,
    ...compare(e, claims),
    firmwareSha384: bytesToHex(e.uefiDigest),
    timestamp: e.timestamp.toISOString(),
    clSpec: e.clSpec.toString(),
    commit: bytesToHex(e.commit),
    signer: {
      subject: e.signer.subject.CN ?? '',
      serial: e.signer.serialHex,
      notAfter: e.signer.notAfter.toISOString(),
    },
    rootSha256: (root.sha256 ?? GCE_TCB_ROOT_SHA256).toLowerCase(),
  };
}

function refuse(field: string, message: string, details: Record<string, unknown> = {}): AttestationError {
  return new AttestationError('ERR_EVIDENCE_POLICY', `policy ${field}: ${message}`, {
    details: { field, ...details },
  });
}

/**
 * Applies the policy's `endorsement` section: the evidence must carry an endorsement that
 * verified and lists the report's measurement, of an allowed firmware build and SVN.
 */
export function appraiseEndorsement(
  e: EndorsementClaims | undefined,
  section: EndorsementPolicy | undefined,
): void {
  if (section === undefined) return;
  // Three refusals of one field: details.reason tells them apart (and lets a test see each).
  if (e === undefined)
    throw refuse(
      'endorsement',
      'the policy requires a Google launch endorsement, but the evidence carries none',
      { reason: 'missing' },
    );
  if (!e.verified)
    throw refuse('endorsement', `the launch endorsement was not verified: ${e.reason}`, {
      reason: 'unverified',
    });
  if (!e.matches)
    throw refuse(
      'endorsement',
      "the launch endorsement does not list the report's measurement (another firmware, or another vCPU count / RAM size)",
      { reason: 'not-listed' },
    );
  if (section.firmwareSha384s !== undefined && !section.firmwareSha384s.includes(e.firmwareSha384))
    throw refuse('endorsement.firmwareSha384s', `firmware ${e.firmwareSha384} is not allowed`, {
      got: e.firmwareSha384,
    });
  if (section.minSvn !== undefined && e.svn < section.minSvn)
    throw refuse('endorsement.minSvn', `SVN ${e.svn} is below ${section.minSvn}`, { got: e.svn });
}

/** `endorsementRoot` of a Verifier or a call: `{ certificate: DER|PEM, sha256?: hex }`. */
export function checkEndorsementRoot(root: unknown, name = 'options.endorsementRoot'): void {
  if (root === undefined) return;
  const r = root as Record<string, unknown>;
  if (
    typeof root !== 'object' ||
    root === null ||
    !(typeof r.certificate === 'string' || r.certificate instanceof Uint8Array) ||
    (r.sha256 !== undefined && !(typeof r.sha256 === 'string' && /^[0-9a-fA-F]{64}$/.test(r.sha256)))
  )
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      `${name} must be { certificate: DER|PEM, sha256?: 64 hex digits }`,
    );
}
