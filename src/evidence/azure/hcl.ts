/**
 * The HCL report of an Azure confidential VM: what Microsoft's paravisor stores in vTPM NV index
 * 0x01400001 (layout in docs/reference/cloud-evidence.md §1.2 and test/fixtures/azure/README.md).
 * Little-endian. A 32-byte "HCLA" header, a 1184-byte hardware report area (an SEV-SNP
 * ATTESTATION_REPORT, or a TDX TDREPORT and 160 zero bytes), a 20-byte runtime-data header and
 * the runtime claims JSON, which the hardware report binds: REPORT_DATA = hash(JSON bytes) ‖ zeros.
 *
 * Nothing in the headers is signed. The version and report_size fields are not checked: real
 * reports carry values Microsoft's design document does not describe (version 1 on SNP, report
 * size 0x4D4 + claim size). The JSON is hashed exactly as stored and parsed only after the hash
 * matched (checkRuntimeClaimsBinding, then parseRuntimeClaims).
 */
import { createHash, type KeyObject } from 'node:crypto';
import { AttestationError } from '../../errors.js';
import { bytesToHex, equalBytes, isAllZero } from '../bytes.js';
import { akFromJwk } from '../tpm/quote.js';

export const HCL_MAGIC = 0x414c4348; // "HCLA"
export const HCL_HEADER_SIZE = 0x20;
export const HCL_HW_REPORT_SIZE = 1184;
export const HCL_RUNTIME_HEADER_OFFSET = HCL_HEADER_SIZE + HCL_HW_REPORT_SIZE; // 0x4C0
export const HCL_CLAIMS_OFFSET = HCL_RUNTIME_HEADER_OFFSET + 20; // 0x4D4
export const TDREPORT_SIZE = 1024;
/** An NV index holds at most a few KiB; a runtime-claims JSON of more than this is not a paravisor's. */
const CLAIMS_MAX = 64 * 1024;

/** The hash the paravisor put in REPORT_DATA (runtime-data header report_data_hash_type). */
export const HCL_HASH_TYPES: ReadonlyMap<number, { name: 'sha256' | 'sha384' | 'sha512'; size: number }> =
  new Map([
    [1, { name: 'sha256', size: 32 }],
    [2, { name: 'sha384', size: 48 }],
    [3, { name: 'sha512', size: 64 }],
  ]);

export interface HclReport {
  version: number;
  reportSize: number;
  requestType: number;
  status: number;
  /** Runtime-data report type: 2 = SEV-SNP, 4 = TDX. */
  tee: 'sev-snp' | 'tdx';
  /** The SNP report (1184 bytes) or the TDREPORT (1024 bytes), a view into the input. */
  hardwareReport: Uint8Array;
  runtimeData: { dataSize: number; version: number; reportType: number; hashType: number; claimSize: number };
  hash: { name: 'sha256' | 'sha384' | 'sha512'; size: number };
  /** The runtime claims JSON bytes exactly as stored. */
  claimsBytes: Uint8Array;
}

function malformed(message: string): AttestationError {
  return new AttestationError('ERR_EVIDENCE_MALFORMED', `HCL report: ${message}`);
}

function u32le(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16)) + b[off + 3]! * 0x1000000;
}

/** True when the bytes start with the HCL report magic (how a verifier tells Azure evidence apart). */
export function isHclReport(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && u32le(bytes, 0) === HCL_MAGIC;
}

/**
 * The Azure format of an HCL report from its magic and runtime-data report type (nothing else is
 * checked): how the dispatcher tells Azure evidence apart before parsing it.
 */
export function hclFormatOf(bytes: Uint8Array): 'azure-sev-snp' | 'azure-tdx' | undefined {
  if (!isHclReport(bytes) || bytes.length < HCL_CLAIMS_OFFSET) return undefined;
  const type = u32le(bytes, HCL_RUNTIME_HEADER_OFFSET + 8);
  return type === 2 ? 'azure-sev-snp' : type === 4 ? 'azure-tdx' : undefined;
}

export function parseHclReport(bytes: Uint8Array): HclReport {
  if (!(bytes instanceof Uint8Array)) throw malformed('not bytes');
  if (bytes.length < HCL_CLAIMS_OFFSET)
    throw malformed(`${bytes.length} bytes, shorter than the ${HCL_CLAIMS_OFFSET} bytes of its fixed part`);
  if (u32le(bytes, 0) !== HCL_MAGIC) throw malformed('does not start with "HCLA"');
  const rt = HCL_RUNTIME_HEADER_OFFSET;
  const runtimeData = {
    dataSize: u32le(bytes, rt),
    version: u32le(bytes, rt + 4),
    reportType: u32le(bytes, rt + 8),
    hashType: u32le(bytes, rt + 12),
    claimSize: u32le(bytes, rt + 16),
  };
  let tee: HclReport['tee'];
  let hardwareReport: Uint8Array;
  if (runtimeData.reportType === 2) {
    tee = 'sev-snp';
    hardwareReport = bytes.subarray(HCL_HEADER_SIZE, HCL_HEADER_SIZE + HCL_HW_REPORT_SIZE);
  } else if (runtimeData.reportType === 4) {
    tee = 'tdx';
    hardwareReport = bytes.subarray(HCL_HEADER_SIZE, HCL_HEADER_SIZE + TDREPORT_SIZE);
    // TDREPORT_STRUCT starts with REPORTTYPE.TYPE = 0x81 (TDX) (Intel TDX module ABI, REPORTTYPE).
    if (hardwareReport[0] !== 0x81)
      throw malformed('report type TDX, but the hardware report is not a TDREPORT');
  } else throw malformed(`runtime-data report type ${runtimeData.reportType} is not SEV-SNP (2) or TDX (4)`);
  const hash = HCL_HASH_TYPES.get(runtimeData.hashType);
  if (!hash)
    throw malformed(`report-data hash type ${runtimeData.hashType} is not 1, 2 or 3 (SHA-256/384/512)`);
  const { claimSize } = runtimeData;
  if (claimSize === 0 || claimSize > CLAIMS_MAX || claimSize > bytes.length - HCL_CLAIMS_OFFSET)
    throw malformed(`runtime claims size ${claimSize} does not fit the ${bytes.length}-byte report`);
  return {
    version: u32le(bytes, 4),
    reportSize: u32le(bytes, 8),
    requestType: u32le(bytes, 12),
    status: u32le(bytes, 16),
    tee,
    hardwareReport,
    runtimeData,
    hash,
    claimsBytes: bytes.subarray(HCL_CLAIMS_OFFSET, HCL_CLAIMS_OFFSET + claimSize),
  };
}

/**
 * The hardware report's REPORT_DATA must be hash(claims bytes) followed by zeros, or nothing ties
 * the runtime claims (and the AK in them) to the hardware. ERR_EVIDENCE_CHAIN otherwise.
 */
export function checkRuntimeClaimsBinding(hcl: HclReport, reportData: Uint8Array): Buffer {
  const digest = createHash(hcl.hash.name).update(hcl.claimsBytes).digest();
  if (
    reportData.length !== 64 ||
    !equalBytes(reportData.subarray(0, hcl.hash.size), digest) ||
    !isAllZero(reportData.subarray(hcl.hash.size))
  )
    throw new AttestationError(
      'ERR_EVIDENCE_CHAIN',
      `HCL report: REPORT_DATA is not ${hcl.hash.name.toUpperCase()}(runtime claims) followed by zeros`,
    );
  return digest;
}

/** SHA-256 of the claims bytes, lowercase hex: the binding's digest when that is SHA-256 already. */
export function runtimeClaimsSha256(hcl: HclReport, bindingDigest?: Uint8Array): string {
  return bytesToHex(
    hcl.hash.name === 'sha256' && bindingDigest !== undefined
      ? bindingDigest
      : createHash('sha256').update(hcl.claimsBytes).digest(),
  );
}

export interface RuntimeClaims {
  /** The parsed JSON. */
  json: Record<string, unknown>;
  /** SHA-256 of the JSON bytes (whatever the report's hash type), lowercase hex. */
  sha256: string;
  /** The vTPM attestation key: the JWK with kid "HCLAkPub". */
  ak: KeyObject;
  /** `user-data`: the 64 bytes of NV 0x01400002 when the report was made, lowercase hex; null when absent. */
  userData: string | null;
  /** `vm-configuration` as in the JSON; null when absent. */
  vmConfiguration: Record<string, unknown> | null;
}

// Stateless between calls (a whole buffer per decode): a constant, not a cache.
const UTF8 = new TextDecoder('utf-8', { fatal: true });

function chain(message: string): AttestationError {
  return new AttestationError('ERR_EVIDENCE_CHAIN', `HCL runtime claims: ${message}`);
}

/**
 * Parses the runtime claims. Call it only after checkRuntimeClaimsBinding passed. `keyOf` makes
 * the KeyObject of the HCLAkPub JWK (a Verifier's passes one that keeps the keys it imported).
 */
export function parseRuntimeClaims(
  hcl: HclReport,
  sha256?: string,
  keyOf: (jwk: Record<string, unknown>) => KeyObject = (jwk) => akFromJwk(jwk, 'ERR_EVIDENCE_CHAIN'),
): RuntimeClaims {
  let json: unknown;
  try {
    json = JSON.parse(UTF8.decode(hcl.claimsBytes));
  } catch (err) {
    throw new AttestationError('ERR_EVIDENCE_MALFORMED', 'HCL runtime claims: not UTF-8 JSON', {
      cause: err,
    });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new AttestationError('ERR_EVIDENCE_MALFORMED', 'HCL runtime claims: not a JSON object');
  const obj = json as Record<string, unknown>;
  const keys = obj.keys;
  if (!Array.isArray(keys)) throw chain('no "keys" list, so no attestation key');
  // Select by kid, never by position (docs/reference/cloud-evidence.md §1.3).
  const aks = keys.filter(
    (k) => typeof k === 'object' && k !== null && (k as { kid?: unknown }).kid === 'HCLAkPub',
  );
  if (aks.length !== 1) throw chain(`${aks.length} keys with kid "HCLAkPub" (exactly one is needed)`);
  const akJwk = aks[0] as Record<string, unknown>;
  if (akJwk.kty !== 'RSA') throw chain('HCLAkPub is not an RSA key');
  const ak = keyOf(akJwk);
  let userData: string | null = null;
  if (Object.hasOwn(obj, 'user-data')) {
    const u = obj['user-data'];
    if (typeof u !== 'string' || !/^[0-9a-fA-F]{128}$/.test(u))
      throw new AttestationError(
        'ERR_EVIDENCE_MALFORMED',
        'HCL runtime claims: user-data is not 128 hex digits',
      );
    userData = u.toLowerCase();
  }
  let vmConfiguration: Record<string, unknown> | null = null;
  if (Object.hasOwn(obj, 'vm-configuration')) {
    const v = obj['vm-configuration'];
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw new AttestationError(
        'ERR_EVIDENCE_MALFORMED',
        'HCL runtime claims: vm-configuration is not an object',
      );
    vmConfiguration = v as Record<string, unknown>;
  }
  return {
    json: obj,
    sha256: sha256 ?? runtimeClaimsSha256(hcl),
    ak,
    userData,
    vmConfiguration,
  };
}
