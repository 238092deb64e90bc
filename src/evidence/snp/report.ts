/**
 * The SEV-SNP ATTESTATION_REPORT parser (versions 2, 3, 4 with the v3 layout, and 5; layout in
 * docs/reference/snp-format.md §1). Pure and bounds-checked: the only thing it throws is
 * ERR_EVIDENCE_MALFORMED. It checks the structure (length, version, signature algorithm, every
 * must-be-zero range, signer-info and policy reserved bits) but nothing cryptographic.
 *
 * TCB values are decoded with the layout of the product the CPUID fields name. A v2 report has
 * no CPUID, so its product comes from the VEK; until then its TCBs are decoded with the
 * Milan/Genoa layout (the only one that existed when v2 reports were produced) and `product` is
 * undefined. Call `decodeTcb(report.raw.reportedTcb, product)` once the product is known.
 */
import { AttestationError } from '../../errors.js';
import { bytesToHex } from '../bytes.js';
import type { SnpGuestPolicy, SnpPlatformInfo, TcbVersion } from '../types.js';
import type { SnpProduct } from './roots.js';
import { decodeTcb, productFromCpuid } from './tcb.js';

export const SNP_REPORT_LENGTH = 0x4a0;
/** Bytes covered by the report signature: 0x000..0x29F. */
export const SNP_SIGNED_LENGTH = 0x2a0;
export const SNP_SUPPORTED_VERSIONS: readonly number[] = [2, 3, 4, 5];
/** REPORT_DATA: 64 bytes at 0x050 in every version (AMD SEV-SNP ABI, Table 23 / 24). */
const REPORT_DATA_OFFSET = 0x050;
const REPORT_DATA_SIZE = 64;

/**
 * REPORT_DATA as the raw bytes claim it, read without parsing or checking anything (the channel
 * compares it with its binder before the signature is checked). Undefined unless `bytes` has the
 * length of a report.
 */
export function reportDataOf(bytes: Uint8Array): Uint8Array | undefined {
  if (bytes.length !== SNP_REPORT_LENGTH) return undefined;
  return bytes.subarray(REPORT_DATA_OFFSET, REPORT_DATA_OFFSET + REPORT_DATA_SIZE);
}

export interface SnpReport {
  version: number;
  guestSvn: number;
  policy: SnpGuestPolicy;
  familyId: string;
  imageId: string;
  vmpl: number;
  signatureAlgo: number;
  currentTcb: TcbVersion;
  platformInfo: SnpPlatformInfo;
  signerInfo: { raw: number; authorKeyEn: boolean; maskChipKey: boolean; signingKey: 'vcek' | 'vlek' };
  reportData: string;
  measurement: string;
  hostData: string;
  idKeyDigest: string;
  authorKeyDigest: string;
  reportId: string;
  reportIdMa: string;
  reportedTcb: TcbVersion;
  /** v3 and later. */
  cpuid?: { family: number; model: number; stepping: number };
  chipId: string;
  committedTcb: TcbVersion;
  currentFirmware: string;
  committedFirmware: string;
  launchTcb: TcbVersion;
  /** v5 and later (lowercase hex of the u64). */
  launchMitVector?: string;
  currentMitVector?: string;
  /** Product from CPUID (v3+) when it is one this library knows; undefined for v2. */
  product?: SnpProduct;
  /** @internal Raw byte views for the verifier (not part of the API: their shape may change). */
  raw: {
    bytes: Uint8Array;
    signed: Uint8Array;
    /** Big-endian r and s, 48 bytes each (converted from the report's little-endian fields). */
    r: Uint8Array;
    s: Uint8Array;
    chipId: Uint8Array;
    currentTcb: Uint8Array;
    reportedTcb: Uint8Array;
    committedTcb: Uint8Array;
    launchTcb: Uint8Array;
  };
}

function malformed(message: string, details: Record<string, unknown> = {}): AttestationError {
  return new AttestationError('ERR_EVIDENCE_MALFORMED', `SNP report: ${message}`, { details });
}

function u32(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

function mbz(b: Uint8Array, from: number, to: number): void {
  for (let i = from; i < to; i++)
    if (b[i] !== 0) throw malformed(`reserved byte 0x${i.toString(16)} is not zero`, { offset: i });
}

/** Reverses a 48-byte little-endian scalar into big-endian. */
function leScalar(b: Uint8Array, off: number): Uint8Array {
  const out = new Uint8Array(48);
  for (let i = 0; i < 48; i++) out[i] = b[off + 47 - i]!;
  return out;
}

/** Bit n (0..52) of a u64 held as a number pair: BigInt arithmetic allocates on every step. */
function bit(lo: number, hi: number, n: number): boolean {
  return ((n < 32 ? lo >>> n : hi >>> (n - 32)) & 1) === 1;
}

function hex64(lo: number, hi: number): string {
  return `0x${hi === 0 ? lo.toString(16) : hi.toString(16) + lo.toString(16).padStart(8, '0')}`;
}

export function decodeGuestPolicy(lo: number, hi: number): SnpGuestPolicy {
  return {
    raw: hex64(lo, hi),
    abiMinor: lo & 0xff,
    abiMajor: (lo >>> 8) & 0xff,
    smt: bit(lo, hi, 16),
    migrateMa: bit(lo, hi, 18),
    debug: bit(lo, hi, 19),
    singleSocket: bit(lo, hi, 20),
    cxlAllow: bit(lo, hi, 21),
    memAes256Xts: bit(lo, hi, 22),
    raplDis: bit(lo, hi, 23),
    ciphertextHiding: bit(lo, hi, 24),
    pageSwapDisable: bit(lo, hi, 25),
  };
}

const KNOWN_PLATFORM_BITS = 0b1011_1111; // bits 0-5 and 7; bit 6 is set by Turin but undocumented.

export function decodePlatformInfo(lo: number, hi: number): SnpPlatformInfo {
  return {
    raw: hex64(lo, hi),
    smtEnabled: bit(lo, hi, 0),
    tsmeEnabled: bit(lo, hi, 1),
    eccEnabled: bit(lo, hi, 2),
    raplDisabled: bit(lo, hi, 3),
    ciphertextHidingEnabled: bit(lo, hi, 4),
    aliasCheckComplete: bit(lo, hi, 5),
    sevTioEnabled: bit(lo, hi, 7),
    unknownBits: hex64((lo & ~KNOWN_PLATFORM_BITS) >>> 0, hi),
  };
}

/** The span of the report's hex fields, FAMILY_ID (0x010) to the end of CHIP_ID (0x1E0). */
const HEX_FROM = 0x010;
const HEX_TO = 0x1e0;

function firmware(b: Uint8Array, off: number): string {
  return `${b[off + 2]}.${b[off + 1]}.${b[off]}`;
}

/**
 * Parses a bare 1184-byte report. Throws ERR_EVIDENCE_MALFORMED for any other length, an
 * unknown version or signature algorithm, a non-zero reserved field, or a signature whose
 * unused high bytes are not zero.
 */
export function parseSnpReport(bytes: Uint8Array): SnpReport {
  if (!(bytes instanceof Uint8Array)) throw malformed('not a Uint8Array');
  if (bytes.length !== SNP_REPORT_LENGTH)
    throw malformed(`length ${bytes.length}, expected ${SNP_REPORT_LENGTH}`, { length: bytes.length });
  // Copy once so that later mutation of the caller's buffer cannot change what was checked.
  const b = new Uint8Array(bytes);
  const version = u32(b, 0x000);
  if (!SNP_SUPPORTED_VERSIONS.includes(version))
    throw malformed(`unsupported version ${version}`, { version });
  const signatureAlgo = u32(b, 0x034);
  if (signatureAlgo !== 1) throw malformed(`unsupported signature algorithm ${signatureAlgo}`);

  const policyLo = u32(b, 0x008);
  const policyHi = u32(b, 0x00c);
  if (!bit(policyLo, policyHi, 17)) throw malformed('guest policy bit 17 (reserved, must be one) is zero');
  if (policyLo >>> 26 !== 0 || policyHi !== 0)
    throw malformed('guest policy reserved bits 63:26 are not zero');

  const signer = u32(b, 0x048);
  if (signer >>> 5 !== 0) throw malformed('signer info reserved bits 31:5 are not zero');
  const signingKey = (signer >>> 2) & 0b111;
  if (signingKey !== 0 && signingKey !== 1)
    throw malformed(
      signingKey === 7 ? 'report is not signed (SIGNING_KEY = none)' : `unknown SIGNING_KEY ${signingKey}`,
    );

  mbz(b, 0x04c, 0x050);
  mbz(b, version >= 3 ? 0x18b : 0x188, 0x1a0);
  mbz(b, 0x1eb, 0x1ec);
  mbz(b, 0x1ef, 0x1f0);
  mbz(b, 0x208, 0x2a0);
  // r and s are 72-byte little-endian fields of which P-384 uses the low 48 bytes.
  mbz(b, 0x2a0 + 48, 0x2a0 + 72);
  mbz(b, 0x2e8 + 48, 0x2e8 + 72);
  mbz(b, 0x330, 0x4a0);

  const cpuid = version >= 3 ? { family: b[0x188]!, model: b[0x189]!, stepping: b[0x18a]! } : undefined;
  const product = cpuid ? productFromCpuid(cpuid.family, cpuid.model) : undefined;
  const layout: SnpProduct = product ?? 'Milan';
  const chipId = b.subarray(0x1a0, 0x1e0);
  const raw = {
    bytes: b,
    signed: b.subarray(0, SNP_SIGNED_LENGTH),
    r: leScalar(b, 0x2a0),
    s: leScalar(b, 0x2e8),
    chipId,
    currentTcb: b.subarray(0x038, 0x040),
    reportedTcb: b.subarray(0x180, 0x188),
    committedTcb: b.subarray(0x1e0, 0x1e8),
    launchTcb: b.subarray(0x1f0, 0x1f8),
  };
  // One hex conversion of 0x010..0x1E0 (every hex field: FAMILY_ID to CHIP_ID), cut into the
  // fields, rather than ten conversions of their own.
  const hexed = bytesToHex(b.subarray(HEX_FROM, HEX_TO));
  const hex = (from: number, len: number) => hexed.slice((from - HEX_FROM) * 2, (from - HEX_FROM + len) * 2);
  const report: SnpReport = {
    version,
    guestSvn: u32(b, 0x004),
    policy: decodeGuestPolicy(policyLo, policyHi),
    familyId: hex(0x010, 16),
    imageId: hex(0x020, 16),
    vmpl: u32(b, 0x030),
    signatureAlgo,
    currentTcb: decodeTcb(raw.currentTcb, layout),
    platformInfo: decodePlatformInfo(u32(b, 0x040), u32(b, 0x044)),
    signerInfo: {
      raw: signer,
      authorKeyEn: (signer & 1) === 1,
      maskChipKey: (signer & 2) === 2,
      signingKey: signingKey === 0 ? 'vcek' : 'vlek',
    },
    reportData: hex(REPORT_DATA_OFFSET, REPORT_DATA_SIZE),
    measurement: hex(0x090, 48),
    hostData: hex(0x0c0, 32),
    idKeyDigest: hex(0x0e0, 48),
    authorKeyDigest: hex(0x110, 48),
    reportId: hex(0x140, 32),
    reportIdMa: hex(0x160, 32),
    reportedTcb: decodeTcb(raw.reportedTcb, layout),
    chipId: hex(0x1a0, 64),
    committedTcb: decodeTcb(raw.committedTcb, layout),
    currentFirmware: firmware(b, 0x1e8),
    committedFirmware: firmware(b, 0x1ec),
    launchTcb: decodeTcb(raw.launchTcb, layout),
    raw,
  };
  if (cpuid) report.cpuid = cpuid;
  if (product) report.product = product;
  if (version >= 5) {
    report.launchMitVector = hex64(u32(b, 0x1f8), u32(b, 0x1fc));
    report.currentMitVector = hex64(u32(b, 0x200), u32(b, 0x204));
  }
  return report;
}

/** Re-decodes every TCB of a report with the layout of `product` (for v2 reports, once the VEK names it). */
export function withProduct(report: SnpReport, product: SnpProduct): SnpReport {
  if (report.product === product) return report;
  return {
    ...report,
    product,
    currentTcb: decodeTcb(report.raw.currentTcb, product),
    reportedTcb: decodeTcb(report.raw.reportedTcb, product),
    committedTcb: decodeTcb(report.raw.committedTcb, product),
    launchTcb: decodeTcb(report.raw.launchTcb, product),
  };
}
