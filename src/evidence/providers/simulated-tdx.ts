/**
 * A software Intel TDX platform: quotes of the real v4 / v5 layout (docs/reference/tdx-format.md
 * §1) with the ECDSA P-256 attestation key certified by a simulated Quoting Enclave whose report is signed by a
 * simulated PCK (Intel SGX Root CA → PCK Platform CA → PCK Certificate, with Intel's SGX
 * extension), plus collateral in the schema of test/fixtures/tdx/README.md signed by a simulated
 * TCB Signing key. Every certificate's O= is SIMULATED_ORGANIZATION; verifiers accept it only
 * with `simulated.trustAnchors()`.
 *
 * The platform's SVNs are fixed; `tcbStatus` arranges the TCB levels of the TCB info around them
 * so that Intel QVL's matching rules (docs/reference/tdx-format.md §4) land on a level carrying that status.
 */
import { createHash, createPublicKey, type KeyObject, sign } from 'node:crypto';
import { AttestationError } from '../../errors.js';
import { bytesToHex } from '../bytes.js';
import { SIMULATED_ORGANIZATION } from '../simulated-marker.js';
import {
  type EvidenceInput,
  type EvidenceProvider,
  TDX_LEVEL_STATUSES,
  type TdxCollateral,
} from '../types.js';
import {
  basicConstraints,
  buildCertificate,
  buildCrl,
  crlDistributionPoint,
  keyUsage,
  type NameSpec,
} from '../x509/build.js';
import { OID } from '../x509/cert.js';
import {
  concat,
  derBoolean,
  derEnumerated,
  derInteger,
  derOctetString,
  derOid,
  derSequence,
} from '../x509/der.js';
import { derToPem, pemToDer } from '../x509/pem.js';
import { fixedBytes, reportDataArg, throwIfAborted } from './input.js';
import { SIMULATED_INTERMEDIATES, SIMULATED_ROOTS } from './simulated-keys.js';
import { simulatedKey } from './simulated-snp.js';

/** What the simulated collateral can give the platform: a level's status, or no matching level. */
export type SimulatedTcbStatus = (typeof TDX_LEVEL_STATUSES)[number] | 'NoMatchingTcbLevel';
export const SIMULATED_TCB_STATUSES: readonly SimulatedTcbStatus[] = [
  ...TDX_LEVEL_STATUSES,
  'NoMatchingTcbLevel',
];

export type SimulatedIntelCert = 'pck' | 'platform-ca' | 'tcb-signing';

export interface SimulatedTdxOptions {
  /** 4 (default) or 5 (body type 3, TD report 1.5). */
  version?: 4 | 5;
  /** 48 bytes each. Default: MRTD = DEFAULT_TDX_MRTD, the rest zeros. */
  mrTd?: Uint8Array | string;
  mrConfigId?: Uint8Array | string;
  mrOwner?: Uint8Array | string;
  mrOwnerConfig?: Uint8Array | string;
  mrSeam?: Uint8Array | string;
  /** Up to four 48-byte RTMRs (missing ones are zero). */
  rtmrs?: Array<Uint8Array | string>;
  /** 8 bytes as in the quote. Default 0000001000000000 (SEPT_VE_DISABLE only). */
  tdAttributes?: Uint8Array | string;
  /** 8 bytes. Default e702060000000000. */
  xfam?: Uint8Array | string;
  /** TEE_TCB_SVN, 16 bytes. Default 06 01 03 00… (module SVN 6 of TDX module 1.x, microcode 3). */
  teeTcbSvn?: Uint8Array | string;
  /** v5 only: 48 bytes. Default zeros (no service TD bound). */
  mrServiceTd?: Uint8Array | string;
  /** Status the collateral's TCB levels give this platform. Default UpToDate. */
  tcbStatus?: SimulatedTcbStatus;
  /** Collateral issueDate / CRL thisUpdate = now − 1 day, nextUpdate = now + 30 days. Default: the wall clock at each call. */
  now?: Date;
  /** Certificates the CRLs list as revoked. */
  revoked?: SimulatedIntelCert[];
  /** Attach collateral to the evidence (default true). */
  collateral?: boolean;
}

/** The fixed demo MRTD: SHA-384("attested-channel simulated TD"). */
export const DEFAULT_TDX_MRTD = createHash('sha384').update('attested-channel simulated TD').digest('hex');

const VALID_FROM = new Date('2024-01-01T00:00:00Z');
const VALID_TO = new Date('2049-12-31T23:59:59Z');
const DAY_MS = 86_400_000;
const INTEL_QE_VENDOR_ID = '939a7233f79c4ca9940a0db3957f0607';
const TD_QE_MRSIGNER = 'dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5';
const SGX_EXT = '1.2.840.113741.1.13.1';

/** The simulated platform's fixed TCB, in the shape of the PCK certificate's SGX extension. */
export const SIMULATED_TDX_PLATFORM = {
  /** The PPID in the PCK certificate (32 hex chars), what policy `tdx.ppids` pins. */
  ppid: createHash('sha256').update('simulated PPID').digest('hex').slice(0, 32),
  fmspc: '90c06f000000',
  pceId: '0000',
  sgxTcbComponents: [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0],
  pceSvn: 11,
  qeIsvSvn: 4,
} as const;

const DEFAULT_TEE_TCB_SVN = '06010300000000000000000000000000';

function intelName(cn: string): NameSpec {
  return [
    ['CN', cn],
    ['O', SIMULATED_ORGANIZATION],
    ['L', 'Santa Clara'],
    ['ST', 'CA'],
    ['C', 'US'],
  ];
}

function serial20(label: string): Uint8Array {
  // Intel serials are 20 random-looking bytes; a fixed hash keeps them stable across runs.
  const s = new Uint8Array(createHash('sha256').update(label).digest().subarray(0, 20));
  s[0]! &= 0x7f;
  return s;
}

export interface SimulatedIntelChain {
  root: Uint8Array;
  platformCa: Uint8Array;
  pck: Uint8Array;
  tcbSigning: Uint8Array;
}

function pckSgxExtension(): Uint8Array {
  const p = SIMULATED_TDX_PLATFORM;
  const arc = (suffix: string) => derOid(`${SGX_EXT}.${suffix}`);
  const pair = (suffix: string, value: Uint8Array) => derSequence(arc(suffix), value);
  const cpuSvn = Uint8Array.from(p.sgxTcbComponents);
  const tcb = derSequence(
    ...p.sgxTcbComponents.map((svn, i) => pair(`2.${i + 1}`, derInteger(svn))),
    pair('2.17', derInteger(p.pceSvn)),
    pair('2.18', derOctetString(cpuSvn)),
  );
  return derSequence(
    pair('1', derOctetString(Buffer.from(p.ppid, 'hex'))),
    pair('2', tcb),
    pair('3', derOctetString(Buffer.from(p.pceId, 'hex'))),
    pair('4', derOctetString(Buffer.from(p.fmspc, 'hex'))),
    pair('5', derEnumerated(1)), // Scalable, as on TDX-capable Xeons
    pair(
      '6',
      derOctetString(
        new Uint8Array(createHash('sha256').update('simulated platform').digest().subarray(0, 16)),
      ),
    ),
    pair(
      '7',
      derSequence(
        pair('7.1', derBoolean(true)),
        pair('7.2', derBoolean(true)),
        pair('7.3', derBoolean(true)),
      ),
    ),
  );
}

/**
 * The simulated Intel root, PCK Platform CA, PCK and TCB Signing certificates (DER):
 * embedded, a fresh copy each call.
 */
export function simulatedIntelChain(): SimulatedIntelChain {
  return {
    root: pemToDer(SIMULATED_ROOTS.intelRoot)[0]!,
    platformCa: pemToDer(SIMULATED_INTERMEDIATES.intelPlatformCa)[0]!,
    pck: pemToDer(SIMULATED_INTERMEDIATES.intelPck)[0]!,
    tcbSigning: pemToDer(SIMULATED_INTERMEDIATES.intelTcbSigning)[0]!,
  };
}

/**
 * Issues the PCK Platform CA, PCK and TCB Signing certificates under the simulated root, as
 * SIMULATED_INTERMEDIATES holds them (equal to-be-signed parts; ECDSA signatures differ each
 * time). Only scripts/simulated-certs.ts and the test that holds the embedded ones to it call this.
 */
export function issueIntelIntermediates(): Omit<SimulatedIntelChain, 'root'> {
  const rootKey = simulatedKey('intelRoot');
  const caKey = simulatedKey('intelPlatformCa');
  const rootName = intelName('Intel SGX Root CA');
  const caName = intelName('Intel SGX PCK Platform CA');
  const rootCrl = {
    oid: '2.5.29.31',
    value: crlDistributionPoint('https://certificates.trustedservices.intel.com/IntelSGXRootCA.der'),
  };
  const common = { notBefore: VALID_FROM, notAfter: VALID_TO, algorithm: 'ecdsa-sha256' as const };
  const platformCa = buildCertificate({
    ...common,
    subject: caName,
    issuer: rootName,
    serial: serial20('simulated Intel SGX PCK Platform CA'),
    publicKey: createPublicKey(caKey),
    signingKey: rootKey,
    extensions: [
      rootCrl,
      { oid: OID.keyUsage, value: keyUsage([5, 6]), critical: true },
      { oid: OID.basicConstraints, value: basicConstraints(true, 0), critical: true },
    ],
  });
  const pck = buildCertificate({
    ...common,
    subject: intelName('Intel SGX PCK Certificate'),
    issuer: caName,
    serial: serial20('simulated Intel SGX PCK Certificate'),
    publicKey: createPublicKey(simulatedKey('intelPck')),
    signingKey: caKey,
    extensions: [
      {
        oid: '2.5.29.31',
        value: crlDistributionPoint(
          'https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=platform&encoding=der',
        ),
      },
      { oid: OID.keyUsage, value: keyUsage([0, 1]), critical: true },
      { oid: OID.basicConstraints, value: basicConstraints(false), critical: true },
      { oid: SGX_EXT, value: pckSgxExtension() },
    ],
  });
  const tcbSigning = buildCertificate({
    ...common,
    subject: intelName('Intel SGX TCB Signing'),
    issuer: rootName,
    serial: serial20('simulated Intel SGX TCB Signing'),
    publicKey: createPublicKey(simulatedKey('intelTcbSigning')),
    signingKey: rootKey,
    extensions: [
      rootCrl,
      { oid: OID.keyUsage, value: keyUsage([0, 1]), critical: true },
      { oid: OID.basicConstraints, value: basicConstraints(false), critical: true },
    ],
  });
  return { platformCa, pck, tcbSigning };
}

/** Raw X‖Y of a P-256 key (the last 64 bytes of its uncompressed SPKI point). */
function rawPublicKey(key: KeyObject): Uint8Array {
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(spki.length - 64));
}

function p1363(data: Uint8Array, key: KeyObject): Uint8Array {
  return new Uint8Array(sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }));
}

function u16(n: number): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, n, true);
  return b;
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

const QE_AUTH_DATA = Uint8Array.from({ length: 32 }, (_, i) => i);

/**
 * The QE report certification data (type 6) with its nested PCK chain (type 5) for the attestation
 * key `attKey` (raw X‖Y): the same for every quote of one platform, which makes it once.
 */
function qeCertificationData(attKey: Uint8Array): Uint8Array {
  const chain = simulatedIntelChain();
  const qe = new Uint8Array(384);
  qe.set(Buffer.from('0303191b04ff00060000000000000000', 'hex'), 0); // CPUSVN
  qe.set(Buffer.from('1500000000000000e700000000000000', 'hex'), 48); // ATTRIBUTES
  qe.set(createHash('sha256').update('simulated TD quoting enclave').digest(), 64); // MRENCLAVE
  qe.set(Buffer.from(TD_QE_MRSIGNER, 'hex'), 128);
  qe.set(u16(2), 256); // ISVPRODID: TD-QE
  qe.set(u16(SIMULATED_TDX_PLATFORM.qeIsvSvn), 258);
  qe.set(createHash('sha256').update(attKey).update(QE_AUTH_DATA).digest(), 320);
  const qeSig = p1363(qe, simulatedKey('intelPck'));
  // Real chains end with a NUL byte after the PEM text.
  const pem = Buffer.from(
    `${derToPem(chain.pck)}${derToPem(chain.platformCa)}${derToPem(chain.root)}\0`,
    'latin1',
  );
  const inner = concat(u16(5), u32(pem.length), pem);
  return concat(qe, qeSig, u16(QE_AUTH_DATA.length), QE_AUTH_DATA, inner);
}

function isoSeconds(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

interface Level {
  sgx: number[];
  pcesvn: number;
  tdx: number[];
  date: string;
  status: string;
  advisories?: string[];
}

const ADVISORIES: Partial<Record<SimulatedTcbStatus, string[]>> = {
  SWHardeningNeeded: ['INTEL-SA-00615'],
  ConfigurationNeeded: ['INTEL-SA-00657'],
  ConfigurationAndSWHardeningNeeded: ['INTEL-SA-00615', 'INTEL-SA-00657'],
  OutOfDate: ['INTEL-SA-00837'],
  OutOfDateConfigurationNeeded: ['INTEL-SA-00657', 'INTEL-SA-00837'],
  Revoked: ['INTEL-SA-00960'],
};

/**
 * TCB levels in Intel's (descending) order, placed so that the platform's first SGX- and
 * TDX-matching level carries `status`: a newer UpToDate level the platform does not reach (unless
 * the status is UpToDate), the platform's own level, then an older OutOfDate one. For
 * NoMatchingTcbLevel every level is above the platform.
 */
function tcbLevels(status: SimulatedTcbStatus, teeTcbSvn: Uint8Array): Level[] {
  const p = SIMULATED_TDX_PLATFORM;
  const tdx = Array.from(teeTcbSvn);
  const sgx = [...p.sgxTcbComponents];
  const newer = [sgx[0]! + 1, ...sgx.slice(1)];
  const older = [Math.max(0, sgx[0]! - 1), ...sgx.slice(1)];
  const above: Level = {
    sgx: newer,
    pcesvn: p.pceSvn,
    tdx,
    date: '2025-11-12T00:00:00Z',
    status: 'UpToDate',
  };
  const below: Level = {
    sgx: older,
    pcesvn: Math.max(0, p.pceSvn - 6),
    tdx,
    date: '2018-01-04T00:00:00Z',
    status: 'OutOfDate',
    advisories: ['INTEL-SA-00106', 'INTEL-SA-00837'],
  };
  if (status === 'NoMatchingTcbLevel')
    return [above, { ...below, sgx: newer, pcesvn: p.pceSvn + 1, status: 'OutOfDate' }];
  const own: Level = {
    sgx,
    pcesvn: p.pceSvn,
    tdx,
    date: '2024-03-13T00:00:00Z',
    status,
    ...(ADVISORIES[status] ? { advisories: ADVISORIES[status] } : {}),
  };
  return status === 'UpToDate' ? [own, below] : [above, own, below];
}

function tcbInfoText(status: SimulatedTcbStatus, teeTcbSvn: Uint8Array, now: Date): string {
  const zeros48 = '0'.repeat(96).toUpperCase();
  const module = { mrsigner: zeros48, attributes: '0000000000000000', attributesMask: 'FFFFFFFFFFFFFFFF' };
  const comp = (svn: number) => ({ svn });
  const major = teeTcbSvn[1]!;
  // Key order and compact form as Intel PCS serves them; verifiers must check the exact text.
  const info = {
    id: 'TDX',
    version: 3,
    issueDate: isoSeconds(new Date(now.getTime() - DAY_MS)),
    nextUpdate: isoSeconds(new Date(now.getTime() + 30 * DAY_MS)),
    fmspc: SIMULATED_TDX_PLATFORM.fmspc.toUpperCase(),
    pceId: SIMULATED_TDX_PLATFORM.pceId,
    tcbType: 0,
    tcbEvaluationDataNumber: 17,
    tdxModule: module,
    tdxModuleIdentities:
      major > 0
        ? [
            {
              id: `TDX_${major.toString(16).toUpperCase().padStart(2, '0')}`,
              ...module,
              tcbLevels: [
                { tcb: { isvsvn: teeTcbSvn[0]! }, tcbDate: '2024-03-13T00:00:00Z', tcbStatus: 'UpToDate' },
              ],
            },
          ]
        : [],
    tcbLevels: tcbLevels(status, teeTcbSvn).map((l) => ({
      tcb: { sgxtcbcomponents: l.sgx.map(comp), pcesvn: l.pcesvn, tdxtcbcomponents: l.tdx.map(comp) },
      tcbDate: l.date,
      tcbStatus: l.status,
      ...(l.advisories ? { advisoryIDs: l.advisories } : {}),
    })),
  };
  return JSON.stringify(info);
}

function qeIdentityText(now: Date): string {
  return JSON.stringify({
    id: 'TD_QE',
    version: 2,
    issueDate: isoSeconds(new Date(now.getTime() - DAY_MS)),
    nextUpdate: isoSeconds(new Date(now.getTime() + 30 * DAY_MS)),
    tcbEvaluationDataNumber: 17,
    miscselect: '00000000',
    miscselectMask: 'FFFFFFFF',
    attributes: '11000000000000000000000000000000',
    attributesMask: 'FBFFFFFFFFFFFFFF0000000000000000',
    mrsigner: TD_QE_MRSIGNER.toUpperCase(),
    isvprodid: 2,
    tcbLevels: [
      {
        tcb: { isvsvn: SIMULATED_TDX_PLATFORM.qeIsvSvn },
        tcbDate: '2024-03-13T00:00:00Z',
        tcbStatus: 'UpToDate',
      },
    ],
  });
}

/** Collateral for the simulated platform at `now` (see SimulatedTdxOptions). */
export function simulatedTdxCollateral(
  options: {
    tcbStatus?: SimulatedTcbStatus;
    now?: Date;
    revoked?: SimulatedIntelCert[];
    teeTcbSvn?: Uint8Array | string;
  } = {},
): TdxCollateral {
  if (typeof options !== 'object' || options === null)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'options must be an object');
  const status = options.tcbStatus ?? 'UpToDate';
  if (!SIMULATED_TCB_STATUSES.includes(status))
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      `tcbStatus must be one of ${SIMULATED_TCB_STATUSES.join(', ')}`,
    );
  const now = options.now ?? new Date();
  if (!(now instanceof Date) || !Number.isFinite(now.getTime()))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'now must be a valid Date');
  const revoked = options.revoked ?? [];
  for (const r of revoked)
    if (r !== 'pck' && r !== 'platform-ca' && r !== 'tcb-signing')
      throw new AttestationError(
        'ERR_INVALID_ARGUMENT',
        'revoked lists "pck", "platform-ca" or "tcb-signing"',
      );
  const teeTcbSvn = fixedBytes('teeTcbSvn', options.teeTcbSvn, [16], Buffer.from(DEFAULT_TEE_TCB_SVN, 'hex'));
  const chain = simulatedIntelChain();
  const serialOf = (name: string) => serial20(`simulated Intel SGX ${name}`);
  const thisUpdate = new Date(now.getTime() - DAY_MS);
  const nextUpdate = new Date(now.getTime() + 30 * DAY_MS);
  const rootCrl = buildCrl({
    issuer: intelName('Intel SGX Root CA'),
    thisUpdate,
    nextUpdate,
    revokedSerials: [
      ...(revoked.includes('platform-ca') ? [serialOf('PCK Platform CA')] : []),
      ...(revoked.includes('tcb-signing') ? [serialOf('TCB Signing')] : []),
    ],
    signingKey: simulatedKey('intelRoot'),
    algorithm: 'ecdsa-sha256',
  });
  const pckCrl = buildCrl({
    issuer: intelName('Intel SGX PCK Platform CA'),
    thisUpdate,
    nextUpdate,
    revokedSerials: revoked.includes('pck') ? [serialOf('PCK Certificate')] : [],
    signingKey: simulatedKey('intelPlatformCa'),
    algorithm: 'ecdsa-sha256',
  });
  const signingKey = simulatedKey('intelTcbSigning');
  const tcbInfo = tcbInfoText(status, teeTcbSvn, now);
  const qeIdentity = qeIdentityText(now);
  const signingChain = derToPem(chain.tcbSigning) + derToPem(chain.root);
  return {
    pck_crl_issuer_chain: derToPem(chain.platformCa) + derToPem(chain.root),
    root_ca_crl: bytesToHex(rootCrl),
    pck_crl: bytesToHex(pckCrl),
    tcb_info_issuer_chain: signingChain,
    tcb_info: tcbInfo,
    tcb_info_signature: bytesToHex(p1363(Buffer.from(tcbInfo, 'utf8'), signingKey)),
    qe_identity_issuer_chain: signingChain,
    qe_identity: qeIdentity,
    qe_identity_signature: bytesToHex(p1363(Buffer.from(qeIdentity, 'utf8'), signingKey)),
  };
}

/** Creates a simulated TDX platform. Options are checked here, so a bad option throws at once. */
export function simulatedTdx(options: SimulatedTdxOptions = {}): EvidenceProvider {
  if (typeof options !== 'object' || options === null)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'options must be an object');
  const version = options.version ?? 4;
  if (version !== 4 && version !== 5)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'version must be 4 or 5');
  const f48 = (name: string, v: Uint8Array | string | undefined, fallback?: Uint8Array) =>
    fixedBytes(name, v, [48], fallback ?? new Uint8Array(48));
  const mrTd = f48('mrTd', options.mrTd, Buffer.from(DEFAULT_TDX_MRTD, 'hex'));
  const mrConfigId = f48('mrConfigId', options.mrConfigId);
  const mrOwner = f48('mrOwner', options.mrOwner);
  const mrOwnerConfig = f48('mrOwnerConfig', options.mrOwnerConfig);
  const mrSeam = f48(
    'mrSeam',
    options.mrSeam,
    new Uint8Array(createHash('sha384').update('attested-channel simulated TDX module').digest()),
  );
  const rtmrList = options.rtmrs ?? [];
  if (!Array.isArray(rtmrList) || rtmrList.length > 4)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'rtmrs is a list of at most four 48-byte values');
  const rtmrs = [0, 1, 2, 3].map((i) => f48(`rtmrs[${i}]`, rtmrList[i]));
  const tdAttributes = fixedBytes(
    'tdAttributes',
    options.tdAttributes,
    [8],
    Buffer.from('0000001000000000', 'hex'),
  );
  const xfam = fixedBytes('xfam', options.xfam, [8], Buffer.from('e702060000000000', 'hex'));
  const teeTcbSvn = fixedBytes('teeTcbSvn', options.teeTcbSvn, [16], Buffer.from(DEFAULT_TEE_TCB_SVN, 'hex'));
  if (options.mrServiceTd !== undefined && version !== 5)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'mrServiceTd exists in v5 quotes only');
  const mrServiceTd = f48('mrServiceTd', options.mrServiceTd);
  const tcbStatus = options.tcbStatus ?? 'UpToDate';
  const revoked = options.revoked ?? [];
  const withCollateral = options.collateral ?? true;
  // Validates status, now and revoked at creation time.
  if (withCollateral)
    simulatedTdxCollateral({ tcbStatus, revoked, teeTcbSvn, now: options.now ?? new Date() });
  // The platform's own: its attestation key, and (on the first quote: it signs a QE report) its
  // certification data.
  const attKey = simulatedKey('tdxAttestation');
  const attPublic = rawPublicKey(attKey);
  let certification: Uint8Array | undefined;
  let cached: { key: number; collateral: TdxCollateral } | undefined;
  const collateralAt = (): TdxCollateral => {
    // Without a fixed `now`, re-issue hourly so a long-running attester never serves stale collateral.
    const key = options.now ? options.now.getTime() : Math.floor(Date.now() / 3_600_000) * 3_600_000;
    if (cached?.key !== key)
      cached = {
        key,
        collateral: simulatedTdxCollateral({ tcbStatus, revoked, teeTcbSvn, now: new Date(key) }),
      };
    return cached.collateral;
  };

  return {
    format: 'tdx',
    async getEvidence(reportData: Uint8Array, opts?: { signal?: AbortSignal }): Promise<EvidenceInput> {
      throwIfAborted(opts?.signal);
      const data = reportDataArg(reportData);
      const header = concat(
        u16(version),
        u16(2), // ECDSA-256-with-P-256
        u32(0x81), // TDX
        new Uint8Array(4), // QE/PCE SVN bytes: zero in every real quote
        Buffer.from(INTEL_QE_VENDOR_ID, 'hex'),
        new Uint8Array(createHash('sha256').update('simulated QE user data').digest().subarray(0, 16)),
        new Uint8Array(4),
      );
      const body10 = concat(
        teeTcbSvn,
        mrSeam,
        new Uint8Array(48), // MRSIGNERSEAM: Intel-signed module
        new Uint8Array(8), // SEAMATTRIBUTES
        tdAttributes,
        xfam,
        mrTd,
        mrConfigId,
        mrOwner,
        mrOwnerConfig,
        ...rtmrs,
        data,
      );
      const signed =
        version === 4
          ? concat(header, body10)
          : concat(header, u16(3), u32(648), body10, teeTcbSvn /* TEE_TCB_SVN2 */, mrServiceTd);
      certification ??= qeCertificationData(attPublic);
      const cert = certification;
      const sigData = concat(p1363(signed, attKey), attPublic, u16(6), u32(cert.length), cert);
      const quote = concat(signed, u32(sigData.length), sigData);
      return withCollateral ? { report: quote, collateral: collateralAt() } : { report: quote };
    },
  };
}
