/**
 * The Azure entries of the format table (formats.ts): an HCL report (vTPM NV 0x01400001) as the
 * report record, SEV-SNP or TDX inside, with the vTPM's quote and the hardware endorsement as
 * further EvidenceInput members (tpm, vek/chain, tdQuote/collateral). The hardware evidence is
 * verified by the same Verifier's SEV-SNP and TDX verifiers (anchors, clients, caches).
 */
import { AttestationError } from '../../errors.js';
import type { EvidenceFormatSpec, FormatCall, FormatSettings, FormatVerifier } from '../format.js';
import { Lru } from '../lru.js';
import type { EvidenceFormat, EvidenceInput } from '../types.js';
import { hclFormatOf, parseHclReport } from './hcl.js';
import { type AkCache, type RuntimeClaimsCache, verifyAzure } from './verify.js';

/**
 * Sizes of a Verifier's Azure caches (per Azure format). runtimeClaims: one entry per distinct
 * runtime claims JSON, i.e. per VM (its AK) and user-data value: the parsed JSON and the AK
 * KeyObject. Real claims are 2-3 KiB; over MAX_KEPT_CLAIMS_BYTES they are verified but not kept,
 * so the cache stays within a few MiB of VERIFIER_MEMORY_BOUND_BYTES. aks: one entry per VM (its
 * HCLAkPub), the imported key with its SPKI and digest, about 1.5 KiB with the key's own text.
 */
export const AZURE_CACHE_SIZES = Object.freeze({ runtimeClaims: 64, aks: 256 });

export const AZURE_HCL_MEDIA_TYPE = 'application/vnd.microsoft.azure.hcl-report';

function createVerifier(settings: FormatSettings): FormatVerifier {
  // The Verifier's own SEV-SNP and TDX verifiers (and caches), looked up when first needed.
  const hardware = {
    'sev-snp': (input: EvidenceInput, call: FormatCall) =>
      settings.formatVerifier('sev-snp').verify(input, call),
    tdx: (input: EvidenceInput, call: FormatCall) => settings.formatVerifier('tdx').verify(input, call),
  };
  const runtimeClaims: RuntimeClaimsCache = new Lru(AZURE_CACHE_SIZES.runtimeClaims);
  const aks: AkCache = new Lru(AZURE_CACHE_SIZES.aks);
  return {
    verify(input, call) {
      if (typeof input.tpm !== 'object' || input.tpm === null)
        throw new AttestationError(
          'ERR_EVIDENCE_MALFORMED',
          'Azure evidence (an HCL report) needs its TPM quote: input.tpm { quote, signature, pcrs }',
        );
      return verifyAzure({ ...input, tpm: input.tpm }, { ...call, hardware, runtimeClaims, aks });
    },
    caches: { runtimeClaims, aks },
  };
}

function entry(name: 'azure-sev-snp' | 'azure-tdx'): EvidenceFormatSpec {
  return Object.freeze({
    name: name as EvidenceFormat,
    policySection: 'azure',
    mediaType: AZURE_HCL_MEDIA_TYPE,
    // Known by a header ("HCLA"): before SNP, which is known only by its size.
    detectOrder: 10,
    records: Object.freeze([]),
    detect: (report: Uint8Array) => hclFormatOf(report) === name,
    // REPORT_DATA is the paravisor's hash of its runtime claims: the binder is in the TPM quote.
    reportDataOf: () => undefined,
    view: (report: Uint8Array) => {
      const { hardwareReport: _hw, claimsBytes: _c, ...hcl } = parseHclReport(report);
      return { format: name, hcl };
    },
    createVerifier,
  });
}

export const AZURE_SNP_FORMAT: EvidenceFormatSpec = entry('azure-sev-snp');
export const AZURE_TDX_FORMAT: EvidenceFormatSpec = entry('azure-tdx');
