/**
 * X.509 certificates: parsing (via @peculiar/asn1-x509) and signature checks (via node:crypto).
 * node:crypto's X509Certificate hides the TBS bytes and the PSS parameters, so signatures are
 * verified here over the exact TBS bytes with the algorithm the certificate names. Chain rules
 * live in chain.ts; this module knows no vendor.
 */
import {
  createHash,
  createPublicKey,
  constants as cryptoConstants,
  type KeyObject,
  verify,
} from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { type AlgorithmIdentifier, Certificate, type Name } from '@peculiar/asn1-x509';
import { AttestationError, type ErrorCode } from '../../errors.js';
import { bytesToHex, equalBytes } from '../bytes.js';
import { decodeOid, derUint, readChildren, readTlv } from './der.js';

export const OID = {
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  rsaPss: '1.2.840.113549.1.1.10',
  rsaSha256: '1.2.840.113549.1.1.11',
  rsaSha384: '1.2.840.113549.1.1.12',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
  mgf1: '1.2.840.113549.1.1.8',
  commonName: '2.5.4.3',
  country: '2.5.4.6',
  locality: '2.5.4.7',
  state: '2.5.4.8',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
} as const;

const HASH_BY_OID: Record<string, string> = {
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512',
};

/**
 * The SubjectPublicKeyInfo of a certificate, byte for byte as it stands in the DER (a walk over
 * the TBS fields before it, nothing parsed). What the binder hashes; far cheaper than having
 * node:crypto build a KeyObject and export it again (~150 µs a call on Node 20).
 */
export function certificateSpki(der: Uint8Array, code: ErrorCode = 'ERR_EVIDENCE_MALFORMED'): Uint8Array {
  const cert = readTlv(der, 0, code);
  const tbs = readTlv(der, cert.start, code);
  if (cert.tag !== 0x30 || tbs.tag !== 0x30)
    throw new AttestationError(code, 'DER: a certificate is a SEQUENCE holding a SEQUENCE');
  let pos = tbs.start;
  const first = readTlv(der, pos, code);
  if (first.tag === 0xa0) pos = first.end; // [0] version
  // serialNumber, signature, issuer, validity, subject
  for (let i = 0; i < 5; i++) pos = readTlv(der, pos, code).end;
  const spki = readTlv(der, pos, code);
  if (spki.tag !== 0x30 || spki.end > tbs.end)
    throw new AttestationError(code, 'DER: no SubjectPublicKeyInfo where the TBS should hold it');
  return der.subarray(pos, spki.end);
}

export interface ParsedCert {
  der: Uint8Array;
  tbs: Uint8Array;
  asn: Certificate;
  /** The DER is the one encoding of `asn` (x509/chain.ts: the canonical-DER rule). */
  canonical: boolean;
  version: number;
  serialHex: string;
  subject: Record<string, string>;
  issuer: Record<string, string>;
  subjectDer: Uint8Array;
  issuerDer: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  sigAlg: AlgorithmIdentifier;
  signature: Uint8Array;
  spki: Uint8Array;
  publicKey: KeyObject;
  /** Extensions by OID; duplicate OIDs are refused at parse time. */
  extensions: Map<string, { critical: boolean; value: Uint8Array }>;
  /** SHA-256 of the DER, lowercase hex. */
  fingerprint256: string;
}

const NAME_KEYS: Record<string, string> = {
  [OID.commonName]: 'CN',
  [OID.country]: 'C',
  [OID.locality]: 'L',
  [OID.state]: 'ST',
  [OID.organization]: 'O',
  [OID.organizationalUnit]: 'OU',
};

export function nameToRecord(name: Name): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rdn of name) {
    for (const atv of rdn) {
      const key = NAME_KEYS[atv.type] ?? atv.type;
      out[key] = atv.value.toString();
    }
  }
  return out;
}

/**
 * Parsed certificates by the SHA-256 of their DER (hex). A Verifier owns one (an Lru of
 * ../lru.ts, verifier.ts); this layer only needs get and set.
 */
export interface CertCache {
  get(key: string): ParsedCert | undefined;
  set(key: string, cert: ParsedCert): void;
}

/**
 * Certificates larger than this are parsed every time rather than kept in a cache: every real one
 * is under 2 KiB (an RSA-4096 ARK is 1.6 KiB), and the cap bounds what a peer sending large
 * certificates makes a Verifier hold.
 */
export const MAX_KEPT_CERT_BYTES = 8 * 1024;

/**
 * Parses a DER certificate. With `cache` (a Verifier's), a certificate seen before is found by the
 * SHA-256 of its DER: the same VCEK, ASK or PCK chain arrives with every report, and parsing ASN.1
 * (and re-encoding it for the canonical-DER check) costs far more than hashing it. The result
 * holds its own copy of the bytes: a caller may reuse its buffer after parsing.
 */
export function parseCertificate(
  der: Uint8Array,
  code: ErrorCode = 'ERR_EVIDENCE_MALFORMED',
  cache?: CertCache,
): ParsedCert {
  const key = createHash('sha256').update(der).digest('hex');
  const hit = cache?.get(key);
  if (hit) return hit;
  const own = new Uint8Array(der);
  let parsed: ParsedCert;
  // Everything read from the ASN.1 tree is inside the try: asn1js decodes some values (times)
  // lazily and throws plain Errors on malformed ones.
  try {
    const asn = AsnConvert.parse(own, Certificate);
    const spki = new Uint8Array(AsnConvert.serialize(asn.tbsCertificate.subjectPublicKeyInfo));
    const publicKey = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    const tbs = asn.tbsCertificateRaw
      ? new Uint8Array(asn.tbsCertificateRaw)
      : new Uint8Array(AsnConvert.serialize(asn.tbsCertificate));
    const extensions = new Map<string, { critical: boolean; value: Uint8Array }>();
    for (const ext of asn.tbsCertificate.extensions ?? []) {
      if (extensions.has(ext.extnID))
        throw new AttestationError(code, `duplicate certificate extension ${ext.extnID}`);
      extensions.set(ext.extnID, { critical: ext.critical, value: new Uint8Array(ext.extnValue.buffer) });
    }
    const t = asn.tbsCertificate;
    parsed = {
      der: own,
      tbs,
      asn,
      canonical: equalBytes(new Uint8Array(AsnConvert.serialize(asn)), own),
      version: t.version + 1,
      serialHex: bytesToHex(new Uint8Array(t.serialNumber)),
      subject: nameToRecord(t.subject),
      issuer: nameToRecord(t.issuer),
      subjectDer: new Uint8Array(AsnConvert.serialize(t.subject)),
      issuerDer: new Uint8Array(AsnConvert.serialize(t.issuer)),
      notBefore: t.validity.notBefore.getTime(),
      notAfter: t.validity.notAfter.getTime(),
      sigAlg: asn.signatureAlgorithm,
      signature: new Uint8Array(asn.signatureValue),
      spki,
      publicKey,
      extensions,
      fingerprint256: key,
    };
  } catch (err) {
    if (err instanceof AttestationError) throw err;
    throw new AttestationError(code, 'certificate does not parse', { cause: err });
  }
  if (der.length <= MAX_KEPT_CERT_BYTES) cache?.set(key, parsed);
  return parsed;
}

interface PssParams {
  hash: string;
  saltLength: number;
}

function parsePssParams(params: ArrayBuffer | undefined): PssParams {
  // Defaults of RFC 4055 are SHA-1; no vendor uses them, so absent parameters are refused.
  if (!params) throw new AttestationError('ERR_EVIDENCE_CHAIN', 'RSASSA-PSS without parameters');
  const seq = readTlv(new Uint8Array(params), 0, 'ERR_EVIDENCE_CHAIN');
  let hash = 'sha1';
  let mgfHash = 'sha1';
  let saltLength = 20;
  for (const field of readChildren(seq.value, 'ERR_EVIDENCE_CHAIN')) {
    const inner = readTlv(field.value, 0, 'ERR_EVIDENCE_CHAIN');
    if (field.tag === 0xa0) {
      const [oid] = readChildren(inner.value, 'ERR_EVIDENCE_CHAIN');
      hash = HASH_BY_OID[decodeOid(oid!.value)] ?? 'unknown';
    } else if (field.tag === 0xa1) {
      const [mgfOid, mgfParams] = readChildren(inner.value, 'ERR_EVIDENCE_CHAIN');
      if (!mgfOid || decodeOid(mgfOid.value) !== OID.mgf1 || !mgfParams)
        throw new AttestationError('ERR_EVIDENCE_CHAIN', 'RSASSA-PSS with an MGF other than MGF1');
      const [hOid] = readChildren(mgfParams.value, 'ERR_EVIDENCE_CHAIN');
      mgfHash = HASH_BY_OID[decodeOid(hOid!.value)] ?? 'unknown';
    } else if (field.tag === 0xa2) {
      saltLength = derUint(inner.value);
    } else if (field.tag === 0xa3) {
      if (derUint(inner.value) !== 1)
        throw new AttestationError('ERR_EVIDENCE_CHAIN', 'RSASSA-PSS trailer is not 1');
    }
  }
  if (hash === 'unknown' || hash === 'sha1' || hash !== mgfHash)
    throw new AttestationError('ERR_EVIDENCE_CHAIN', `unsupported RSASSA-PSS hash ${hash}/MGF1-${mgfHash}`);
  return { hash, saltLength };
}

/**
 * Verifies `signature` over `data` with the algorithm an AlgorithmIdentifier names. Returns false
 * for a wrong signature; throws ERR_EVIDENCE_CHAIN for an algorithm this library does not accept.
 */
export function verifyWithAlgorithm(
  alg: AlgorithmIdentifier,
  data: Uint8Array,
  signature: Uint8Array,
  key: KeyObject,
): boolean {
  try {
    switch (alg.algorithm) {
      case OID.ecdsaSha256:
        return verify('sha256', data, key, signature);
      case OID.ecdsaSha384:
        return verify('sha384', data, key, signature);
      case OID.rsaSha256:
        return verify('sha256', data, { key, padding: cryptoConstants.RSA_PKCS1_PADDING }, signature);
      case OID.rsaSha384:
        return verify('sha384', data, { key, padding: cryptoConstants.RSA_PKCS1_PADDING }, signature);
      case OID.rsaPss: {
        const p = parsePssParams(alg.parameters ?? undefined);
        return verify(
          p.hash,
          data,
          { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: p.saltLength },
          signature,
        );
      }
      default:
        throw new AttestationError('ERR_EVIDENCE_CHAIN', `unsupported signature algorithm ${alg.algorithm}`);
    }
  } catch (err) {
    if (err instanceof AttestationError) throw err;
    // OpenSSL throws on keys of the wrong type for the algorithm: that is a failed check.
    return false;
  }
}

/** True when `cert` carries a valid signature by `issuer`'s key and names it as issuer. */
export function isSignedBy(cert: ParsedCert, issuer: ParsedCert): boolean {
  if (!Buffer.from(cert.issuerDer).equals(Buffer.from(issuer.subjectDer))) return false;
  return verifyWithAlgorithm(cert.sigAlg, cert.tbs, cert.signature, issuer.publicKey);
}
