/**
 * The TDX entry of the format table (formats.ts): a quote v4 or v5 with ECDSA P-256 attestation
 * keys (docs/reference/tdx-format.md §1), with the collateral (`collateral`) as a further record.
 */
import { AttestationError } from '../../errors.js';
import { bytesToHex } from '../bytes.js';
import type { EvidenceFormatSpec, FormatSettings, FormatVerifier } from '../format.js';
import { Lru } from '../lru.js';
import { parseCertificate } from '../x509/cert.js';
import { tdxQuoteFields } from './appraise.js';
import { parseSgxExtensions } from './pck.js';
import { pcsClientFor } from './pcs.js';
import { ATT_KEY_TYPE_ECDSA_P256, parseTdxQuote, reportDataOf, TDX_TEE_TYPE } from './quote.js';
import { intelRoots } from './roots.js';
import { type TdxContext, verifyTdx } from './verify.js';

export const TDX_MEDIA_TYPE = 'application/vnd.intel.tdx.quote';

/**
 * Sizes of the TDX caches of a Verifier. `chains`: PCK chains by their PEM text (~12 KB each with
 * the parsed certificates); `collateral`: collateral by its JSON text and verified collateral by
 * its digest (~60 KB each: the text and the parsed TCB info); `keys`: attestation keys with the
 * QE report they were last vouched for by (~1 KB each); `signatures`: quotes whose signature
 * verified (the signature as a string and copies of the attestation key and the signed header and
 * body, ~0.9 KB each with the map entry for a v4 quote).
 */
export const TDX_CACHE_SIZES = Object.freeze({ chains: 128, collateral: 32, keys: 256, signatures: 1024 });

/** A quote starts with u16 version, u16 attestation key type 2 and u32 TEE type 0x81. */
function detect(report: Uint8Array): boolean {
  if (report.length < 8 || report[2] !== ATT_KEY_TYPE_ECDSA_P256 || report[3] !== 0) return false;
  const tee = report[4]! | (report[5]! << 8) | (report[6]! << 16) | (report[7]! << 24);
  return tee === TDX_TEE_TYPE;
}

function createVerifier(settings: FormatSettings): FormatVerifier {
  let roots: TdxContext['roots'];
  try {
    roots = intelRoots(settings.intelRoots === undefined ? undefined : { intelRoots: settings.intelRoots });
  } catch (err) {
    // Reported when TDX evidence needs the roots, as before: SNP evidence does not.
    if (!(err instanceof AttestationError)) throw err;
    roots = err;
  }
  const ctx: TdxContext = {
    roots,
    pcs: pcsClientFor(settings.pcs),
    offline: settings.offline,
    certs: settings.certs,
    chains: new Lru(TDX_CACHE_SIZES.chains),
    collateral: { entries: new Lru(TDX_CACHE_SIZES.collateral) },
    keys: new Lru(TDX_CACHE_SIZES.keys),
    signatures: new Lru(TDX_CACHE_SIZES.signatures),
  };
  return {
    verify: (input, call) => verifyTdx(input, call, ctx),
    // pcs: the client's memory cache of fetched collateral (fetch.ts; maxEntries, default 256).
    caches: {
      chains: ctx.chains,
      collateral: ctx.collateral.entries,
      keys: ctx.keys,
      signatures: ctx.signatures,
      pcs: { stats: () => ctx.pcs.fetcher.memoryStats() },
    },
  };
}

export const TDX_FORMAT: EvidenceFormatSpec = Object.freeze({
  name: 'tdx',
  policySection: 'tdx',
  mediaType: TDX_MEDIA_TYPE,
  detectOrder: 0,
  records: Object.freeze([{ name: 'collateral', mediaType: 'application/json' }]),
  detect,
  reportDataOf: (report: Uint8Array) => (detect(report) ? reportDataOf(report) : undefined),
  view(report: Uint8Array): Record<string, unknown> {
    const quote = parseTdxQuote(report);
    let sgx: { fmspc: string; ppid: string } | undefined;
    try {
      const ext = parseSgxExtensions(parseCertificate(quote.pckChain[0]!));
      sgx = { fmspc: bytesToHex(ext.fmspc), ppid: bytesToHex(ext.ppid) };
    } catch {
      sgx = undefined;
    }
    return { format: 'tdx', ...tdxQuoteFields(quote), ...sgx };
  },
  createVerifier,
});
