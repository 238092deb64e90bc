/**
 * A software SEV-SNP platform: byte-exact v5 ATTESTATION_REPORTs
 * (docs/reference/snp-format.md §1–§3) signed by a simulated VCEK or VLEK under a simulated ASK/ASVK and ARK of AMD's algorithms (RSA-4096,
 * RSASSA-PSS SHA-384, P-384 VEKs) and names, except that every certificate's O= is
 * SIMULATED_ORGANIZATION. Verifiers accept it only with `simulated.trustAnchors()`.
 *
 * Keys, roots and intermediates are embedded (simulated-keys.ts), so every function here is pure
 * and keeps nothing between calls: a provider owns what it reuses (its VEK key, made when it is
 * created; its VEK certificate, signed on its first report), and a report then costs one P-384
 * signature.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  randomBytes,
  sign,
} from 'node:crypto';
import { AttestationError } from '../../errors.js';
import { signOffThread } from '../offload.js';
import { SIMULATED_ORGANIZATION } from '../simulated-marker.js';
import type { EvidenceInput, EvidenceProvider, EvidenceRequestOptions } from '../types.js';
import {
  basicConstraints,
  buildCertificate,
  buildCrl,
  crlDistributionPoint,
  keyUsage,
  type NameSpec,
} from '../x509/build.js';
import { OID } from '../x509/cert.js';
import { derIa5String, derInteger } from '../x509/der.js';
import { derToPem, pemToDer } from '../x509/pem.js';
import { fixedBytes, reportDataArg, throwIfAborted, uint, uint64 } from './input.js';
import { SIMULATED_INTERMEDIATES, SIMULATED_KEYS, SIMULATED_ROOTS } from './simulated-keys.js';

export type SnpProduct = 'Milan' | 'Genoa' | 'Turin';
export const SNP_PRODUCTS: readonly SnpProduct[] = ['Milan', 'Genoa', 'Turin'];

/** SPL values of a TCB_VERSION; `fmc` exists on Turin only. */
export interface SimulatedTcb {
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  fmc?: number;
}

export interface SimulatedSnpOptions {
  product?: SnpProduct;
  /** 48 bytes (or 96 hex chars). Default DEFAULT_SNP_MEASUREMENT. */
  measurement?: Uint8Array | string;
  /** Guest POLICY u64. Default 0x30000 (SMT allowed, reserved bit 17 set). Used as given. */
  policy?: bigint | number;
  /** REPORTED_TCB, which the VEK is issued for. Missing components take the product default. */
  reportedTcb?: Partial<SimulatedTcb>;
  /** CURRENT_TCB, COMMITTED_TCB and LAUNCH_TCB. Default: the reported TCB. */
  currentTcb?: Partial<SimulatedTcb>;
  vmpl?: number;
  signer?: 'vcek' | 'vlek';
  /** 32 bytes. Default zeros. */
  hostData?: Uint8Array | string;
  /** 64 bytes (Turin: 8 or 64, bytes 8.. zero). Default: a fixed simulated chip for VCEKs, zeros for VLEKs (as AWS masks it). */
  chipId?: Uint8Array | string;
  guestSvn?: number;
  /** 16 bytes each. Default zeros. */
  familyId?: Uint8Array | string;
  imageId?: Uint8Array | string;
  /** 48 bytes each. Default zeros (no ID block). */
  idKeyDigest?: Uint8Array | string;
  authorKeyDigest?: Uint8Array | string;
  /** PLATFORM_INFO u64. Default what real hardware of the product reports. */
  platformInfo?: bigint | number;
  /** The VLEK's cspID extension. Default "CN=simulated.invalid". */
  cspId?: string;
}

/** The fixed demo launch measurement: SHA-384("attested-channel simulated guest"). */
export const DEFAULT_SNP_MEASUREMENT = createHash('sha384')
  .update('attested-channel simulated guest')
  .digest('hex');

interface ProductFacts {
  cpuid: [number, number, number];
  tcb: SimulatedTcb;
  /** CURRENT/COMMITTED firmware build, minor, major. */
  firmware: [number, number, number];
  platformInfo: bigint;
  vcekProductName: string;
}

// Values seen in real reports of each product (docs/reference/snp-format.md §2, §3; test/fixtures/snp).
const PRODUCTS: Record<SnpProduct, ProductFacts> = {
  Milan: {
    cpuid: [0x19, 0x01, 0x01],
    tcb: { bootloader: 4, tee: 0, snp: 22, microcode: 213 },
    firmware: [29, 55, 1],
    platformInfo: 0x25n,
    vcekProductName: 'Milan-B0',
  },
  Genoa: {
    cpuid: [0x19, 0x11, 0x01],
    tcb: { bootloader: 9, tee: 0, snp: 23, microcode: 72 },
    firmware: [40, 55, 1],
    platformInfo: 0x25n,
    vcekProductName: 'Genoa',
  },
  Turin: {
    cpuid: [0x1a, 0x02, 0x01],
    tcb: { fmc: 1, bootloader: 1, tee: 1, snp: 4, microcode: 81 },
    firmware: [65, 55, 1],
    platformInfo: 0x65n,
    vcekProductName: 'Turin',
  },
};

const VALID_FROM = new Date('2024-01-01T00:00:00Z');
const VALID_TO = new Date('2049-12-31T23:59:59Z');
const AMD_OID = '1.3.6.1.4.1.3704.1';
const CRL_DP_OID = '2.5.29.31';

const DEFAULT_CHIP_ID = new Uint8Array(
  createHash('sha512').update('attested-channel simulated chip').digest(),
);

function amdName(cn: string): NameSpec {
  return [
    ['OU', 'Engineering'],
    ['C', 'US'],
    ['L', 'Santa Clara'],
    ['ST', 'CA'],
    ['O', SIMULATED_ORGANIZATION],
    ['CN', cn],
  ];
}

/** An embedded PKCS#8 key, parsed anew (~1 ms): callers that sign often keep the KeyObject. */
export function simulatedKey(name: keyof typeof SIMULATED_KEYS): KeyObject {
  return createPrivateKey(SIMULATED_KEYS[name]);
}

export interface SimulatedAmdChain {
  ark: Uint8Array;
  ask: Uint8Array;
  asvk: Uint8Array;
}

function productKeys(product: SnpProduct) {
  const p = product.toLowerCase() as 'milan' | 'genoa' | 'turin';
  return {
    ark: simulatedKey(`${p}Ark`),
    ask: simulatedKey(`${p}Ask`),
    asvk: simulatedKey(`${p}Asvk`),
  };
}

function checkProduct(product: unknown): SnpProduct {
  if (!SNP_PRODUCTS.includes(product as SnpProduct))
    throw new AttestationError('ERR_INVALID_ARGUMENT', `product must be one of ${SNP_PRODUCTS.join(', ')}`);
  return product as SnpProduct;
}

const VALIDITY = { notBefore: VALID_FROM, notAfter: VALID_TO, algorithm: 'rsa-pss-sha384' as const };

function crlPoint(product: SnpProduct, kind: 'vcek' | 'vlek') {
  return {
    oid: CRL_DP_OID,
    value: crlDistributionPoint(`https://kdsintf.amd.com/${kind}/v1/${product}/crl`),
  };
}

/** The simulated ARK of a product (DER, self-signed): embedded, the same in every process. */
export function simulatedArk(product: SnpProduct = 'Milan'): Uint8Array {
  checkProduct(product);
  const name = `${product.toLowerCase() as 'milan' | 'genoa' | 'turin'}Ark` as const;
  return pemToDer(SIMULATED_ROOTS[name])[0]!;
}

/** The simulated ARK, ASK and ASVK of a product (DER): embedded, a fresh copy for each call. */
export function simulatedAmdChain(product: SnpProduct = 'Milan'): SimulatedAmdChain {
  checkProduct(product);
  const p = product.toLowerCase() as 'milan' | 'genoa' | 'turin';
  return {
    ark: simulatedArk(product),
    ask: pemToDer(SIMULATED_INTERMEDIATES[`${p}Ask`])[0]!,
    asvk: pemToDer(SIMULATED_INTERMEDIATES[`${p}Asvk`])[0]!,
  };
}

/**
 * Issues a product's ASK and ASVK under its ARK, as SIMULATED_INTERMEDIATES holds them (their
 * to-be-signed parts are equal; RSA-PSS signatures differ each time). Only
 * scripts/simulated-certs.ts and the test that holds the embedded ones to it call this.
 */
export function issueAmdIntermediates(product: SnpProduct): { ask: Uint8Array; asvk: Uint8Array } {
  checkProduct(product);
  const keys = productKeys(product);
  const intermediate = (cn: string, serial: Uint8Array, key: KeyObject, kind: 'vcek' | 'vlek') =>
    buildCertificate({
      ...VALIDITY,
      subject: amdName(cn),
      issuer: amdName(`ARK-${product}`),
      serial,
      publicKey: createPublicKey(key),
      signingKey: keys.ark,
      extensions: [
        { oid: OID.basicConstraints, value: basicConstraints(true, 0), critical: true },
        { oid: OID.keyUsage, value: keyUsage([5]), critical: true },
        crlPoint(product, kind),
      ],
    });
  return {
    ask: intermediate(`SEV-${product}`, Uint8Array.of(0x01, 0x00, 0x01), keys.ask, 'vcek'),
    asvk: intermediate(`SEV-VLEK-${product}`, Uint8Array.of(0x01, 0x01, 0x01), keys.asvk, 'vlek'),
  };
}

function resolveTcb(
  product: SnpProduct,
  name: string,
  given: Partial<SimulatedTcb> | undefined,
  base: SimulatedTcb,
) {
  if (given !== undefined && (typeof given !== 'object' || given === null))
    throw new AttestationError('ERR_INVALID_ARGUMENT', `${name} must be an object`);
  const tcb: SimulatedTcb = {
    bootloader: uint(`${name}.bootloader`, given?.bootloader, 255, base.bootloader),
    tee: uint(`${name}.tee`, given?.tee, 255, base.tee),
    snp: uint(`${name}.snp`, given?.snp, 255, base.snp),
    microcode: uint(`${name}.microcode`, given?.microcode, 255, base.microcode),
  };
  if (product === 'Turin') tcb.fmc = uint(`${name}.fmc`, given?.fmc, 255, base.fmc ?? 0);
  else if (given?.fmc !== undefined)
    throw new AttestationError('ERR_INVALID_ARGUMENT', `${name}.fmc exists on Turin only`);
  return tcb;
}

/** TCB_VERSION bytes in the product's layout (docs/reference/snp-format.md §2). */
export function encodeTcb(product: SnpProduct, t: SimulatedTcb): Uint8Array {
  const b = new Uint8Array(8);
  if (product === 'Turin') {
    b[0] = t.fmc ?? 0;
    b[1] = t.bootloader;
    b[2] = t.tee;
    b[3] = t.snp;
  } else {
    b[0] = t.bootloader;
    b[1] = t.tee;
    b[6] = t.snp;
  }
  b[7] = t.microcode;
  return b;
}

/** ASK (or ASVK) then ARK, PEM: what the evidence carries besides the VEK. */
function chainPem(product: SnpProduct, signer: 'vcek' | 'vlek'): string {
  const chain = simulatedAmdChain(product);
  return derToPem(signer === 'vcek' ? chain.ask : chain.asvk) + derToPem(chain.ark);
}

/** A VCEK or VLEK certificate with AMD's KDS extensions (docs/reference/snp-format.md §4) for `vekKey`. */
function vekCertificate(
  product: SnpProduct,
  signer: 'vcek' | 'vlek',
  tcb: SimulatedTcb,
  chipId: Uint8Array,
  cspId: string,
  vekKey: KeyObject,
): Uint8Array {
  const turin = product === 'Turin';
  const ext = (suffix: string, value: Uint8Array) => ({ oid: `${AMD_OID}.${suffix}`, value });
  const extensions = [
    ext('1', derInteger(turin ? 1 : 0)),
    ext('2', derIa5String(signer === 'vcek' ? PRODUCTS[product].vcekProductName : product)),
  ];
  if (turin) extensions.push(ext('3.9', derInteger(tcb.fmc ?? 0)));
  extensions.push(ext('3.1', derInteger(tcb.bootloader)), ext('3.2', derInteger(tcb.tee)));
  // Real Milan/Genoa VEKs list spl_4..spl_7 as zeros; Turin VCEKs omit spl_4.
  extensions.push(ext('3.3', derInteger(tcb.snp)));
  if (!turin) extensions.push(ext('3.4', derInteger(0)));
  extensions.push(ext('3.5', derInteger(0)), ext('3.6', derInteger(0)), ext('3.7', derInteger(0)));
  extensions.push(ext('3.8', derInteger(tcb.microcode)));
  // hwID is the raw CHIP_ID with no DER tag (8 bytes on Turin); VLEKs carry the CSP's ID instead.
  if (signer === 'vcek') extensions.push(ext('4', turin ? chipId.slice(0, 8) : chipId));
  else extensions.push(ext('5', derIa5String(cspId)));
  const keys = productKeys(product);
  return buildCertificate({
    subject: amdName(signer === 'vcek' ? 'SEV-VCEK' : 'SEV-VLEK'),
    issuer: amdName(signer === 'vcek' ? `SEV-${product}` : `SEV-VLEK-${product}`),
    serial: Uint8Array.of(0),
    notBefore: VALID_FROM,
    notAfter: VALID_TO,
    publicKey: createPublicKey(vekKey),
    signingKey: signer === 'vcek' ? keys.ask : keys.asvk,
    algorithm: 'rsa-pss-sha384',
    extensions,
  });
}

export interface AmdCrlOptions {
  product?: SnpProduct;
  /** Serial numbers to list (e.g. `parseCertificate(simulatedAmdChain().ask)` serial bytes). */
  revoked?: Uint8Array[];
  /** Default 2024-01-01. */
  thisUpdate?: Date;
  /** Default 2049-12-31. */
  nextUpdate?: Date;
}

/** A CRL signed by the simulated ARK, as KDS serves at /vcek/v1/{product}/crl (DER). */
export function simulatedAmdCrl(options: AmdCrlOptions = {}): Uint8Array {
  if (typeof options !== 'object' || options === null)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'options must be an object');
  const product = checkProduct(options.product ?? 'Milan');
  for (const s of options.revoked ?? [])
    if (!(s instanceof Uint8Array) || s.length === 0)
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'revoked serials must be non-empty Uint8Arrays');
  return buildCrl({
    issuer: amdName(`ARK-${product}`),
    thisUpdate: options.thisUpdate ?? VALID_FROM,
    nextUpdate: options.nextUpdate ?? VALID_TO,
    // Plain copies: a Buffer's .buffer may be a shared pool, which the CRL builder would serialise whole.
    revokedSerials: (options.revoked ?? []).map((s) => Uint8Array.from(s)),
    signingKey: productKeys(product).ark,
    algorithm: 'rsa-pss-sha384',
  });
}

function put64(view: DataView, offset: number, v: bigint): void {
  view.setBigUint64(offset, v, true);
}

/** Writes a P-384 scalar (big-endian, 48 bytes) little-endian into a 72-byte field. */
function putLittleEndian(report: Uint8Array, offset: number, bigEndian: Uint8Array): void {
  for (let i = 0; i < bigEndian.length; i++) report[offset + i] = bigEndian[bigEndian.length - 1 - i]!;
}

/** Signs bytes 0x000–0x29F of a report in place (ECDSA P-384, SHA-384, r and s little-endian). */
export function signSnpReport(report: Uint8Array, key: KeyObject): void {
  placeSignature(report, sign('sha384', report.subarray(0, 0x2a0), { key, dsaEncoding: 'ieee-p1363' }));
}

/**
 * signSnpReport() on the threadpool (offload.ts), as a provider's reports are made: the firmware's
 * signature is not the guest's CPU time, and the simulator's ~0.55 ms sign should not hold up the
 * event loop that also verifies the peer's evidence.
 */
export async function signSnpReportOffThread(report: Uint8Array, key: KeyObject): Promise<void> {
  let sig: Buffer;
  try {
    sig = await signOffThread('sha384', report.subarray(0, 0x2a0), { key, dsaEncoding: 'ieee-p1363' });
  } catch (err) {
    throw signingFailed(err);
  }
  placeSignature(report, sig);
}

/** signSnpReport() for a provider: a failure is ERR_PROVIDER_FAILED, as off the event loop. */
function signOnThread(report: Uint8Array, key: KeyObject): void {
  try {
    signSnpReport(report, key);
  } catch (err) {
    throw signingFailed(err);
  }
}

function signingFailed(cause: unknown): AttestationError {
  return new AttestationError('ERR_PROVIDER_FAILED', 'the simulated SNP platform could not sign the report', {
    cause,
  });
}

function placeSignature(report: Uint8Array, sig: Uint8Array): void {
  report.fill(0, 0x2a0, 0x4a0);
  putLittleEndian(report, 0x2a0, sig.subarray(0, 48));
  putLittleEndian(report, 0x2e8, sig.subarray(48, 96));
}

/** Creates a simulated SEV-SNP platform. Options are checked here, so a bad option throws at once. */
export function simulatedSnp(options: SimulatedSnpOptions = {}): EvidenceProvider {
  if (typeof options !== 'object' || options === null)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'options must be an object');
  const product = checkProduct(options.product ?? 'Milan');
  const facts = PRODUCTS[product];
  const signer = options.signer ?? 'vcek';
  if (signer !== 'vcek' && signer !== 'vlek')
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'signer must be "vcek" or "vlek"');
  const reported = resolveTcb(product, 'reportedTcb', options.reportedTcb, facts.tcb);
  const current = resolveTcb(product, 'currentTcb', options.currentTcb, reported);
  const measurement = fixedBytes(
    'measurement',
    options.measurement,
    [48],
    Buffer.from(DEFAULT_SNP_MEASUREMENT, 'hex'),
  );
  const hostData = fixedBytes('hostData', options.hostData, [32], new Uint8Array(32));
  const defaultChip =
    signer === 'vlek'
      ? new Uint8Array(64)
      : product === 'Turin'
        ? DEFAULT_CHIP_ID.slice(0, 8)
        : DEFAULT_CHIP_ID;
  let chipId = fixedBytes('chipId', options.chipId, product === 'Turin' ? [8, 64] : [64], defaultChip);
  if (product === 'Turin') {
    // Turin's ID is 8 bytes; the report field stays 64 bytes with the rest zero.
    const full = new Uint8Array(64);
    full.set(chipId.subarray(0, 8));
    if (chipId.length === 64 && chipId.subarray(8).some((b) => b !== 0))
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'a Turin chipId has bytes 8..63 zero');
    chipId = full;
  }
  const familyId = fixedBytes('familyId', options.familyId, [16], new Uint8Array(16));
  const imageId = fixedBytes('imageId', options.imageId, [16], new Uint8Array(16));
  const idKeyDigest = fixedBytes('idKeyDigest', options.idKeyDigest, [48], new Uint8Array(48));
  const authorKeyDigest = fixedBytes('authorKeyDigest', options.authorKeyDigest, [48], new Uint8Array(48));
  const policy = uint64('policy', options.policy, 0x30000n);
  const platformInfo = uint64('platformInfo', options.platformInfo, facts.platformInfo);
  const vmpl = uint('vmpl', options.vmpl, 3, 0);
  const guestSvn = uint('guestSvn', options.guestSvn, 0xffffffff, 0);
  const cspId = options.cspId ?? 'CN=simulated.invalid';
  if (typeof cspId !== 'string' || !/^[\x20-\x7e]+$/.test(cspId))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'cspId must be a printable ASCII string');
  // One REPORT_ID per guest, as the firmware assigns one per launch.
  const reportId = new Uint8Array(randomBytes(32));
  const authorKeyEn = options.authorKeyDigest !== undefined;

  // Everything but REPORT_DATA and the signature is fixed for the life of the guest.
  const template = new Uint8Array(0x4a0);
  const view = new DataView(template.buffer);
  view.setUint32(0x000, 5, true);
  view.setUint32(0x004, guestSvn, true);
  put64(view, 0x008, policy);
  template.set(familyId, 0x010);
  template.set(imageId, 0x020);
  view.setUint32(0x030, vmpl, true);
  view.setUint32(0x034, 1, true); // ECDSA P-384 with SHA-384
  template.set(encodeTcb(product, current), 0x038);
  put64(view, 0x040, platformInfo);
  view.setUint32(0x048, (signer === 'vlek' ? 1 << 2 : 0) | (authorKeyEn ? 1 : 0), true);
  template.set(measurement, 0x090);
  template.set(hostData, 0x0c0);
  template.set(idKeyDigest, 0x0e0);
  template.set(authorKeyDigest, 0x110);
  template.set(reportId, 0x140);
  template.fill(0xff, 0x160, 0x180); // REPORT_ID_MA: no migration agent
  template.set(encodeTcb(product, reported), 0x180);
  template.set(facts.cpuid, 0x188);
  template.set(chipId, 0x1a0);
  template.set(encodeTcb(product, current), 0x1e0);
  template.set(facts.firmware, 0x1e8);
  template.set(facts.firmware, 0x1ec);
  template.set(encodeTcb(product, current), 0x1f0);
  // The provider's own: its signing key, and (on the first report: it signs a certificate) its VEK.
  const vekKey = simulatedKey(signer);
  const chain = chainPem(product, signer);
  let vek: Uint8Array | undefined;

  return {
    format: 'sev-snp',
    async getEvidence(reportData: Uint8Array, opts?: EvidenceRequestOptions): Promise<EvidenceInput> {
      throwIfAborted(opts?.signal);
      const data = reportDataArg(reportData);
      const report = template.slice();
      report.set(data, 0x050);
      if (opts?.overlap === true) await signSnpReportOffThread(report, vekKey);
      else signOnThread(report, vekKey);
      vek ??= vekCertificate(product, signer, reported, chipId, cspId, vekKey);
      return { report, vek, chain };
    },
  };
}
