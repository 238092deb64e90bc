/**
 * The TDX pipeline: parse → PCK chain → quote-internal signatures → collateral (from the evidence,
 * else Intel PCS / a PCCS unless offline) → TCB status → claims → policy.
 * Step numbers and rules: docs/reference/tdx-format.md §4 (Intel QVL's procedure).
 */
import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';
import { AttestationError } from '../../errors.js';
import { appraiseClaims } from '../appraise.js';
import { bytesToHex, equalBytes, hexToBytes, isAllZero } from '../bytes.js';
import type { Lru } from '../lru.js';
import type { Policy } from '../policy.js';
import type { EvidenceInput, RevocationStatus, TdxClaims, TdxCollateral } from '../types.js';
import { knownSignature, rememberSignature, type SignatureVerdicts, signatureId } from '../verdicts.js';
import type { CertCache, ParsedCert } from '../x509/cert.js';
import { tdxClaims } from './appraise.js';
import {
  type CollateralCache,
  matchCollateral,
  normaliseCollateral,
  verifyCollateral,
} from './collateral.js';
import { type PckChain, type VerifiedPckChain, verifyPckChain } from './pck.js';
import type { PcsClient } from './pcs.js';
import { parseTdxQuote, splitPckChain, type TdxQuote } from './quote.js';
import { evaluateTcb, qeIdentityLevel } from './tcb.js';

const P256_SPKI_PREFIX = hexToBytes('3059301306072a8648ce3d020106082a8648ce3d030107034200');

/**
 * PCK chain texts longer than this are not kept in `tdx.chains`: a real one is ~4 KiB (three
 * certificates and a NUL), and the cap bounds what a peer sending padded chains makes a Verifier
 * hold.
 */
export const MAX_KEPT_PEM_BYTES = 16 * 1024;

/** One verification's own inputs. */
export interface TdxCall {
  policy: Policy;
  now: Date;
  signal?: AbortSignal;
}

/**
 * A PCK chain as a Verifier keeps it, by the PEM text of the quote's certification data: its
 * DER certificates (own copies; saves the PEM split and base64 decode) and, once verified, the
 * chain with its validity window (saves two ECDSA checks and three certificate parses).
 */
export interface KeptPckChain {
  ders: Uint8Array[];
  /** With the fingerprints of the roots it was verified under. */
  verified?: VerifiedPckChain & { roots: string; rootList: readonly ParsedCert[] };
}

/**
 * An attestation key as a Verifier keeps it, by its 64 raw bytes: the KeyObject (saves building
 * it from an SPKI) and the QE part of the last quote it signed that passed steps 6 and 7 (a QE
 * signs every quote with one key, so its report, that report's signature and the auth data repeat
 * until the key changes). Own copies: the quote's bytes belong to the caller.
 */
export interface KeptAttestationKey {
  key: KeyObject;
  qe?: { leaf: string; report: Uint8Array; signature: Uint8Array; auth: Uint8Array };
}

/** What the TDX pipeline finds in the Verifier that runs it (verifier.ts). */
export interface TdxContext {
  /** The trusted roots, parsed at creation (or why they could not be). */
  roots: ParsedCert[] | AttestationError;
  pcs: PcsClient;
  offline: boolean;
  certs: CertCache;
  chains: Lru<string, KeptPckChain>;
  collateral: CollateralCache;
  keys: Lru<string, KeptAttestationKey>;
  /** Quote signatures (step 9) that verified, by the signature, with the attestation key and signed bytes (verdicts.ts). */
  signatures: SignatureVerdicts;
  /**
   * The PEM chain and attestation key of the last quote (own copies), compared byte for byte
   * before a key is built: a platform sends the same with every quote.
   */
  last?: {
    pem?: { bytes: Uint8Array; entry: KeptPckChain };
    key?: { raw: Uint8Array; kept: KeptAttestationKey };
  };
}

/** The attestation key from its raw X‖Y form. */
function attestationKey(
  raw: Uint8Array,
  keys?: Lru<string, KeptAttestationKey>,
  ctx?: TdxContext,
): KeptAttestationKey {
  const last = ctx?.last?.key;
  if (last && equalBytes(last.raw, raw)) {
    keys?.hit();
    return last.kept;
  }
  const kept = keyFor(raw, keys);
  if (ctx) ctx.last = { ...ctx.last, key: { raw: new Uint8Array(raw), kept } };
  return kept;
}

function keyFor(raw: Uint8Array, keys?: Lru<string, KeptAttestationKey>): KeptAttestationKey {
  const id = bytesToHex(raw);
  const hit = keys?.get(id);
  if (hit) return hit;
  const spki = new Uint8Array(P256_SPKI_PREFIX.length + 65);
  spki.set(P256_SPKI_PREFIX, 0);
  spki[P256_SPKI_PREFIX.length] = 0x04;
  spki.set(raw, P256_SPKI_PREFIX.length + 1);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch (err) {
    throw new AttestationError('ERR_EVIDENCE_SIGNATURE', 'the attestation key is not a P-256 point', {
      cause: err,
    });
  }
  const kept = { key };
  keys?.set(id, kept);
  return kept;
}

function p1363Verify(data: Uint8Array, signature: Uint8Array, key: KeyObject): boolean {
  try {
    return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}

function qeAlreadyVerified(kept: KeptAttestationKey, quote: TdxQuote, pck: PckChain): boolean {
  const qe = kept.qe;
  return (
    qe !== undefined &&
    qe.leaf === pck.leaf.fingerprint256 &&
    equalBytes(qe.report, quote.qeReport.raw) &&
    equalBytes(qe.signature, quote.qeReportSignature) &&
    equalBytes(qe.auth, quote.qeAuthData)
  );
}

/**
 * Steps 6, 7 and 9: QE report by the PCK, QE REPORTDATA binding of the attestation key, quote
 * signature. With `keys` (a Verifier's), steps 6 and 7 already passed for this key, PCK and QE
 * report are not repeated; with `ctx`, neither is step 9 for a quote whose signature verified.
 */
export function verifyQuoteSignatures(
  quote: TdxQuote,
  pck: PckChain,
  keys?: Lru<string, KeptAttestationKey>,
  ctx?: TdxContext,
): void {
  const kept = attestationKey(quote.attestationKey, keys, ctx);
  if (!qeAlreadyVerified(kept, quote, pck)) {
    verifyQe(quote, pck);
    kept.qe = {
      leaf: pck.leaf.fingerprint256,
      report: new Uint8Array(quote.qeReport.raw),
      signature: new Uint8Array(quote.qeReportSignature),
      auth: new Uint8Array(quote.qeAuthData),
    };
  }
  // A verdict for these exact bytes (key, signature, header and body): the ECDSA verification
  // runs once per quote a Verifier sees (verdicts.ts).
  const signature = ctx && signatureId(quote.signature);
  if (
    signature !== undefined &&
    ctx &&
    knownSignature(ctx.signatures, signature, quote.attestationKey, quote.signedData)
  )
    return;
  if (!p1363Verify(quote.signedData, quote.signature, kept.key))
    throw new AttestationError(
      'ERR_EVIDENCE_SIGNATURE',
      'the quote signature by the attestation key does not verify',
    );
  if (signature !== undefined && ctx)
    rememberSignature(ctx.signatures, signature, quote.attestationKey, quote.signedData);
}

/** Steps 6 and 7. */
function verifyQe(quote: TdxQuote, pck: PckChain): void {
  if (!p1363Verify(quote.qeReport.raw, quote.qeReportSignature, pck.leaf.publicKey))
    throw new AttestationError(
      'ERR_EVIDENCE_SIGNATURE',
      'the QE report signature by the PCK key does not verify',
    );
  // All 64 bytes: SHA-256(attestation key ‖ QE auth data) then 32 zero bytes (Intel's QVL checks
  // only the first half; every real quote satisfies the stricter form).
  const digest = createHash('sha256').update(quote.attestationKey).update(quote.qeAuthData).digest();
  const rd = quote.qeReport.reportData;
  if (!equalBytes(rd.subarray(0, 32), digest) || !isAllZero(rd.subarray(32)))
    throw new AttestationError(
      'ERR_EVIDENCE_SIGNATURE',
      'the QE report does not bind the attestation key (REPORTDATA ≠ SHA-256(key ‖ auth data) ‖ zeros)',
    );
}

async function fetchCollateral(pck: PckChain, options: TdxCall, ctx: TdxContext): Promise<TdxCollateral> {
  if (ctx.offline)
    throw new AttestationError(
      'ERR_COLLATERAL_UNAVAILABLE',
      'no TDX collateral in the evidence and offline: nothing to check the TCB against',
    );
  return ctx.pcs.getCollateral(pck.sgx.fmspc, pck.ca, {
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/**
 * The quote's PCK chain through the Verifier's `chains` cache: split once per chain text. The DER
 * list returned is the kept one, not a copy: the quote it goes into is verifyTdx's own and never
 * leaves it (claims carry no certificate bytes), and nothing in the pipeline writes to it.
 */
function keptChain(ctx: TdxContext, pem: Uint8Array): KeptPckChain {
  const last = ctx.last?.pem;
  if (last && equalBytes(last.bytes, pem)) {
    ctx.chains.hit();
    return last.entry;
  }
  // A chain text over MAX_KEPT_PEM_BYTES is split every time, never kept (see there).
  const key =
    pem.length <= MAX_KEPT_PEM_BYTES
      ? Buffer.from(pem.buffer, pem.byteOffset, pem.byteLength).toString('latin1')
      : undefined;
  let entry = key === undefined ? undefined : ctx.chains.get(key);
  if (!entry) {
    entry = { ders: splitPckChain(pem).map((d) => new Uint8Array(d)) };
    if (key !== undefined) ctx.chains.set(key, entry);
  }
  ctx.last = { ...ctx.last, pem: { bytes: new Uint8Array(pem), entry } };
  return entry;
}

const printsOf = (roots: readonly ParsedCert[]) => roots.map((r) => r.fingerprint256).join(',');

/** The PCK chain of `kept`, verified under `roots` at `now`, or as verified before inside its window. */
export function pckChainOf(kept: KeptPckChain, roots: ParsedCert[], now: Date, certs?: CertCache): PckChain {
  const t = now.getTime();
  const v = kept.verified;
  // A Verifier passes the one list it parsed at creation: the same array is the same roots, and
  // only another list needs its fingerprints compared.
  if (v && v.notBefore <= t && t <= v.notAfter && (v.rootList === roots || v.roots === printsOf(roots)))
    return v.chain;
  kept.verified = {
    ...verifyPckChain(kept.ders, roots, now, certs),
    roots: printsOf(roots),
    rootList: roots,
  };
  return kept.verified.chain;
}

/** Verifies a TDX quote and its collateral at `options.now` and appraises it against the policy. */
export async function verifyTdx(input: EvidenceInput, options: TdxCall, ctx: TdxContext): Promise<TdxClaims> {
  let kept: KeptPckChain | undefined;
  const quote = parseTdxQuote(input.report, (pem) => {
    kept = keptChain(ctx, pem);
    return kept.ders;
  });
  if (ctx.roots instanceof AttestationError) throw ctx.roots;
  const roots = ctx.roots;
  const pck = pckChainOf(kept!, roots, options.now, ctx.certs);
  verifyQuoteSignatures(quote, pck, ctx.keys, ctx);
  // Collateral in the evidence is read without a turn of the event loop; only a fetch awaits.
  const collateral =
    input.collateral !== undefined
      ? normaliseCollateral(input.collateral, ctx.collateral)
      : await fetchCollateral(pck, options, ctx);
  if (options.signal?.aborted) throw new AttestationError('ERR_ABORTED', 'TDX verification aborted');
  const vc = verifyCollateral(collateral, roots, options.now, ctx.collateral, ctx.certs);
  matchCollateral(pck, vc);
  const qeLevel = qeIdentityLevel(quote.qeReport, vc.qeIdentity);
  const tcb = evaluateTcb(quote.body, pck.sgx, vc.tcbInfo, qeLevel);
  // Intel's CRLs are part of the collateral, which is required: revocation is always checked here
  // (matchCollateral refused the quote if the PCK CRL or root CA CRL listed its chain).
  const revocation: RevocationStatus = {
    checked: true,
    source: 'collateral',
    // Own copies of what verifyCollateral() formatted once: the claims are the caller's.
    crls: vc.crls.map((crl) => ({ ...crl })),
  };
  const claims = tdxClaims(quote, pck, tcb, revocation);
  claims.workloadPinned = appraiseClaims(claims, options.policy);
  return claims;
}
