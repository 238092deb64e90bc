/**
 * Claims-shaped fields of a report or quote that was parsed and NOT verified, for
 * `explain --no-verify`: explainClaims(parsedClaims(bytes), { verified: false }) says what the
 * evidence claims about itself. Nothing in them is established; the verdict fields (simulated,
 * revocation, workloadPinned, TDX TCB status) are placeholders explainClaims() does not report
 * when `verified` is false.
 *
 * An Azure HCL report alone (no TPM quote, no TD quote) gives the hardware report's fields (an
 * SEV-SNP report, or the TDREPORT: its FMSPC is in the TD quote only, so `fmspc` is ''), the
 * runtime claims JSON as parsed (REPORT_DATA is not compared with its hash), and a `tpm` with only
 * the HCLAkPub's `akSha256`: no quote, so `extraData` '' and no PCRs.
 */
import { AttestationError } from '../errors.js';
import { isHclReport, parseHclReport, parseRuntimeClaims } from '../evidence/azure/hcl.js';
import { TDREPORT_FIELDS } from '../evidence/azure/verify.js';
import { bytesToHex } from '../evidence/bytes.js';
import { snpClaims } from '../evidence/snp/appraise.js';
import { parseSnpReport } from '../evidence/snp/report.js';
import { decodeTdAttributes, tdxClaims } from '../evidence/tdx/appraise.js';
import { type PckChain, parseSgxExtensions } from '../evidence/tdx/pck.js';
import { parseTdxQuote } from '../evidence/tdx/quote.js';
import { akSha256 } from '../evidence/tpm/quote.js';
import type { AzureClaims, Claims, RevocationStatus, SnpClaims, TdxClaims } from '../evidence/types.js';
import { detectFormat } from '../evidence/verify.js';
import { parseCertificate } from '../evidence/x509/cert.js';

const UNCHECKED: RevocationStatus = Object.freeze({
  checked: false,
  source: 'none',
  crls: [],
  reason: 'not verified',
}) as RevocationStatus;

function snpParsed(report: Uint8Array): SnpClaims {
  const parsed = parseSnpReport(report);
  // A v2 report names no product (no CPUID); its TCBs are decoded with the Milan/Genoa layout.
  const claims = snpClaims(parsed, parsed.product ?? 'Milan', false, UNCHECKED);
  if (!parsed.product) delete (claims as Partial<typeof claims>).product;
  return claims;
}

/** The TDX claims fields a TDREPORT states (Intel TDX module ABI offsets, as azure/verify.ts compares them). */
function tdreportParsed(tdreport: Uint8Array): TdxClaims {
  const fields: Record<string, string> = {};
  for (const [field, off, len] of TDREPORT_FIELDS)
    fields[field] = bytesToHex(tdreport.subarray(off, off + len));
  return {
    ...(fields as unknown as TdxClaims),
    format: 'tdx',
    simulated: false,
    revocation: UNCHECKED,
    workloadPinned: false,
    // No quote, so no quote version: REPORTTYPE.VERSION (TDREPORT byte 2; Intel TDX module ABI,
    // REPORTTYPE_STRUCT: type, subtype, version, reserved) stands in for it.
    version: tdreport[2]!,
    tdAttributes: decodeTdAttributes(tdreport.subarray(512, 520)),
    fmspc: '',
    ppid: '',
    tcbStatus: 'UpToDate',
    advisoryIds: [],
  };
}

/** An HCL report alone: hardware fields, runtime claims, the AK; no quote. */
function hclParsed(report: Uint8Array): AzureClaims {
  const hcl = parseHclReport(report);
  const runtime = parseRuntimeClaims(hcl);
  const common = {
    runtimeClaims: runtime.json,
    runtimeClaimsSha256: runtime.sha256,
    userData: runtime.userData,
    vmConfiguration: runtime.vmConfiguration,
    tpm: {
      extraData: '',
      pcrs: {},
      clock: 0,
      resetCount: 0,
      firmwareVersion: '',
      akSha256: akSha256(runtime.ak),
    },
  };
  return hcl.tee === 'sev-snp'
    ? { ...snpParsed(hcl.hardwareReport), format: 'azure-sev-snp', ...common }
    : { ...tdreportParsed(hcl.hardwareReport), format: 'azure-tdx', ...common };
}

/** Parses an SEV-SNP report, a TDX quote or an Azure HCL report into claims that were not verified. */
export function parsedClaims(report: Uint8Array): Claims {
  if (!(report instanceof Uint8Array))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'parsedClaims: report must be a Uint8Array');
  // The magic decides: a broken HCL report gets the HCL parser's error, not "neither".
  if (isHclReport(report)) return hclParsed(report);
  const format = detectFormat(report);
  if (format === 'sev-snp') return snpParsed(report);
  if (format === 'tdx') {
    const quote = parseTdxQuote(report);
    const [leaf, intermediate, root] = quote.pckChain.map((d) =>
      parseCertificate(d, 'ERR_EVIDENCE_MALFORMED'),
    );
    if (!leaf) throw new AttestationError('ERR_EVIDENCE_MALFORMED', 'the quote carries no PCK certificate');
    const pck = { leaf, intermediate, root, ca: 'platform', sgx: parseSgxExtensions(leaf) } as PckChain;
    return tdxClaims(quote, pck, { status: 'UpToDate', advisoryIds: [] }, UNCHECKED);
  }
  throw new AttestationError(
    'ERR_EVIDENCE_MALFORMED',
    'neither an SEV-SNP report, a TDX quote nor an Azure HCL report',
  );
}
