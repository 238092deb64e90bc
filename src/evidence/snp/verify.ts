/**
 * The SEV-SNP pipeline: parse → product and signer → VEK (from the evidence, or KDS for a VCEK)
 * → chain to a trusted ARK → revocation → report signature → VEK bound to the report (TCB,
 * hwID) → appraisal → claims. The report signature is checked before the VEK/report binding so
 * that a tampered signed byte is reported as a signature failure whatever field it hit.
 *
 * What the product, VEK and chain steps conclude is kept in the Verifier's `chains` cache, keyed by
 * the VEK and chain bytes (knownVerdict): the next report of the same platform goes from parse to
 * revocation at once. A report whose signature verified under that VEK before is found in the
 * `signatures` cache by its r ‖ s (with the VEK's key and the signed bytes), and not verified again.
 */
import { createHash, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { AttestationError } from '../../errors.js';
import { appraiseClaims } from '../appraise.js';
import { equalBytes } from '../bytes.js';
import type { Lru } from '../lru.js';
import { verifyOffThread } from '../offload.js';
import type { Policy } from '../policy.js';
import type { EvidenceInput, RevocationCrl, RevocationStatus, SnpClaims } from '../types.js';
import { knownSignature, rememberSignature, type SignatureVerdicts, signatureId } from '../verdicts.js';
import type { CertCache, ParsedCert } from '../x509/cert.js';
import { crlValidAt, revokedOf, verifyCrl } from '../x509/chain.js';
import type { ParsedCrl } from '../x509/crl.js';
import { toDerList } from '../x509/pem.js';
import { snpClaims } from './appraise.js';
import {
  AMD_CRL_PROFILE,
  type ChainResult,
  checkChainValidity,
  checkVekShape,
  hwIdMatches,
  parseChainCert,
  productOfChainCert,
  type VekExtensions,
  vekExtensions,
  verifyVekChain,
} from './certs.js';
import { AMD_KDS_URL, KdsClient } from './kds.js';
import { parseSnpReport, type SnpReport, withProduct } from './report.js';
import type { SnpProduct } from './roots.js';
import { productFromName } from './tcb.js';

/** One verification's own inputs. */
export interface SnpCall {
  policy: Policy;
  now: Date;
  signal?: AbortSignal;
  /** The report signature on the threadpool (VerifierCallOptions.offload). */
  offload?: boolean;
}

/** What the SEV-SNP pipeline finds in the Verifier that runs it (verifier.ts). */
export interface SnpContext {
  /** The caller's ARKs, parsed at creation (or why they could not be); absent: AMD's pinned ARKs. */
  amdArks?: readonly ParsedCert[] | AttestationError;
  kds: KdsClient;
  offline: boolean;
  certs: CertCache;
  /** Verdicts of a VEK and its chain (knownVerdict), by the bytes they depend on. */
  chains: Lru<string, VekVerdict>;
  /** ARK-verified CRLs by ARK fingerprint and SHA-256 of the CRL. */
  crls: Lru<string, ParsedCrl>;
  /** Report signatures that verified, by r ‖ s, with the VEK's SPKI and the signed bytes (verdicts.ts). */
  signatures: SignatureVerdicts;
  /**
   * The VEK (own copy) and chain text of the last verdict, compared before a key is built: a
   * platform sends the same pair with every report.
   */
  last?: { vek: Uint8Array; chain: string | undefined; key: string; verdict: VekVerdict };
}

function chainError(message: string, details: Record<string, unknown> = {}): AttestationError {
  return new AttestationError('ERR_EVIDENCE_CHAIN', message, { details });
}

/**
 * ECDSA P-384/SHA-384 over bytes 0x000..0x29F; r and s were converted to big-endian by the parser.
 * With `offload`, checked on the threadpool (offload.ts): the ~0.5 ms it takes then does not hold
 * up the event loop, at the cost of a round trip to the threadpool.
 */
export function verifyReportSignature(
  report: SnpReport,
  key: KeyObject,
  offload = false,
): boolean | Promise<boolean> {
  const sig = new Uint8Array(96);
  sig.set(report.raw.r, 0);
  sig.set(report.raw.s, 48);
  const scheme = { key, dsaEncoding: 'ieee-p1363' } as const;
  if (offload) return verifyOffThread('sha384', report.raw.signed, scheme, sig);
  try {
    return cryptoVerify('sha384', report.raw.signed, scheme, sig);
  } catch {
    return false;
  }
}

function checkTcbBinding(ext: VekExtensions, report: SnpReport, product: SnpProduct): void {
  const t = report.reportedTcb;
  const agree = (name: string, cert: number | undefined, reported: number | undefined) => {
    if (cert !== reported)
      throw chainError(`VEK ${name} SPL ${cert} does not match REPORTED_TCB ${reported}`, {
        component: name,
      });
  };
  agree('bootloader', ext.blSPL, t.bootloader);
  agree('tee', ext.teeSPL, t.tee);
  agree('snp', ext.snpSPL, t.snp);
  agree('microcode', ext.ucodeSPL, t.microcode);
  // FMC exists on Turin (and wherever the VEK names it); a VLEK may omit fmcSPL.
  const vlekWithoutFmc = ext.fmcSPL === undefined && report.signerInfo.signingKey === 'vlek';
  if ((product === 'Turin' || ext.fmcSPL !== undefined) && !vlekWithoutFmc) agree('fmc', ext.fmcSPL, t.fmc);
}

const AMD_KDS_BASE = new URL(AMD_KDS_URL).href.replace(/\/+$/, '');

/** A CRL verified under an ARK before is not verified again (one RSA-PSS signature saved). */
function verifiedCrl(der: Uint8Array, ark: ParsedCert, ctx: SnpContext): ParsedCrl {
  const key = `${ark.fingerprint256}|${createHash('sha256').update(der).digest('hex')}`;
  const hit = ctx.crls.get(key);
  if (hit) return hit;
  const crl = verifyCrl(new Uint8Array(der), ark, AMD_CRL_PROFILE);
  ctx.crls.set(key, crl);
  return crl;
}

function crlWindow(crl: ParsedCrl): RevocationCrl {
  return {
    issuer: crl.issuer.CN ?? '?',
    thisUpdate: crl.thisUpdate.toISOString(),
    ...(crl.nextUpdate ? { nextUpdate: crl.nextUpdate.toISOString() } : {}),
  };
}

/**
 * Uses the product's CRL whenever one is at hand (fetched when online, cached otherwise). A CRL
 * that is not signed by the accepting ARK is an error; one outside its validity window at `now`
 * counts as missing. With snp.requireCrl a missing CRL is fatal.
 *
 * When the fetch fails (KDS blocked, 429, 5xx, 404, timeout), the cached CRL is used if it is
 * valid at `now` (stale-if-error): otherwise whoever can block the KDS could hide a revocation
 * the verifier already knows about. The returned status says what was checked, for the claims.
 */
async function checkRevocation(
  chain: ChainResult,
  product: SnpProduct,
  signer: 'vcek' | 'vlek',
  options: SnpCall,
  ctx: SnpContext,
): Promise<RevocationStatus> {
  const required = options.policy.snp?.requireCrl === true;
  const missing = (why: string, cause?: unknown): RevocationStatus => {
    if (required)
      throw new AttestationError('ERR_COLLATERAL_UNAVAILABLE', `policy snp.requireCrl: ${why}`, {
        details: { field: 'snp.requireCrl' },
        ...(cause === undefined ? {} : { cause }),
      });
    return { checked: false, source: 'none', crls: [], reason: why };
  };
  const { kds } = ctx;
  const path = KdsClient.crlPath(product, signer);
  let der: Uint8Array;
  let source: 'kds' | 'cache';
  let fallback: string | undefined;
  // AMD's KDS holds no CRL for a simulated root: asking it would only fail (or, offline, hang
  // on DNS). A simulated chain uses a CRL only from a KDS the caller named, or the cache.
  const cacheOnly = ctx.offline || (chain.simulated && kds.fetcher.baseUrl === AMD_KDS_BASE);
  if (cacheOnly) {
    const res = await kds.fetcher.cached(path);
    if (!res)
      return missing(
        ctx.offline
          ? 'offline, and no CRL is cached'
          : "no CRL is cached for a simulated chain (AMD's KDS has none)",
      );
    der = res.body;
    source = 'cache';
  } else {
    try {
      const res = await kds.fetcher.get(path, {
        ...(options.signal ? { signal: options.signal } : {}),
        // An optional CRL should not hold verification up with retries.
        ...(required ? {} : { retries: 0 }),
      });
      der = res.body;
      source = res.fromCache ? 'cache' : 'kds';
    } catch (err) {
      if (err instanceof AttestationError && err.code === 'ERR_ABORTED') throw err;
      const why = err instanceof AttestationError ? err.message : String(err);
      const stale = await kds.fetcher.cached(path);
      if (!stale) return missing(`no CRL is available: ${why}`, err);
      der = stale.body;
      source = 'cache';
      fallback = `the CRL fetch failed (${why}); the cached CRL was used`;
    }
  }
  const crl = verifiedCrl(der, chain.ark, ctx);
  if (!crlValidAt(crl, options.now))
    return missing(
      `the ${fallback ? 'cached ' : ''}CRL (${crl.thisUpdate.toISOString()}..${crl.nextUpdate?.toISOString() ?? ''}) is not valid at ${options.now.toISOString()}`,
    );
  for (const cert of revokedOf(crl, [chain.intermediate, chain.vek])) {
    const what = cert === chain.vek ? signer.toUpperCase() : (cert.subject.CN ?? 'intermediate');
    throw chainError(`${what} (serial ${cert.serialHex}) is revoked`, {
      revoked: cert.serialHex,
      crlSource: source,
    });
  }
  return { checked: true, source, crls: [crlWindow(crl)], ...(fallback ? { reason: fallback } : {}) };
}

function oneDer(value: Uint8Array, what: string): Uint8Array {
  const list = toDerList(value, 'ERR_EVIDENCE_CHAIN');
  if (list.length !== 1 || !list[0]) throw chainError(`${what} must be one certificate`);
  return list[0];
}

function chainDers(chain: NonNullable<EvidenceInput['chain']>): Uint8Array[] {
  return toDerList(chain, 'ERR_EVIDENCE_CHAIN');
}

/** What the checks of a VEK and its chain concluded. */
export interface VekVerdict {
  product: SnpProduct;
  ext: VekExtensions;
  chain: ChainResult;
}

const latin1 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/**
 * The key of a VEK verdict: everything it depends on besides the Verifier's ARKs (fixed at its
 * creation) and `now` (validity is checked on every hit). The bytes themselves, length-prefixed,
 * not a digest: a VEK and its chain are ~5 KB, which a Map hashes faster than SHA-256 does, and
 * the key is exact. Undefined when the VEK is fetched (the KDS client caches it) or the chain is
 * not one of the three forms.
 */
function verdictKey(input: EvidenceInput, report: SnpReport): string | undefined {
  if (!(input.vek instanceof Uint8Array)) return undefined;
  const part = (x: string | Uint8Array) =>
    typeof x === 'string' ? `s${x.length}:${x}` : `b${x.length}:${latin1(x)}`;
  let chain: string;
  const c = input.chain;
  if (c === undefined) chain = '-';
  else if (typeof c === 'string' || c instanceof Uint8Array) chain = part(c);
  else if (Array.isArray(c) && c.every((x) => typeof x === 'string' || x instanceof Uint8Array))
    chain = `a${c.length}:${c.map(part).join('')}`;
  else return undefined;
  return `${report.signerInfo.signingKey}|${report.product ?? '-'}|${part(input.vek)}|${chain}`;
}

function knownVerdict(
  input: EvidenceInput,
  report: SnpReport,
  options: SnpCall,
  ctx: SnpContext,
): { key: string | undefined; verdict: VekVerdict | undefined } {
  const signer = report.signerInfo.signingKey;
  const last = ctx.last;
  let key: string | undefined;
  let verdict: VekVerdict | undefined;
  if (
    last &&
    input.vek instanceof Uint8Array &&
    (typeof input.chain === 'string' || input.chain === undefined) &&
    last.chain === input.chain &&
    equalBytes(last.vek, input.vek) &&
    last.key.startsWith(`${signer}|${report.product ?? '-'}|`)
  ) {
    ctx.chains.hit();
    ({ key, verdict } = last);
  } else {
    key = verdictKey(input, report);
    verdict = key === undefined ? undefined : ctx.chains.get(key);
    if (verdict && key !== undefined) remember(input, key, verdict, ctx);
  }
  if (verdict) checkChainValidity(verdict.chain, signer, options.now);
  return { key, verdict };
}

function remember(input: EvidenceInput, key: string, verdict: VekVerdict, ctx: SnpContext): void {
  if (input.vek instanceof Uint8Array && (typeof input.chain === 'string' || input.chain === undefined))
    ctx.last = { vek: new Uint8Array(input.vek), chain: input.chain, key, verdict };
}

/** Product, VEK and chain: from the evidence (or KDS for a VCEK) to a trusted ARK. */
async function vekVerdict(
  input: EvidenceInput,
  report: SnpReport,
  options: SnpCall,
  ctx: SnpContext,
  key: string | undefined,
): Promise<VekVerdict> {
  const signer = report.signerInfo.signingKey;
  const chain = input.chain !== undefined ? chainDers(input.chain) : undefined;
  const chainProduct = chain?.[0]
    ? productOfChainCert(parseChainCert(chain[0], 'chain certificate', ctx.certs))
    : undefined;

  let product = report.product ?? chainProduct;
  let vekDer: Uint8Array;
  if (input.vek !== undefined) {
    vekDer = oneDer(input.vek, 'vek');
  } else {
    if (signer === 'vlek')
      throw new AttestationError(
        'ERR_COLLATERAL_UNAVAILABLE',
        'the report is signed by a VLEK, which cannot be fetched: it must come with the evidence',
      );
    if (!product)
      throw new AttestationError(
        'ERR_COLLATERAL_UNAVAILABLE',
        'a v2 report names no product, so its VCEK must come with the evidence',
      );
    vekDer = await ctx.kds.getVcek(product, report.raw.chipId, withProduct(report, product).reportedTcb, {
      offline: ctx.offline,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  const vek = parseChainCert(vekDer, 'VEK', ctx.certs);
  const ext = vekExtensions(vek);
  const named = ext.productName !== undefined ? productFromName(ext.productName) : undefined;
  if (ext.productName !== undefined && !named)
    throw chainError(`VEK productName "${ext.productName}" is not Milan, Genoa or Turin`);
  product ??= named;
  if (!product) throw chainError('cannot tell the product: v2 report and a VEK without productName');
  if (named && named !== product)
    throw chainError(`VEK is for ${named} but the report is from ${product}`, { vekProduct: named, product });
  if (chainProduct && chainProduct !== product)
    throw chainError(`the chain is for ${chainProduct} but the report is from ${product}`);

  checkVekShape(vek, ext, signer, product);
  if (ctx.amdArks instanceof AttestationError) throw ctx.amdArks;
  const verified = verifyVekChain({
    product,
    signer,
    vek: vekDer,
    ...(chain ? { chain } : {}),
    ...(ctx.amdArks ? { amdArks: ctx.amdArks } : {}),
    now: options.now,
    certs: ctx.certs,
  });
  const verdict = { product, ext, chain: verified };
  if (key !== undefined) {
    ctx.chains.set(key, verdict);
    remember(input, key, verdict, ctx);
  }
  return verdict;
}

/**
 * Largest VEK and chain taken, in bytes, checked before anything parses them. A real VCEK or
 * VLEK is ~1.4 KB of DER (1.9 KB as PEM); the largest real chain is Azure's VCEK+ASK+ARK PEM
 * bundle at 6.5 KB (test/fixtures): the caps leave ample room and bound the work a peer can ask.
 */
export const MAX_VEK_SIZE = 16 * 1024;
export const MAX_CHAIN_SIZE = 64 * 1024;

function checkSizes(input: EvidenceInput): void {
  if (input.vek !== undefined && input.vek.length > MAX_VEK_SIZE)
    throw chainError(`the VEK is ${input.vek.length} bytes, over the limit of ${MAX_VEK_SIZE}`);
  const chain = input.chain;
  if (chain === undefined) return;
  let size = 0;
  for (const item of Array.isArray(chain) ? chain : [chain]) size += item.length;
  if (size > MAX_CHAIN_SIZE)
    throw chainError(`the chain is ${size} bytes, over the limit of ${MAX_CHAIN_SIZE}`);
}

export async function verifySnp(input: EvidenceInput, options: SnpCall, ctx: SnpContext): Promise<SnpClaims> {
  checkSizes(input);
  let report = parseSnpReport(input.report);
  const signer = report.signerInfo.signingKey;
  if (report.version >= 3 && !report.product) {
    const c = report.cpuid!;
    throw new AttestationError(
      'ERR_EVIDENCE_MALFORMED',
      `SNP report: CPUID family 0x${c.family.toString(16)} model 0x${c.model.toString(16)} is not Milan, Genoa or Turin`,
    );
  }
  const known = knownVerdict(input, report, options, ctx);
  const {
    product,
    ext,
    chain: verified,
  } = known.verdict ?? (await vekVerdict(input, report, options, ctx, known.key));
  report = withProduct(report, product);
  const revocation = await checkRevocation(verified, product, signer, options, ctx);

  // A verdict for this signature (r, s) over these signed bytes under this VEK's key, so the
  // P-384 verification runs once per report (verdicts.ts). The rest of the report's signature
  // field must be zero (parse), so these are all the bytes a verification reads.
  const signature = signatureId(report.raw.r, report.raw.s);
  if (!knownSignature(ctx.signatures, signature, verified.vek.spki, report.raw.signed)) {
    if (!(await verifyReportSignature(report, verified.vek.publicKey, options.offload)))
      throw new AttestationError(
        'ERR_EVIDENCE_SIGNATURE',
        `SNP report signature by the ${signer.toUpperCase()} does not verify`,
      );
    rememberSignature(ctx.signatures, signature, verified.vek.spki, report.raw.signed);
  }

  checkTcbBinding(ext, report, product);
  if (ext.hwID && !hwIdMatches(ext.hwID, report.raw.chipId, product))
    throw chainError('VCEK hwID does not match the report CHIP_ID');

  const claims = snpClaims(report, product, verified.simulated, revocation);
  claims.workloadPinned = appraiseClaims(claims, options.policy);
  return claims;
}
