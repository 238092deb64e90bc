/**
 * The simulated platforms as one object, the shape the public API exports:
 * `simulated.snp()`, `simulated.tdx()`, `simulated.trustAnchors()` and helpers for revocation tests.
 * Nothing here is trusted unless a verifier is handed `simulated.trustAnchors()`.
 */
import type { TrustAnchors } from '../types.js';
import { SIMULATED_AZURE_PCRS, simulatedAzure } from './simulated-azure.js';
import {
  DEFAULT_SNP_MEASUREMENT,
  SNP_PRODUCTS,
  simulatedAmdChain,
  simulatedAmdCrl,
  simulatedArk,
  simulatedSnp,
} from './simulated-snp.js';
import {
  DEFAULT_TDX_MRTD,
  SIMULATED_TDX_PLATFORM,
  simulatedIntelChain,
  simulatedTdx,
  simulatedTdxCollateral,
} from './simulated-tdx.js';

export type { SimulatedAzureOptions, SimulatedAzureProvider } from './simulated-azure.js';
export type { AmdCrlOptions, SimulatedSnpOptions, SimulatedTcb, SnpProduct } from './simulated-snp.js';
export type { SimulatedIntelCert, SimulatedTcbStatus, SimulatedTdxOptions } from './simulated-tdx.js';

/** The roots a verifier needs to accept simulated evidence: the three simulated ARKs and the simulated Intel root. */
function trustAnchors(): Required<TrustAnchors> {
  return {
    amdArks: SNP_PRODUCTS.map((p) => simulatedArk(p).slice()),
    intelRoots: [simulatedIntelChain().root.slice()],
  };
}

export const simulated = {
  /** A simulated SEV-SNP platform (EvidenceProvider, format 'sev-snp'). */
  snp: simulatedSnp,
  /** A simulated TDX platform (EvidenceProvider, format 'tdx'). */
  tdx: simulatedTdx,
  /** A simulated Azure confidential VM: vTPM, HCL report around a simulated SNP or TDX report (format 'azure-sev-snp' / 'azure-tdx'). */
  azure: simulatedAzure,
  trustAnchors,
  /** A CRL signed by a simulated ARK listing the given serials (DER). */
  amdCrl: simulatedAmdCrl,
  /** The simulated ARK, ASK and ASVK of a product (DER). */
  amdChain: simulatedAmdChain,
  /** The simulated Intel root, PCK Platform CA, PCK and TCB Signing certificates (DER). */
  intelChain: simulatedIntelChain,
  /** Collateral for the simulated TDX platform, as `simulated.tdx()` attaches it. */
  tdxCollateral: simulatedTdxCollateral,
  /** Defaults, for policies that should accept (or refuse) the simulated guests. */
  defaults: {
    snpMeasurement: DEFAULT_SNP_MEASUREMENT,
    tdxMrTd: DEFAULT_TDX_MRTD,
    tdxPlatform: SIMULATED_TDX_PLATFORM,
    azurePcrs: SIMULATED_AZURE_PCRS,
  },
} as const;
