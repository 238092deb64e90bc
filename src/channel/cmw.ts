/**
 * Evidence on the wire: a CMW collection in JSON form (docs/protocol.md §6), mapped to and from
 * the EvidenceInput the verifiers take. Decoding is strict: the labels, media types and their
 * pairings are fixed, base64url is canonical and unpadded, and anything else is refused.
 */
import { AttestationError } from '../errors.js';
import { policyFormats } from '../evidence/appraise.js';
import { base64url, fromBase64url } from '../evidence/bytes.js';
import { MAX_KEPT_CHAIN_BASE64, type RecentTexts } from '../evidence/challenger.js';
import { FORMATS, formatNamed, formatOfMediaType } from '../evidence/formats.js';
import { MAX_LAUNCH_ENDORSEMENT_SIZE } from '../evidence/gce/launch.js';
import { type Policy, parsePolicy } from '../evidence/policy.js';
import { MAX_CHAIN_SIZE, MAX_VEK_SIZE } from '../evidence/snp/verify.js';
import type { PcrValues } from '../evidence/tpm/quote.js';
import type { EvidenceFormat, EvidenceInput, ProviderFormat } from '../evidence/types.js';
import { detectFormat } from '../evidence/verify.js';
import { derToPem, toDerList } from '../evidence/x509/pem.js';
import { type BatchPath, decodeBatchPath, MAX_PATH_RECORD_SIZE, MERKLE_PATH_MEDIA_TYPE } from './batch.js';

export const MediaType = {
  SNP_REPORT: formatNamed('sev-snp').mediaType,
  TDX_QUOTE: formatNamed('tdx').mediaType,
  PKIX_CERT: 'application/pkix-cert',
  PEM_CHAIN: 'application/pem-certificate-chain',
  JSON: 'application/json',
  /** A TDX CC event log area (docs/protocol.md §6). */
  CCEL: 'application/vnd.attested-channel.ccel',
  /** The ACPI CCEL table. */
  CCEL_TABLE: 'application/vnd.attested-channel.ccel-table',
  /** A TCG PC Client event log (binary_bios_measurements). */
  TPM_EVENT_LOG: 'application/vnd.attested-channel.tpm-event-log',
  /** TPMS_ATTEST bytes of a TPM2_Quote. */
  TPM_QUOTE: 'application/vnd.attested-channel.tpm-quote',
  /** A marshalled TPMT_SIGNATURE. */
  TPM_SIGNATURE: 'application/vnd.attested-channel.tpm-signature',
  /** A marshalled TPMT_PUBLIC. */
  TPM_PUBLIC: 'application/vnd.attested-channel.tpm-public',
  /** A serialized Google VMLaunchEndorsement (docs/protocol.md §6). */
  GCE_LAUNCH_ENDORSEMENT: 'application/vnd.attested-channel.gce-launch-endorsement',
  /** An Azure HCL report (vTPM NV 0x01400001), either hardware: docs/protocol.md §6.1. */
  AZURE_HCL_REPORT: 'application/vnd.microsoft.azure.hcl-report',
} as const;

/** Media types a challenger lists in REQUEST.accept: those of the report record, from the format table (once each). */
export const REPORT_MEDIA_TYPES: readonly string[] = Object.freeze([
  ...new Set(FORMATS.map((f) => f.mediaType)),
]);

/**
 * The report media types a challenger lists in REQUEST.accept: those of the formats its policy
 * lets in (policyFormats: the formats it names, or both when it names none). A policy that does
 * not parse lists both: verifyEvidence() then refuses whatever comes with ERR_POLICY_INVALID.
 */
export function acceptedMediaTypes(policy: unknown): readonly string[] {
  let parsed: Policy;
  try {
    parsed = parsePolicy(policy);
  } catch {
    return REPORT_MEDIA_TYPES;
  }
  // Both Azure formats share the HCL report's media type: listed once.
  return [...new Set(policyFormats(parsed).map(mediaTypeOf))];
}

export function mediaTypeOf(format: ProviderFormat): string {
  // An Azure vTPM provider says 'azure': both Azure formats share the HCL report's media type.
  return formatNamed(format === 'azure' ? 'azure-sev-snp' : format).mediaType;
}

const SNP_LIKE: readonly EvidenceFormat[] = ['sev-snp', 'azure-sev-snp'];
const TDX_LIKE: readonly EvidenceFormat[] = ['tdx', 'azure-tdx'];
const AZURE: readonly EvidenceFormat[] = ['azure-sev-snp', 'azure-tdx'];

/** Which label may carry which media type, for which report formats. */
const LABELS: Record<string, { mediaType: string; formats?: readonly EvidenceFormat[] }> = {
  vek: { mediaType: MediaType.PKIX_CERT, formats: SNP_LIKE },
  chain: { mediaType: MediaType.PEM_CHAIN, formats: SNP_LIKE },
  collateral: { mediaType: MediaType.JSON, formats: TDX_LIKE },
  'tpm-quote': { mediaType: MediaType.TPM_QUOTE, formats: AZURE },
  'tpm-signature': { mediaType: MediaType.TPM_SIGNATURE, formats: AZURE },
  pcrs: { mediaType: MediaType.JSON, formats: AZURE },
  'td-quote': { mediaType: MediaType.TDX_QUOTE, formats: ['azure-tdx'] },
  // Measured boot: a TDX CCEL; Google Cloud's vTPM beside any report (no formats).
  ccel: { mediaType: MediaType.CCEL, formats: ['tdx'] },
  'ccel-table': { mediaType: MediaType.CCEL_TABLE, formats: ['tdx'] },
  'vtpm-ak-cert': { mediaType: MediaType.PKIX_CERT },
  'vtpm-ak-public': { mediaType: MediaType.TPM_PUBLIC },
  'vtpm-quote': { mediaType: MediaType.TPM_QUOTE },
  'vtpm-signature': { mediaType: MediaType.TPM_SIGNATURE },
  'vtpm-pcrs': { mediaType: MediaType.JSON },
  'vtpm-event-log': { mediaType: MediaType.TPM_EVENT_LOG },
  // Google's launch endorsement of the firmware, beside a raw report.
  'launch-endorsement': { mediaType: MediaType.GCE_LAUNCH_ENDORSEMENT, formats: ['sev-snp', 'tdx'] },
};

/**
 * Caps on the Azure records, refused before they are decoded. A TPMS_ATTEST is at most a few
 * hundred bytes (its TPM2B fields are bounded, attest.ts) and a TPMT_SIGNATURE at most an RSA-4096
 * signature; 24 PCRs in four banks are under 10 KB of JSON; a TD quote with its PCK chain ~ 6 KB.
 */
export const MAX_TPM_QUOTE_SIZE = 4096;
export const MAX_TPM_SIGNATURE_SIZE = 1024;
export const MAX_PCRS_SIZE = 64 * 1024;
export const MAX_TD_QUOTE_SIZE = 256 * 1024;

/** Caps on the measured-boot records, checked before decoding (eventlog/parse.ts MAX_EVENT_LOG_SIZE). */
const BOOT_RECORD_LIMITS: Record<string, number> = {
  ccel: 4 * 1024 * 1024,
  'ccel-table': 4096,
  'vtpm-ak-cert': MAX_VEK_SIZE,
  'vtpm-ak-public': 4096,
  'vtpm-quote': 4096,
  'vtpm-signature': 4096,
  'vtpm-pcrs': 65536,
  'vtpm-event-log': 4 * 1024 * 1024,
};

export type CmwRecord = [string, string];
export type CmwCollection = Record<string, CmwRecord>;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function malformed(message: string, details?: Record<string, unknown>): AttestationError {
  return new AttestationError('ERR_EVIDENCE_MALFORMED', `CMW: ${message}`, details ? { details } : {});
}

/** The chain as one canonical PEM text (whatever form the provider used), base64url. */
function chainValue(chain: NonNullable<EvidenceInput['chain']>): string {
  const pem = toDerList(chain, 'ERR_PROVIDER_FAILED')
    .map((der) => derToPem(der))
    .join('');
  return base64url(Buffer.from(pem, 'utf8'));
}

/** PCR values as pcrs.json text: `{"sha256": {"0": "<hex>", …}}` (bytes become lowercase hex). */
function pcrsText(pcrs: PcrValues): string {
  const out: Record<string, Record<string, string>> = {};
  for (const [bank, values] of Object.entries(pcrs ?? {})) {
    const hexes: Record<string, string> = {};
    for (const [index, v] of Object.entries(values ?? {}))
      hexes[index] = typeof v === 'string' ? v.toLowerCase() : Buffer.from(v).toString('hex');
    out[bank] = hexes;
  }
  return JSON.stringify(out);
}

function encodeAzure(input: EvidenceInput, format: EvidenceFormat, out: CmwCollection): void {
  const tpm = input.tpm;
  if (
    !(tpm?.quote instanceof Uint8Array) ||
    !(tpm.signature instanceof Uint8Array) ||
    typeof tpm.pcrs !== 'object'
  )
    throw new AttestationError(
      'ERR_PROVIDER_FAILED',
      'the Azure evidence has no TPM quote, signature and PCRs',
    );
  if (format === 'azure-sev-snp') {
    if (input.vek !== undefined) out['vek'] = [MediaType.PKIX_CERT, base64url(input.vek)];
    if (input.chain !== undefined) out['chain'] = [MediaType.PEM_CHAIN, chainValue(input.chain)];
  } else {
    if (!(input.tdQuote instanceof Uint8Array))
      throw new AttestationError('ERR_PROVIDER_FAILED', 'the Azure TDX evidence has no TD quote');
    out['td-quote'] = [MediaType.TDX_QUOTE, base64url(input.tdQuote)];
    if (input.collateral !== undefined) out['collateral'] = collateralRecord(input.collateral);
  }
  out['tpm-quote'] = [MediaType.TPM_QUOTE, base64url(tpm.quote)];
  out['tpm-signature'] = [MediaType.TPM_SIGNATURE, base64url(tpm.signature)];
  out['pcrs'] = [MediaType.JSON, base64url(Buffer.from(pcrsText(tpm.pcrs), 'utf8'))];
}

function collateralRecord(collateral: NonNullable<EvidenceInput['collateral']>): CmwRecord {
  const text = typeof collateral === 'string' ? collateral : JSON.stringify(collateral);
  return [MediaType.JSON, base64url(Buffer.from(text, 'utf8'))];
}

/**
 * Keeps the encoding of the last chain it encoded: a platform hands out the same chain with every
 * report, and re-encoding it costs ~60 µs. An AttestedServer owns one for all its connections
 * (its provider attests each of them); elsewhere each chain is encoded afresh.
 */
export class ChainEncoder {
  #input: string | undefined;
  #value = '';

  encode(chain: NonNullable<EvidenceInput['chain']>): string {
    if (typeof chain === 'string' && chain === this.#input) return this.#value;
    const value = chainValue(chain);
    // Only strings are kept: they cannot change, unlike bytes or an array the provider may reuse.
    if (typeof chain === 'string') {
      this.#input = chain;
      this.#value = value;
    }
    return value;
  }
}

/**
 * EvidenceInput → CMW collection. The report's media type comes from the provider's format;
 * `chains`, when given, remembers the chain's encoding for the next call.
 */
export function encodeCmw(
  input: EvidenceInput,
  declared: ProviderFormat,
  chains?: ChainEncoder,
): CmwCollection {
  if (!(input?.report instanceof Uint8Array))
    throw new AttestationError('ERR_PROVIDER_FAILED', 'the evidence provider returned no report');
  const detected = detectFormat(input.report);
  // An Azure vTPM provider declares 'azure': the HCL report it read names the hardware.
  const format =
    declared === 'azure' && (detected === 'azure-sev-snp' || detected === 'azure-tdx') ? detected : declared;
  if (detected !== format)
    throw new AttestationError(
      'ERR_PROVIDER_FAILED',
      `the evidence provider declared ${format} but produced ${detected ?? 'unrecognised'} evidence`,
    );
  const out: CmwCollection = { report: [mediaTypeOf(format), base64url(input.report)] };
  if (format === 'sev-snp') {
    if (input.vek !== undefined) out['vek'] = [MediaType.PKIX_CERT, base64url(input.vek)];
    if (input.chain !== undefined)
      out['chain'] = [MediaType.PEM_CHAIN, chains ? chains.encode(input.chain) : chainValue(input.chain)];
  } else if (format === 'tdx') {
    if (input.collateral !== undefined) out['collateral'] = collateralRecord(input.collateral);
  } else encodeAzure(input, format, out);
  encodeBootRecords(input, format, out);
  if (input.launchEndorsement !== undefined) {
    if (format !== 'sev-snp' && format !== 'tdx')
      throw new AttestationError(
        'ERR_PROVIDER_FAILED',
        'the evidence provider returned a launch endorsement with evidence that is not a raw SEV-SNP report or TDX quote',
      );
    out['launch-endorsement'] = [MediaType.GCE_LAUNCH_ENDORSEMENT, base64url(input.launchEndorsement)];
  }
  return out;
}

/** The CCEL (TDX) and Google's vTPM records (issue 13). */
function encodeBootRecords(input: EvidenceInput, format: EvidenceFormat, out: CmwCollection): void {
  if (input.eventLog !== undefined) {
    if (format !== 'tdx' || !input.eventLog.ccel)
      throw new AttestationError(
        'ERR_PROVIDER_FAILED',
        'the evidence provider returned an event log the report cannot vouch for (only a TDX CCEL goes with the report; a TPM log goes with its quote in `vtpm`)',
      );
    out['ccel'] = [MediaType.CCEL, base64url(input.eventLog.log)];
    if (input.eventLog.ccelTable)
      out['ccel-table'] = [MediaType.CCEL_TABLE, base64url(input.eventLog.ccelTable)];
  }
  const v = input.vtpm;
  if (v === undefined) return;
  const akCert = typeof v.akCert === 'string' ? toDerList(v.akCert, 'ERR_PROVIDER_FAILED')[0] : v.akCert;
  if (!akCert) throw new AttestationError('ERR_PROVIDER_FAILED', 'the vTPM evidence has no AK certificate');
  out['vtpm-ak-cert'] = [MediaType.PKIX_CERT, base64url(akCert)];
  if (v.akPublic) out['vtpm-ak-public'] = [MediaType.TPM_PUBLIC, base64url(v.akPublic)];
  out['vtpm-quote'] = [MediaType.TPM_QUOTE, base64url(v.tpm.quote)];
  out['vtpm-signature'] = [MediaType.TPM_SIGNATURE, base64url(v.tpm.signature)];
  out['vtpm-pcrs'] = [MediaType.JSON, base64url(Buffer.from(JSON.stringify(v.tpm.pcrs), 'utf8'))];
  if (v.eventLog) out['vtpm-event-log'] = [MediaType.TPM_EVENT_LOG, base64url(v.eventLog.log)];
}

/** Decodes one measured-boot record into `parts`; false when `label` is not one. */
function decodeBootRecord(label: string, b64: string, parts: Record<string, Uint8Array>): boolean {
  const limit = Object.hasOwn(BOOT_RECORD_LIMITS, label) ? BOOT_RECORD_LIMITS[label] : undefined;
  if (limit === undefined) return false;
  parts[label] = bytesOf(label, capped(label, b64, limit));
  return true;
}

/** The EvidenceInput members of the measured-boot records: all vTPM records or none. */
function bootInput(parts: Record<string, Uint8Array>, input: EvidenceInput): void {
  if (parts['ccel-table'] && !parts['ccel']) throw malformed('"ccel-table" without "ccel"');
  if (parts['ccel'])
    input.eventLog = {
      log: parts['ccel'],
      ccel: true,
      ...(parts['ccel-table'] ? { ccelTable: parts['ccel-table'] } : {}),
    };
  const vtpm = Object.keys(parts).filter((k) => k.startsWith('vtpm-'));
  if (vtpm.length === 0) return;
  for (const need of ['vtpm-ak-cert', 'vtpm-quote', 'vtpm-signature', 'vtpm-pcrs'])
    if (!parts[need]) throw malformed(`vTPM evidence without "${need}"`);
  let pcrs: unknown;
  try {
    pcrs = JSON.parse(text('vtpm-pcrs', parts['vtpm-pcrs']!));
  } catch (err) {
    if (err instanceof AttestationError) throw err;
    throw malformed('"vtpm-pcrs" is not JSON');
  }
  if (!isPlainObject(pcrs)) throw malformed('"vtpm-pcrs" is not a JSON object');
  input.vtpm = {
    akCert: derCertificate(parts['vtpm-ak-cert']!, 'vtpm-ak-cert'),
    ...(parts['vtpm-ak-public'] ? { akPublic: parts['vtpm-ak-public'] } : {}),
    tpm: { quote: parts['vtpm-quote']!, signature: parts['vtpm-signature']!, pcrs: pcrs as never },
    ...(parts['vtpm-event-log'] ? { eventLog: { log: parts['vtpm-event-log'] } } : {}),
  };
}

export interface DecodedCmw {
  input: EvidenceInput;
  format: EvidenceFormat;
  mediaType: string;
  /** The `batch` record (docs/protocol.md §5.1), when the attester answered with a batched report. */
  batch?: BatchPath;
}

/** The `batch` record of a collection whose challenger asked for batches. */
function batchRecord(value: unknown): BatchPath {
  const r = record('batch', value);
  if (r.mediaType !== MERKLE_PATH_MEDIA_TYPE)
    throw malformed(`"batch" must be ${MERKLE_PATH_MEDIA_TYPE}, not ${r.mediaType}`);
  return decodeBatchPath(bytesOf('batch', capped('batch', r.b64, MAX_PATH_RECORD_SIZE)));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function record(label: string, value: unknown): { mediaType: string; b64: string } {
  // A CMW JSON record is [type, value] or [type, value, indicator]; the indicator is ignored.
  if (!Array.isArray(value) || value.length < 2 || value.length > 3)
    throw malformed(`"${label}" is not a [mediaType, base64url] record`);
  const [mediaType, b64, ind] = value as unknown[];
  if (typeof mediaType !== 'string') throw malformed(`"${label}" media type is not a string`);
  if (value.length === 3 && !(Number.isInteger(ind) && (ind as number) >= 0 && (ind as number) <= 31))
    throw malformed(`"${label}" indicator must be an integer 0..31`);
  if (typeof b64 !== 'string') throw malformed(`"${label}" value is not canonical unpadded base64url`);
  return { mediaType, b64 };
}

function bytesOf(label: string, b64: string): Uint8Array {
  const bytes = fromBase64url(b64);
  if (!bytes) throw malformed(`"${label}" value is not canonical unpadded base64url`);
  return bytes;
}

/**
 * A chain's text: from `chains` (the Verifier's channel.chains, challenger.ts) when those exact
 * base64url characters were decoded before, else decoded (~15 µs for a 4.5 KB chain: the strict
 * decode, its re-encoding and the UTF-8 check). The key is the whole text itself, never a digest
 * or a prefix: Map compares it in full, so a hit is the decoding of exactly these characters.
 * Only valid decodings are kept; a longer text is decoded each time (MAX_KEPT_CHAIN_BASE64).
 */
function chainText(b64: string, chains: RecentTexts | undefined): string {
  const kept = chains?.get(b64);
  if (kept !== undefined) return kept;
  const chain = text('chain', bytesOf('chain', b64));
  if (chains !== undefined && b64.length <= MAX_KEPT_CHAIN_BASE64) chains.set(b64, chain);
  return chain;
}

/** The "pcrs" record: a JSON object (its banks and values are checked against the quote later). */
function pcrsOf(json: string): PcrValues {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw malformed('"pcrs" is not JSON');
  }
  if (!isPlainObject(value) || !Object.values(value).every(isPlainObject))
    throw malformed('"pcrs" is not an object of PCR banks');
  return value as PcrValues;
}

function text(label: string, bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw malformed(`"${label}" is not UTF-8 text`);
  }
}

/** The base64url text of a record whose decoded size is capped: refused before it is decoded. */
function capped(label: string, b64: string, max: number): string {
  if (b64.length > Math.ceil((max * 4) / 3))
    throw malformed(`"${label}" is over the limit of ${max} bytes`, { label, limit: max });
  return b64;
}

/**
 * An application/pkix-cert record is one DER certificate (RFC 2585 §4.1): a SEQUENCE whose
 * definite length covers the bytes exactly. PEM, or anything else the verifier would have to
 * search through, is refused here.
 */
function derCertificate(bytes: Uint8Array, label = 'vek'): Uint8Array {
  let length = -1;
  if (bytes.length >= 2 && bytes[0] === 0x30) {
    const first = bytes[1]!;
    if (first < 0x80) length = 2 + first;
    else if (first >= 0x81 && first <= 0x84 && bytes.length >= 2 + (first & 0x7f)) {
      let n = 0;
      for (let i = 0; i < (first & 0x7f); i++) n = n * 256 + bytes[2 + i]!;
      length = 2 + (first & 0x7f) + n;
    }
  }
  if (length !== bytes.length)
    throw malformed(`"${label}" is not one DER certificate (application/pkix-cert)`);
  return bytes;
}

/**
 * CMW collection → EvidenceInput. `accept` is the list of report media types the challenger
 * offered; a report of an unknown type is ERR_UNSUPPORTED_EVIDENCE, one of a known format that was
 * not offered ERR_EVIDENCE_POLICY (details.field "format"). A `batch` record is taken only when
 * the challenger's REQUEST said `"batch": true` (`options.batch`); otherwise it is an unknown label.
 */
export function decodeCmw(
  value: unknown,
  accept: readonly string[],
  options: { batch?: boolean; chains?: RecentTexts | undefined } = {},
): DecodedCmw {
  if (!isPlainObject(value)) throw malformed('the collection is not a JSON object');
  if (!Object.hasOwn(value, 'report')) throw malformed('the "report" record is missing');
  const reportRecord = record('report', value['report']);
  const report = { mediaType: reportRecord.mediaType, bytes: bytesOf('report', reportRecord.b64) };
  if (!REPORT_MEDIA_TYPES.includes(report.mediaType))
    throw new AttestationError(
      'ERR_UNSUPPORTED_EVIDENCE',
      `report media type "${report.mediaType}" is not known`,
    );
  const reportFormat = formatOfMediaType(report.mediaType)!;
  // A known format the challenger did not offer is one its policy does not name (cmw.ts
  // acceptedMediaTypes): refused as verifyEvidence() refuses it, by the policy, field "format".
  if (!accept.includes(report.mediaType))
    throw new AttestationError(
      'ERR_EVIDENCE_POLICY',
      `policy: ${reportFormat.name} evidence was not offered (the policy names ${accept.map((m) => formatOfMediaType(m)?.name ?? m).join(', ') || 'no format'})`,
      {
        details: {
          field: 'format',
          format: reportFormat.name,
          allowed: accept.map((m) => formatOfMediaType(m)?.name ?? m),
        },
      },
    );
  const detected = detectFormat(report.bytes);
  const format: EvidenceFormat =
    report.mediaType === MediaType.SNP_REPORT
      ? 'sev-snp'
      : report.mediaType === MediaType.TDX_QUOTE
        ? 'tdx'
        : detected === 'azure-tdx'
          ? 'azure-tdx'
          : 'azure-sev-snp';
  if (detected !== format)
    throw malformed(
      `the report bytes are not ${format === 'sev-snp' ? 'an SNP report' : format === 'tdx' ? 'a TDX quote' : 'an Azure HCL report'}`,
    );
  const input: EvidenceInput = { report: report.bytes };
  const tpm: Partial<NonNullable<EvidenceInput['tpm']>> = {};
  const bootParts: Record<string, Uint8Array> = {};
  let batch: BatchPath | undefined;
  for (const label of Object.keys(value)) {
    if (label === 'report') continue;
    if (label === 'batch') {
      if (options.batch !== true)
        throw malformed('a "batch" record, though this side did not ask for batches');
      batch = batchRecord(value[label]);
      continue;
    }
    const spec = Object.hasOwn(LABELS, label) ? LABELS[label] : undefined;
    if (!spec) throw malformed(`unknown label "${label}"`);
    const r = record(label, value[label]);
    if (r.mediaType !== spec.mediaType)
      throw malformed(`"${label}" must be ${spec.mediaType}, not ${r.mediaType}`);
    if (spec.formats !== undefined && !spec.formats.includes(format))
      throw malformed(`"${label}" does not belong with ${report.mediaType} (${format})`);
    if (decodeBootRecord(label, r.b64, bootParts)) continue;
    if (label === 'vek') input.vek = derCertificate(bytesOf(label, capped(label, r.b64, MAX_VEK_SIZE)));
    else if (label === 'chain') input.chain = chainText(capped(label, r.b64, MAX_CHAIN_SIZE), options.chains);
    else if (label === 'collateral') input.collateral = text(label, bytesOf(label, r.b64));
    else if (label === 'tpm-quote') tpm.quote = bytesOf(label, capped(label, r.b64, MAX_TPM_QUOTE_SIZE));
    else if (label === 'tpm-signature')
      tpm.signature = bytesOf(label, capped(label, r.b64, MAX_TPM_SIGNATURE_SIZE));
    else if (label === 'pcrs')
      tpm.pcrs = pcrsOf(text(label, bytesOf(label, capped(label, r.b64, MAX_PCRS_SIZE))));
    else if (label === 'launch-endorsement')
      input.launchEndorsement = bytesOf(label, capped(label, r.b64, MAX_LAUNCH_ENDORSEMENT_SIZE));
    else input.tdQuote = bytesOf(label, capped(label, r.b64, MAX_TD_QUOTE_SIZE));
  }
  if (format === 'azure-sev-snp' || format === 'azure-tdx') {
    if (!tpm.quote || !tpm.signature || !tpm.pcrs)
      throw malformed('Azure evidence needs the "tpm-quote", "tpm-signature" and "pcrs" records');
    if (format === 'azure-tdx' && !input.tdQuote)
      throw malformed('Azure TDX evidence needs the "td-quote" record');
    input.tpm = { quote: tpm.quote, signature: tpm.signature, pcrs: tpm.pcrs };
  }
  bootInput(bootParts, input);
  return { input, format, mediaType: report.mediaType, ...(batch ? { batch } : {}) };
}
