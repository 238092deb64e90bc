/** X.509 CRLs: parsing (the checks are chain.ts's verifyCrl and crlValidAt). Knows no vendor. */
import { AsnConvert } from '@peculiar/asn1-schema';
import { type AlgorithmIdentifier, CertificateList } from '@peculiar/asn1-x509';
import { AttestationError, type ErrorCode } from '../../errors.js';
import { bytesToHex, equalBytes } from '../bytes.js';
import { nameToRecord } from './cert.js';

export interface ParsedCrl {
  der: Uint8Array;
  asn: CertificateList;
  /** The DER is the one encoding of `asn` (x509/chain.ts: the canonical-DER rule). */
  canonical: boolean;
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
  // Everything read from the ASN.1 tree is inside the try: asn1js decodes some values (times)
  // lazily and throws plain Errors on malformed ones.
  try {
    const asn = AsnConvert.parse(der, CertificateList);
    const t = asn.tbsCertList;
    const tbs = asn.tbsCertListRaw
      ? new Uint8Array(asn.tbsCertListRaw)
      : new Uint8Array(AsnConvert.serialize(t));
    return {
      der,
      asn,
      canonical: equalBytes(new Uint8Array(AsnConvert.serialize(asn)), der),
      tbs,
      issuer: nameToRecord(t.issuer),
      issuerDer: new Uint8Array(AsnConvert.serialize(t.issuer)),
      thisUpdate: t.thisUpdate.getTime(),
      ...(t.nextUpdate ? { nextUpdate: t.nextUpdate.getTime() } : {}),
      revoked: new Set(
        (t.revokedCertificates ?? []).map((r) => bytesToHex(new Uint8Array(r.userCertificate))),
      ),
      sigAlg: asn.signatureAlgorithm,
      signature: new Uint8Array(asn.signature),
    };
  } catch (err) {
    if (err instanceof AttestationError) throw err;
    throw new AttestationError(code, 'CRL does not parse', { cause: err });
  }
}
