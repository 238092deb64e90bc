/**
 * Intel TDX quote parser (quote v4 and v5, ECDSA P-256 attestation keys, certification data type 6
 * with a nested type 5 PCK chain). Pure and bounds-checked: every field is located through the
 * length fields, never through the buffer size, so trailing bytes (zero padding of fixed-size
 * quote buffers, or anything else) are ignored. Anything inconsistent is ERR_EVIDENCE_MALFORMED.
 *
 * Layout facts: docs/reference/tdx-format.md §1 (Intel's sgx_quote_4.h / sgx_quote_5.h).
 */
import { AttestationError } from '../../errors.js';
import { bytesToHex, equalBytes, hexToBytes } from '../bytes.js';
import { pemToDer } from '../x509/pem.js';

export const TDX_TEE_TYPE = 0x81;
export const ATT_KEY_TYPE_ECDSA_P256 = 2;
export const INTEL_QE_VENDOR_ID = '939a7233f79c4ca9940a0db3957f0607';
const INTEL_QE_VENDOR_ID_BYTES = hexToBytes(INTEL_QE_VENDOR_ID);

export const TD_REPORT10_SIZE = 584;
export const TD_REPORT15_SIZE = 648;
const QE_REPORT_SIZE = 384;
const CERT_TYPE_QE_REPORT = 6;
const CERT_TYPE_PCK_CHAIN = 5;
// A PCK chain is three certificates of about 1 KiB each; anything far larger is not a PCK chain
// and would only cost memory and parsing time.
const MAX_PCK_CHAIN_SIZE = 64 * 1024;
/** The quote header, the v5 body descriptor (u16 type, u32 size), and REPORTDATA's place in the body. */
const QUOTE_HEADER_SIZE = 48;
const V5_DESCRIPTOR_SIZE = 6;
const BODY_REPORT_DATA_OFFSET = 520;
const REPORT_DATA_SIZE = 64;

/**
 * REPORTDATA of the TD report body as the raw quote claims it, read without parsing or checking
 * anything else (the channel compares it with its binder before any signature is checked; a test
 * holds it equal to what parseTdxQuote reads). Undefined for another version or too few bytes.
 */
export function reportDataOf(bytes: Uint8Array): Uint8Array | undefined {
  if (bytes.length < 2) return undefined;
  const version = bytes[0]! | (bytes[1]! << 8);
  const body =
    version === 4 ? QUOTE_HEADER_SIZE : version === 5 ? QUOTE_HEADER_SIZE + V5_DESCRIPTOR_SIZE : undefined;
  if (body === undefined) return undefined;
  const at = body + BODY_REPORT_DATA_OFFSET;
  if (bytes.length < at + REPORT_DATA_SIZE) return undefined;
  return bytes.subarray(at, at + REPORT_DATA_SIZE);
}

export interface TdxQuoteHeader {
  version: number;
  attestationKeyType: number;
  teeType: number;
  /** Header bytes 8..11: named differently by every implementation and zero in practice. */
  reserved: Uint8Array;
  qeVendorId: Uint8Array;
  userData: Uint8Array;
}

/** TD report body (TD report 1.0; 1.5 adds teeTcbSvn2 and mrServiceTd). */
export interface TdReportBody {
  teeTcbSvn: Uint8Array;
  mrSeam: Uint8Array;
  mrSignerSeam: Uint8Array;
  seamAttributes: Uint8Array;
  tdAttributes: Uint8Array;
  xfam: Uint8Array;
  mrTd: Uint8Array;
  mrConfigId: Uint8Array;
  mrOwner: Uint8Array;
  mrOwnerConfig: Uint8Array;
  rtmr0: Uint8Array;
  rtmr1: Uint8Array;
  rtmr2: Uint8Array;
  rtmr3: Uint8Array;
  reportData: Uint8Array;
  teeTcbSvn2?: Uint8Array;
  mrServiceTd?: Uint8Array;
}

/** The Quoting Enclave's SGX REPORT BODY (384 bytes). */
export interface QeReport {
  raw: Uint8Array;
  cpuSvn: Uint8Array;
  miscSelect: Uint8Array;
  attributes: Uint8Array;
  mrEnclave: Uint8Array;
  mrSigner: Uint8Array;
  isvProdId: number;
  isvSvn: number;
  reportData: Uint8Array;
}

export interface TdxQuote {
  header: TdxQuoteHeader;
  /** 2 = TD report 1.0 (every v4 quote), 3 = TD report 1.5 (v5 only). */
  bodyType: 2 | 3;
  body: TdReportBody;
  /** Header ‖ (v5: body descriptor ‖) body: the bytes the attestation key signs. */
  signedData: Uint8Array;
  /** Raw r‖s, 64 bytes. */
  signature: Uint8Array;
  /** Raw X‖Y of the P-256 attestation key, 64 bytes. */
  attestationKey: Uint8Array;
  qeReport: QeReport;
  /** Raw r‖s by the PCK key over qeReport.raw. */
  qeReportSignature: Uint8Array;
  qeAuthData: Uint8Array;
  /** The PCK chain as DER, leaf first (leaf, PCK Platform/Processor CA, root). */
  pckChain: Uint8Array[];
  /** Bytes of the quote proper; anything after it in the input is ignored. */
  size: number;
}

function malformed(message: string): AttestationError {
  return new AttestationError('ERR_EVIDENCE_MALFORMED', `TDX quote: ${message}`);
}

/** A bounds-checked cursor over the input; every read fails cleanly past `limit`. */
class Reader {
  constructor(
    private readonly buf: Uint8Array,
    public pos: number,
    private readonly limit: number,
  ) {}

  bytes(n: number, what: string): Uint8Array {
    if (n < 0 || this.pos + n > this.limit)
      throw malformed(`${what} (${n} bytes at offset ${this.pos}) runs past the end (${this.limit})`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Read in place: a view per integer would cost an object each (ten a quote). */
  u16(what: string): number {
    const at = this.#advance(2, what);
    const b = this.buf;
    return b[at]! | (b[at + 1]! << 8);
  }

  u32(what: string): number {
    const at = this.#advance(4, what);
    const b = this.buf;
    return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16)) + b[at + 3]! * 0x1000000;
  }

  #advance(n: number, what: string): number {
    if (this.pos + n > this.limit)
      throw malformed(`${what} (${n} bytes at offset ${this.pos}) runs past the end (${this.limit})`);
    const at = this.pos;
    this.pos += n;
    return at;
  }
}

/**
 * Offset and length of each field in the TD report body (TD report 1.0; 1.5 appends the last
 * two), after Intel's TDX DCAP quote layout. readBody() and the claims (appraise.ts) read by it.
 */
export const TD_REPORT_FIELDS: Readonly<Record<keyof TdReportBody, readonly [number, number]>> =
  Object.freeze({
    teeTcbSvn: [0, 16],
    mrSeam: [16, 48],
    mrSignerSeam: [64, 48],
    seamAttributes: [112, 8],
    tdAttributes: [120, 8],
    xfam: [128, 8],
    mrTd: [136, 48],
    mrConfigId: [184, 48],
    mrOwner: [232, 48],
    mrOwnerConfig: [280, 48],
    rtmr0: [328, 48],
    rtmr1: [376, 48],
    rtmr2: [424, 48],
    rtmr3: [472, 48],
    reportData: [520, 64],
    teeTcbSvn2: [584, 16],
    mrServiceTd: [600, 48],
  });

/**
 * The body is of fixed size: one bounds check for all of it, then each field a view at its
 * offset, rather than a checked read per field.
 */
function readBody(r: Reader, bodyType: 2 | 3): TdReportBody {
  const raw = r.bytes(bodyType === 3 ? TD_REPORT15_SIZE : TD_REPORT10_SIZE, 'TD report body');
  const F = TD_REPORT_FIELDS;
  const f = ([at, n]: readonly [number, number]) => raw.subarray(at, at + n);
  const body: TdReportBody = {
    teeTcbSvn: f(F.teeTcbSvn),
    mrSeam: f(F.mrSeam),
    mrSignerSeam: f(F.mrSignerSeam),
    seamAttributes: f(F.seamAttributes),
    tdAttributes: f(F.tdAttributes),
    xfam: f(F.xfam),
    mrTd: f(F.mrTd),
    mrConfigId: f(F.mrConfigId),
    mrOwner: f(F.mrOwner),
    mrOwnerConfig: f(F.mrOwnerConfig),
    rtmr0: f(F.rtmr0),
    rtmr1: f(F.rtmr1),
    rtmr2: f(F.rtmr2),
    rtmr3: f(F.rtmr3),
    reportData: f(F.reportData),
  };
  if (bodyType === 3) {
    body.teeTcbSvn2 = f(F.teeTcbSvn2);
    body.mrServiceTd = f(F.mrServiceTd);
  }
  return body;
}

function readQeReport(r: Reader): QeReport {
  const raw = r.bytes(QE_REPORT_SIZE, 'QE report');
  const u16 = (off: number) => raw[off]! | (raw[off + 1]! << 8);
  return {
    raw,
    cpuSvn: raw.subarray(0, 16),
    miscSelect: raw.subarray(16, 20),
    attributes: raw.subarray(48, 64),
    mrEnclave: raw.subarray(64, 96),
    mrSigner: raw.subarray(128, 160),
    isvProdId: u16(256),
    isvSvn: u16(258),
    reportData: raw.subarray(320, 384),
  };
}

/**
 * Splits the PEM PCK chain. Intel's quoting library often ends it with one NUL; besides that only
 * whitespace may surround the three CERTIFICATE blocks, so no unauthenticated text rides along.
 */
export function splitPckChain(pemBytes: Uint8Array): Uint8Array[] {
  let end = pemBytes.length;
  while (end > 0 && pemBytes[end - 1] === 0) end--;
  const text = Buffer.from(pemBytes.subarray(0, end)).toString('latin1');
  if (!/^[\x09\x0a\x0d\x20-\x7e]*$/.test(text)) throw malformed('PCK chain is not PEM text');
  const rest = text.replace(/-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]*?-----END CERTIFICATE-----/g, '');
  if (rest.trim() !== '') throw malformed('PCK chain holds text outside its certificates');
  const ders = pemToDer(text);
  if (ders.length !== 3)
    throw malformed(`PCK chain has ${ders.length} certificates (expected PCK, intermediate CA, root CA)`);
  return ders;
}

/**
 * Parses a TDX quote v4 or v5. Throws ERR_EVIDENCE_MALFORMED for anything it does not accept.
 * `splitChain` reads the PEM PCK chain: a Verifier passes one that remembers chains it has split
 * (tdx/verify.ts); whatever it returns must be the caller's to change.
 */
export function parseTdxQuote(
  bytes: Uint8Array,
  splitChain: (pem: Uint8Array) => Uint8Array[] = splitPckChain,
): TdxQuote {
  if (!(bytes instanceof Uint8Array)) throw malformed('input is not a Uint8Array');
  const r = new Reader(bytes, 0, bytes.length);
  const version = r.u16('version');
  const attestationKeyType = r.u16('attestation key type');
  const teeType = r.u32('TEE type');
  const reserved = r.bytes(4, 'header reserved bytes');
  const qeVendorId = r.bytes(16, 'QE vendor ID');
  const userData = r.bytes(20, 'user data');
  if (version !== 4 && version !== 5) throw malformed(`unsupported quote version ${version}`);
  if (attestationKeyType !== ATT_KEY_TYPE_ECDSA_P256)
    throw malformed(`unsupported attestation key type ${attestationKeyType}`);
  if (teeType !== TDX_TEE_TYPE) throw malformed(`TEE type 0x${teeType.toString(16)} is not TDX (0x81)`);
  if (!equalBytes(qeVendorId, INTEL_QE_VENDOR_ID_BYTES))
    throw malformed(`QE vendor ID ${bytesToHex(qeVendorId)} is not Intel's`);

  let bodyType: 2 | 3 = 2;
  if (version === 5) {
    const type = r.u16('body type');
    const size = r.u32('body size');
    if (type === 2 && size === TD_REPORT10_SIZE) bodyType = 2;
    else if (type === 3 && size === TD_REPORT15_SIZE) bodyType = 3;
    else
      throw malformed(`unsupported v5 body type ${type} of size ${size} (TD report 1.0: 2/584, 1.5: 3/648)`);
  }
  const body = readBody(r, bodyType);
  const signedData = bytes.subarray(0, r.pos);

  const sigDataLen = r.u32('signature data length');
  const sigEnd = r.pos + sigDataLen;
  if (sigEnd > bytes.length)
    throw malformed(`signature data length ${sigDataLen} exceeds the ${bytes.length - r.pos} bytes left`);
  const s = new Reader(bytes, r.pos, sigEnd);
  const signature = s.bytes(64, 'quote signature');
  const attestationKey = s.bytes(64, 'attestation key');
  const certType = s.u16('certification data type');
  if (certType !== CERT_TYPE_QE_REPORT)
    throw malformed(`certification data type ${certType} (expected 6, QE report certification data)`);
  const certSize = s.u32('certification data size');
  if (s.pos + certSize !== sigEnd)
    throw malformed(`certification data size ${certSize} disagrees with the signature data length`);
  const qeReport = readQeReport(s);
  const qeReportSignature = s.bytes(64, 'QE report signature');
  const authSize = s.u16('QE authentication data size');
  const qeAuthData = s.bytes(authSize, 'QE authentication data');
  const innerType = s.u16('inner certification data type');
  if (innerType !== CERT_TYPE_PCK_CHAIN)
    throw malformed(`inner certification data type ${innerType} (expected 5, PCK certificate chain)`);
  const innerSize = s.u32('PCK chain size');
  if (s.pos + innerSize !== sigEnd)
    throw malformed(`PCK chain size ${innerSize} disagrees with the certification data size`);
  if (innerSize > MAX_PCK_CHAIN_SIZE) throw malformed(`PCK chain of ${innerSize} bytes is too large`);
  const pckChain = splitChain(s.bytes(innerSize, 'PCK chain'));

  return {
    header: { version, attestationKeyType, teeType, reserved, qeVendorId, userData },
    bodyType,
    body,
    signedData,
    signature,
    attestationKey,
    qeReport,
    qeReportSignature,
    qeAuthData,
    pckChain,
    size: sigEnd,
  };
}
