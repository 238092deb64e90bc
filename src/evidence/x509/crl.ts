/** X.509 CRLs: parsing and the issuer/signature/window check. Knows no vendor. */
import { AsnConvert } from '@peculiar/asn1-schema';
import { type AlgorithmIdentifier, CertificateList } from '@peculiar/asn1-x509';
import { AttestationError, type ErrorCode } from '../../errors.js';
import { bytesToHex } from '../bytes.js';
import { nameToRecord, type ParsedCert, verifyWithAlgorithm } from './cert.js';

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
