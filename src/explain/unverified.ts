/**
 * Claims-shaped fields of a report or quote that was parsed and NOT verified, for
 * `explain --no-verify`: explainClaims(parsedClaims(bytes), { verified: false }) says what the
 * evidence claims about itself. Nothing in them is established; the verdict fields (simulated,
 * revocation, workloadPinned, TDX TCB status) are placeholders explainClaims() does not report
 * when `verified` is false.
 */
import { AttestationError } from '../errors.js';
import { snpClaims } from '../evidence/snp/appraise.js';
import { parseSnpReport } from '../evidence/snp/report.js';
import { tdxClaims } from '../evidence/tdx/appraise.js';
import { type PckChain, parseSgxExtensions } from '../evidence/tdx/pck.js';
import { parseTdxQuote } from '../evidence/tdx/quote.js';
import type { Claims, RevocationStatus } from '../evidence/types.js';
import { detectFormat } from '../evidence/verify.js';
import { parseCertificate } from '../evidence/x509/cert.js';

const UNCHECKED: RevocationStatus = Object.freeze({
  checked: false,
  source: 'none',
  crls: [],
  reason: 'not verified',
}) as RevocationStatus;

/** Parses an SEV-SNP report or TDX quote into claims that were not verified. */
export function parsedClaims(report: Uint8Array): Claims {
  if (!(report instanceof Uint8Array))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'parsedClaims: report must be a Uint8Array');
  const format = detectFormat(report);
  if (format === 'sev-snp') {
    const parsed = parseSnpReport(report);
    // A v2 report names no product (no CPUID); its TCBs are decoded with the Milan/Genoa layout.
    const claims = snpClaims(parsed, parsed.product ?? 'Milan', false, UNCHECKED);
    if (!parsed.product) delete (claims as Partial<typeof claims>).product;
    return claims;
  }
  if (format === 'tdx') {
    const quote = parseTdxQuote(report);
    const [leaf, intermediate, root] = quote.pckChain.map((d) =>
      parseCertificate(d, 'ERR_EVIDENCE_MALFORMED'),
    );
    if (!leaf) throw new AttestationError('ERR_EVIDENCE_MALFORMED', 'the quote carries no PCK certificate');
    const pck = { leaf, intermediate, root, ca: 'platform', sgx: parseSgxExtensions(leaf) } as PckChain;
    return tdxClaims(quote, pck, { status: 'UpToDate', advisoryIds: [] }, UNCHECKED);
  }
  throw new AttestationError('ERR_EVIDENCE_MALFORMED', 'neither an SEV-SNP report nor a TDX quote');
}
