/**
 * The PCK certificate chain of a TDX quote: leaf "Intel SGX PCK Certificate" ← "Intel SGX PCK
 * Platform CA" (or "…Processor CA") ← a trusted Intel root, and the SGX extension of the leaf:
 * the FMSPC, PCE-ID, 16 SGX TCB component SVNs and PCESVN that TCB matching needs, and the PPID
 * that names the platform (policy `tdx.ppids`).
 *
 * Checking a chain costs two signature verifications and the ASN.1 parse of three certificates,
 * while the same chain arrives with every quote of a platform; a Verifier keeps verified chains
 * with the interval in which all three certificates are valid (tdx/verify.ts), and uses a kept
 * answer only for a `now` inside that interval.
 */
import { AttestationError } from '../../errors.js';
import { bytesToHex } from '../bytes.js';
import { type CertCache, OID, type ParsedCert } from '../x509/cert.js';
import { type CertRule, type ChainProfile, type CrlProfile, verifyChain } from '../x509/chain.js';
import { decodeOid, derUint, readChildren, readTlv } from '../x509/der.js';

const SGX_EXTENSION_OID = '1.2.840.113741.1.13.1';
const OID_PPID = `${SGX_EXTENSION_OID}.1`;
const OID_TCB = `${SGX_EXTENSION_OID}.2`;
const OID_PCEID = `${SGX_EXTENSION_OID}.3`;
const OID_FMSPC = `${SGX_EXTENSION_OID}.4`;

export interface SgxExtensions {
  /**
   * The Platform Provisioning ID (16 bytes): Intel's identifier of one platform, which its PCK
   * certificates carry in the clear (Intel SGX PCK Certificate and CRL Profile, SGX Extensions;
   * Intel's QVL requires it in every PCK certificate).
   */
  ppid: Uint8Array;
  fmspc: Uint8Array;
  /** ppid and fmspc in lowercase hex, as claims carry them: formatted once per certificate, not per quote. */
  ppidHex: string;
  fmspcHex: string;
  pceId: Uint8Array;
  /** SGX TCB component SVNs 1..16 (index 0..15). */
  sgxTcbComponents: number[];
  pceSvn: number;
}

export interface PckChain {
  leaf: ParsedCert;
  intermediate: ParsedCert;
  root: ParsedCert;
  /** Which PCK CA issued the leaf (selects the PCK CRL to fetch). */
  ca: 'platform' | 'processor';
  sgx: SgxExtensions;
}

function malformedExt(why: string): AttestationError {
  return new AttestationError('ERR_EVIDENCE_MALFORMED', `PCK certificate SGX extension: ${why}`);
}

/**
 * Reads the SGX extension (a SEQUENCE of {OID, value} pairs; the TCB entry is itself a sequence
 * of 18 such pairs). Each required entry must appear exactly once.
 */
export function parseSgxExtensions(cert: ParsedCert): SgxExtensions {
  const ext = cert.extensions.get(SGX_EXTENSION_OID);
  if (!ext) throw malformedExt('missing');
  const outer = readTlv(ext.value);
  if (outer.tag !== 0x30 || outer.end !== ext.value.length) throw malformedExt('not a SEQUENCE');
  const entries = new Map<string, { tag: number; value: Uint8Array }>();
  const pairs = (seq: Uint8Array, into: Map<string, { tag: number; value: Uint8Array }>) => {
    for (const item of readChildren(seq)) {
      if (item.tag !== 0x30) throw malformedExt('entry is not a SEQUENCE');
      const [oid, value, ...extra] = readChildren(item.value);
      if (oid?.tag !== 0x06 || !value || extra.length > 0) throw malformedExt('entry is not {OID, value}');
      const name = decodeOid(oid.value);
      if (into.has(name)) throw malformedExt(`duplicate entry ${name}`);
      into.set(name, { tag: value.tag, value: value.value });
    }
  };
  pairs(outer.value, entries);
  const octets = (oid: string, len: number, what: string) => {
    const e = entries.get(oid);
    if (e?.tag !== 0x04 || e.value.length !== len) throw malformedExt(`${what} missing or not ${len} bytes`);
    return e.value;
  };
  const tcb = entries.get(OID_TCB);
  if (tcb?.tag !== 0x30) throw malformedExt('TCB missing');
  const tcbEntries = new Map<string, { tag: number; value: Uint8Array }>();
  pairs(tcb.value, tcbEntries);
  const int = (oid: string, what: string, max: number) => {
    const e = tcbEntries.get(oid);
    if (e?.tag !== 0x02 || e.value.length === 0 || e.value.length > 3 || (e.value[0]! & 0x80) !== 0)
      throw malformedExt(`${what} missing or not a small non-negative INTEGER`);
    const n = derUint(e.value);
    if (n > max) throw malformedExt(`${what} ${n} out of range`);
    return n;
  };
  const sgxTcbComponents: number[] = [];
  for (let i = 1; i <= 16; i++) sgxTcbComponents.push(int(`${OID_TCB}.${i}`, `SGX TCB component ${i}`, 255));
  const ppid = octets(OID_PPID, 16, 'PPID');
  const fmspc = octets(OID_FMSPC, 6, 'FMSPC');
  return {
    ppid,
    fmspc,
    ppidHex: bytesToHex(ppid),
    fmspcHex: bytesToHex(fmspc),
    pceId: octets(OID_PCEID, 2, 'PCE-ID'),
    sgxTcbComponents,
    pceSvn: int(`${OID_TCB}.17`, 'PCESVN', 0xffff),
  };
}

function chainError(message: string): AttestationError {
  return new AttestationError('ERR_EVIDENCE_CHAIN', message);
}

/**
 * Intel signs every certificate and CRL of the PCK and TCB-signing hierarchies with ECDSA P-256
 * SHA-256 (Intel SGX PCK Certificate and CRL Profile Specification).
 */
const INTEL_ENCODING = {
  signatureAlgorithms: [OID.ecdsaSha256],
  canonicalDer: true,
  matchingAlgorithms: true,
} as const;
const PCK_CA_NAMES = ['Intel SGX PCK Platform CA', 'Intel SGX PCK Processor CA'];
const ROOT: CertRule = { what: 'root', cn: ['Intel SGX Root CA'], ca: true };

function intelProfile(name: string, path: CertRule[], anchors: readonly ParsedCert[]): ChainProfile {
  return { name, ...INTEL_ENCODING, rootName: 'Intel root', anchors, path };
}

/** The quote's PCK chain: PCK leaf ← PCK Platform/Processor CA ← the Intel root. */
export function pckChainProfile(anchors: readonly ParsedCert[]): ChainProfile {
  return intelProfile(
    'PCK chain',
    [
      { what: 'PCK leaf', cn: ['Intel SGX PCK Certificate'], ca: false },
      { what: 'PCK CA', cn: PCK_CA_NAMES, ca: true },
      ROOT,
    ],
    anchors,
  );
}

/**
 * The issuer chain of TCB info and QE identity: exactly [Intel SGX TCB Signing, Intel SGX Root CA]
 * as Intel's QVL requires: a non-CA leaf with digitalSignature issued directly by the root. Any
 * other certificate under the root (a platform's own PCK, a PCK CA) must not sign collateral.
 */
export function tcbSigningProfile(anchors: readonly ParsedCert[], name: string): ChainProfile {
  return intelProfile(
    name,
    [{ what: 'signer', cn: ['Intel SGX TCB Signing'], ca: false, keyUsage: ['digitalSignature'] }, ROOT],
    anchors,
  );
}

/** The PCK CRL's issuer chain: a PCK Platform/Processor CA with cRLSign, issued by the root. */
export function pckCrlIssuerProfile(anchors: readonly ParsedCert[]): ChainProfile {
  return intelProfile(
    'PCK CRL issuer chain',
    [{ what: 'PCK CA', cn: PCK_CA_NAMES, ca: true, keyUsage: ['cRLSign'] }, ROOT],
    anchors,
  );
}

/** The root CA CRL (signed by the root) and the PCK CRL (signed by a PCK CA). */
export const ROOT_CRL_PROFILE: CrlProfile = {
  name: 'root CA CRL',
  ...INTEL_ENCODING,
  issuer: { ...ROOT, keyUsage: ['cRLSign'] },
};
export const PCK_CRL_PROFILE: CrlProfile = {
  name: 'PCK CRL',
  ...INTEL_ENCODING,
  issuer: { what: 'PCK CA', cn: PCK_CA_NAMES, ca: true, keyUsage: ['cRLSign'] },
};

/** A verified PCK chain and when all three of its certificates are valid (ms, inclusive). */
export interface VerifiedPckChain {
  chain: PckChain;
  notBefore: number;
  notAfter: number;
}

/** Verifies the quote's PCK chain to one of `roots` at `now` (no revocation here: see collateral.ts). */
export function verifyPckChain(
  ders: Uint8Array[],
  roots: ParsedCert[],
  now: Date,
  certs?: CertCache,
): VerifiedPckChain {
  const [leaf, intermediate, root] = verifyChain(ders, pckChainProfile(roots), now, certs).certs as [
    ParsedCert,
    ParsedCert,
    ParsedCert,
  ];
  let ca: 'platform' | 'processor';
  if (intermediate.subject.CN === 'Intel SGX PCK Platform CA') ca = 'platform';
  else if (intermediate.subject.CN === 'Intel SGX PCK Processor CA') ca = 'processor';
  else throw chainError(`PCK issuer "${intermediate.subject.CN ?? '?'}" is not an Intel SGX PCK CA`);
  const chain: PckChain = { leaf, intermediate, root, ca, sgx: parseSgxExtensions(leaf) };
  return {
    chain,
    notBefore: Math.max(...[leaf, intermediate, root].map((c) => c.notBefore.getTime())),
    notAfter: Math.min(...[leaf, intermediate, root].map((c) => c.notAfter.getTime())),
  };
}
