/**
 * The TDX pipeline: parse → PCK chain → quote-internal signatures → collateral (from the evidence,
 * else Intel PCS / a PCCS unless offline) → TCB status → claims → policy.
 * Step numbers and rules: docs/reference/tdx-format.md §4 (Intel QVL's procedure).
 */
import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';
import { AttestationError } from '../../errors.js';
import { appraiseClaims } from '../appraise.js';
import { bytesToHex, equalBytes, hexToBytes, isAllZero } from '../bytes.js';
import type { Policy } from '../policy.js';
import { SIMULATED_ORGANIZATION } from '../simulated-marker.js';
import type { EvidenceInput, RevocationStatus, TdxClaims, TdxCollateral, VerifyOptions } from '../types.js';
import { matchCollateral, normaliseCollateral, verifyCollateral } from './collateral.js';
import { type PckChain, verifyPckChain } from './pck.js';
import { pcsClientFor } from './pcs.js';
import { parseTdxQuote, type TdxQuote } from './quote.js';
import { intelRoots } from './roots.js';
import { evaluateTcb, qeIdentityLevel, type TcbResult } from './tcb.js';

const P256_SPKI_PREFIX = hexToBytes('3059301306072a8648ce3d020106082a8648ce3d030107034200');
const keyCache = new Map<string, KeyObject>();
const KEY_CACHE_MAX = 256;

/** The attestation key from its raw X‖Y form (a QE keeps one key for many quotes: cached). */
function attestationKey(raw: Uint8Array): KeyObject {
  if (lastKey && equalBytes(lastKey.raw, raw)) return lastKey.key;
  const key = cachedAttestationKey(raw);
  lastKey = { raw: new Uint8Array(raw), key };
  return key;
}

let lastKey: { raw: Uint8Array; key: KeyObject } | undefined;

function cachedAttestationKey(raw: Uint8Array): KeyObject {
  const id = bytesToHex(raw);
  const hit = keyCache.get(id);
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
  if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value as string);
  keyCache.set(id, key);
  return key;
}

function p1363Verify(data: Uint8Array, signature: Uint8Array, key: KeyObject): boolean {
  try {
    return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}

/**
 * The QE part of the last quote that passed steps 6 and 7: a QE signs every quote with one
 * attestation key, so its report, that report's signature and the auth data repeat in each quote
 * until the key changes. Own copies: the quote's bytes belong to the caller.
 */
let lastQe:
  | { leaf: PckChain['leaf']; report: Uint8Array; signature: Uint8Array; key: Uint8Array; auth: Uint8Array }
  | undefined;

function qeAlreadyVerified(quote: TdxQuote, pck: PckChain): boolean {
  const last = lastQe;
  return (
    last !== undefined &&
    last.leaf === pck.leaf &&
    equalBytes(last.report, quote.qeReport.raw) &&
    equalBytes(last.signature, quote.qeReportSignature) &&
    equalBytes(last.key, quote.attestationKey) &&
    equalBytes(last.auth, quote.qeAuthData)
  );
}

/** Steps 6, 7 and 9: QE report by the PCK, QE REPORTDATA binding of the attestation key, quote signature. */
export function verifyQuoteSignatures(quote: TdxQuote, pck: PckChain): void {
  if (!qeAlreadyVerified(quote, pck)) {
    verifyQe(quote, pck);
    lastQe = {
      leaf: pck.leaf,
      report: new Uint8Array(quote.qeReport.raw),
      signature: new Uint8Array(quote.qeReportSignature),
      key: new Uint8Array(quote.attestationKey),
      auth: new Uint8Array(quote.qeAuthData),
    };
  }
  if (!p1363Verify(quote.signedData, quote.signature, attestationKey(quote.attestationKey)))
    throw new AttestationError(
      'ERR_EVIDENCE_SIGNATURE',
      'the quote signature by the attestation key does not verify',
    );
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

async function obtainCollateral(
  input: EvidenceInput,
  pck: PckChain,
  options: VerifyOptions,
): Promise<TdxCollateral> {
  if (input.collateral !== undefined) return normaliseCollateral(input.collateral);
  if (options.offline)
    throw new AttestationError(
      'ERR_COLLATERAL_UNAVAILABLE',
      'no TDX collateral in the evidence and offline: nothing to check the TCB against',
    );
  const client = pcsClientFor(options.pcs);
  return client.getCollateral(pck.sgx.fmspc, pck.ca, {
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

function decodeTdAttributes(raw: Uint8Array): TdxClaims['tdAttributes'] {
  return {
    raw: bytesToHex(raw),
    debug: (raw[0]! & 0x01) !== 0,
    septVeDisable: (raw[3]! & 0x10) !== 0,
    pks: (raw[3]! & 0x40) !== 0,
    kl: (raw[3]! & 0x80) !== 0,
    perfmon: (raw[7]! & 0x80) !== 0,
  };
}

export function tdxClaims(
  quote: TdxQuote,
  pck: PckChain,
  tcb: Pick<TcbResult, 'status' | 'advisoryIds'>,
  revocation: RevocationStatus,
): TdxClaims {
  const b = quote.body;
  return {
    format: 'tdx',
    simulated: pck.root.subject.O === SIMULATED_ORGANIZATION,
    revocation,
    // Set by appraiseClaims(), from the policy the claims passed.
    workloadPinned: false,
    version: quote.header.version,
    teeTcbSvn: bytesToHex(b.teeTcbSvn),
    ...(b.teeTcbSvn2 ? { teeTcbSvn2: bytesToHex(b.teeTcbSvn2) } : {}),
    mrSeam: bytesToHex(b.mrSeam),
    mrSignerSeam: bytesToHex(b.mrSignerSeam),
    seamAttributes: bytesToHex(b.seamAttributes),
    tdAttributes: decodeTdAttributes(b.tdAttributes),
    xfam: bytesToHex(b.xfam),
    mrTd: bytesToHex(b.mrTd),
    mrConfigId: bytesToHex(b.mrConfigId),
    mrOwner: bytesToHex(b.mrOwner),
    mrOwnerConfig: bytesToHex(b.mrOwnerConfig),
    rtmr0: bytesToHex(b.rtmr0),
    rtmr1: bytesToHex(b.rtmr1),
    rtmr2: bytesToHex(b.rtmr2),
    rtmr3: bytesToHex(b.rtmr3),
    reportData: bytesToHex(b.reportData),
    ...(b.mrServiceTd ? { mrServiceTd: bytesToHex(b.mrServiceTd) } : {}),
    fmspc: bytesToHex(pck.sgx.fmspc),
    tcbStatus: tcb.status,
    advisoryIds: tcb.advisoryIds,
  };
}

/** Verifies a TDX quote and its collateral at `options.now` and appraises it against the policy. */
export async function verifyTdx(
  input: EvidenceInput,
  options: VerifyOptions & { policy: Policy; now: Date },
): Promise<TdxClaims> {
  const quote = parseTdxQuote(input.report);
  const roots = intelRoots(options.trustAnchors);
  const pck = verifyPckChain(quote.pckChain, roots, options.now);
  verifyQuoteSignatures(quote, pck);
  const collateral = await obtainCollateral(input, pck, options);
  if (options.signal?.aborted) throw new AttestationError('ERR_ABORTED', 'TDX verification aborted');
  const vc = verifyCollateral(collateral, roots, options.now);
  matchCollateral(pck, vc);
  const qeLevel = qeIdentityLevel(quote.qeReport, vc.qeIdentity);
  const tcb = evaluateTcb(quote.body, pck.sgx, vc.tcbInfo, qeLevel);
  // Intel's CRLs are part of the collateral, which is required: revocation is always checked here
  // (matchCollateral refused the quote if the PCK CRL or root CA CRL listed its chain).
  const revocation: RevocationStatus = {
    checked: true,
    source: 'collateral',
    crls: [vc.pckCrl, vc.rootCrl].map((crl) => ({
      issuer: crl.issuer.CN ?? '?',
      thisUpdate: crl.thisUpdate.toISOString(),
      ...(crl.nextUpdate ? { nextUpdate: crl.nextUpdate.toISOString() } : {}),
    })),
  };
  const claims = tdxClaims(quote, pck, tcb, revocation);
  claims.workloadPinned = appraiseClaims(claims, options.policy);
  return claims;
}
