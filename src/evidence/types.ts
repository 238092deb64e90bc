/**
 * Shapes shared by every evidence format. Each format (snp/, tdx/) has its own parser, verifier
 * and claims; this file is what the dispatcher (verify.ts), the channel and the CLI agree on.
 */
import type { KeyObject } from 'node:crypto';
import type { BootClaims, EventLogInput } from './boot.js';
import type { EndorsementClaims, EndorsementRoot } from './gce/launch.js';
import type { GceVtpmClaims, GceVtpmInput, GceVtpmRoots } from './gce/vtpm.js';
import type { CacheStats } from './lru.js';
import type { Policy } from './policy.js';
import type { TDX_LEVEL_STATUSES, TDX_RELAUNCH_STATUSES } from './tdx/statuses.js';
import type { PcrValues, TpmQuoteClaims } from './tpm/quote.js';

/** Evidence as the attester hands it over. Everything in it is untrusted. */
export interface EvidenceInput {
  /** The SNP ATTESTATION_REPORT (1184 bytes) or the TDX quote (v4/v5). The format is detected. */
  report: Uint8Array;
  /** SNP: the VCEK or VLEK certificate, DER. */
  vek?: Uint8Array;
  /** SNP: ASK (or ASVK) then ARK, as one PEM string, a PEM/DER Uint8Array, or a list of DER/PEM certificates. */
  chain?: string | Uint8Array | Array<Uint8Array | string>;
  /** TDX: collateral in the schema of test/fixtures/tdx/README.md (object or its JSON text). */
  collateral?: TdxCollateral | string;
  /**
   * Azure (`report` is an HCL report): the TPM2_Quote by the vTPM attestation key: the TPMS_ATTEST
   * bytes, the marshalled TPMT_SIGNATURE and the values of the PCRs it selects.
   */
  tpm?: { quote: Uint8Array; signature: Uint8Array; pcrs: PcrValues };
  /** Azure TDX: the DCAP quote of the HCL report's TDREPORT (IMDS `POST /acc/tdquote`). */
  tdQuote?: Uint8Array;
  /**
   * Further records of formats made of several (an HCL report, a TPM quote, PCRs), by the names
   * their format-table entry lists (formats.ts). The SNP and TDX formats read none.
   */
  records?: Readonly<Record<string, Uint8Array | string>>;
  /**
   * A boot event log (issue 13). TDX: the CCEL (`ccel: true`, optionally with its ACPI table),
   * checked against RTMR0-3 of the quote; the claims then carry `boot`.
   */
  eventLog?: EventLogInput;
  /**
   * Google Cloud: the vTPM's quote, AK certificate and event log beside the hardware report
   * (gce/vtpm.ts). Verified under Google's pinned EK/AK CA roots; the claims then carry `vtpm`,
   * and the policy's `boot` section applies to the vTPM's log, its `gce` section to the instance.
   */
  vtpm?: GceVtpmInput;
  /**
   * Google Cloud: the serialized VMLaunchEndorsement of the firmware (on SEV-SNP from the
   * extended report's certificate table, GUID 9f4116cd-c503-4f5a-8f6f-fb68882f4ce2). Verified
   * under the Verifier's `endorsementRoot` and compared with the report's measurement; the claims
   * then carry `endorsement` (gce/launch.ts).
   */
  launchEndorsement?: Uint8Array;
}

/** TDX collateral: the nine members of Intel's sgx_ql_qve_collateral_t as dcap-qvl serialises it. */
export interface TdxCollateral {
  pck_crl_issuer_chain: string;
  root_ca_crl: string;
  pck_crl: string;
  tcb_info_issuer_chain: string;
  tcb_info: string;
  tcb_info_signature: string;
  qe_identity_issuer_chain: string;
  qe_identity: string;
  qe_identity_signature: string;
}

export type EvidenceFormat = 'sev-snp' | 'tdx' | 'azure-sev-snp' | 'azure-tdx';

/**
 * What a provider declares it produces: a format, or `'azure'` for an Azure vTPM, whose hardware
 * (SEV-SNP or TDX) is known only from the HCL report it reads.
 */
export type ProviderFormat = EvidenceFormat | 'azure';

/**
 * Roots a verifier trusts. When given, they replace the built-in vendor roots for that vendor:
 * `simulated.trustAnchors()` returns the simulator's roots, and nothing else makes a verifier
 * accept simulated evidence.
 */
export interface TrustAnchors {
  /** AMD root keys (ARK certificates, DER). */
  amdArks?: Uint8Array[];
  /** Intel SGX Root CA certificates (DER). */
  intelRoots?: Uint8Array[];
}

/** Where to fetch collateral from and how. */
export interface CollateralFetchOptions {
  /** Base URL (AMD KDS: https://kdsintf.amd.com; Intel PCS: https://api.trustedservices.intel.com). */
  baseUrl?: string;
  /** Per-request timeout in ms (default 10 000). */
  timeoutMs?: number;
  /** Retries on 429 / 5xx / network errors (default 3). */
  retries?: number;
  /** Optional folder for a disk cache. */
  cacheDir?: string;
}

/** What a Verifier is created with (createVerifier): fixed for its lifetime. */
export interface VerifierOptions {
  /** Copied and fingerprinted at creation: changing the caller's arrays later changes nothing. */
  trustAnchors?: TrustAnchors;
  /** Never touch the network: use only what the evidence, the options and the caches hold. */
  offline?: boolean;
  /** AMD KDS client settings (the Verifier makes its own client), or a client instance to share. */
  kds?: CollateralFetchOptions | CollateralClient;
  /** Intel PCS/PCCS client settings (the Verifier makes its own client), or a client instance to share. */
  pcs?: CollateralFetchOptions | CollateralClient;
  /**
   * Google vTPM EK/AK CA roots and intermediates for `input.vtpm`, replacing the pinned ones
   * (copied at creation). A call's own `vtpmRoots` replace these for that call.
   */
  vtpmRoots?: GceVtpmRoots;
  /**
   * Google's GCE-cc-tcb-root certificate, under which `input.launchEndorsement` is verified
   * (pinned by GCE_TCB_ROOT_SHA256 unless `sha256` replaces it). Without it an endorsement in
   * evidence is reported unverified. A call's own `endorsementRoot` replaces it for that call.
   */
  endorsementRoot?: EndorsementRoot;
}

/** The inputs of one verification by a Verifier. */
export interface VerifierCallOptions {
  policy?: Policy;
  /** The time at which certificates, CRLs and collateral must be valid. Default: the wall clock. */
  now?: Date;
  /**
   * Google vTPM EK/AK CA roots and intermediates for `input.vtpm` in this call, replacing the
   * Verifier's (and so the pinned ones). Nothing verified under them is cached.
   */
  vtpmRoots?: GceVtpmRoots;
  /** The GCE-cc-tcb-root for `input.launchEndorsement` in this call, replacing the Verifier's. */
  endorsementRoot?: EndorsementRoot;
  signal?: AbortSignal;
  /** Called with the verified claims after the policy passed; throw (or return false) to refuse. */
  check?: (claims: Claims) => boolean | undefined | Promise<boolean | undefined>;
  /** Azure: the attestation key the caller expects (see VerifyOptions.expectedAk). */
  expectedAk?: KeyObject;
  /**
   * Check the SEV-SNP report signature (~0.5 ms of P-384) on libuv's threadpool instead of the
   * event loop, as the channel does. Default false: a lone verification waits a threadpool round
   * trip longer (docs/benchmarks.md).
   */
  offload?: boolean;
}

/** Counters of every cache of a Verifier, by name (`certificates`, `sev-snp.chains`, `tdx.keys`, …). */
export type VerifierStats = Record<string, CacheStats>;

/**
 * A verifier and all the state verification keeps: its trust anchors, collateral clients and
 * bounded caches (docs/api.md lists them with their sizes). Two Verifiers share nothing.
 */
export interface Verifier {
  verify(input: EvidenceInput, options?: VerifierCallOptions): Promise<Claims>;
  stats(): VerifierStats;
  /**
   * SHA-256 fingerprints (hex) of the anchors it trusts, from its own copies; a vendor absent
   * from `trustAnchors` has none listed here and its built-in pinned roots are used.
   */
  readonly anchors: {
    readonly amdArks?: readonly string[];
    readonly intelRoots?: readonly string[];
    /** The anchors of `vtpmRoots` (not the intermediates), when the Verifier was given them. */
    readonly vtpmRoots?: readonly string[];
  };
}

export interface VerifyOptions {
  /**
   * The Verifier to verify with (its anchors, clients and caches). Without it, verifyEvidence()
   * uses a default Verifier for `trustAnchors`, `offline`, `kds` and `pcs`, which must then not
   * be given with a `verifier`.
   */
  verifier?: Verifier;
  policy?: Policy;
  /** The time at which certificates, CRLs and collateral must be valid. Default: the wall clock. */
  now?: Date;
  trustAnchors?: TrustAnchors;
  /** Google vTPM EK/AK CA roots and intermediates for `input.vtpm`, replacing the pinned ones. */
  vtpmRoots?: GceVtpmRoots;
  /** The GCE-cc-tcb-root certificate for `input.launchEndorsement` (see VerifierOptions). */
  endorsementRoot?: EndorsementRoot;
  /** Never touch the network: use only what the evidence, the options and the caches hold. */
  offline?: boolean;
  /** AMD KDS client settings, or a client instance to share its cache. */
  kds?: CollateralFetchOptions | CollateralClient;
  /** Intel PCS/PCCS client settings, or a client instance to share its cache. */
  pcs?: CollateralFetchOptions | CollateralClient;
  signal?: AbortSignal;
  /** Called with the verified claims after the policy passed; throw (or return false) to refuse. */
  check?: (claims: Claims) => boolean | undefined | Promise<boolean | undefined>;
  /**
   * Azure: the attestation key the caller expects. It must be the HCL report's own HCLAkPub,
   * compared before the quote signature is checked (ERR_EVIDENCE_CHAIN otherwise).
   */
  expectedAk?: KeyObject;
}

/** Marker interface for the KDS and PCS clients (they share fetch, cache and retry logic). */
export interface CollateralClient {
  readonly kind: 'kds' | 'pcs';
}

/** What a caller tells a provider with a request for evidence. */
export interface EvidenceRequestOptions {
  /** Aborts the request: the provider rejects with the signal's reason (or ERR_ABORTED). */
  signal?: AbortSignal;
  /**
   * The caller has other work for its event loop while this request runs (a mutual channel checks
   * the peer's evidence meanwhile; a server has other connections opening; a batch serves many). A provider that computes on
   * the CPU, as the simulated SEV-SNP platform signs its reports, then does that on libuv's
   * threadpool (src/evidence/offload.ts); otherwise on the event loop, which saves the two thread
   * hand-offs a lone request would only wait through. Hardware providers may ignore it.
   */
  overlap?: boolean;
}

/** Something that can produce evidence whose REPORT_DATA is the given 64 bytes. */
export interface EvidenceProvider {
  /** Which format this provider produces (the channel uses it to pick a media type). */
  readonly format: ProviderFormat;
  getEvidence(reportData: Uint8Array, options?: EvidenceRequestOptions): Promise<EvidenceInput>;
}

export interface TcbVersion {
  /** Raw 8 bytes, lowercase hex, as in the report. */
  raw: string;
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  /** Turin and later only. */
  fmc?: number;
}

/**
 * Whether the verifier checked the chain against a certificate revocation list, with which CRLs,
 * or why not: a chain that was not checked is not known to be unrevoked, and servers log this.
 */
export interface RevocationStatus {
  checked: boolean;
  /**
   * Where the CRLs came from: `'kds'` (fetched from AMD's KDS or the `kds` service now),
   * `'cache'` (the KDS client's memory or disk cache: offline, fresh, or after a failed fetch),
   * `'collateral'` (TDX: the PCK and root CA CRLs of the collateral), `'none'` (not checked).
   */
  source: 'kds' | 'cache' | 'collateral' | 'none';
  /** The CRLs applied (none when `checked` is false), with their validity windows (ISO 8601). */
  crls: RevocationCrl[];
  /** Why revocation was not checked, or why a cached CRL stood in for a fetch. */
  reason?: string;
}

export interface RevocationCrl {
  /** The issuer's common name, e.g. `'ARK-Milan'`, `'Intel SGX PCK Platform CA'`. */
  issuer: string;
  thisUpdate: string;
  nextUpdate?: string;
}

export interface SnpClaims {
  format: 'sev-snp';
  simulated: boolean;
  revocation: RevocationStatus;
  /**
   * Whether the policy section these claims passed pins the workload (a measurement, MRTD, RTMR,
   * HOST_DATA, ID key digest, MRCONFIGID, MROWNER or MROWNERCONFIG). False: the policy named no
   * such field for this format, so any genuine guest of it would have passed.
   */
  workloadPinned: boolean;
  version: number;
  product: 'Milan' | 'Genoa' | 'Turin';
  signer: 'vcek' | 'vlek';
  guestSvn: number;
  policy: SnpGuestPolicy;
  vmpl: number;
  reportData: string;
  measurement: string;
  hostData: string;
  idKeyDigest: string;
  authorKeyDigest: string;
  familyId: string;
  imageId: string;
  reportId: string;
  reportIdMa: string;
  chipId: string;
  currentTcb: TcbVersion;
  reportedTcb: TcbVersion;
  committedTcb: TcbVersion;
  launchTcb: TcbVersion;
  platformInfo: SnpPlatformInfo;
  signerInfo: { authorKeyEn: boolean; maskChipKey: boolean; signingKey: 'vcek' | 'vlek' | 'none' };
  currentFirmware: string;
  committedFirmware: string;
  cpuid?: { family: number; model: number; stepping: number };
  launchMitVector?: string;
  currentMitVector?: string;
  /** Measured boot, when the evidence carried an event log that replayed (boot.ts). */
  boot?: BootClaims;
  /** Google Cloud's vTPM evidence, when it came with the report (gce/vtpm.ts). */
  vtpm?: GceVtpmClaims;
  /** Google's launch endorsement, when the evidence carried one (gce/launch.ts). */
  endorsement?: EndorsementClaims;
  /**
   * Set by the channel (absent elsewhere) when the peer answered with a batched report
   * (docs/protocol.md §5.1): this exchange's leaf index and the batch size. `reportData` is then
   * the batch's REPORT_DATA, which the channel recomputed from its own binder.
   */
  batched?: BatchedClaim;
}

/** Where a batched exchange's leaf sat: index in 0..size-1 of a batch of `size` (1..4 096). */
export interface BatchedClaim {
  index: number;
  size: number;
}

export interface SnpGuestPolicy {
  raw: string;
  abiMinor: number;
  abiMajor: number;
  smt: boolean;
  migrateMa: boolean;
  debug: boolean;
  singleSocket: boolean;
  cxlAllow: boolean;
  memAes256Xts: boolean;
  raplDis: boolean;
  ciphertextHiding: boolean;
  pageSwapDisable: boolean;
}

export interface SnpPlatformInfo {
  raw: string;
  smtEnabled: boolean;
  tsmeEnabled: boolean;
  eccEnabled: boolean;
  raplDisabled: boolean;
  ciphertextHidingEnabled: boolean;
  aliasCheckComplete: boolean;
  sevTioEnabled: boolean;
  /** Bits set that this library does not know (reported, never rejected). */
  unknownBits: string;
}

export interface TdxClaims {
  format: 'tdx';
  simulated: boolean;
  revocation: RevocationStatus;
  /**
   * Whether the policy section these claims passed pins the workload (a measurement, MRTD, RTMR,
   * HOST_DATA, ID key digest, MRCONFIGID, MROWNER or MROWNERCONFIG). False: the policy named no
   * such field for this format, so any genuine guest of it would have passed.
   */
  workloadPinned: boolean;
  version: number;
  teeTcbSvn: string;
  teeTcbSvn2?: string;
  mrSeam: string;
  mrSignerSeam: string;
  seamAttributes: string;
  tdAttributes: {
    raw: string;
    debug: boolean;
    septVeDisable: boolean;
    pks: boolean;
    kl: boolean;
    perfmon: boolean;
  };
  xfam: string;
  mrTd: string;
  mrConfigId: string;
  mrOwner: string;
  mrOwnerConfig: string;
  rtmr0: string;
  rtmr1: string;
  rtmr2: string;
  rtmr3: string;
  reportData: string;
  mrServiceTd?: string;
  fmspc: string;
  /**
   * The PPID of the verified PCK certificate (32 hex chars): which Intel platform made the quote,
   * what `tdx.ppids` pins. '' where no quote was verified (an Azure TDREPORT shown alone).
   */
  ppid: string;
  tcbStatus: TdxTcbStatus;
  advisoryIds: string[];
  /** Measured boot: the CCEL replayed to RTMR0-3 of the quote (boot.ts). */
  boot?: BootClaims;
  /** Google Cloud's vTPM evidence, when it came with the quote (gce/vtpm.ts). */
  vtpm?: GceVtpmClaims;
  /** Google's launch endorsement, when the evidence carried one (gce/launch.ts). */
  endorsement?: EndorsementClaims;
  /** Set by the channel when the answer was batched (see SnpClaims.batched). */
  batched?: BatchedClaim;
}

// In their own module so that policy.ts can read them without importing this one (which names
// the Policy type: an import cycle).
export { TDX_LEVEL_STATUSES, TDX_RELAUNCH_STATUSES } from './tdx/statuses.js';

export type TdxTcbStatus =
  | (typeof TDX_LEVEL_STATUSES)[number]
  | (typeof TDX_RELAUNCH_STATUSES)[number]
  | 'NoMatchingTcbLevel';

/** What Azure evidence adds to the hardware claims (issue 12's names). */
export interface AzureCommonClaims {
  /** The runtime claims JSON, parsed. */
  runtimeClaims: Record<string, unknown>;
  /** SHA-256 of the runtime-claims bytes, lowercase hex (whatever hash REPORT_DATA uses). */
  runtimeClaimsSha256: string;
  /** `user-data` (NV 0x01400002 at report time), lowercase hex, or null when the JSON has none. */
  userData: string | null;
  /** `vm-configuration` exactly as in the runtime claims (secure-boot, tpm-enabled, console-enabled, …). */
  vmConfiguration: Record<string, unknown> | null;
  tpm: TpmQuoteClaims;
  /** Measured boot (boot.ts), when the evidence carried an event log. */
  boot?: BootClaims;
  /**
   * Which binding held on a channel (set by the channel, absent elsewhere): `'report'` when the
   * HCL report's user-data is the binder as well as the quote's qualifyingData, `'tpm-quote'` when
   * only the quote is bound.
   */
  binding?: 'report' | 'tpm-quote';
}

export type AzureSnpClaims = Omit<SnpClaims, 'format'> & { format: 'azure-sev-snp' } & AzureCommonClaims;
export type AzureTdxClaims = Omit<TdxClaims, 'format'> & { format: 'azure-tdx' } & AzureCommonClaims;
export type AzureClaims = AzureSnpClaims | AzureTdxClaims;

export type Claims = SnpClaims | TdxClaims | AzureSnpClaims | AzureTdxClaims;
