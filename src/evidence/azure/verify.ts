/**
 * Azure confidential-VM evidence (formats "azure-sev-snp" and "azure-tdx"): the HCL report from
 * vTPM NV 0x01400001, the hardware evidence it carries, and a TPM 2.0 quote by the vTPM's AK.
 * The trust chain (docs/reference/cloud-evidence.md §1.1): hardware report (AMD- or
 * Intel-signed) → REPORT_DATA = hash(runtime claims JSON) → the AK in that JSON (kid "HCLAkPub")
 * → the quote over the PCRs and the caller's nonce.
 *
 * Order: parse everything; verify the hardware evidence with the existing SNP / TDX verifiers
 * (so a tampered signed byte is a signature failure); for TDX, the TD quote's body must be the
 * TDREPORT of this HCL report; REPORT_DATA must bind the JSON bytes (hashed before the JSON is
 * parsed); then the AK is taken from the JSON, compared with the caller's expected AK, and the
 * quote and PCR values are checked with it.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { AttestationError } from '../../errors.js';
import { appraiseClaims, checkFormat } from '../appraise.js';
import { attachBoot, type BootClaims, type EventLogInput } from '../boot.js';
import { bytesToHex, equalBytes } from '../bytes.js';
import type { FormatCall } from '../format.js';
import type { Lru } from '../lru.js';
import { type Policy, parsePolicy } from '../policy.js';
import { parseTpmsAttest, parseTpmtSignature } from '../tpm/attest.js';
import { akFromJwk, akSha256, type PcrValues, verifyParsedTpmQuote } from '../tpm/quote.js';
import type {
  AzureClaims,
  AzureCommonClaims,
  Claims,
  EvidenceInput,
  SnpClaims,
  TdxClaims,
  TdxCollateral,
  VerifyOptions,
} from '../types.js';
import {
  checkRuntimeClaimsBinding,
  type HclReport,
  parseHclReport,
  parseRuntimeClaims,
  type RuntimeClaims,
  runtimeClaimsSha256,
} from './hcl.js';

export interface AzureEvidenceInput {
  /** The HCL report (vTPM NV index 0x01400001). */
  report: Uint8Array;
  /** SEV-SNP: the VCEK (DER or PEM), as Azure's THIM endpoint or AMD's KDS hands it out. */
  vek?: Uint8Array;
  /** SEV-SNP: ASK then ARK (as EvidenceInput.chain). */
  chain?: string | Uint8Array | Array<Uint8Array | string>;
  /** TDX: the DCAP quote of the TDREPORT in the HCL report (IMDS POST /acc/tdquote). */
  tdQuote?: Uint8Array;
  /** TDX: collateral, as EvidenceInput.collateral. */
  collateral?: TdxCollateral | string;
  /** The TPM2_Quote by the vTPM AK. */
  tpm: {
    /** TPMS_ATTEST bytes. */
    quote: Uint8Array;
    /** Marshalled TPMT_SIGNATURE. */
    signature: Uint8Array;
    /** PCR values the quote selects, `{"sha256": {"0": hex, …}}`. */
    pcrs: PcrValues;
  };
  /**
   * A boot event log: the vTPM's (checked against the quoted PCRs) or, on azure-tdx, the CCEL
   * (`ccel: true`, checked against RTMR0-3 of the TD quote). The claims then carry `boot`.
   */
  eventLog?: EventLogInput;
}

/** Verification of the hardware evidence inside: a Verifier's SEV-SNP and TDX formats. */
export type HardwareVerifiers = Record<
  'sev-snp' | 'tdx',
  (input: EvidenceInput, call: FormatCall) => Promise<Claims>
>;

export interface AzureVerifyOptions extends VerifyOptions {
  now: Date;
  /** The quote's extraData must be these bytes (the verifier's nonce); ERR_BINDING_MISMATCH otherwise. */
  expectedExtraData?: Uint8Array;
}

export type { AzureClaims, AzureCommonClaims, AzureSnpClaims, AzureTdxClaims } from '../types.js';

function chainError(message: string): AttestationError {
  return new AttestationError('ERR_EVIDENCE_CHAIN', message);
}

/**
 * TDREPORT_STRUCT offsets (Intel TDX module ABI: REPORTMACSTRUCT 256 | TEE_TCB_INFO 239 |
 * reserved 17 | TDINFO 512), beside the TD quote body claims they must equal.
 */
export const TDREPORT_FIELDS: ReadonlyArray<[keyof TdxClaims, number, number]> = [
  ['reportData', 128, 64],
  ['teeTcbSvn', 264, 16],
  ['mrSeam', 280, 48],
  ['mrSignerSeam', 328, 48],
  ['seamAttributes', 376, 8],
  ['xfam', 520, 8],
  ['mrTd', 528, 48],
  ['mrConfigId', 576, 48],
  ['mrOwner', 624, 48],
  ['mrOwnerConfig', 672, 48],
  ['rtmr0', 720, 48],
  ['rtmr1', 768, 48],
  ['rtmr2', 816, 48],
  ['rtmr3', 864, 48],
];

/** The TD quote must be a quote of this TDREPORT: every field of its body equals the report's. */
function checkTdReportMatchesQuote(tdreport: Uint8Array, claims: TdxClaims): void {
  const hex = (off: number, len: number) => bytesToHex(tdreport.subarray(off, off + len));
  const differ: string[] = [];
  for (const [field, off, len] of TDREPORT_FIELDS) if (claims[field] !== hex(off, len)) differ.push(field);
  if (claims.tdAttributes.raw !== hex(512, 8)) differ.push('tdAttributes');
  // TD report 1.5 bodies (quote v5) also carry TEE_TCB_SVN2 and SERVTD_HASH.
  if (claims.teeTcbSvn2 !== undefined && claims.teeTcbSvn2 !== hex(384, 16)) differ.push('teeTcbSvn2');
  if (claims.mrServiceTd !== undefined && claims.mrServiceTd !== hex(912, 48)) differ.push('mrServiceTd');
  if (differ.length > 0)
    throw chainError(
      `the TD quote is not a quote of the HCL report's TDREPORT (${differ.join(', ')} differ)`,
    );
}

/** The azure section's snp / tdx parts as a policy of their own, for the SNP and TDX verifiers. */
function hardwarePolicy(policy: Policy): Policy {
  return parsePolicy({
    ...(policy.azure?.snp ? { snp: policy.azure.snp } : {}),
    ...(policy.azure?.tdx ? { tdx: policy.azure.tdx } : {}),
  });
}

async function verifyHardware(
  hcl: HclReport,
  input: AzureEvidenceInput,
  options: AzureVerifyOptions & { policy: Policy; hardware: HardwareVerifiers },
): Promise<SnpClaims | TdxClaims> {
  const policy = hardwarePolicy(options.policy);
  // The hardware evidence goes through the caller's SNP / TDX verification (a Verifier's, with
  // its anchors, clients and caches).
  const call: FormatCall = {
    policy,
    now: options.now,
    ...(options.signal ? { signal: options.signal } : {}),
  };
  if (hcl.tee === 'sev-snp') {
    const claims = await options.hardware['sev-snp'](
      {
        report: hcl.hardwareReport,
        ...(input.vek !== undefined ? { vek: input.vek } : {}),
        ...(input.chain !== undefined ? { chain: input.chain } : {}),
      },
      call,
    );
    if (claims.format !== 'sev-snp')
      throw chainError('the HCL report names SEV-SNP but carries other evidence');
    // Only the paravisor runs at VMPL 0; a report from a lower privilege level could carry a
    // REPORT_DATA of the guest's choosing, and so an AK of its choosing.
    if (claims.vmpl !== 0)
      throw chainError(`the SNP report is from VMPL ${claims.vmpl}, not the paravisor's VMPL 0`);
    return claims;
  }
  if (!(input.tdQuote instanceof Uint8Array))
    throw new AttestationError(
      'ERR_EVIDENCE_MALFORMED',
      'azure-tdx evidence needs the TD quote of its TDREPORT (the TDREPORT itself is MACed, not signed)',
    );
  const claims = await options.hardware.tdx(
    { report: input.tdQuote, ...(input.collateral !== undefined ? { collateral: input.collateral } : {}) },
    call,
  );
  if (claims.format !== 'tdx') throw chainError('the TD quote is not a TDX quote');
  checkTdReportMatchesQuote(hcl.hardwareReport, claims);
  return claims;
}

function checkInput(input: AzureEvidenceInput): void {
  const bad = (what: string) => new AttestationError('ERR_INVALID_ARGUMENT', what);
  if (typeof input !== 'object' || input === null || !(input.report instanceof Uint8Array))
    throw bad('input.report must be a Uint8Array (the HCL report)');
  const tpm = input.tpm;
  if (typeof tpm !== 'object' || tpm === null) throw bad('input.tpm must hold the quote, signature and PCRs');
  if (!(tpm.quote instanceof Uint8Array) || !(tpm.signature instanceof Uint8Array))
    throw bad('input.tpm.quote and input.tpm.signature must be Uint8Arrays');
  if (typeof tpm.pcrs !== 'object' || tpm.pcrs === null) throw bad('input.tpm.pcrs must be an object');
}

/** An imported AK with what is derived from it, as a Verifier keeps it. */
export interface KnownAk {
  ak: KeyObject;
  /** The `akSha256` claim of the AK. */
  akSha256: string;
  /** The AK as SubjectPublicKeyInfo DER, for the comparison with `expectedAk`. */
  akSpki: Buffer;
}

/** Parsed runtime claims with what is derived from their AK, as a Verifier keeps them. */
export interface KnownRuntimeClaims extends RuntimeClaims, KnownAk {}

/**
 * A Verifier's imported AKs by the HCLAkPub JWK's own members (`n` and `e`: all akFromJwk reads of
 * an RSA key, so the same strings make the same key). Every report of one VM carries new runtime
 * claims (their user-data is the binder), but the same AK: a new report then pays for its JSON,
 * not for importing the key again, as the SNP path keeps its VEK and the TDX path its
 * attestation key.
 */
export type AkCache = Lru<string, KnownAk>;

/**
 * The AK cache's key of an RSA JWK; undefined for another kty or members that are not strings
 * (akFromJwk refuses those or reads other members), which are imported every time.
 */
function akCacheKey(jwk: Record<string, unknown>): string | undefined {
  const { kty, n, e } = jwk;
  // Length-prefixed: no two (n, e) pairs give one key.
  return kty === 'RSA' && typeof n === 'string' && typeof e === 'string' ? `${n.length}:${n}${e}` : undefined;
}

/** The AK of a HCLAkPub JWK: from the cache, or imported (and its digest and SPKI made) and kept. */
function knownAk(jwk: Record<string, unknown>, cache?: AkCache): KnownAk {
  const id = cache && akCacheKey(jwk);
  const known = id !== undefined ? cache?.get(id) : undefined;
  if (known) return known;
  const ak = akFromJwk(jwk, 'ERR_EVIDENCE_CHAIN');
  const entry: KnownAk = { ak, akSha256: akSha256(ak), akSpki: ak.export({ format: 'der', type: 'spki' }) };
  // Kept only once imported: akFromJwk bounded n and e (at most 4096 bits, 64-bit exponent).
  if (id !== undefined) cache?.set(id, entry);
  return entry;
}

/**
 * A Verifier's runtime claims by the SHA-256 of their bytes (exact content: the same bytes parse
 * to the same JSON and AK, and SHA-256 is collision resistant). Looked up only after REPORT_DATA
 * was found to bind those bytes.
 */
export type RuntimeClaimsCache = Lru<string, KnownRuntimeClaims>;

/**
 * Deep-freezes parsed JSON, iteratively (a 64 KiB claims JSON can nest deeper than the stack):
 * a cached claims object is handed to every caller of the same evidence, so none may change it
 * for the next.
 */
function freezeJson(root: object): void {
  const todo: object[] = [root];
  for (let v = todo.pop(); v !== undefined; v = todo.pop()) {
    Object.freeze(v);
    for (const x of Object.values(v)) if (typeof x === 'object' && x !== null) todo.push(x);
  }
}

/** Runtime claims JSON longer than this is parsed on every call, not kept (memory bound). */
export const MAX_KEPT_CLAIMS_BYTES = 8 * 1024;

/** The runtime claims of a report whose binding holds: from the cache, or parsed and kept. */
function runtimeClaimsOf(
  hcl: HclReport,
  bindingDigest: Uint8Array,
  cache?: RuntimeClaimsCache,
  aks?: AkCache,
): KnownRuntimeClaims {
  const sha256 = runtimeClaimsSha256(hcl, bindingDigest);
  if (hcl.claimsBytes.length > MAX_KEPT_CLAIMS_BYTES) cache = undefined;
  const known = cache?.get(sha256);
  if (known) return known;
  let ak: KnownAk | undefined;
  const runtime = parseRuntimeClaims(hcl, sha256, (jwk) => {
    ak = knownAk(jwk, aks);
    return ak.ak;
  });
  const entry = runtime as KnownRuntimeClaims;
  entry.akSha256 = ak!.akSha256;
  entry.akSpki = ak!.akSpki;
  if (cache) {
    freezeJson(entry.json);
    cache.set(sha256, entry);
  }
  return entry;
}

/** Verifies Azure evidence at `options.now`; returns the claims of issue 12. */
export async function verifyAzure(
  input: AzureEvidenceInput,
  options: AzureVerifyOptions & {
    hardware: HardwareVerifiers;
    runtimeClaims?: RuntimeClaimsCache;
    aks?: AkCache;
  },
): Promise<AzureClaims> {
  checkInput(input);
  const policy = parsePolicy(options.policy);
  const hcl = parseHclReport(input.report);
  const format = hcl.tee === 'sev-snp' ? 'azure-sev-snp' : 'azure-tdx';
  // Before any signature or collateral work, as verifyEvidence() does for raw reports.
  checkFormat(format, policy);
  // Unparseable quote bytes are refused before any network or signature work. Parsed once, from
  // an own copy: the signature is checked (after the awaits below) over the bytes the fields
  // were read from.
  const attest = parseTpmsAttest(new Uint8Array(input.tpm.quote));
  const tpmSignature = parseTpmtSignature(input.tpm.signature);

  const hardware = await verifyHardware(hcl, input, { ...options, policy });
  // reportData is the hardware verifier's own lowercase hex: no digit check needed to decode it.
  const digest = checkRuntimeClaimsBinding(hcl, Buffer.from(hardware.reportData, 'hex'));
  const runtime = runtimeClaimsOf(hcl, digest, options.runtimeClaims, options.aks);

  if (options.expectedAk !== undefined) {
    // Its public part, whichever kind of KeyObject the caller holds.
    const expected = options.expectedAk;
    const want = (expected.type === 'private' ? createPublicKey(expected) : expected).export({
      format: 'der',
      type: 'spki',
    });
    if (!equalBytes(want, runtime.akSpki))
      throw chainError("the expected AK is not the HCL report's HCLAkPub");
  }
  const quote = verifyParsedTpmQuote(attest, tpmSignature, input.tpm.pcrs, runtime.ak, runtime.akSha256);
  if (
    options.expectedExtraData !== undefined &&
    !equalBytes(quote.attest.extraData, options.expectedExtraData)
  )
    throw new AttestationError('ERR_BINDING_MISMATCH', 'the TPM quote extraData is not the expected nonce', {
      details: { extraData: quote.claims.extraData },
    });

  // Measured boot: a TPM log against the quoted PCRs, a CCEL against the TD quote's RTMRs.
  const withBoot: { format: string; boot?: BootClaims } = { format: `azure-${hardware.format}` };
  attachBoot(withBoot, input.eventLog, policy.boot, () => {
    if (!input.eventLog?.ccel) return { pcrs: quote.claims.pcrs };
    if (hardware.format !== 'tdx') return undefined;
    return { rtmrs: [hardware.rtmr0, hardware.rtmr1, hardware.rtmr2, hardware.rtmr3] };
  });
  // The hardware claims are this call's own (the SNP / TDX verifiers build them per call): they
  // become the Azure claims in place, by assignment, rather than copied with their ~30 fields
  // into another object (format stays the first key).
  const claims = hardware as unknown as AzureClaims & AzureCommonClaims;
  claims.format = hardware.format === 'sev-snp' ? 'azure-sev-snp' : 'azure-tdx';
  claims.runtimeClaims = runtime.json;
  claims.runtimeClaimsSha256 = runtime.sha256;
  claims.userData = runtime.userData;
  claims.vmConfiguration = runtime.vmConfiguration;
  claims.tpm = quote.claims;
  if (withBoot.boot) claims.boot = withBoot.boot;
  // The hardware report measures Microsoft's paravisor and firmware, the same for every customer
  // on one paravisor build: whether it was pinned says nothing of the user's workload, which only
  // the PCRs and the boot pins pin (WORKLOAD_PINS in appraise.ts).
  claims.workloadPinned = appraiseClaims(claims, policy);
  return claims;
}
