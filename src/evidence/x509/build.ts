/**
 * Building certificates, CRLs and the extension values they carry: the simulated platforms, the
 * channel's own TLS identity (src/channel/identity.ts) and tests. Nothing here verifies; the
 * builders emit the vendors' shapes byte for byte (KDS extensions, the SGX extension, basic
 * constraints, key usage, CRL distribution points) from parameters, knowing no vendor themselves.
 */
import { constants as cryptoConstants, type KeyObject, sign } from 'node:crypto';
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
import { hexToBytes } from '../bytes.js';
import { OID } from './cert.js';
import { concat, derBoolean, derInteger, derOid, derSequence, tlv } from './der.js';

/** rsa-pkcs1-sha384 is no vendor's: tests use it to build a chain AMD's profile must refuse. */
export type SigningAlgorithm =
  | 'ecdsa-sha256'
  | 'ecdsa-sha384'
  | 'rsa-pss-sha384'
  | 'rsa-pss-sha256'
  | 'rsa-pkcs1-sha384';

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
    case 'rsa-pkcs1-sha384':
      return new AlgorithmIdentifier({ algorithm: OID.rsaSha384, parameters: null });
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
  if (alg === 'rsa-pkcs1-sha384')
    return new Uint8Array(sign('sha384', data, { key, padding: cryptoConstants.RSA_PKCS1_PADDING }));
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

/** What buildSelfSignedCertificate() takes: one key, one name, no extensions. */
export interface SelfSignedCertOptions {
  /** Subject and issuer: one commonName (UTF8String). */
  commonName: string;
  serial: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** SubjectPublicKeyInfo DER of `signingKey`'s public key, written into the certificate as is. */
  spki: Uint8Array;
  /** An ECDSA private key; the certificate is signed ecdsa-with-SHA256. */
  signingKey: KeyObject;
}

/**
 * The certificate buildCertificate() makes for `{subject: issuer: [['CN', commonName]], algorithm:
 * 'ecdsa-sha256'}` and no extensions, byte for byte (test/x509/build.test.ts compares them),
 * written straight from its few fields: the schema serializer takes about a millisecond per
 * certificate, and a channel that attests with a fresh TLS identity makes one per connection.
 */
export function buildSelfSignedCertificate(o: SelfSignedCertOptions): Uint8Array {
  const name = derSequence(
    tlv(
      0x31,
      derSequence(derOid(OID.commonName), tlv(0x0c, new Uint8Array(Buffer.from(o.commonName, 'utf8')))),
    ),
  );
  const algorithm = derSequence(derOid(OID.ecdsaSha256));
  const tbs = derSequence(
    tlv(0xa0, derInteger(2)),
    tlv(0x02, o.serial),
    algorithm,
    name,
    derSequence(derTime(o.notBefore), derTime(o.notAfter)),
    name,
    o.spki,
  );
  const signature = sign('sha256', tbs, o.signingKey);
  return derSequence(tbs, algorithm, tlv(0x03, concat(Uint8Array.of(0), signature)));
}

/** X.509 Time (RFC 5280 §4.1.2.5): UTCTime for 1950–2049, GeneralizedTime otherwise; whole seconds. */
function derTime(date: Date): Uint8Array {
  const year = date.getUTCFullYear();
  const two = (n: number) => String(n).padStart(2, '0');
  const rest =
    two(date.getUTCMonth() + 1) +
    two(date.getUTCDate()) +
    two(date.getUTCHours()) +
    two(date.getUTCMinutes()) +
    two(date.getUTCSeconds());
  return year < 1950 || year > 2049
    ? tlv(0x18, new Uint8Array(Buffer.from(`${String(year).padStart(4, '0')}${rest}Z`, 'ascii')))
    : tlv(0x17, new Uint8Array(Buffer.from(`${two(year % 100)}${rest}Z`, 'ascii')));
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

/** BasicConstraints value: cA and an optional pathLenConstraint. */
export function basicConstraints(ca: boolean, pathLen?: number): Uint8Array {
  if (!ca) return derSequence();
  return derSequence(derBoolean(true), ...(pathLen === undefined ? [] : [derInteger(pathLen)]));
}

/** KeyUsage BIT STRING from bit numbers (0 digitalSignature, 1 nonRepudiation, 5 keyCertSign, 6 cRLSign). */
export function keyUsage(bits: number[]): Uint8Array {
  const max = Math.max(...bits);
  const nBytes = Math.floor(max / 8) + 1;
  const bytes = new Uint8Array(nBytes);
  for (const bit of bits) bytes[Math.floor(bit / 8)]! |= 0x80 >> (bit % 8);
  // Unused trailing bits: DER requires the count of zero bits after the last set bit.
  const unused = nBytes * 8 - 1 - max;
  return tlv(0x03, concat(Uint8Array.of(unused), bytes));
}

/** CRLDistributionPoints with one fullName URI. */
export function crlDistributionPoint(uri: string): Uint8Array {
  const generalName = tlv(0x86, new Uint8Array(Buffer.from(uri, 'ascii')));
  return derSequence(derSequence(tlv(0xa0, tlv(0xa0, generalName))));
}
