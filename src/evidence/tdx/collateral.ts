/**
 * TDX collateral: TCB info, QE identity, PCK CRL and root CA CRL with their issuer chains, in the
 * nine-member shape of test/fixtures/tdx/README.md (Intel's sgx_ql_qve_collateral_t as dcap-qvl
 * serialises it).
 *
 * Error codes (one rule, applied everywhere; docs/api.md):
 *   - ERR_COLLATERAL_UNAVAILABLE: there is no usable collateral for this platform — a member
 *     missing, not a string or not hex, text that is not JSON, or collateral for another platform
 *     (FMSPC, PCE-ID, PCK CA). Fetching the platform's collateral can cure these.
 *   - ERR_EVIDENCE_CHAIN: collateral that is present but bad is a refusal — a TCB info / QE
 *     identity / CRL whose signature does not verify or that does not parse, one outside its
 *     issueDate…nextUpdate (thisUpdate…nextUpdate) window at `now`, an issuer chain that is not
 *     exactly what its profile in pck.ts requires (TCB info and QE identity: [Intel SGX TCB
 *     Signing, root]; PCK CRL: [PCK CA, root]), a certificate outside its validity, a revoked PCK /
 *     PCK CA / TCB-signing certificate.
 *
 * Verifying collateral costs several signature checks and a JSON parse of ~20 KB, and the same
 * collateral serves every quote of a platform for weeks; so a Verifier keeps verified collateral
 * (a CollateralCache) by its exact content and the trusted roots, with the intersection of all its
 * validity windows, and uses a kept answer only for a `now` inside that intersection (outside it,
 * everything is re-checked so the error names the item that is out of date).
 */
import { createHash, verify } from 'node:crypto';
import { AttestationError } from '../../errors.js';
import { equalBytes, hexToBytes } from '../bytes.js';
import type { Lru } from '../lru.js';
import type { RevocationCrl, TdxCollateral } from '../types.js';
import type { CertCache, ParsedCert } from '../x509/cert.js';
import { type CrlProfile, crlValidAt, revokedOf, verifyChain, verifyCrl } from '../x509/chain.js';
import type { ParsedCrl } from '../x509/crl.js';
import { pemToDer } from '../x509/pem.js';
import {
  PCK_CRL_PROFILE,
  type PckChain,
  pckCrlIssuerProfile,
  ROOT_CRL_PROFILE,
  tcbSigningProfile,
} from './pck.js';
import { parseQeIdentity, parseTcbInfo, type QeIdentity, type TcbInfo } from './tcb.js';

export const COLLATERAL_MEMBERS = [
  'pck_crl_issuer_chain',
  'root_ca_crl',
  'pck_crl',
  'tcb_info_issuer_chain',
  'tcb_info',
  'tcb_info_signature',
  'qe_identity_issuer_chain',
  'qe_identity',
  'qe_identity_signature',
] as const;

// Real collateral is ~25 KB; a bound keeps a hostile peer from making the verifier parse megabytes.
const MAX_COLLATERAL_CHARS = 1024 * 1024;

export interface VerifiedCollateral {
  tcbInfo: TcbInfo;
  qeIdentity: QeIdentity;
  pckCrl: ParsedCrl;
  /** The CA that signed the PCK CRL (first certificate of pck_crl_issuer_chain). */
  pckCrlIssuer: ParsedCert;
  rootCrl: ParsedCrl;
  /** The trusted root every issuer chain and the root CRL lead to. */
  root: ParsedCert;
  /** Earliest and latest instants (ms) at which every item and certificate is valid. */
  notBefore: number;
  notAfter: number;
  /** The PCK CRL and root CA CRL as claims name them (formatted once, not per quote). */
  crls: ReadonlyArray<Readonly<RevocationCrl>>;
}

function crlStatus(crl: ParsedCrl): RevocationCrl {
  return {
    issuer: crl.issuer.CN ?? '?',
    thisUpdate: crl.thisUpdate.toISOString(),
    ...(crl.nextUpdate ? { nextUpdate: crl.nextUpdate.toISOString() } : {}),
  };
}

function unavailable(message: string, cause?: unknown): AttestationError {
  return new AttestationError('ERR_COLLATERAL_UNAVAILABLE', message, cause === undefined ? {} : { cause });
}

/**
 * What a Verifier keeps of TDX collateral, in one LRU: collateral read from JSON text, by that
 * text (`json:` keys; saves the JSON.parse of ~25 KB a quote), and verified collateral, by the
 * SHA-256 of its members and the roots (`sha:` keys; saves five signature checks, three chain
 * verifications and the TCB info parse). `last` is the collateral of the last call, compared
 * member by member (strings cannot have changed) before anything is hashed.
 */
export interface CollateralCache {
  entries: Lru<string, { collateral: TdxCollateral; verified?: VerifiedCollateral }>;
  last?: { members: string[]; roots: ParsedCert[]; verified: VerifiedCollateral };
  /** The JSON text of the last call, compared as a string before a key is built from it. */
  lastText?: { text: string; collateral: TdxCollateral };
}

/** JSON text longer than this is parsed every time rather than kept as a key (real: ~25 KB). */
const MAX_KEPT_TEXT = 64 * 1024;

/** Accepts the collateral object or its JSON text and checks it has the nine string members. */
export function normaliseCollateral(input: unknown, cache?: CollateralCache): TdxCollateral {
  if (typeof input === 'string') {
    if (cache?.lastText?.text === input) {
      cache.entries.hit();
      return cache.lastText.collateral;
    }
    const key = cache && input.length <= MAX_KEPT_TEXT ? `json:${input}` : undefined;
    const hit = key === undefined ? undefined : cache?.entries.get(key);
    if (hit) {
      if (cache) cache.lastText = { text: input, collateral: hit.collateral };
      return hit.collateral;
    }
    if (input.length > MAX_COLLATERAL_CHARS) throw unavailable('collateral JSON is too large');
    let parsed: unknown;
    try {
      parsed = JSON.parse(input);
    } catch (err) {
      throw unavailable('collateral is not JSON', err);
    }
    const out = normaliseCollateral(parsed);
    if (key !== undefined && cache) {
      cache.entries.set(key, { collateral: out });
      cache.lastText = { text: input, collateral: out };
    }
    return out;
  }
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw unavailable('collateral must be an object or its JSON text');
  const o = input as Record<string, unknown>;
  let total = 0;
  const out: Record<string, string> = {};
  for (const m of COLLATERAL_MEMBERS) {
    // Own members only: collateral from outside never gets a member from a prototype.
    const v = Object.hasOwn(o, m) ? o[m] : undefined;
    if (typeof v !== 'string') throw unavailable(`collateral member ${m} is missing or not a string`);
    total += v.length;
    out[m] = v;
  }
  if (total > MAX_COLLATERAL_CHARS) throw unavailable('collateral is too large');
  return out as unknown as TdxCollateral;
}

function hexMember(c: TdxCollateral, m: (typeof COLLATERAL_MEMBERS)[number]): Uint8Array {
  try {
    return hexToBytes(c[m].trim());
  } catch (err) {
    throw unavailable(`collateral member ${m} is not hex`, err);
  }
}

function chainMember(c: TdxCollateral, m: (typeof COLLATERAL_MEMBERS)[number]): Uint8Array[] {
  // How many certificates a chain must hold is its profile's business (pck.ts).
  return pemToDer(c[m], 'ERR_EVIDENCE_CHAIN');
}

function refused(message: string, cause?: unknown): AttestationError {
  return new AttestationError('ERR_EVIDENCE_CHAIN', message, cause === undefined ? {} : { cause });
}

/** Raw r‖s ECDSA P-256 signature over the exact UTF-8 bytes of the signed JSON text. */
function checkJsonSignature(text: string, sigHex: Uint8Array, signer: ParsedCert, what: string): void {
  let ok = false;
  try {
    ok =
      sigHex.length === 64 &&
      verify(
        'sha256',
        Buffer.from(text, 'utf8'),
        { key: signer.publicKey, dsaEncoding: 'ieee-p1363' },
        sigHex,
      );
  } catch {
    ok = false;
  }
  if (!ok) throw refused(`${what} signature by "${signer.subject.CN ?? '?'}" does not verify`);
}

function checkWindow(issueDate: Date, nextUpdate: Date, now: Date, what: string): void {
  const t = now.getTime();
  if (t < issueDate.getTime()) throw refused(`${what} is not valid before ${issueDate.toISOString()}`);
  if (t > nextUpdate.getTime()) throw refused(`${what} expired at ${nextUpdate.toISOString()}`);
}

/** The one CRL check (x509/chain.ts) and the CRL's window at `now`. */
function checkedCrl(
  c: TdxCollateral,
  m: 'root_ca_crl' | 'pck_crl',
  issuer: ParsedCert,
  profile: CrlProfile,
  now: Date,
): ParsedCrl {
  const crl = verifyCrl(hexMember(c, m), issuer, profile);
  if (!crlValidAt(crl, now))
    throw refused(
      now < crl.thisUpdate
        ? `${profile.name} is not valid before ${crl.thisUpdate.toISOString()}`
        : `${profile.name} expired at ${crl.nextUpdate?.toISOString()}`,
    );
  return crl;
}

function checkNotRevoked(cert: ParsedCert, crl: ParsedCrl, what: string): void {
  if (crl.revoked.has(cert.serialHex))
    throw new AttestationError('ERR_EVIDENCE_CHAIN', `${what} "${cert.subject.CN ?? '?'}" is revoked`, {
      details: { serial: cert.serialHex },
    });
}

function sameRoot(a: ParsedCert, b: ParsedCert, what: string): void {
  if (a.fingerprint256 !== b.fingerprint256)
    throw new AttestationError(
      'ERR_EVIDENCE_CHAIN',
      `${what} ends at a different root than the other chains`,
    );
}

function verifyUncached(
  c: TdxCollateral,
  roots: ParsedCert[],
  now: Date,
  cache: CertCache | undefined,
): VerifiedCollateral {
  const tcbChain = verifyChain(
    chainMember(c, 'tcb_info_issuer_chain'),
    tcbSigningProfile(roots, 'TCB info issuer chain'),
    now,
    cache,
  ).certs;
  const qeChain = verifyChain(
    chainMember(c, 'qe_identity_issuer_chain'),
    tcbSigningProfile(roots, 'QE identity issuer chain'),
    now,
    cache,
  ).certs;
  const crlChain = verifyChain(
    chainMember(c, 'pck_crl_issuer_chain'),
    pckCrlIssuerProfile(roots),
    now,
    cache,
  ).certs;
  const root = tcbChain[tcbChain.length - 1]!;
  sameRoot(root, qeChain[qeChain.length - 1]!, 'QE identity issuer chain');
  sameRoot(root, crlChain[crlChain.length - 1]!, 'PCK CRL issuer chain');

  checkJsonSignature(c.tcb_info, hexMember(c, 'tcb_info_signature'), tcbChain[0]!, 'TCB info');
  const tcbInfo = parseTcbInfo(c.tcb_info);
  checkWindow(tcbInfo.issueDate, tcbInfo.nextUpdate, now, 'TCB info');
  checkJsonSignature(c.qe_identity, hexMember(c, 'qe_identity_signature'), qeChain[0]!, 'QE identity');
  const qeIdentity = parseQeIdentity(c.qe_identity);
  checkWindow(qeIdentity.issueDate, qeIdentity.nextUpdate, now, 'QE identity');

  const rootCrl = checkedCrl(c, 'root_ca_crl', root, ROOT_CRL_PROFILE, now);
  const pckCrlIssuer = crlChain[0]!;
  const pckCrl = checkedCrl(c, 'pck_crl', pckCrlIssuer, PCK_CRL_PROFILE, now);
  for (const cert of revokedOf(rootCrl, [tcbChain[0]!, qeChain[0]!, pckCrlIssuer]))
    checkNotRevoked(cert, rootCrl, 'collateral signer');

  const certs = [...tcbChain, ...qeChain, ...crlChain];
  const starts = [
    ...certs.map((x) => x.notBefore.getTime()),
    tcbInfo.issueDate.getTime(),
    qeIdentity.issueDate.getTime(),
    rootCrl.thisUpdate.getTime(),
    pckCrl.thisUpdate.getTime(),
  ];
  const ends = [
    ...certs.map((x) => x.notAfter.getTime()),
    tcbInfo.nextUpdate.getTime(),
    qeIdentity.nextUpdate.getTime(),
    rootCrl.nextUpdate?.getTime() ?? Number.POSITIVE_INFINITY,
    pckCrl.nextUpdate?.getTime() ?? Number.POSITIVE_INFINITY,
  ];
  return {
    tcbInfo,
    qeIdentity,
    pckCrl,
    pckCrlIssuer,
    rootCrl,
    root,
    notBefore: Math.max(...starts),
    notAfter: Math.min(...ends),
    crls: Object.freeze([crlStatus(pckCrl), crlStatus(rootCrl)].map((c) => Object.freeze(c))),
  };
}

function cacheKey(c: TdxCollateral, roots: ParsedCert[]): string {
  // A digest rather than the ~15 KB text itself: V8 hashes long string keys by length only, so a
  // text key makes every lookup a full string comparison. Length-prefixed members keep it unambiguous.
  const h = createHash('sha256');
  for (const r of roots) h.update(r.fingerprint256);
  for (const m of COLLATERAL_MEMBERS) h.update(`|${c[m].length}:`).update(c[m]);
  return `sha:${h.digest('hex')}`;
}

/**
 * Verifies collateral (signatures, issuer chains, windows, root CRL) at `now`; with `cache`, an
 * answer kept for the same collateral and roots is used when `now` is inside its windows.
 */
export function verifyCollateral(
  c: TdxCollateral,
  roots: ParsedCert[],
  now: Date,
  cache?: CollateralCache,
  certs?: CertCache,
): VerifiedCollateral {
  if (!cache) return verifyUncached(c, roots, now, certs);
  const t = now.getTime();
  const last = cache.last;
  if (
    last &&
    last.verified.notBefore <= t &&
    t <= last.verified.notAfter &&
    COLLATERAL_MEMBERS.every((m, i) => last.members[i] === c[m]) &&
    last.roots.length === roots.length &&
    last.roots.every((r, i) => r === roots[i])
  ) {
    cache.entries.hit();
    return last.verified;
  }
  const key = cacheKey(c, roots);
  let verified = cache.entries.get(key)?.verified;
  if (!verified || verified.notBefore > t || t > verified.notAfter) {
    verified = verifyUncached(c, roots, now, certs);
    cache.entries.set(key, { collateral: c, verified });
  }
  cache.last = { members: COLLATERAL_MEMBERS.map((m) => c[m]), roots: [...roots], verified };
  return verified;
}

/**
 * The checks that tie verified collateral to one quote's PCK chain: the same root, a PCK CRL from
 * the PCK's own CA that does not list the PCK, a root CRL that does not list the PCK CA, and a TCB
 * info for this platform's FMSPC and PCE-ID.
 */
export function matchCollateral(pck: PckChain, vc: VerifiedCollateral): void {
  sameRoot(vc.root, pck.root, 'PCK chain');
  if (!equalBytes(vc.pckCrl.issuerDer, pck.leaf.issuerDer))
    throw unavailable(`the PCK CRL is issued by "${vc.pckCrl.issuer.CN ?? '?'}", not by the PCK's CA`);
  if (!equalBytes(vc.pckCrlIssuer.spki, pck.intermediate.spki))
    throw unavailable("the PCK CRL is not signed by the key of the PCK's CA");
  checkNotRevoked(pck.leaf, vc.pckCrl, 'PCK certificate');
  checkNotRevoked(pck.intermediate, vc.rootCrl, 'PCK CA');
  if (!equalBytes(vc.tcbInfo.fmspc, pck.sgx.fmspc))
    throw unavailable('the TCB info is for another platform (FMSPC differs from the PCK certificate)');
  if (!equalBytes(vc.tcbInfo.pceId, pck.sgx.pceId))
    throw unavailable('the TCB info is for another PCE (PCE-ID differs from the PCK certificate)');
}
