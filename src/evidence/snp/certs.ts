/**
 * AMD certificates: the VCEK/VLEK extensions (docs/reference/snp-format.md §4) and the chain
 * VEK → ASK/ASVK → ARK. Names are checked by CN pattern (ARK-<P>, SEV-<P>, SEV-VLEK-<P>,
 * SEV-VCEK/SEV-VLEK) and never by O=, so that a simulated chain differs from AMD's only in the
 * organisation and in which anchor accepts it. Trust comes only from the anchors: AMD's pinned
 * ARKs, or `trustAnchors.amdArks`, which replace them.
 *
 * The chain itself is checked by the chain engine (x509/chain.ts) with the AMD profile below.
 * Nothing here is cached: a Verifier keeps what a VEK and its chain concluded (snp/verify.ts).
 */
import { AttestationError } from '../../errors.js';
import { isAllZero } from '../bytes.js';
import { SIMULATED_ORGANIZATION } from '../simulated-marker.js';
import { type CertCache, OID, type ParsedCert } from '../x509/cert.js';
import {
  type ChainProfile,
  type CrlProfile,
  checkChainValidity as checkEngineValidity,
  parseChainCert as parseEngineCert,
  verifyChain,
} from '../x509/chain.js';
import { derUint, readTlv } from '../x509/der.js';
import { amdCerts, PINNED_ARK_SHA256, SNP_PRODUCTS, type SnpProduct } from './roots.js';
import { hasFmc } from './tcb.js';

const AMD_ARC = '1.3.6.1.4.1.3704.1';
export const VEK_OID = {
  structVersion: `${AMD_ARC}.1`,
  productName: `${AMD_ARC}.2`,
  blSPL: `${AMD_ARC}.3.1`,
  teeSPL: `${AMD_ARC}.3.2`,
  snpSPL: `${AMD_ARC}.3.3`,
  ucodeSPL: `${AMD_ARC}.3.8`,
  fmcSPL: `${AMD_ARC}.3.9`,
  hwID: `${AMD_ARC}.4`,
  cspID: `${AMD_ARC}.5`,
} as const;

export interface VekExtensions {
  structVersion?: number;
  productName?: string;
  blSPL: number;
  teeSPL: number;
  snpSPL: number;
  ucodeSPL: number;
  fmcSPL?: number;
  /** VCEK only: 64 bytes (Milan/Genoa) or 8 bytes (Turin). */
  hwID?: Uint8Array;
  /** VLEK only: the cloud provider, e.g. "CN=cc-us-east-2.amazonaws.com". */
  cspID?: string;
}

function chainError(message: string, details: Record<string, unknown> = {}): AttestationError {
  return new AttestationError('ERR_EVIDENCE_CHAIN', message, { details });
}

function extInt(cert: ParsedCert, oid: string): number | undefined {
  const e = cert.extensions.get(oid);
  if (!e) return undefined;
  const t = readTlv(e.value, 0, 'ERR_EVIDENCE_CHAIN');
  if (t.tag !== 0x02 || t.end !== e.value.length || t.value.length === 0 || t.value.length > 3)
    throw chainError(`VEK extension ${oid} is not a small INTEGER`);
  if (t.value[0]! & 0x80) throw chainError(`VEK extension ${oid} is negative`);
  return derUint(t.value);
}

function extString(cert: ParsedCert, oid: string): string | undefined {
  const e = cert.extensions.get(oid);
  if (!e) return undefined;
  const t = readTlv(e.value, 0, 'ERR_EVIDENCE_CHAIN');
  // IA5String (0x16); UTF8String (0x0c) tolerated since the content is compared, not interpreted.
  if ((t.tag !== 0x16 && t.tag !== 0x0c) || t.end !== e.value.length)
    throw chainError(`VEK extension ${oid} is not a string`);
  return Buffer.from(t.value).toString('latin1');
}

/** hwID is raw bytes in every real VCEK; a DER OCTET STRING wrapping is accepted too. */
function extHwId(cert: ParsedCert): Uint8Array | undefined {
  const e = cert.extensions.get(VEK_OID.hwID);
  if (!e) return undefined;
  const v = e.value;
  if (v.length === 64 || v.length === 8) return v;
  if (
    (v.length === 66 && v[0] === 0x04 && v[1] === 0x40) ||
    (v.length === 10 && v[0] === 0x04 && v[1] === 0x08)
  )
    return v.subarray(2);
  throw chainError(`VEK hwID has length ${v.length}`);
}

/** Reads the AMD extensions of a VCEK or VLEK; throws ERR_EVIDENCE_CHAIN on a missing or malformed one. */
export function vekExtensions(cert: ParsedCert): VekExtensions {
  const need = (name: keyof typeof VEK_OID) => {
    const v = extInt(cert, VEK_OID[name]);
    if (v === undefined) throw chainError(`VEK lacks the ${name} extension`);
    return v;
  };
  const out: VekExtensions = {
    blSPL: need('blSPL'),
    teeSPL: need('teeSPL'),
    snpSPL: need('snpSPL'),
    ucodeSPL: need('ucodeSPL'),
  };
  const structVersion = extInt(cert, VEK_OID.structVersion);
  if (structVersion !== undefined) out.structVersion = structVersion;
  const productName = extString(cert, VEK_OID.productName);
  if (productName !== undefined) out.productName = productName;
  const fmc = extInt(cert, VEK_OID.fmcSPL);
  if (fmc !== undefined) out.fmcSPL = fmc;
  const hwID = extHwId(cert);
  if (hwID) out.hwID = hwID;
  const cspID = extString(cert, VEK_OID.cspID);
  if (cspID !== undefined) out.cspID = cspID;
  for (const [k, v] of Object.entries(out))
    if (typeof v === 'number' && k.endsWith('SPL') && v > 255) throw chainError(`VEK ${k} ${v} exceeds 255`);
  return out;
}

/**
 * Shape rules of §4: the subject CN names the key type, a VCEK has a hwID and no cspID, a VLEK
 * the reverse, the key is P-384, the signature RSASSA-PSS. Product-specific: Turin VCEKs carry
 * an 8-byte hwID and an FMC SPL, Milan/Genoa VCEKs a 64-byte hwID and no FMC SPL.
 */
export function checkVekShape(
  cert: ParsedCert,
  ext: VekExtensions,
  signer: 'vcek' | 'vlek',
  product: SnpProduct,
): void {
  const cn = signer === 'vcek' ? 'SEV-VCEK' : 'SEV-VLEK';
  if (cert.subject.CN !== cn)
    throw chainError(`${signer.toUpperCase()} subject CN is "${cert.subject.CN}", expected ${cn}`);
  if (cert.version !== 3) throw chainError('VEK is not an X.509 v3 certificate');
  const key = cert.publicKey.asymmetricKeyDetails;
  if (cert.publicKey.asymmetricKeyType !== 'ec' || key?.namedCurve !== 'secp384r1')
    throw chainError('VEK key is not ECDSA P-384');
  if (signer === 'vcek') {
    if (!ext.hwID) throw chainError('VCEK lacks the hwID extension');
    if (ext.cspID !== undefined) throw chainError('VCEK carries a cspID extension');
    if (ext.hwID.length !== (hasFmc(product) ? 8 : 64))
      throw chainError(`VCEK hwID of ${ext.hwID.length} bytes for ${product}`);
    if (hasFmc(product) !== (ext.fmcSPL !== undefined))
      throw chainError(`VCEK ${hasFmc(product) ? 'lacks' : 'carries'} an fmcSPL extension for ${product}`);
  } else {
    if (ext.cspID === undefined) throw chainError('VLEK lacks the cspID extension');
    if (ext.hwID) throw chainError('VLEK carries a hwID extension');
    if (!hasFmc(product) && ext.fmcSPL !== undefined)
      throw chainError(`VLEK carries an fmcSPL for ${product}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Chain

export interface ChainResult {
  ark: ParsedCert;
  intermediate: ParsedCert;
  vek: ParsedCert;
  /** The accepting anchor is a simulated root. */
  simulated: boolean;
  /** When all three certificates are valid (ms since the epoch). */
  validFrom: number;
  validTo: number;
}

/** Signatures do not depend on time; validity does, so a chain verified before is checked again at `now`. */
export function checkChainValidity(chain: ChainResult, signer: 'vcek' | 'vlek', now: Date): void {
  checkEngineValidity(
    {
      certs: [chain.vek, chain.intermediate, chain.ark],
      root: chain.ark,
      validFrom: chain.validFrom,
      validTo: chain.validTo,
    },
    now,
    `${signer.toUpperCase()} chain`,
  );
}

/** AMD signs every link with RSASSA-PSS (SHA-384); an ECDSA or PKCS#1 link would be a foreign chain. */
const AMD_ENCODING = {
  signatureAlgorithms: [OID.rsaPss],
  canonicalDer: true,
  matchingAlgorithms: true,
} as const;

/**
 * The AMD profile of the chain engine: VEK ← ASK (VCEK) or ASVK (VLEK) ← ARK of the product, as
 * AMD's KDS serves them (SEV-SNP firmware ABI §2.2; the certificates of test/fixtures/snp/roots):
 * CNs by product, the ARK and ASK/ASVK CAs with keyCertSign (the ARK also cRLSign: it signs the
 * CRL), the VEK not a CA. The ARK may be left out of the evidence: the anchors supply it.
 */
export function amdChainProfile(
  product: SnpProduct,
  signer: 'vcek' | 'vlek',
  anchors: readonly ParsedCert[],
): ChainProfile {
  return {
    name: `${signer.toUpperCase()} chain`,
    ...AMD_ENCODING,
    rootName: `ARK for ${product}`,
    rootOptional: true,
    anchors,
    path: [
      { what: signer.toUpperCase(), cn: [signer === 'vcek' ? 'SEV-VCEK' : 'SEV-VLEK'], ca: false },
      {
        what: signer === 'vcek' ? 'ASK' : 'ASVK',
        cn: [signer === 'vcek' ? `SEV-${product}` : `SEV-VLEK-${product}`],
        ca: true,
        keyUsage: ['keyCertSign'],
      },
      { what: 'ARK', cn: [`ARK-${product}`], ca: true, keyUsage: ['keyCertSign', 'cRLSign'] },
    ],
  };
}

/** The AMD CRL profile: signed by the ARK, under the chain's DER and algorithm rules. */
export const AMD_CRL_PROFILE: CrlProfile = {
  name: 'AMD CRL',
  ...AMD_ENCODING,
  issuer: { what: 'ARK', ca: true, keyUsage: ['cRLSign'] },
};

/**
 * Parses a certificate of the AMD chain and insists on canonical DER (see x509/chain.ts): an
 * accepted certificate has exactly one encoding.
 */
export function parseChainCert(der: Uint8Array | ParsedCert, what: string, cache?: CertCache): ParsedCert {
  return parseEngineCert(der, what, AMD_ENCODING, cache);
}

/**
 * The caller's AMD roots (trustAnchors.amdArks), parsed under the AMD DER rules: a Verifier does
 * this once, on its own copies, when it is created (verifier.ts).
 */
export function parseAmdAnchors(amdArks: unknown): ParsedCert[] {
  if (!Array.isArray(amdArks) || !amdArks.every((d) => d instanceof Uint8Array))
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      'trustAnchors.amdArks must be a list of DER certificates',
    );
  return amdArks.map((der: Uint8Array) => parseChainCert(der, 'trust anchor'));
}

/** The ARKs that may accept a chain of `product`: those of the caller's anchors, or AMD's pinned one. */
export function anchorsFor(product: SnpProduct, amdArks?: readonly ParsedCert[]): ParsedCert[] {
  if (amdArks === undefined) return [amdCerts(product).ark];
  return amdArks.filter((a) => a.subject.CN === `ARK-${product}`);
}

export interface ChainInput {
  product: SnpProduct;
  signer: 'vcek' | 'vlek';
  vek: Uint8Array;
  /**
   * [ASK/ASVK, ARK], [ASK/ASVK] or [ARK] (DER). A missing intermediate is the embedded one of the
   * product; a supplied ARK must be one of the anchors.
   */
  chain?: Uint8Array[];
  /** The caller's ARKs, parsed (parseAmdAnchors); absent: AMD's pinned ARKs. */
  amdArks?: readonly ParsedCert[];
  now: Date;
  /** A Verifier's certificate cache. */
  certs?: CertCache;
}

/**
 * Verifies VEK → ASK/ASVK → ARK at `now` with the chain engine and the AMD profile. A supplied
 * ARK must be one of the anchors (by fingerprint); it is never trusted for being in the evidence.
 * Throws ERR_EVIDENCE_CHAIN.
 */
export function verifyVekChain(input: ChainInput): ChainResult {
  const { product, signer, now } = input;
  if (input.chain && input.chain.length > 2) throw chainError(`chain of ${input.chain.length} certificates`);
  const { certs } = input;
  const vek = parseChainCert(input.vek, 'VEK', certs);
  // Two certificates are [ASK/ASVK, ARK]; a single one is the ARK when self-issued, else the intermediate.
  let interDer = input.chain?.[0];
  let suppliedArkDer = input.chain?.[1];
  if (input.chain?.length === 1 && interDer) {
    const only = parseChainCert(interDer, 'chain certificate', certs);
    if (Buffer.from(only.subjectDer).equals(Buffer.from(only.issuerDer))) {
      suppliedArkDer = interDer;
      interDer = undefined;
    }
  }
  const intermediate = interDer
    ? parseChainCert(interDer, 'ASK/ASVK', certs)
    : signer === 'vcek'
      ? amdCerts(product).ask
      : amdCerts(product).asvk;
  // Without the caller's anchors, only the ARK whose fingerprint is pinned (roots.ts) is trusted.
  const anchors = anchorsFor(product, input.amdArks).filter(
    (a) => input.amdArks !== undefined || a.fingerprint256 === PINNED_ARK_SHA256[product],
  );
  const supplied = suppliedArkDer ? parseChainCert(suppliedArkDer, 'ARK', certs) : undefined;

  const verified = verifyChain(
    supplied ? [vek, intermediate, supplied] : [vek, intermediate],
    amdChainProfile(product, signer, anchors),
    now,
  );
  const ark = verified.root;
  const result: ChainResult = {
    ark,
    intermediate,
    vek,
    simulated: ark.subject.O === SIMULATED_ORGANIZATION,
    validFrom: verified.validFrom,
    validTo: verified.validTo,
  };
  return result;
}

/** Product named by a chain certificate's CN (ARK-<P>, SEV-<P>, SEV-VLEK-<P>). */
export function productOfChainCert(cert: ParsedCert): SnpProduct | undefined {
  const cn = cert.subject.CN ?? '';
  return SNP_PRODUCTS.find((p) => cn === `ARK-${p}` || cn === `SEV-${p}` || cn === `SEV-VLEK-${p}`);
}

/** hwID against CHIP_ID; a masked (all-zero) CHIP_ID is not compared (VLEK reports, MASK_CHIP_ID hosts). */
export function hwIdMatches(hwID: Uint8Array, chipId: Uint8Array, product: SnpProduct): boolean {
  if (isAllZero(chipId)) return true;
  if (hasFmc(product))
    return (
      hwID.length === 8 && Buffer.from(chipId.subarray(0, 8)).equals(hwID) && isAllZero(chipId.subarray(8))
    );
  return hwID.length === 64 && Buffer.from(chipId).equals(hwID);
}
