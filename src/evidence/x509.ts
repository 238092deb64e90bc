/**
 * Certificates and CRLs for both vendors: parsing (via @peculiar/asn1-x509), signature checks
 * (via node:crypto), and building (for the simulated platforms). node:crypto has no CRL API and
 * its X509Certificate hides the TBS bytes and the PSS parameters, so signatures are verified
 * here over the exact TBS bytes with the algorithm the certificate names.
 */
import {
  createHash,
  createPublicKey,
  constants as cryptoConstants,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  Certificate,
  CertificateList,
  Extension,
  Extensions,
  Name,
  RelativeDistinguishedName,
  RevokedCertificate,
  SubjectPublicKeyInfo,
  TBSCertificate,
  TBSCertList,
  Time,
  Validity,
} from '@peculiar/asn1-x509';
import { AttestationError, type ErrorCode } from '../errors.js';
import { bytesToHex, equalBytes, hexToBytes } from './bytes.js';

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

// ---------------------------------------------------------------------------------------------
// Minimal DER reader: enough for PSS parameters and vendor extensions whose values are not
// modelled by asn1-x509 (AMD's raw hwID, Intel's SGX extension sequence).

export interface Tlv {
  tag: number;
  /** Offset of the value within the buffer that was read. */
  start: number;
  end: number;
  value: Uint8Array;
}

/** Reads one TLV at `offset`; throws ERR_EVIDENCE_MALFORMED on anything out of bounds. */
export function readTlv(buf: Uint8Array, offset = 0, code: ErrorCode = 'ERR_EVIDENCE_MALFORMED'): Tlv {
  const fail = (why: string) => new AttestationError(code, `DER: ${why} at offset ${offset}`);
  if (offset + 2 > buf.length) throw fail('truncated header');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw fail('multi-byte tags are not supported');
  let len = buf[offset + 1]!;
  let pos = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw fail('unsupported length');
    if (pos + n > buf.length) throw fail('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + i]!;
    pos += n;
  }
  if (pos + len > buf.length) throw fail('value runs past the end');
  return { tag, start: pos, end: pos + len, value: buf.subarray(pos, pos + len) };
}

/** Reads all TLVs inside a constructed value. */
export function readChildren(value: Uint8Array, code: ErrorCode = 'ERR_EVIDENCE_MALFORMED'): Tlv[] {
  const out: Tlv[] = [];
  let pos = 0;
  while (pos < value.length) {
    const t = readTlv(value, pos, code);
    out.push(t);
    pos = t.end;
  }
  return out;
}

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

/** Decodes a DER INTEGER value (non-negative, up to 2^53). */
export function derUint(value: Uint8Array): number {
  let n = 0;
  for (const b of value) n = n * 256 + b;
  if (!Number.isSafeInteger(n)) throw new AttestationError('ERR_EVIDENCE_MALFORMED', 'DER integer too large');
  return n;
}

function derOid(value: Uint8Array): string {
  const parts: number[] = [];
  let acc = 0;
  for (const [i, b] of value.entries()) {
    acc = acc * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      if (parts.length === 0) {
        parts.push(acc < 80 ? Math.floor(acc / 40) : 2, acc < 80 ? acc % 40 : acc - 80);
      } else parts.push(acc);
      acc = 0;
    } else if (i === value.length - 1) {
      throw new AttestationError('ERR_EVIDENCE_MALFORMED', 'DER: truncated OID');
    }
  }
  return parts.join('.');
}

/** Decodes an OBJECT IDENTIFIER TLV value into dotted form. */
export { derOid as decodeOid };

// ---------------------------------------------------------------------------------------------
// PEM

/**
 * Splits PEM text into DER blobs. Accepts a trailing NUL (Intel PCK chains carry one) and
 * ignores text between blocks; anything that is not a CERTIFICATE block is refused.
 */
export function pemToDer(text: string, code: ErrorCode = 'ERR_EVIDENCE_MALFORMED'): Uint8Array[] {
  const out: Uint8Array[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (const m of text.replace(/\0+$/, '').matchAll(re)) {
    if (m[1] !== 'CERTIFICATE' && m[1] !== 'X509 CRL')
      throw new AttestationError(code, `unexpected PEM block "${m[1]}"`);
    const b64 = (m[2] ?? '').replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new AttestationError(code, 'PEM body is not base64');
    out.push(new Uint8Array(Buffer.from(b64, 'base64')));
  }
  return out;
}

export function derToPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Normalises the ways a caller may hand over a chain (PEM text, PEM/DER bytes, lists of either). */
export function toDerList(
  input: string | Uint8Array | Array<Uint8Array | string>,
  code: ErrorCode = 'ERR_EVIDENCE_MALFORMED',
): Uint8Array[] {
  const items = Array.isArray(input) ? input : [input];
  const out: Uint8Array[] = [];
  for (const item of items) {
    if (typeof item === 'string') out.push(...pemToDer(item, code));
    else if (item.length > 0 && item[0] === 0x30) out.push(item);
    else out.push(...pemToDer(Buffer.from(item).toString('latin1'), code));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Certificates

export interface ParsedCert {
  der: Uint8Array;
  tbs: Uint8Array;
  asn: Certificate;
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

function nameToRecord(name: Name): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rdn of name) {
    for (const atv of rdn) {
      const key = NAME_KEYS[atv.type] ?? atv.type;
      out[key] = atv.value.toString();
    }
  }
  return out;
}

const certCache = new Map<string, ParsedCert>();
const CERT_CACHE_MAX = 256;

/**
 * Parses a DER certificate. Results are memoised by content hash: the same VCEK or PCK chain
 * arrives with every report, and parsing ASN.1 costs more than hashing it.
 */
export function parseCertificate(der: Uint8Array, code: ErrorCode = 'ERR_EVIDENCE_MALFORMED'): ParsedCert {
  // The few certificates of the last evidence come again with the next: comparing bytes is
  // cheaper than hashing them.
  for (const r of recentCerts) if (equalBytes(r.bytes, der)) return r.cert;
  const key = createHash('sha256').update(der).digest('hex');
  const hit = certCache.get(key);
  if (hit) {
    remember(hit, der);
    return hit;
  }
  let asn: Certificate;
  let publicKey: KeyObject;
  let spki: Uint8Array;
  try {
    asn = AsnConvert.parse(der, Certificate);
    spki = new Uint8Array(AsnConvert.serialize(asn.tbsCertificate.subjectPublicKeyInfo));
    publicKey = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch (err) {
    throw new AttestationError(code, 'certificate does not parse', { cause: err });
  }
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
  const parsed: ParsedCert = {
    der,
    tbs,
    asn,
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
  if (certCache.size >= CERT_CACHE_MAX) certCache.delete(certCache.keys().next().value as string);
  certCache.set(key, parsed);
  remember(parsed, der);
  return parsed;
}

const RECENT_MAX = 6;
/** Own copies of the bytes: a caller may reuse its buffer after parsing. */
const recentCerts: Array<{ bytes: Uint8Array; cert: ParsedCert }> = [];

function remember(cert: ParsedCert, der: Uint8Array): void {
  if (recentCerts.length >= RECENT_MAX) recentCerts.pop();
  recentCerts.unshift({ bytes: new Uint8Array(der), cert });
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
      hash = HASH_BY_OID[derOid(oid!.value)] ?? 'unknown';
    } else if (field.tag === 0xa1) {
      const [mgfOid, mgfParams] = readChildren(inner.value, 'ERR_EVIDENCE_CHAIN');
      if (!mgfOid || derOid(mgfOid.value) !== OID.mgf1 || !mgfParams)
        throw new AttestationError('ERR_EVIDENCE_CHAIN', 'RSASSA-PSS with an MGF other than MGF1');
      const [hOid] = readChildren(mgfParams.value, 'ERR_EVIDENCE_CHAIN');
      mgfHash = HASH_BY_OID[derOid(hOid!.value)] ?? 'unknown';
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

export function isValidAt(cert: { notBefore: Date; notAfter: Date }, now: Date): boolean {
  const t = now.getTime();
  return cert.notBefore.getTime() <= t && t <= cert.notAfter.getTime();
}

// ---------------------------------------------------------------------------------------------
// CRLs

export interface ParsedCrl {
  der: Uint8Array;
  tbs: Uint8Array;
  issuer: Record<string, string>;
  issuerDer: Uint8Array;
  thisUpdate: Date;
  nextUpdate?: Date;
  /** Serial numbers (lowercase hex, as in ParsedCert.serialHex) of revoked certificates. */
  revoked: Set<string>;
  sigAlg: AlgorithmIdentifier;
  signature: Uint8Array;
}

export function parseCrl(der: Uint8Array, code: ErrorCode = 'ERR_COLLATERAL_UNAVAILABLE'): ParsedCrl {
  let asn: CertificateList;
  try {
    asn = AsnConvert.parse(der, CertificateList);
  } catch (err) {
    throw new AttestationError(code, 'CRL does not parse', { cause: err });
  }
  const t = asn.tbsCertList;
  const tbs = asn.tbsCertListRaw
    ? new Uint8Array(asn.tbsCertListRaw)
    : new Uint8Array(AsnConvert.serialize(t));
  return {
    der,
    tbs,
    issuer: nameToRecord(t.issuer),
    issuerDer: new Uint8Array(AsnConvert.serialize(t.issuer)),
    thisUpdate: t.thisUpdate.getTime(),
    ...(t.nextUpdate ? { nextUpdate: t.nextUpdate.getTime() } : {}),
    revoked: new Set((t.revokedCertificates ?? []).map((r) => bytesToHex(new Uint8Array(r.userCertificate)))),
    sigAlg: asn.signatureAlgorithm,
    signature: new Uint8Array(asn.signature),
  };
}

/**
 * Checks a CRL's issuer name, signature and validity window. Throws `code` (the caller decides
 * whether a bad CRL is a chain problem or a collateral problem).
 */
export function checkCrl(crl: ParsedCrl, issuer: ParsedCert, now: Date, code: ErrorCode): void {
  if (!Buffer.from(crl.issuerDer).equals(Buffer.from(issuer.subjectDer)))
    throw new AttestationError(code, `CRL issuer ${crl.issuer.CN ?? '?'} is not ${issuer.subject.CN ?? '?'}`);
  if (!verifyWithAlgorithm(crl.sigAlg, crl.tbs, crl.signature, issuer.publicKey))
    throw new AttestationError(code, `CRL signature by ${issuer.subject.CN ?? '?'} does not verify`);
  if (now.getTime() < crl.thisUpdate.getTime())
    throw new AttestationError(code, `CRL not valid before ${crl.thisUpdate.toISOString()}`);
  if (crl.nextUpdate && now.getTime() > crl.nextUpdate.getTime())
    throw new AttestationError(code, `CRL expired at ${crl.nextUpdate.toISOString()}`);
}

// ---------------------------------------------------------------------------------------------
// Building (simulated platforms and tests). Never used on a verification path.

export type SigningAlgorithm = 'ecdsa-sha256' | 'ecdsa-sha384' | 'rsa-pss-sha384' | 'rsa-pss-sha256';

/** DER of RSASSA-PSS-params {SHA-384, MGF1(SHA-384), salt 48, trailer 1} as AMD encodes them. */
const PSS_SHA384_PARAMS = hexToBytes(
  '3034a00f300d06096086480165030402020500a11c301a06092a864886f70d010108300d06096086480165030402020500a203020130',
);

/** DER of RSASSA-PSS-params {SHA-256, MGF1(SHA-256), salt 32, trailer 1}, as Google's CAs sign. */
const PSS_SHA256_PARAMS = hexToBytes(
  '3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120',
);

function algorithmIdentifier(alg: SigningAlgorithm): AlgorithmIdentifier {
  switch (alg) {
    case 'ecdsa-sha256':
      return new AlgorithmIdentifier({ algorithm: OID.ecdsaSha256 });
    case 'ecdsa-sha384':
      return new AlgorithmIdentifier({ algorithm: OID.ecdsaSha384 });
    case 'rsa-pss-sha384':
      return new AlgorithmIdentifier({ algorithm: OID.rsaPss, parameters: PSS_SHA384_PARAMS.slice().buffer });
    case 'rsa-pss-sha256':
      return new AlgorithmIdentifier({ algorithm: OID.rsaPss, parameters: PSS_SHA256_PARAMS.slice().buffer });
  }
}

function signWith(alg: SigningAlgorithm, data: Uint8Array, key: KeyObject): Uint8Array {
  if (alg === 'rsa-pss-sha384') {
    return new Uint8Array(
      sign('sha384', data, { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: 48 }),
    );
  }
  if (alg === 'rsa-pss-sha256') {
    return new Uint8Array(
      sign('sha256', data, { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }),
    );
  }
  return new Uint8Array(sign(alg === 'ecdsa-sha256' ? 'sha256' : 'sha384', data, key));
}

export type NameSpec = Array<[keyof typeof NAME_OIDS, string]>;
const NAME_OIDS = {
  CN: OID.commonName,
  C: OID.country,
  L: OID.locality,
  ST: OID.state,
  O: OID.organization,
  OU: OID.organizationalUnit,
};

export function buildName(spec: NameSpec): Name {
  return new Name(
    spec.map(
      ([k, v]) =>
        new RelativeDistinguishedName([
          new AttributeTypeAndValue({
            type: NAME_OIDS[k],
            value: new AttributeValue(k === 'C' ? { printableString: v } : { utf8String: v }),
          }),
        ]),
    ),
  );
}

export interface BuildCertOptions {
  subject: NameSpec;
  issuer: NameSpec;
  serial: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
  signingKey: KeyObject;
  algorithm: SigningAlgorithm;
  /** Extensions as (OID, DER value, critical). */
  extensions?: Array<{ oid: string; value: Uint8Array; critical?: boolean }>;
}

export function buildCertificate(o: BuildCertOptions): Uint8Array {
  const spkiDer = o.publicKey.export({ format: 'der', type: 'spki' });
  const tbs = new TBSCertificate({
    version: 2,
    serialNumber: o.serial.slice().buffer,
    signature: algorithmIdentifier(o.algorithm),
    issuer: buildName(o.issuer),
    validity: new Validity({ notBefore: o.notBefore, notAfter: o.notAfter }),
    subject: buildName(o.subject),
    subjectPublicKeyInfo: AsnConvert.parse(spkiDer, SubjectPublicKeyInfo),
    ...(o.extensions && o.extensions.length > 0
      ? {
          extensions: new Extensions(
            o.extensions.map(
              (e) =>
                new Extension({
                  extnID: e.oid,
                  critical: e.critical ?? false,
                  extnValue: new OctetString(e.value.slice().buffer),
                }),
            ),
          ),
        }
      : {}),
  });
  const tbsDer = new Uint8Array(AsnConvert.serialize(tbs));
  const cert = new Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: algorithmIdentifier(o.algorithm),
    signatureValue: signWith(o.algorithm, tbsDer, o.signingKey).slice().buffer,
  });
  return new Uint8Array(AsnConvert.serialize(cert));
}

export interface BuildCrlOptions {
  issuer: NameSpec;
  thisUpdate: Date;
  nextUpdate: Date;
  revokedSerials?: Uint8Array[];
  signingKey: KeyObject;
  algorithm: SigningAlgorithm;
}

export function buildCrl(o: BuildCrlOptions): Uint8Array {
  const tbs = new TBSCertList({
    version: 1,
    signature: algorithmIdentifier(o.algorithm),
    issuer: buildName(o.issuer),
    thisUpdate: new Time(o.thisUpdate),
    nextUpdate: new Time(o.nextUpdate),
    ...(o.revokedSerials && o.revokedSerials.length > 0
      ? {
          revokedCertificates: o.revokedSerials.map(
            (s) =>
              new RevokedCertificate({
                userCertificate: s.slice().buffer,
                revocationDate: new Time(o.thisUpdate),
              }),
          ),
        }
      : {}),
  });
  const tbsDer = new Uint8Array(AsnConvert.serialize(tbs));
  const crl = new CertificateList({
    tbsCertList: tbs,
    signatureAlgorithm: algorithmIdentifier(o.algorithm),
    signature: signWith(o.algorithm, tbsDer, o.signingKey).slice().buffer,
  });
  return new Uint8Array(AsnConvert.serialize(crl));
}
