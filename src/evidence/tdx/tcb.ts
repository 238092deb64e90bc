/**
 * TCB Info (TDX, v3) and QE Identity (TD_QE, v2): their typed shape, and the TCB status of a quote
 * as Intel's Quote Verification Library computes it (docs/reference/tdx-format.md §3.2, §3.3,
 * §4 steps 4, 5, 8 and 10):
 *   - the first TCB level (in descending order) whose SGX components and PCESVN the PCK meets,
 *     and from there the first whose TDX components TEE_TCB_SVN meets (bytes 2..15 only when
 *     TEE_TCB_SVN[1] > 0, since then bytes 0 and 1 are judged by the TDX module identity);
 *   - the TDX module identity TDX_%02X of TEE_TCB_SVN[1] and its levels (by TEE_TCB_SVN[0]);
 *   - the QE identity level (by the QE's ISVSVN);
 *   - convergence of the three into one status, with the advisory IDs of the levels involved;
 *   - for TD report 1.5 (v5 body type 3), QVL's "TD relaunch advised" refinement: an out-of-date
 *     TDX TCB whose cause is an out-of-date module that the platform has since updated
 *     (TEE_TCB_SVN2 meets the latest level) is TDRelaunchAdvised(ConfigurationNeeded) instead.
 * This module only judges; signatures and windows of these documents are checked in collateral.ts.
 */
import { AttestationError } from '../../errors.js';
import { bytesToHex, equalBytes, hexToBytes } from '../bytes.js';
import { TDX_LEVEL_STATUSES, type TdxTcbStatus } from '../types.js';
import type { SgxExtensions } from './pck.js';
import type { QeReport, TdReportBody } from './quote.js';

const LEVEL_STATUSES = TDX_LEVEL_STATUSES;
type LevelStatus = (typeof LEVEL_STATUSES)[number];
type IdentityStatus = 'UpToDate' | 'OutOfDate' | 'Revoked';

export interface TcbLevel {
  sgx: number[];
  pceSvn: number;
  tdx: number[];
  tcbDate: string;
  status: LevelStatus;
  advisoryIds: string[];
}

export interface IdentityLevel {
  isvSvn: number;
  tcbDate: string;
  status: IdentityStatus;
  advisoryIds: string[];
}

export interface TdxModuleIdentity {
  id: string;
  mrSigner: Uint8Array;
  attributes: Uint8Array;
  attributesMask: Uint8Array;
  levels: IdentityLevel[];
}

export interface TcbInfo {
  issueDate: Date;
  nextUpdate: Date;
  fmspc: Uint8Array;
  pceId: Uint8Array;
  tcbEvaluationDataNumber: number;
  tdxModule: { mrSigner: Uint8Array; attributes: Uint8Array; attributesMask: Uint8Array };
  moduleIdentities: TdxModuleIdentity[];
  levels: TcbLevel[];
}

export interface QeIdentity {
  issueDate: Date;
  nextUpdate: Date;
  tcbEvaluationDataNumber: number;
  miscSelect: Uint8Array;
  miscSelectMask: Uint8Array;
  attributes: Uint8Array;
  attributesMask: Uint8Array;
  mrSigner: Uint8Array;
  isvProdId: number;
  levels: IdentityLevel[];
}

// ---------------------------------------------------------------------------------------------
// Shape validation. The documents are signed by Intel, but a verifier that crashes on a signed
// document it does not understand is still a verifier that crashes: every field is checked.

function bad(what: string, why: string): AttestationError {
  return new AttestationError('ERR_COLLATERAL_UNAVAILABLE', `${what}: ${why}`);
}

type Obj = Record<string, unknown>;

/** A copy without a prototype, so every member read afterwards is the JSON's own (or undefined). */
function obj(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(what, 'not an object');
  return Object.assign(Object.create(null) as Obj, v);
}

function arr(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw bad(what, 'not a list');
  return v;
}

function uint(v: unknown, what: string, max = 0xffffffff): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max)
    throw bad(what, 'not a valid integer');
  return v;
}

function hex(v: unknown, what: string, bytes: number): Uint8Array {
  if (typeof v !== 'string' || v.length !== bytes * 2 || !/^[0-9a-fA-F]*$/.test(v))
    throw bad(what, `not ${bytes} bytes of hex`);
  return hexToBytes(v);
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw bad(what, 'not a string');
  return v;
}

function date(v: unknown, what: string): Date {
  const s = str(v, what);
  // ISO 8601 with an explicit UTC designator, as Intel writes them; no locale-dependent parsing.
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(s))
    throw bad(what, `"${s}" is not an ISO UTC time`);
  const d = new Date(s);
  if (!Number.isFinite(d.getTime())) throw bad(what, `"${s}" is not a valid time`);
  return d;
}

function advisories(v: unknown, what: string): string[] {
  if (v === undefined) return [];
  return arr(v, what).map((a, i) => str(a, `${what}[${i}]`));
}

function components(v: unknown, what: string): number[] {
  const list = arr(v, what);
  if (list.length !== 16) throw bad(what, `has ${list.length} components, expected 16`);
  return list.map((c, i) => uint(obj(c, `${what}[${i}]`).svn, `${what}[${i}].svn`, 255));
}

function identityLevels(v: unknown, what: string): IdentityLevel[] {
  const levels = arr(v, what).map((l, i) => {
    const o = obj(l, `${what}[${i}]`);
    const status = str(o.tcbStatus, `${what}[${i}].tcbStatus`);
    if (status !== 'UpToDate' && status !== 'OutOfDate' && status !== 'Revoked')
      throw bad(`${what}[${i}].tcbStatus`, `unrecognised status "${status}"`);
    return {
      isvSvn: uint(obj(o.tcb, `${what}[${i}].tcb`).isvsvn, `${what}[${i}].tcb.isvsvn`, 0xffff),
      tcbDate: str(o.tcbDate, `${what}[${i}].tcbDate`),
      status: status as IdentityStatus,
      advisoryIds: advisories(o.advisoryIDs, `${what}[${i}].advisoryIDs`),
    };
  });
  // Intel lists levels newest first; sorting makes "first level not above the SVN" independent of that.
  return levels.sort((a, b) => b.isvSvn - a.isvSvn);
}

function compareDesc(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return b[i]! - a[i]!;
  return 0;
}

/** Parses the signed tcbInfo text (already signature-checked by the caller). */
export function parseTcbInfo(text: string): TcbInfo {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new AttestationError('ERR_COLLATERAL_UNAVAILABLE', 'tcbInfo is not JSON', { cause: err });
  }
  const o = obj(raw, 'tcbInfo');
  if (o.id !== 'TDX') throw bad('tcbInfo.id', `"${String(o.id)}" is not a TDX TCB info`);
  if (o.version !== 3) throw bad('tcbInfo.version', `${String(o.version)} (only version 3 is supported)`);
  const mod = obj(o.tdxModule, 'tcbInfo.tdxModule');
  const moduleIdentities =
    o.tdxModuleIdentities === undefined ? [] : arr(o.tdxModuleIdentities, 'tcbInfo.tdxModuleIdentities');
  const levels = arr(o.tcbLevels, 'tcbInfo.tcbLevels').map((l, i): TcbLevel => {
    const w = `tcbInfo.tcbLevels[${i}]`;
    const lo = obj(l, w);
    const tcb = obj(lo.tcb, `${w}.tcb`);
    const status = str(lo.tcbStatus, `${w}.tcbStatus`);
    if (!(LEVEL_STATUSES as readonly string[]).includes(status))
      throw bad(`${w}.tcbStatus`, `unrecognised status "${status}"`);
    return {
      sgx: components(tcb.sgxtcbcomponents, `${w}.tcb.sgxtcbcomponents`),
      pceSvn: uint(tcb.pcesvn, `${w}.tcb.pcesvn`, 0xffff),
      tdx: components(tcb.tdxtcbcomponents, `${w}.tcb.tdxtcbcomponents`),
      tcbDate: str(lo.tcbDate, `${w}.tcbDate`),
      status: status as LevelStatus,
      advisoryIds: advisories(lo.advisoryIDs, `${w}.advisoryIDs`),
    };
  });
  // Intel's QVL holds the levels in an ordered set, highest first (SGX components, then PCESVN,
  // then TDX components); sorting the same way makes the outcome independent of the JSON order.
  levels.sort((a, b) => compareDesc(a.sgx, b.sgx) || b.pceSvn - a.pceSvn || compareDesc(a.tdx, b.tdx));
  return {
    issueDate: date(o.issueDate, 'tcbInfo.issueDate'),
    nextUpdate: date(o.nextUpdate, 'tcbInfo.nextUpdate'),
    fmspc: hex(o.fmspc, 'tcbInfo.fmspc', 6),
    pceId: hex(o.pceId, 'tcbInfo.pceId', 2),
    tcbEvaluationDataNumber: uint(o.tcbEvaluationDataNumber, 'tcbInfo.tcbEvaluationDataNumber'),
    tdxModule: {
      mrSigner: hex(mod.mrsigner, 'tcbInfo.tdxModule.mrsigner', 48),
      attributes: hex(mod.attributes, 'tcbInfo.tdxModule.attributes', 8),
      attributesMask: hex(mod.attributesMask, 'tcbInfo.tdxModule.attributesMask', 8),
    },
    moduleIdentities: moduleIdentities.map((m, i) => {
      const w = `tcbInfo.tdxModuleIdentities[${i}]`;
      const mo = obj(m, w);
      return {
        id: str(mo.id, `${w}.id`),
        mrSigner: hex(mo.mrsigner, `${w}.mrsigner`, 48),
        attributes: hex(mo.attributes, `${w}.attributes`, 8),
        attributesMask: hex(mo.attributesMask, `${w}.attributesMask`, 8),
        levels: identityLevels(mo.tcbLevels, `${w}.tcbLevels`),
      };
    }),
    levels,
  };
}

/** Parses the signed enclaveIdentity text (already signature-checked by the caller). */
export function parseQeIdentity(text: string): QeIdentity {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new AttestationError('ERR_COLLATERAL_UNAVAILABLE', 'QE identity is not JSON', { cause: err });
  }
  const o = obj(raw, 'enclaveIdentity');
  if (o.id !== 'TD_QE') throw bad('enclaveIdentity.id', `"${String(o.id)}" is not the TD quoting enclave`);
  if (o.version !== 2)
    throw bad('enclaveIdentity.version', `${String(o.version)} (only version 2 is supported)`);
  return {
    issueDate: date(o.issueDate, 'enclaveIdentity.issueDate'),
    nextUpdate: date(o.nextUpdate, 'enclaveIdentity.nextUpdate'),
    tcbEvaluationDataNumber: uint(o.tcbEvaluationDataNumber, 'enclaveIdentity.tcbEvaluationDataNumber'),
    miscSelect: hex(o.miscselect, 'enclaveIdentity.miscselect', 4),
    miscSelectMask: hex(o.miscselectMask, 'enclaveIdentity.miscselectMask', 4),
    attributes: hex(o.attributes, 'enclaveIdentity.attributes', 16),
    attributesMask: hex(o.attributesMask, 'enclaveIdentity.attributesMask', 16),
    mrSigner: hex(o.mrsigner, 'enclaveIdentity.mrsigner', 32),
    isvProdId: uint(o.isvprodid, 'enclaveIdentity.isvprodid', 0xffff),
    levels: identityLevels(o.tcbLevels, 'enclaveIdentity.tcbLevels'),
  };
}

// ---------------------------------------------------------------------------------------------
// Matching

export interface TcbResult {
  status: TdxTcbStatus;
  advisoryIds: string[];
  /** Each input to the final status, for diagnostics (error details, the CLI). */
  platformStatus?: string;
  moduleStatus?: string;
  qeStatus?: string;
  tcbDate?: string;
  /** Why no level matched (status NoMatchingTcbLevel only). */
  reason?: string;
}

function maskedEqual(value: Uint8Array, mask: Uint8Array, expected: Uint8Array): boolean {
  for (let i = 0; i < value.length; i++) if ((value[i]! & mask[i]!) !== expected[i]) return false;
  return true;
}

/**
 * Checks the Quoting Enclave against Intel's QE identity. A QE that is not Intel's TD-QE is a
 * broken chain of trust (ERR_EVIDENCE_CHAIN); its level gives the QE status.
 */
export function qeIdentityLevel(qe: QeReport, identity: QeIdentity): IdentityLevel | undefined {
  const mismatch = (field: string) =>
    new AttestationError(
      'ERR_EVIDENCE_CHAIN',
      `the quoting enclave does not match Intel's TD_QE identity (${field})`,
      {
        details: { field },
      },
    );
  if (!maskedEqual(qe.miscSelect, identity.miscSelectMask, identity.miscSelect)) throw mismatch('miscselect');
  if (!maskedEqual(qe.attributes, identity.attributesMask, identity.attributes)) throw mismatch('attributes');
  if (!equalBytes(qe.mrSigner, identity.mrSigner)) throw mismatch('mrsigner');
  if (qe.isvProdId !== identity.isvProdId) throw mismatch('isvprodid');
  return identity.levels.find((l) => l.isvSvn <= qe.isvSvn);
}

const SGX_FINE_FOR_RELAUNCH: readonly string[] = [
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
];

const CONFIGURATION_NEEDED: readonly string[] = [
  'ConfigurationNeeded',
  'OutOfDateConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'TDRelaunchAdvisedConfigurationNeeded',
];

/**
 * QVL's TD relaunch check (TDRelaunchCheck.cpp), for TD report 1.5. It applies when the QE is
 * fine, the SGX level is fine or only needs configuration or hardening, the TDX status is out of
 * date and so is the module's level: if TEE_TCB_SVN2 (what a relaunched TD would run on) meets the
 * latest TCB level (by module SVN and component 2), relaunching the TD is what is advised.
 * Undefined when TEE_TCB_SVN2 names a module identity without levels (TCB not supported).
 */
function relaunchAdvised(
  svn2: Uint8Array,
  tcbInfo: TcbInfo,
  sgxStatus: LevelStatus,
  status: TdxTcbStatus,
  moduleLevel: IdentityLevel,
  qeLevel: IdentityLevel,
): TdxTcbStatus | undefined {
  if (qeLevel.status !== 'UpToDate' || !SGX_FINE_FOR_RELAUNCH.includes(sgxStatus)) return status;
  if (status !== 'OutOfDate' && status !== 'OutOfDateConfigurationNeeded') return status;
  if (moduleLevel.status !== 'OutOfDate') return status;
  const latest = tcbInfo.levels[0];
  if (!latest) return undefined;
  let moduleSvn = latest.tdx[0]!;
  if (svn2[1]! > 0) {
    const id = moduleId(svn2[1]!);
    const identity = tcbInfo.moduleIdentities.find((m) => m.id.toUpperCase() === id);
    if (!identity) throw tdxModuleMismatch(`no module identity ${id} for TEE_TCB_SVN2`);
    const newest = identity.levels[0];
    if (!newest) return undefined;
    moduleSvn = newest.isvSvn;
  }
  if (svn2[0]! < moduleSvn || svn2[2]! < latest.tdx[2]!) return status;
  return CONFIGURATION_NEEDED.includes(sgxStatus) || CONFIGURATION_NEEDED.includes(status)
    ? 'TDRelaunchAdvisedConfigurationNeeded'
    : 'TDRelaunchAdvised';
}

function moduleId(version: number): string {
  return `TDX_${version.toString(16).toUpperCase().padStart(2, '0')}`;
}

function worse(status: TdxTcbStatus, other: IdentityStatus | undefined): TdxTcbStatus {
  if (other === undefined || other === 'UpToDate') return status;
  if (other === 'Revoked') return 'Revoked';
  // OutOfDate module or QE: QVL's convergence table.
  if (status === 'UpToDate' || status === 'SWHardeningNeeded') return 'OutOfDate';
  if (status === 'ConfigurationNeeded' || status === 'ConfigurationAndSWHardeningNeeded')
    return 'OutOfDateConfigurationNeeded';
  return status;
}

function tdxModuleMismatch(why: string): AttestationError {
  return new AttestationError('ERR_EVIDENCE_TCB', `TDX module does not match the TCB info: ${why}`, {
    details: { tcbStatus: 'TdxModuleMismatch', advisoryIds: [] },
  });
}

/** Computes the TCB status of a quote from verified, matching collateral. */
export function evaluateTcb(
  body: TdReportBody,
  sgx: SgxExtensions,
  tcbInfo: TcbInfo,
  qeLevel: IdentityLevel | undefined,
): TcbResult {
  const svn = body.teeTcbSvn;
  const moduleVersion = svn[1]!;

  // The TDX module: its signer and attributes, and with a versioned module its identity's level.
  let moduleLevel: IdentityLevel | undefined;
  let expected = tcbInfo.tdxModule;
  let identity: TdxModuleIdentity | undefined;
  if (moduleVersion > 0) {
    const id = moduleId(moduleVersion);
    identity = tcbInfo.moduleIdentities.find((m) => m.id.toUpperCase() === id);
    if (!identity) throw tdxModuleMismatch(`no module identity ${id}`);
    expected = identity;
  }
  if (!equalBytes(body.mrSignerSeam, expected.mrSigner))
    throw tdxModuleMismatch(`MRSIGNERSEAM ${bytesToHex(body.mrSignerSeam)} is not the expected signer`);
  if (!maskedEqual(body.seamAttributes, expected.attributesMask, expected.attributes))
    throw tdxModuleMismatch(`SEAMATTRIBUTES ${bytesToHex(body.seamAttributes)}`);
  if (identity) moduleLevel = identity.levels.find((l) => l.isvSvn <= svn[0]!);

  const firstTdx = moduleVersion > 0 ? 2 : 0;
  let level: TcbLevel | undefined;
  let sgxLevel: TcbLevel | undefined;
  for (const l of tcbInfo.levels) {
    if (sgx.pceSvn < l.pceSvn || !l.sgx.every((s, i) => sgx.sgxTcbComponents[i]! >= s)) continue;
    sgxLevel ??= l;
    let ok = true;
    for (let i = firstTdx; i < 16; i++) if (svn[i]! < l.tdx[i]!) ok = false;
    if (ok) {
      level = l;
      break;
    }
  }
  const notSupported = (why: string): TcbResult => ({
    status: 'NoMatchingTcbLevel',
    advisoryIds: [],
    ...(sgxLevel ? { platformStatus: sgxLevel.status } : {}),
    reason: why,
  });
  if (!level)
    return notSupported(
      sgxLevel ? 'no TDX TCB level matches TEE_TCB_SVN' : 'no SGX TCB level matches the PCK',
    );
  if (identity && !moduleLevel) return notSupported('no TDX module level matches TEE_TCB_SVN[0]');
  if (!qeLevel) return notSupported('no QE identity level matches the QE ISVSVN');

  let status: TdxTcbStatus = worse(level.status, moduleLevel?.status);
  if (body.teeTcbSvn2 && sgxLevel && moduleLevel && status !== 'Revoked') {
    const relaunch = relaunchAdvised(body.teeTcbSvn2, tcbInfo, sgxLevel.status, status, moduleLevel, qeLevel);
    if (relaunch === undefined) return notSupported('TEE_TCB_SVN2 names a TDX module with no TCB levels');
    status = relaunch;
  }
  const final =
    status === 'Revoked' || status === 'NoMatchingTcbLevel' ? status : worse(status, qeLevel.status);
  const ids = new Set([...level.advisoryIds, ...(moduleLevel?.advisoryIds ?? []), ...qeLevel.advisoryIds]);
  return {
    status: final,
    advisoryIds: [...ids].sort(),
    platformStatus: level.status,
    ...(moduleLevel ? { moduleStatus: moduleLevel.status } : {}),
    qeStatus: qeLevel.status,
    tcbDate: level.tcbDate,
  };
}
