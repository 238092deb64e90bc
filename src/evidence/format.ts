/**
 * What one evidence format is to the rest of the library: an entry of the format table
 * (formats.ts). A format lives in one folder under src/evidence/ (snp/, tdx/) whose format.ts
 * exports its entry; the dispatcher (verifier.ts), the channel's media types (channel/cmw.ts),
 * the binder's REPORT_DATA and the CLI's unverified view all come from the table, so adding a
 * format is one folder and one line in formats.ts.
 *
 * Evidence of several records (Azure vTPM: HCL report + TPM quote + AK certificate + PCRs) names
 * its primary record `report` (what `detect` and `reportDataOf` read) and the others in
 * `EvidenceInput.records`, each listed in `records` here with its media type.
 */
import type { KeyObject } from 'node:crypto';
import type { CacheStats } from './lru.js';
import type { Policy } from './policy.js';
import type {
  Claims,
  CollateralClient,
  CollateralFetchOptions,
  EvidenceFormat,
  EvidenceInput,
} from './types.js';
import type { CertCache } from './x509/cert.js';

/** A record of a format besides its report: where it stands in EvidenceInput and its media type. */
export interface EvidenceRecordSpec {
  /** The EvidenceInput field (`vek`, `chain`, `collateral`) or, for new formats, the `records` key. */
  name: string;
  mediaType: string;
}

/** What a Verifier hands each format when it is created: its own copies and its shared caches. */
export interface FormatSettings {
  /** Own copies of the caller's anchors (DER), made at creation. */
  amdArks?: Uint8Array[];
  intelRoots?: Uint8Array[];
  offline: boolean;
  kds?: CollateralFetchOptions | CollateralClient;
  pcs?: CollateralFetchOptions | CollateralClient;
  /** Parsed certificates, shared by every format of the Verifier. */
  certs: CertCache;
  /**
   * The same Verifier's verifier of another format, once all are made (Azure verifies the SEV-SNP
   * or TDX evidence inside an HCL report with the Verifier's own, and its caches).
   */
  formatVerifier(name: EvidenceFormat): FormatVerifier;
}

/** One verification's own inputs, checked by the Verifier. */
export interface FormatCall {
  policy: Policy;
  now: Date;
  signal?: AbortSignal;
  /** Azure: the attestation key the caller expects (VerifyOptions.expectedAk). */
  expectedAk?: KeyObject;
  /** VerifierCallOptions.offload. */
  offload?: boolean;
}

/** A format's verification with the state it keeps, one per Verifier. */
export interface FormatVerifier {
  /** Parse → verify → claims → this format's appraisal (the Verifier runs check() after). */
  verify(input: EvidenceInput, call: FormatCall): Promise<Claims>;
  /** This format's caches, by name (verifier.stats() prefixes them with the format's name). */
  readonly caches: Readonly<Record<string, { stats(): CacheStats }>>;
}

export interface EvidenceFormatSpec {
  readonly name: EvidenceFormat;
  /** The policy section that governs this format. */
  readonly policySection: 'snp' | 'tdx' | 'azure';
  /** The media type of the report record on the wire (CMW, docs/protocol.md §6). */
  readonly mediaType: string;
  /** The other records this format reads. */
  readonly records: readonly EvidenceRecordSpec[];
  /**
   * Where detection tries this format: lower first. A format known by a header (TDX: 0) goes
   * before one known only by its size (SNP: 100), which would otherwise claim a header-format
   * report of that size.
   */
  readonly detectOrder: number;
  /** Whether `report` (the primary record) is of this format, from its bytes alone. */
  detect(report: Uint8Array): boolean;
  /** The 64 REPORT_DATA bytes the report claims (unverified), or undefined when it is too short. */
  reportDataOf(report: Uint8Array): Uint8Array | undefined;
  /**
   * The claims fields the report states by itself, from the parser (nothing verified): what the
   * CLI shows for evidence that did not verify. Throws when the report does not parse.
   */
  view(report: Uint8Array): Record<string, unknown>;
  /** This format's verification with its own caches, for one Verifier. */
  createVerifier(settings: FormatSettings): FormatVerifier;
}
