/**
 * The one certificate-chain engine: `verifyChain(certs, profile, now)` for every vendor, and the
 * one CRL check (`verifyCrl`, `crlValidAt`, `revokedOf`) beside it.
 *
 * A vendor says what it accepts as data, a ChainProfile: the positions of the chain from leaf to
 * root (`path`, each with its subject CN list, CA flag and required key-usage bits), the trusted
 * roots (`anchors`: the chain's root must be byte-identical to one, found by SHA-256 fingerprint;
 * a root's name proves nothing), whether the evidence may leave the root out (AMD's KDS hands out
 * a VEK without its ARK), the signature algorithms of every link, and the DER rules. The engine
 * knows no vendor: snp/certs.ts holds the AMD profiles (ARK → ASK/ASVK → VCEK/VLEK), tdx/pck.ts
 * the Intel ones (root → PCK CA → PCK; root → TCB Signing; root → PCK CA for the PCK CRL), and a
 * TPM/Google AK profile is one more entry of the same type.
 *
 * DER rules (issue 10 item 11, for every vendor): the ASN.1 library is lenient (stray lengths,
 * trailing bytes, non-zero unused bits in BIT STRINGs), so with `canonicalDer` a certificate or
 * CRL must re-encode to the very bytes received, which gives exact lengths at every level and zero
 * unused bits in the signature BIT STRING; with `matchingAlgorithms` the unsigned outer
 * signatureAlgorithm must repeat the signed TBS one (RFC 5280 §4.1.1.2, §5.1.1.2), so no byte of
 * an accepted certificate is outside the signature's reach.
 *
 * Every failure is ERR_EVIDENCE_CHAIN.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { AttestationError } from '../../errors.js';
import { equalBytes } from '../bytes.js';
import { type CertCache, type ParsedCert, parseCertificate, verifyWithAlgorithm } from './cert.js';
import { type ParsedCrl, parseCrl } from './crl.js';
import { readChildren, readTlv } from './der.js';

/** KeyUsage bits of RFC 5280 §4.2.1.3, by name. */
export const KEY_USAGE = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
} as const;
export type KeyUsageBit = keyof typeof KEY_USAGE;

/** What one position of a chain must be. An absent member is not checked. */
export interface CertRule {
  /** How messages name the position ("VEK", "PCK CA"). */
  what: string;
  /** The subject CN must be one of these, exactly. */
  cn?: readonly string[];
  /** true: basicConstraints says cA TRUE; false: it does not (absent or cA FALSE). */
  ca?: boolean;
  /** KeyUsage must be present with at least these bits set. */
  keyUsage?: readonly KeyUsageBit[];
}

/** DER and algorithm rules shared by certificates and CRLs. */
export interface EncodingRules {
  /** Names the chain or CRL in messages. */
  name: string;
  /** OIDs of the signature algorithms a link (or CRL) may use. */
  signatureAlgorithms: readonly string[];
  /** The DER must re-encode to itself (exact lengths, zero unused bits, no trailing bytes). */
  canonicalDer: boolean;
  /** The outer signatureAlgorithm must equal the one inside the signed TBS. */
  matchingAlgorithms: boolean;
}

export interface ChainProfile extends EncodingRules {
  /** Leaf first, root last: the chain has exactly this many certificates. */
  path: readonly CertRule[];
  /** The trusted roots, matched by SHA-256 fingerprint. */
  anchors: readonly ParsedCert[];
  /** How messages name a trusted root ("Intel root", "ARK for Milan"). */
  rootName: string;
  /** The evidence may stop below the root; the root is then each anchor in turn. */
  rootOptional?: boolean;
}

export interface VerifiedChain {
  /** Leaf first, the accepting anchor last. */
  certs: ParsedCert[];
  root: ParsedCert;
  /** When every certificate of the chain is valid (ms since the epoch, inclusive). */
  validFrom: number;
  validTo: number;
}

function chainError(message: string, details: Record<string, unknown> = {}): AttestationError {
  return new AttestationError('ERR_EVIDENCE_CHAIN', message, { details });
}

const cnOf = (c: ParsedCert) => c.subject.CN ?? '?';

/**
 * A certificate under `rules`' DER requirements, parsed from `der` (through `cache` when given)
 * or as parsed before; throws ERR_EVIDENCE_CHAIN naming `what`.
 */
export function parseChainCert(
  der: Uint8Array | ParsedCert,
  what: string,
  rules: Pick<EncodingRules, 'canonicalDer'>,
  cache?: CertCache,
): ParsedCert {
  let cert: ParsedCert;
  if (der instanceof Uint8Array) {
    try {
      cert = parseCertificate(der, 'ERR_EVIDENCE_CHAIN', cache);
    } catch (err) {
      throw new AttestationError('ERR_EVIDENCE_CHAIN', `${what} does not parse`, { cause: err });
    }
  } else cert = der;
  if (rules.canonicalDer && !cert.canonical) throw chainError(`${what} is not canonical DER`);
  return cert;
}

function checkAlgorithm(
  rules: EncodingRules,
  outer: ParsedCert['sigAlg'],
  inner: ParsedCert['sigAlg'],
  what: string,
): void {
  if (!rules.signatureAlgorithms.includes(outer.algorithm))
    throw chainError(
      `${rules.name}: ${what} uses signature algorithm ${outer.algorithm}, which is not accepted`,
    );
  if (
    rules.matchingAlgorithms &&
    !equalBytes(new Uint8Array(AsnConvert.serialize(outer)), new Uint8Array(AsnConvert.serialize(inner)))
  )
    throw chainError(
      `${rules.name}: ${what} has an outer signatureAlgorithm that differs from the signed one`,
    );
}

/** basicConstraints cA (RFC 5280 §4.2.1.9); a malformed extension counts as "not a CA". */
export function isCa(cert: ParsedCert): boolean {
  const bc = cert.extensions.get('2.5.29.19');
  if (!bc) return false;
  try {
    const seq = readTlv(bc.value);
    const first = readChildren(seq.value)[0];
    return first !== undefined && first.tag === 0x01 && first.value[0] === 0xff;
  } catch {
    return false;
  }
}

/** The KeyUsage bits set (RFC 5280 §4.2.1.3), or undefined without (or with a malformed) extension. */
export function keyUsageBits(cert: ParsedCert): Set<number> | undefined {
  const ku = cert.extensions.get('2.5.29.15');
  if (!ku) return undefined;
  try {
    const bits = readTlv(ku.value);
    if (bits.tag !== 0x03 || bits.end !== ku.value.length || bits.value.length < 1) return undefined;
    const out = new Set<number>();
    for (let i = 1; i < bits.value.length; i++)
      for (let b = 0; b < 8; b++) if (bits.value[i]! & (0x80 >> b)) out.add((i - 1) * 8 + b);
    return out;
  } catch {
    return undefined;
  }
}

function checkRule(cert: ParsedCert, rule: CertRule, name: string): void {
  const what = `${name}: ${rule.what} "${cnOf(cert)}"`;
  if (rule.cn && !rule.cn.includes(cert.subject.CN ?? ''))
    throw chainError(`${what} is not named ${rule.cn.map((c) => `"${c}"`).join(' or ')}`);
  if (rule.ca === true && !isCa(cert)) throw chainError(`${what} is not a CA`);
  if (rule.ca === false && isCa(cert)) throw chainError(`${what} is a CA, where a leaf is required`);
  if (rule.keyUsage) {
    const bits = keyUsageBits(cert);
    const missing = rule.keyUsage.filter((k) => !bits?.has(KEY_USAGE[k]));
    if (missing.length > 0) throw chainError(`${what} lacks key usage ${missing.join(', ')}`);
  }
}

/** True when `cert` names `issuer` as its issuer and carries a valid signature by its key. */
function linkHolds(cert: ParsedCert, issuer: ParsedCert): boolean {
  return (
    equalBytes(cert.issuerDer, issuer.subjectDer) &&
    verifyWithAlgorithm(cert.sigAlg, cert.tbs, cert.signature, issuer.publicKey)
  );
}

/** The one validity check: `cert` is valid at `now` (both ends inclusive, RFC 5280 §4.1.2.5). */
export function checkValidity(cert: ParsedCert, now: Date, what: string): void {
  const t = now.getTime();
  if (t < cert.notBefore.getTime())
    throw chainError(`${what} is not valid before ${cert.notBefore.toISOString()}`, {
      notBefore: cert.notBefore,
    });
  if (t > cert.notAfter.getTime())
    throw chainError(`${what} expired at ${cert.notAfter.toISOString()}`, { notAfter: cert.notAfter });
}

/** A chain verified before, checked again at `now` (signatures do not depend on time; validity does). */
export function checkChainValidity(chain: VerifiedChain, now: Date, name: string): void {
  const t = now.getTime();
  if (t >= chain.validFrom && t <= chain.validTo) return;
  for (const c of chain.certs) checkValidity(c, now, `${name}: "${cnOf(c)}"`);
}

/**
 * Verifies `certs` (leaf first; DER or parsed) under `profile` at `now`: DER rules, every link's
 * algorithm, issuer name and signature, the root one of the anchors and self-signed, each
 * position's name, CA and key-usage rules, and every certificate valid at `now`.
 */
export function verifyChain(
  certs: ReadonlyArray<Uint8Array | ParsedCert>,
  profile: ChainProfile,
  now: Date,
  cache?: CertCache,
): VerifiedChain {
  const { name, path } = profile;
  const n = path.length;
  const withRoot = certs.length === n;
  if (!withRoot && !(profile.rootOptional && certs.length === n - 1))
    throw chainError(`${name}: a chain of ${certs.length} certificates, expected ${n}`);
  const given = certs.map((c, i) => parseChainCert(c, `${name}: ${path[i]!.what}`, profile, cache));
  let candidates: readonly ParsedCert[] = profile.anchors;
  if (withRoot) {
    const last = given[n - 1]!;
    candidates = profile.anchors.filter((a) => a.fingerprint256 === last.fingerprint256);
    if (candidates.length === 0)
      throw chainError(
        `${name}: the chain ends at "${cnOf(last)}" (SHA-256 ${last.fingerprint256}), which is not a trusted ${profile.rootName}`,
        { fingerprint: last.fingerprint256 },
      );
  }
  if (candidates.length === 0) throw chainError(`${name}: no trusted ${profile.rootName}`);

  // The links below the root do not depend on which anchor is tried.
  const below = withRoot ? given.slice(0, n - 1) : given;
  for (let i = 0; i < below.length; i++) {
    const cert = below[i]!;
    checkAlgorithm(
      profile,
      cert.sigAlg,
      cert.asn.tbsCertificate.signature,
      `${path[i]!.what} "${cnOf(cert)}"`,
    );
    const issuer = below[i + 1];
    if (issuer && !linkHolds(cert, issuer))
      throw chainError(`${name}: "${cnOf(cert)}" is not signed by "${cnOf(issuer)}"`);
  }
  for (let i = 0; i < below.length; i++) checkRule(below[i]!, path[i]!, name);

  let lastError: AttestationError | undefined;
  for (const anchor of candidates) {
    try {
      const root = parseChainCert(anchor, `${name}: ${path[n - 1]!.what}`, profile);
      checkRule(root, path[n - 1]!, name);
      checkAlgorithm(profile, root.sigAlg, root.asn.tbsCertificate.signature, `root "${cnOf(root)}"`);
      if (!linkHolds(root, root)) throw chainError(`${name}: the root "${cnOf(root)}" is not self-signed`);
      const top = below[below.length - 1];
      if (top && !linkHolds(top, root))
        throw chainError(`${name}: "${cnOf(top)}" is not signed by "${cnOf(root)}"`);
      const all = [...below, root];
      for (const c of all) checkValidity(c, now, `${name}: "${cnOf(c)}"`);
      return {
        certs: all,
        root,
        validFrom: Math.max(...all.map((c) => c.notBefore.getTime())),
        validTo: Math.min(...all.map((c) => c.notAfter.getTime())),
      };
    } catch (err) {
      if (!(err instanceof AttestationError)) throw err;
      lastError = err;
    }
  }
  throw lastError!;
}

// ---------------------------------------------------------------------------------------------
// CRLs

export interface CrlProfile extends EncodingRules {
  /** What the CRL's issuer must be (e.g. a CA with cRLSign). */
  issuer?: CertRule;
}

/**
 * The one CRL check: parses `der` under `profile`'s DER rules and checks its algorithm, that it
 * names `issuer` and carries `issuer`'s signature. Time is separate (crlValidAt): whether a CRL
 * outside its window is fatal or merely missing is the caller's policy.
 */
export function verifyCrl(der: Uint8Array, issuer: ParsedCert, profile: CrlProfile): ParsedCrl {
  const { name } = profile;
  const crl = parseCrl(der, 'ERR_EVIDENCE_CHAIN');
  if (profile.canonicalDer && !crl.canonical) throw chainError(`${name} is not canonical DER`);
  checkAlgorithm(profile, crl.sigAlg, crl.asn.tbsCertList.signature, 'the CRL');
  if (profile.issuer) checkRule(issuer, profile.issuer, name);
  if (!equalBytes(crl.issuerDer, issuer.subjectDer))
    throw chainError(`${name}: issuer "${crl.issuer.CN ?? '?'}" is not "${cnOf(issuer)}"`);
  if (!verifyWithAlgorithm(crl.sigAlg, crl.tbs, crl.signature, issuer.publicKey))
    throw chainError(`${name}: signature by "${cnOf(issuer)}" does not verify`);
  return crl;
}

/** The CRL is inside thisUpdate..nextUpdate at `now` (inclusive; no nextUpdate: no end). */
export function crlValidAt(crl: ParsedCrl, now: Date): boolean {
  const t = now.getTime();
  return crl.thisUpdate.getTime() <= t && (!crl.nextUpdate || t <= crl.nextUpdate.getTime());
}

/** The certificates of `certs` that `crl` lists (by serial; the caller pairs the CRL with their issuer). */
export function revokedOf(crl: ParsedCrl, certs: readonly ParsedCert[]): ParsedCert[] {
  return certs.filter((c) => crl.revoked.has(c.serialHex));
}
