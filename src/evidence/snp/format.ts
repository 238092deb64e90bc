/**
 * The SEV-SNP entry of the format table (formats.ts): an ATTESTATION_REPORT of 1184 bytes
 * (SEV-SNP firmware ABI, Table 23), with the VCEK or VLEK (`vek`) and its ASK/ASVK (+ARK) chain
 * (`chain`) as further records.
 */
import { AttestationError } from '../../errors.js';
import type { EvidenceFormatSpec, FormatSettings, FormatVerifier } from '../format.js';
import { Lru } from '../lru.js';
import { snpReportFields } from './appraise.js';
import { parseAmdAnchors } from './certs.js';
import { kdsClientFor } from './kds.js';
import { parseSnpReport, reportDataOf, SNP_REPORT_LENGTH } from './report.js';
import { type SnpContext, verifySnp } from './verify.js';

export const SNP_MEDIA_TYPE = 'application/vnd.amd.sev-snp.report';

/**
 * Sizes of the SEV-SNP caches of a Verifier. `chains`: one entry per distinct VEK + chain a
 * platform sends (~8 KB each with the parsed certificates); `crls`: one per product, signer and
 * ARK, a few KB each; `signatures`: one per report whose signature verified (r ‖ s as a string
 * and copies of the SPKI and the 672 signed bytes, ~1.1 KB with the map entry): room for the reports reuse.evidence remembers (128) and the
 * batch reports of the connections in flight.
 */
export const SNP_CACHE_SIZES = Object.freeze({ chains: 256, crls: 16, signatures: 1024 });

function createVerifier(settings: FormatSettings): FormatVerifier {
  let amdArks: SnpContext['amdArks'];
  if (settings.amdArks !== undefined) {
    try {
      amdArks = parseAmdAnchors(settings.amdArks);
    } catch (err) {
      // Reported when SNP evidence needs the anchors, as before: TDX evidence does not.
      if (!(err instanceof AttestationError)) throw err;
      amdArks = err;
    }
  }
  const ctx: SnpContext = {
    ...(amdArks !== undefined ? { amdArks } : {}),
    kds: kdsClientFor(settings.kds),
    offline: settings.offline,
    certs: settings.certs,
    chains: new Lru(SNP_CACHE_SIZES.chains),
    crls: new Lru(SNP_CACHE_SIZES.crls),
    signatures: new Lru(SNP_CACHE_SIZES.signatures),
  };
  return {
    verify: (input, call) => verifySnp(input, call, ctx),
    // kds: the client's memory cache of fetched VCEKs and CRLs (fetch.ts; maxEntries, default 256).
    caches: {
      chains: ctx.chains,
      crls: ctx.crls,
      signatures: ctx.signatures,
      kds: { stats: () => ctx.kds.fetcher.memoryStats() },
    },
  };
}

export const SNP_FORMAT: EvidenceFormatSpec = Object.freeze({
  name: 'sev-snp',
  policySection: 'snp',
  mediaType: SNP_MEDIA_TYPE,
  detectOrder: 100,
  records: Object.freeze([
    { name: 'vek', mediaType: 'application/pkix-cert' },
    { name: 'chain', mediaType: 'application/pem-certificate-chain' },
  ]),
  detect: (report: Uint8Array) => report.length === SNP_REPORT_LENGTH,
  reportDataOf,
  view(report: Uint8Array): Record<string, unknown> {
    const parsed = parseSnpReport(report);
    // A v2 report names no product (the VEK does): the view then has none.
    const { product, ...fields } = snpReportFields(parsed, parsed.product ?? 'Milan');
    return { format: 'sev-snp', ...(parsed.product ? { product } : {}), ...fields };
  },
  createVerifier,
});
