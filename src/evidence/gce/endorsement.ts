/**
 * Google Cloud launch endorsements: Google's signed statement of the launch measurements its
 * firmware build produces (per vCPU count for SEV-SNP, per RAM size for TDX) and the SHA-384 of
 * the firmware binary. Format and checks from google/gce-tcb-verifier (`proto/endorsement.proto`,
 * `verify/verify.go` @74582c0), restated in docs/reference/cloud-evidence.md §3.2:
 *
 *   VMLaunchEndorsement { bytes serialized_uefi_golden = 1; bytes signature = 2; }
 *   signature = RSASSA-PSS / SHA-256 / salt 32 over serialized_uefi_golden, by the key of
 *   golden.cert, which Google's "GCE-cc-tcb-root" CA issues directly.
 *
 * In a Google Cloud SNP guest the endorsement of the running firmware comes in the extended
 * report's certificate table under GUID 9f4116cd-c503-4f5a-8f6f-fb68882f4ce2.
 */
import { constants, verify } from 'node:crypto';
import { AttestationError } from '../../errors.js';
import { bytesToHex } from '../bytes.js';
import { OID, type ParsedCert, parseCertificate } from '../x509/cert.js';
import { type ChainProfile, verifyChain } from '../x509/chain.js';
import { pemToDer } from '../x509/pem.js';
import { ProtoMessage } from './protobuf.js';

/** GUID of the endorsement in an SNP extended report's certificate table on Google Cloud. */
export const GCE_ENDORSEMENT_CERT_TABLE_GUID = '9f4116cd-c503-4f5a-8f6f-fb68882f4ce2';

/**
 * SHA-256 of the DER of https://pki.goog/cloud_integrity/GCE-cc-tcb-root_1.crt, as pinned by two
 * third-party verifiers (see docs/reference/cloud-evidence.md §3.2). Not re-derived here: this
 * machine has no network. A caller who fetched the certificate passes it as `root`; it is refused
 * unless it has this fingerprint (or the one given as `rootSha256`).
 */
export const GCE_TCB_ROOT_SHA256 = 'e876bc6978bf4f3da445f98a0a82363c8c0bae5a1fc033c6df65846a6cb0f18c';

/** Endorsements signed after this date must name the source they were built from (verify.go). */
const PROVENANCE_REQUIRED_AFTER = Date.UTC(2024, 7, 2);
/** An endorsement is a few KiB (a certificate, some digests); this bounds the parse. */
const MAX_ENDORSEMENT_BYTES = 1 << 20;

export interface LaunchEndorsement {
  /** When Google signed it. */
  timestamp: Date;
  /** Build provenance: changelist number and commit (either may be absent: 0n / empty). */
  clSpec: bigint;
  commit: Uint8Array;
  /** SHA-384 of the firmware (UEFI) binary this endorses. */
  uefiDigest: Uint8Array;
  /** The certificate of the signing key (issued by the root). */
  signer: ParsedCert;
  sevSnp?: {
    svn: number;
    /** vCPU count → the 48-byte MEASUREMENT a VM with that many vCPUs reports. */
    measurements: Map<number, Uint8Array>;
    familyId: Uint8Array;
    imageId: Uint8Array;
    policy: bigint;
    /** Measurement under an SVSM (igvmmeasure --native_zero); empty when none. */
    svsmMeasurement: Uint8Array;
  };
  tdx?: {
    svn: number;
    measurements: Array<{ ramGib: number; earlyAccept: boolean; mrtd: Uint8Array }>;
  };
}

export interface VerifyLaunchEndorsementOptions {
  /** The GCE-cc-tcb-root certificate (DER or PEM), e.g. as fetched from pki.goog. */
  root: Uint8Array | string;
  /** Lowercase hex SHA-256 the root's DER must have. Default GCE_TCB_ROOT_SHA256. */
  rootSha256?: string;
  /** Time at which the signer and root certificates must be valid. */
  now: Date;
  /** If given, the endorsement must be for the firmware binary with this SHA-384. */
  uefiDigest?: Uint8Array;
}

function malformed(message: string): AttestationError {
  return new AttestationError('ERR_EVIDENCE_MALFORMED', `launch endorsement: ${message}`);
}
function chain(message: string): AttestationError {
  return new AttestationError('ERR_EVIDENCE_CHAIN', `launch endorsement: ${message}`);
}

function sized(b: Uint8Array, n: number, name: string): Uint8Array {
  if (b.length !== 0 && b.length !== n) throw malformed(`${name} is ${b.length} bytes, not ${n}`);
  return b;
}

/** Decodes VMGoldenMeasurement (the signed part). Exported for tests and tools. */
export function parseGoldenMeasurement(
  bytes: Uint8Array,
): Omit<LaunchEndorsement, 'signer'> & { cert: Uint8Array } {
  const g = new ProtoMessage(bytes, 'VMGoldenMeasurement');
  const ts = new ProtoMessage(g.bytes(1, 'timestamp'), 'Timestamp');
  const seconds = ts.int64(1, 'seconds');
  const nanos = ts.int64(2, 'nanos');
  if (nanos < 0n || nanos > 999_999_999n) throw malformed('timestamp nanos out of range');
  // Timestamp's own range (0001-01-01 … 9999-12-31) keeps the Date exact.
  if (seconds < -62135596800n || seconds > 253402300799n) throw malformed('timestamp out of range');
  const out: Omit<LaunchEndorsement, 'signer'> & { cert: Uint8Array } = {
    timestamp: new Date(Number(seconds) * 1000 + Math.floor(Number(nanos) / 1e6)),
    clSpec: g.uint64(2, 'cl_spec'),
    commit: g.bytes(3, 'commit'),
    cert: g.bytes(4, 'cert'),
    uefiDigest: sized(g.bytes(5, 'digest'), 48, 'digest'),
  };
  if (g.has(7)) {
    const s = new ProtoMessage(g.bytes(7, 'sev_snp'), 'VMSevSnp');
    const measurements = new Map<number, Uint8Array>();
    for (const entry of s.repeatedBytes(2, 'measurements')) {
      const e = new ProtoMessage(entry, 'VMSevSnp.MeasurementsEntry');
      const vcpus = e.uint32(1, 'key');
      if (measurements.has(vcpus)) throw malformed(`two SEV-SNP measurements for ${vcpus} vCPUs`);
      const m = e.bytes(2, 'value');
      if (m.length !== 48) throw malformed(`SEV-SNP measurement for ${vcpus} vCPUs is ${m.length} bytes`);
      measurements.set(vcpus, m);
    }
    out.sevSnp = {
      svn: s.uint32(1, 'svn'),
      measurements,
      familyId: sized(s.bytes(3, 'family_id'), 16, 'family_id'),
      imageId: sized(s.bytes(4, 'image_id'), 16, 'image_id'),
      policy: s.uint64(5, 'policy'),
      svsmMeasurement: sized(s.bytes(7, 'svsm_measurement'), 48, 'svsm_measurement'),
    };
  }
  if (g.has(8)) {
    const t = new ProtoMessage(g.bytes(8, 'tdx'), 'VMTdx');
    out.tdx = {
      svn: t.uint32(1, 'svn'),
      measurements: t.repeatedBytes(2, 'measurements').map((m) => {
        const e = new ProtoMessage(m, 'VMTdx.Measurement');
        const mrtd = e.bytes(3, 'mrtd');
        if (mrtd.length !== 48) throw malformed(`TDX MRTD is ${mrtd.length} bytes`);
        return { ramGib: e.uint32(1, 'ram_gib'), earlyAccept: e.bool(2, 'early_accept'), mrtd };
      }),
    };
  }
  return out;
}

function rootDer(root: Uint8Array | string): Uint8Array {
  if (typeof root === 'string') {
    const ders = pemToDer(root, 'ERR_INVALID_ARGUMENT');
    if (ders.length !== 1) throw new AttestationError('ERR_INVALID_ARGUMENT', 'root must be one certificate');
    return ders[0]!;
  }
  if (root instanceof Uint8Array) return root;
  throw new AttestationError('ERR_INVALID_ARGUMENT', 'root must be a DER or PEM certificate');
}

/**
 * The chain-engine profile (x509/chain.ts) of an endorsement's signer: one link, since Google's
 * root issues each signing certificate directly (verify.go passes no intermediates); the root a
 * CA, the signer not. The signature algorithms are every one the engine verifies: without a
 * real Google certificate among the fixtures, which one Google's CA uses is not narrowed here.
 */
function gceProfile(root: ParsedCert): ChainProfile {
  return {
    name: 'launch endorsement signer chain',
    signatureAlgorithms: [OID.rsaPss, OID.rsaSha256, OID.rsaSha384, OID.ecdsaSha256, OID.ecdsaSha384],
    canonicalDer: true,
    matchingAlgorithms: true,
    rootName: 'GCE-cc-tcb-root',
    anchors: [root],
    path: [
      { what: 'signer', ca: false },
      { what: 'root', ca: true },
    ],
  };
}

/** The signer certificate, verified under `root` at `now` by the chain engine. */
function checkSigner(certDer: Uint8Array, root: ParsedCert, now: Date): ParsedCert {
  if (certDer.length === 0) throw malformed('no signer certificate');
  const signer = parseCertificate(certDer, 'ERR_EVIDENCE_MALFORMED');
  verifyChain([signer, root], gceProfile(root), now);
  return signer;
}

/**
 * Verifies a serialized VMLaunchEndorsement under Google's GCE-cc-tcb-root and returns what it
 * endorses. Nothing here is Google's word unless this returns.
 *
 * Throws ERR_INVALID_ARGUMENT (bad options), ERR_EVIDENCE_MALFORMED (not an endorsement, missing
 * provenance), ERR_EVIDENCE_CHAIN (root not the pinned one, signer not issued by it, expired) and
 * ERR_EVIDENCE_SIGNATURE (signature wrong); ERR_EVIDENCE_POLICY when `uefiDigest` differs.
 */
export function verifyLaunchEndorsement(
  bytes: Uint8Array,
  options: VerifyLaunchEndorsementOptions,
): LaunchEndorsement {
  if (!(bytes instanceof Uint8Array))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'endorsement must be bytes');
  if (!options || !(options.now instanceof Date) || Number.isNaN(options.now.getTime()))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'options.now must be a valid Date');
  const pinned = (options.rootSha256 ?? GCE_TCB_ROOT_SHA256).toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(pinned))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'rootSha256 must be 64 hex digits');
  if (bytes.length > MAX_ENDORSEMENT_BYTES) throw malformed(`${bytes.length} bytes is too large`);

  const root = parseCertificate(rootDer(options.root), 'ERR_INVALID_ARGUMENT');
  if (root.fingerprint256 !== pinned)
    throw chain(`root certificate SHA-256 ${root.fingerprint256} is not the pinned ${pinned}`);

  const outer = new ProtoMessage(bytes, 'VMLaunchEndorsement');
  const signed = outer.bytes(1, 'serialized_uefi_golden');
  const signature = outer.bytes(2, 'signature');
  if (signed.length === 0) throw malformed('no serialized_uefi_golden');
  const golden = parseGoldenMeasurement(signed);
  if (
    golden.timestamp.getTime() > PROVENANCE_REQUIRED_AFTER &&
    golden.clSpec === 0n &&
    golden.commit.length === 0
  )
    throw malformed('missing provenance (neither cl_spec nor commit)');

  const signer = checkSigner(golden.cert, root, options.now);
  // node:crypto ignores the padding option for EC keys and would check an ECDSA signature.
  const keyType = signer.publicKey.asymmetricKeyType;
  let ok = false;
  if (keyType === 'rsa' || keyType === 'rsa-pss')
    try {
      ok = verify(
        'sha256',
        signed,
        { key: signer.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
        signature,
      );
    } catch {
      ok = false; // a non-RSA signer key: no RSA-PSS signature can verify
    }
  if (!ok)
    throw new AttestationError('ERR_EVIDENCE_SIGNATURE', 'launch endorsement: signature does not verify');

  if (
    options.uefiDigest !== undefined &&
    !Buffer.from(options.uefiDigest).equals(Buffer.from(golden.uefiDigest))
  )
    throw new AttestationError(
      'ERR_EVIDENCE_POLICY',
      `launch endorsement is for firmware ${bytesToHex(golden.uefiDigest)}, not ${bytesToHex(options.uefiDigest)}`,
    );
  const { cert: _cert, ...rest } = golden;
  return { ...rest, signer };
}
