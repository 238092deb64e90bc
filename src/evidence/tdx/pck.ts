/**
 * The PCK certificate chain of a TDX quote: leaf "Intel SGX PCK Certificate" ← "Intel SGX PCK
 * Platform CA" (or "…Processor CA") ← a trusted Intel root, and the SGX extension of the leaf
 * (FMSPC, PCE-ID, the 16 SGX TCB component SVNs and PCESVN) that TCB matching needs.
 *
 * Checking a chain costs two signature verifications and the ASN.1 parse of three certificates,
 * while the same chain arrives with every quote of a platform; so verified chains are cached by
 * their bytes and the trusted roots, together with the interval in which all three certificates
 * are valid, and a cached answer is used only for a `now` inside that interval.
 */
import { createHash } from 'node:crypto';
import { AttestationError } from '../../errors.js';
import { equalBytes } from '../bytes.js';
import { isSignedBy, type ParsedCert, parseCertificate } from '../x509/cert.js';
import { decodeOid, derUint, readChildren, readTlv } from '../x509/der.js';
import { findAnchor } from './roots.js';

const SGX_EXTENSION_OID = '1.2.840.113741.1.13.1';
const OID_TCB = `${SGX_EXTENSION_OID}.2`;
const OID_PCEID = `${SGX_EXTENSION_OID}.3`;
const OID_FMSPC = `${SGX_EXTENSION_OID}.4`;
const BASIC_CONSTRAINTS = '2.5.29.19';

export interface SgxExtensions {
  fmspc: Uint8Array;
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
  return {
    fmspc: octets(OID_FMSPC, 6, 'FMSPC'),
    pceId: octets(OID_PCEID, 2, 'PCE-ID'),
    sgxTcbComponents,
    pceSvn: int(`${OID_TCB}.17`, 'PCESVN', 0xffff),
  };
}

/** True when the certificate's basicConstraints says it is a CA. */
function isCa(cert: ParsedCert): boolean {
  const bc = cert.extensions.get(BASIC_CONSTRAINTS);
  if (!bc) return false;
  try {
    const seq = readTlv(bc.value);
    const first = readChildren(seq.value)[0];
    return first !== undefined && first.tag === 0x01 && first.value[0] === 0xff;
  } catch {
    return false;
  }
}

function chainError(message: string): AttestationError {
  return new AttestationError('ERR_EVIDENCE_CHAIN', message);
}

function checkValidity(cert: ParsedCert, now: Date, what: string): void {
  const t = now.getTime();
  if (t < cert.notBefore.getTime())
    throw chainError(`${what} is not valid before ${cert.notBefore.toISOString()}`);
  if (t > cert.notAfter.getTime()) throw chainError(`${what} expired at ${cert.notAfter.toISOString()}`);
}

/**
 * Verifies `[cert, ..., root]` where the last certificate must be byte-identical to one of the
 * trusted roots (a root carried by the evidence is never trusted because of its name), each
 * certificate is signed by the next, every issuer is a CA, and all are valid at `now`.
 * Returns the accepting root.
 */
export function verifyChainToRoot(
  ders: Uint8Array[],
  roots: ParsedCert[],
  now: Date,
  what: string,
): ParsedCert[] {
  if (ders.length < 2) throw chainError(`${what}: a chain needs at least a certificate and its root`);
  const certs = ders.map((d) => parseCertificate(d, 'ERR_EVIDENCE_CHAIN'));
  const root = findAnchor(ders[ders.length - 1]!, roots);
  if (!root)
    throw chainError(
      `${what}: the chain ends at "${certs[certs.length - 1]!.subject.CN ?? '?'}" (SHA-256 ${certs[certs.length - 1]!.fingerprint256}), which is not a trusted Intel root`,
    );
  for (let i = 0; i < certs.length - 1; i++) {
    const issuer = certs[i + 1]!;
    if (!isCa(issuer)) throw chainError(`${what}: issuer "${issuer.subject.CN ?? '?'}" is not a CA`);
    if (!isSignedBy(certs[i]!, issuer))
      throw chainError(
        `${what}: "${certs[i]!.subject.CN ?? '?'}" is not signed by "${issuer.subject.CN ?? '?'}"`,
      );
  }
  if (!isSignedBy(root, root)) throw chainError(`${what}: the root is not self-signed`);
  for (const c of certs) checkValidity(c, now, `${what}: "${c.subject.CN ?? '?'}"`);
  return certs;
}

interface CachedChain {
  chain: PckChain;
  notBefore: number;
  notAfter: number;
}

const chainCache = new Map<string, CachedChain>();
const CHAIN_CACHE_MAX = 128;

/** Verifies the quote's PCK chain to one of `roots` at `now` (no revocation here: see collateral.ts). */
export function verifyPckChain(ders: Uint8Array[], roots: ParsedCert[], now: Date): PckChain {
  const t = now.getTime();
  // The chain of the last quote, compared byte for byte before anything is hashed.
  const last = lastChain;
  if (
    last &&
    last.notBefore <= t &&
    t <= last.notAfter &&
    last.ders.length === ders.length &&
    last.ders.every((d, i) => equalBytes(d, ders[i]!)) &&
    last.roots.length === roots.length &&
    last.roots.every((r, i) => r === roots[i])
  )
    return last.chain;
  const entry = verifyPckChainHashed(ders, roots, now);
  lastChain = { ...entry, ders: ders.map((d) => new Uint8Array(d)), roots: [...roots] };
  return entry.chain;
}

let lastChain: (CachedChain & { ders: Uint8Array[]; roots: ParsedCert[] }) | undefined;

function chainKey(ders: Uint8Array[], roots: ParsedCert[]): string {
  const h = createHash('sha256');
  for (const d of ders) h.update(createHash('sha256').update(d).digest());
  for (const r of roots) h.update(r.fingerprint256);
  return h.digest('hex');
}

function verifyPckChainHashed(ders: Uint8Array[], roots: ParsedCert[], now: Date): CachedChain {
  const key = chainKey(ders, roots);
  const t = now.getTime();
  const hit = chainCache.get(key);
  if (hit && hit.notBefore <= t && t <= hit.notAfter) return hit;

  if (ders.length !== 3) throw chainError(`PCK chain has ${ders.length} certificates, expected 3`);
  const [leaf, intermediate, root] = verifyChainToRoot(ders, roots, now, 'PCK chain') as [
    ParsedCert,
    ParsedCert,
    ParsedCert,
  ];
  if (!(leaf.subject.CN ?? '').includes('SGX PCK Certificate'))
    throw chainError(`PCK leaf "${leaf.subject.CN ?? '?'}" is not an SGX PCK Certificate`);
  let ca: 'platform' | 'processor';
  if (intermediate.subject.CN === 'Intel SGX PCK Platform CA') ca = 'platform';
  else if (intermediate.subject.CN === 'Intel SGX PCK Processor CA') ca = 'processor';
  else throw chainError(`PCK issuer "${intermediate.subject.CN ?? '?'}" is not an Intel SGX PCK CA`);
  const chain: PckChain = { leaf, intermediate, root, ca, sgx: parseSgxExtensions(leaf) };

  const entry: CachedChain = {
    chain,
    notBefore: Math.max(...[leaf, intermediate, root].map((c) => c.notBefore.getTime())),
    notAfter: Math.min(...[leaf, intermediate, root].map((c) => c.notAfter.getTime())),
  };
  if (chainCache.size >= CHAIN_CACHE_MAX) chainCache.delete(chainCache.keys().next().value as string);
  chainCache.set(key, entry);
  return entry;
}
