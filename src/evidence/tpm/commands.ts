/**
 * TPM 2.0 command and response marshalling for the few commands an attester needs: NV_ReadPublic,
 * NV_Read, NV_DefineSpace, NV_Write, NV_UndefineSpace, ReadPublic, Quote, PCR_Read (TPM 2.0 Part 3
 * §31, §12.4, §18.4, §22.4) and the response-code names of Part 2 §6.6. Pure functions: client.ts
 * moves the bytes. A TPM's answer is untrusted input like any other: every size is bounded and
 * anything inconsistent is ERR_PROVIDER_FAILED.
 */
import { AttestationError } from '../../errors.js';
import { readTpmtSignature, type TpmtSignature } from './attest.js';
import {
  type PcrSelection,
  readPcrSelection,
  TPM_ALG,
  TpmReader,
  TpmWriter,
  writePcrSelection,
} from './marshal.js';

export const TPM_ST = { NO_SESSIONS: 0x8001, SESSIONS: 0x8002 } as const;

export const TPM_CC = {
  NV_UndefineSpace: 0x0122,
  NV_DefineSpace: 0x012a,
  NV_Write: 0x0137,
  Startup: 0x0144,
  NV_Read: 0x014e,
  Quote: 0x0158,
  NV_ReadPublic: 0x0169,
  GetRandom: 0x017b,
  ReadPublic: 0x0173,
  PCR_Read: 0x017e,
  CreatePrimary: 0x0131,
  FlushContext: 0x0165,
} as const;

export const TPM_RH = {
  OWNER: 0x40000001,
  NULL: 0x40000007,
  ENDORSEMENT: 0x4000000b,
  PLATFORM: 0x4000000c,
} as const;
/** The password authorization session handle (Part 1 §19.8.4). */
export const TPM_RS_PW = 0x40000009;

/** TPMA_NV bits (Part 2 §13.4). */
export const TPMA_NV = {
  PPWRITE: 1 << 0,
  OWNERWRITE: 1 << 1,
  AUTHWRITE: 1 << 2,
  WRITTEN: 1 << 29,
  PPREAD: 1 << 16,
  OWNERREAD: 1 << 17,
  AUTHREAD: 1 << 18,
  NO_DA: 1 << 25,
} as const;

/** Azure's reserved indices (docs/reference/cloud-evidence.md §1.4). */
export const AZURE_NV = { HCL_REPORT: 0x01400001, USER_DATA: 0x01400002 } as const;
export const AZURE_AK_HANDLE = 0x81000003;

/** The largest response accepted: MAX_RESPONSE_SIZE of common TPMs is 4096. */
export const MAX_RESPONSE_SIZE = 8192;
/** MAX_NV_BUFFER_SIZE of common TPMs and swtpm; NV reads and writes go in chunks of at most this. */
export const NV_CHUNK = 1024;

const TPM_RC_NAMES_VER1: Record<number, string> = {
  0: 'TPM_RC_INITIALIZE',
  1: 'TPM_RC_FAILURE',
  3: 'TPM_RC_SEQUENCE',
  11: 'TPM_RC_PRIVATE',
  25: 'TPM_RC_HMAC',
  32: 'TPM_RC_DISABLED',
  33: 'TPM_RC_EXCLUSIVE',
  36: 'TPM_RC_AUTH_TYPE',
  37: 'TPM_RC_AUTH_MISSING',
  38: 'TPM_RC_POLICY',
  39: 'TPM_RC_PCR',
  40: 'TPM_RC_PCR_CHANGED',
  45: 'TPM_RC_UPGRADE',
  46: 'TPM_RC_TOO_MANY_CONTEXTS',
  47: 'TPM_RC_AUTH_UNAVAILABLE',
  48: 'TPM_RC_REBOOT',
  49: 'TPM_RC_UNBALANCED',
  66: 'TPM_RC_COMMAND_SIZE',
  67: 'TPM_RC_COMMAND_CODE',
  68: 'TPM_RC_AUTHSIZE',
  69: 'TPM_RC_AUTH_CONTEXT',
  70: 'TPM_RC_NV_RANGE',
  71: 'TPM_RC_NV_SIZE',
  72: 'TPM_RC_NV_LOCKED',
  73: 'TPM_RC_NV_AUTHORIZATION',
  74: 'TPM_RC_NV_UNINITIALIZED',
  75: 'TPM_RC_NV_SPACE',
  76: 'TPM_RC_NV_DEFINED',
  80: 'TPM_RC_BAD_CONTEXT',
  81: 'TPM_RC_CPHASH',
  82: 'TPM_RC_PARENT',
  83: 'TPM_RC_NEEDS_TEST',
  84: 'TPM_RC_NO_RESULT',
  85: 'TPM_RC_SENSITIVE',
};

const TPM_RC_NAMES_FMT1: Record<number, string> = {
  1: 'TPM_RC_ASYMMETRIC',
  2: 'TPM_RC_ATTRIBUTES',
  3: 'TPM_RC_HASH',
  4: 'TPM_RC_VALUE',
  5: 'TPM_RC_HIERARCHY',
  7: 'TPM_RC_KEY_SIZE',
  8: 'TPM_RC_MGF',
  9: 'TPM_RC_MODE',
  10: 'TPM_RC_TYPE',
  11: 'TPM_RC_HANDLE',
  12: 'TPM_RC_KDF',
  13: 'TPM_RC_RANGE',
  14: 'TPM_RC_AUTH_FAIL',
  15: 'TPM_RC_NONCE',
  16: 'TPM_RC_PP',
  18: 'TPM_RC_SCHEME',
  21: 'TPM_RC_SIZE',
  22: 'TPM_RC_SYMMETRIC',
  23: 'TPM_RC_TAG',
  24: 'TPM_RC_SELECTOR',
  26: 'TPM_RC_INSUFFICIENT',
  27: 'TPM_RC_SIGNATURE',
  28: 'TPM_RC_KEY',
  29: 'TPM_RC_POLICY_FAIL',
  31: 'TPM_RC_INTEGRITY',
  32: 'TPM_RC_TICKET',
  33: 'TPM_RC_RESERVED_BITS',
  34: 'TPM_RC_BAD_AUTH',
  35: 'TPM_RC_EXPIRED',
  36: 'TPM_RC_POLICY_CC',
  37: 'TPM_RC_BINDING',
  38: 'TPM_RC_CURVE',
  39: 'TPM_RC_ECC_POINT',
};

const TPM_RC_NAMES_WARN: Record<number, string> = {
  1: 'TPM_RC_CONTEXT_GAP',
  2: 'TPM_RC_OBJECT_MEMORY',
  3: 'TPM_RC_SESSION_MEMORY',
  4: 'TPM_RC_MEMORY',
  5: 'TPM_RC_SESSION_HANDLES',
  6: 'TPM_RC_OBJECT_HANDLES',
  7: 'TPM_RC_LOCALITY',
  8: 'TPM_RC_YIELDED',
  9: 'TPM_RC_CANCELED',
  10: 'TPM_RC_TESTING',
  32: 'TPM_RC_NV_RATE',
  33: 'TPM_RC_LOCKOUT',
  34: 'TPM_RC_RETRY',
  35: 'TPM_RC_NV_UNAVAILABLE',
};

/**
 * Names a response code (Part 2 §6.6.2 "Response Code Formats"): format-one codes carry the
 * handle, session or parameter number they refer to; bit 10 marks vendor codes; bit 11 warnings.
 */
export function tpmRcName(rc: number): string {
  if (rc === 0) return 'TPM_RC_SUCCESS';
  if (rc & 0x080) {
    const name = TPM_RC_NAMES_FMT1[rc & 0x3f] ?? `TPM_RC_0x${(0x080 + (rc & 0x3f)).toString(16)}`;
    const n = (rc >> 8) & 0xf;
    if (rc & 0x040) return `${name} (parameter ${n})`;
    if (n === 0) return name;
    return n & 0x8 ? `${name} (session ${n & 0x7})` : `${name} (handle ${n})`;
  }
  if (rc & 0x100) {
    if (rc & 0x400) return `TPM vendor code 0x${rc.toString(16)}`;
    const table = rc & 0x800 ? TPM_RC_NAMES_WARN : TPM_RC_NAMES_VER1;
    return table[rc & 0x7f] ?? `TPM_RC_0x${rc.toString(16)}`;
  }
  // TPM 1.2 style codes (bits 8 to 11 clear): the command was not understood as TPM 2.0.
  return `TPM 1.2 response code 0x${rc.toString(16)}`;
}

export interface PasswordAuth {
  /** The authorization value (empty for the owner hierarchy and keys without one). */
  password?: Uint8Array;
}

function writePasswordSessions(w: TpmWriter, auths: readonly PasswordAuth[]): void {
  const sessions = new TpmWriter();
  for (const a of auths) {
    // sessionHandle, nonceCaller (empty), sessionAttributes (continueSession), hmac = the password.
    sessions
      .u32(TPM_RS_PW)
      .u16(0)
      .u8(0x01)
      .tpm2b(a.password ?? new Uint8Array());
  }
  const body = sessions.finish();
  w.u32(body.length).bytes(body);
}

/** A complete command: header, handles, authorization area (when auths are given), parameters. */
export function buildCommand(
  cc: number,
  handles: readonly number[],
  params: Uint8Array,
  auths?: readonly PasswordAuth[],
): Uint8Array {
  const w = new TpmWriter();
  w.u16(auths ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS)
    .u32(0)
    .u32(cc);
  for (const h of handles) w.u32(h);
  if (auths) writePasswordSessions(w, auths);
  w.bytes(params);
  const out = w.finish();
  new DataView(out.buffer).setUint32(2, out.length);
  return out;
}

function failed(message: string, details: Record<string, unknown> = {}): AttestationError {
  return new AttestationError('ERR_PROVIDER_FAILED', message, { details });
}

function commandName(cc: number): string {
  for (const [name, code] of Object.entries(TPM_CC)) if (code === cc) return `TPM2_${name}`;
  return `command 0x${cc.toString(16)}`;
}

/**
 * Checks a response's header and response code; returns a reader over its parameters (after
 * `handleCount` handles and, for a sessions response, the parameterSize field).
 */
export function parseResponse(
  bytes: Uint8Array,
  cc: number,
  opts: { sessions: boolean; handleCount?: number },
): { handles: number[]; params: TpmReader } {
  const what = `${commandName(cc)} response`;
  const r = new TpmReader(bytes, what, 'ERR_PROVIDER_FAILED');
  const tag = r.u16('tag');
  const size = r.u32('responseSize');
  const rc = r.u32('responseCode');
  if (size !== bytes.length) throw r.fail(`responseSize ${size} but ${bytes.length} bytes`);
  if (rc !== 0) {
    const name = tpmRcName(rc);
    throw failed(`${commandName(cc)} failed: ${name} (0x${rc.toString(16)})`, {
      rc,
      rcName: name,
      command: commandName(cc),
    });
  }
  if (tag !== (opts.sessions ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS))
    throw r.fail(`unexpected tag 0x${tag.toString(16)}`);
  const handles: number[] = [];
  for (let i = 0; i < (opts.handleCount ?? 0); i++) handles.push(r.u32('handle'));
  if (!opts.sessions)
    return { handles, params: new TpmReader(bytes, what, 'ERR_PROVIDER_FAILED', bytes.length).at(r.pos) };
  const paramSize = r.u32('parameterSize');
  if (paramSize > r.remaining) throw r.fail(`parameterSize ${paramSize} runs past the end`);
  const start = r.pos;
  // The response sessions follow the parameters; a password session answers with
  // nonceTPM (empty), sessionAttributes, hmac (empty) per session, which nothing here needs.
  return { handles, params: new TpmReader(bytes, what, 'ERR_PROVIDER_FAILED', start + paramSize).at(start) };
}

// --- NV ------------------------------------------------------------------------------------

export interface NvPublic {
  index: number;
  nameAlg: number;
  attributes: number;
  authPolicy: Uint8Array;
  dataSize: number;
  /** The index's TPM name. */
  name: Uint8Array;
}

export function nvReadPublicCommand(index: number): Uint8Array {
  return buildCommand(TPM_CC.NV_ReadPublic, [index], new Uint8Array());
}

function readNvPublicArea(r: TpmReader): Omit<NvPublic, 'name'> {
  const size = r.u16('nvPublic size');
  const end = r.pos + size;
  if (size > r.remaining) throw r.fail('nvPublic runs past the end');
  const index = r.u32('nvIndex');
  const nameAlg = r.u16('nameAlg');
  const attributes = r.u32('attributes');
  const authPolicy = r.tpm2b('authPolicy', 64);
  const dataSize = r.u16('dataSize');
  if (r.pos !== end) throw r.fail('nvPublic size does not match its fields');
  return { index, nameAlg, attributes, authPolicy, dataSize };
}

export function parseNvReadPublic(bytes: Uint8Array): NvPublic {
  const { params } = parseResponse(bytes, TPM_CC.NV_ReadPublic, { sessions: false });
  const pub = readNvPublicArea(params);
  const name = params.tpm2b('nvName', 66);
  params.end();
  return { ...pub, name };
}

export function nvReadCommand(
  auth: number,
  index: number,
  size: number,
  offset: number,
  pw: PasswordAuth = {},
): Uint8Array {
  const p = new TpmWriter().u16(size).u16(offset).finish();
  return buildCommand(TPM_CC.NV_Read, [auth, index], p, [pw]);
}

export function parseNvRead(bytes: Uint8Array, requested: number): Uint8Array {
  const { params } = parseResponse(bytes, TPM_CC.NV_Read, { sessions: true });
  const data = params.tpm2b('data', requested);
  params.end();
  if (data.length !== requested) throw params.fail(`${data.length} bytes returned, ${requested} asked for`);
  return data;
}

export interface NvDefinition {
  index: number;
  dataSize: number;
  attributes: number;
  nameAlg?: number;
  authPolicy?: Uint8Array;
  /** The index's own authorization value (for AUTHREAD / AUTHWRITE). */
  authValue?: Uint8Array;
}

export function nvDefineSpaceCommand(auth: number, def: NvDefinition, pw: PasswordAuth = {}): Uint8Array {
  const pub = new TpmWriter()
    .u32(def.index)
    .u16(def.nameAlg ?? TPM_ALG.SHA256)
    .u32(def.attributes)
    .tpm2b(def.authPolicy ?? new Uint8Array())
    .u16(def.dataSize)
    .finish();
  const p = new TpmWriter()
    .tpm2b(def.authValue ?? new Uint8Array())
    .tpm2b(pub)
    .finish();
  return buildCommand(TPM_CC.NV_DefineSpace, [auth], p, [pw]);
}

export function nvWriteCommand(
  auth: number,
  index: number,
  data: Uint8Array,
  offset: number,
  pw: PasswordAuth = {},
): Uint8Array {
  const p = new TpmWriter().tpm2b(data).u16(offset).finish();
  return buildCommand(TPM_CC.NV_Write, [auth, index], p, [pw]);
}

export function nvUndefineSpaceCommand(auth: number, index: number, pw: PasswordAuth = {}): Uint8Array {
  return buildCommand(TPM_CC.NV_UndefineSpace, [auth, index], new Uint8Array(), [pw]);
}

/** For commands whose response has no parameters. */
export function parseEmpty(bytes: Uint8Array, cc: number): void {
  const { params } = parseResponse(bytes, cc, { sessions: true });
  params.end();
}

// --- Keys, quotes, PCRs ----------------------------------------------------------------------

export function readPublicCommand(handle: number): Uint8Array {
  return buildCommand(TPM_CC.ReadPublic, [handle], new Uint8Array());
}

export interface ReadPublicResult {
  /** The TPMT_PUBLIC bytes (inside the TPM2B_PUBLIC). */
  publicArea: Uint8Array;
  name: Uint8Array;
  qualifiedName: Uint8Array;
}

export function parseReadPublic(bytes: Uint8Array): ReadPublicResult {
  const { params } = parseResponse(bytes, TPM_CC.ReadPublic, { sessions: false });
  const publicArea = params.tpm2b('outPublic', 4096);
  const name = params.tpm2b('name', 66);
  const qualifiedName = params.tpm2b('qualifiedName', 66);
  params.end();
  return { publicArea, name, qualifiedName };
}

export interface QuoteScheme {
  /** TPM_ALG_NULL (default: the key's own scheme), RSASSA, RSAPSS or ECDSA. */
  alg: number;
  hash?: number;
}

export function quoteCommand(
  handle: number,
  qualifyingData: Uint8Array,
  selection: readonly PcrSelection[],
  scheme: QuoteScheme = { alg: TPM_ALG.NULL },
  pw: PasswordAuth = {},
): Uint8Array {
  if (qualifyingData.length > 64) throw new RangeError('qualifyingData is at most 64 bytes');
  const w = new TpmWriter().tpm2b(qualifyingData).u16(scheme.alg);
  if (scheme.alg !== TPM_ALG.NULL) w.u16(scheme.hash ?? TPM_ALG.SHA256);
  writePcrSelection(w, selection);
  return buildCommand(TPM_CC.Quote, [handle], w.finish(), [pw]);
}

export interface QuoteResult {
  /** The TPMS_ATTEST bytes (inside the TPM2B_ATTEST). */
  message: Uint8Array;
  /** The marshalled TPMT_SIGNATURE, bytes as the TPM sent them. */
  signature: Uint8Array;
  parsedSignature: TpmtSignature;
}

export function parseQuote(bytes: Uint8Array): QuoteResult {
  const { params } = parseResponse(bytes, TPM_CC.Quote, { sessions: true });
  const message = params.tpm2b('quoted', 4096);
  const start = params.pos;
  const parsedSignature = readTpmtSignature(params);
  const signature = params.buf.subarray(start, params.pos);
  params.end();
  return { message, signature, parsedSignature };
}

export function pcrReadCommand(selection: readonly PcrSelection[]): Uint8Array {
  const w = new TpmWriter();
  writePcrSelection(w, selection);
  return buildCommand(TPM_CC.PCR_Read, [], w.finish());
}

export interface PcrReadResult {
  updateCounter: number;
  selection: PcrSelection[];
  digests: Uint8Array[];
}

export function parsePcrRead(bytes: Uint8Array): PcrReadResult {
  const { params } = parseResponse(bytes, TPM_CC.PCR_Read, { sessions: false });
  const updateCounter = params.u32('pcrUpdateCounter');
  const selection = readPcrSelection(params);
  const count = params.u32('pcrValues count');
  // TPML_DIGEST holds at most 8 digests (Part 2 §10.9.2).
  if (count > 8) throw params.fail(`pcrValues count ${count} is larger than 8`);
  const digests: Uint8Array[] = [];
  for (let i = 0; i < count; i++) digests.push(params.tpm2b('pcrValue', 64));
  params.end();
  const selected = selection.reduce((n, s) => n + s.pcrs.length, 0);
  if (selected !== count) throw params.fail(`${count} values for ${selected} selected PCRs`);
  return { updateCounter, selection, digests };
}

// --- Primary keys from a template (Google's AK: TPM 2.0 Part 3 §24.1, §28.4) ----------------

/**
 * TPM2_CreatePrimary under `hierarchy` from a marshalled TPMT_PUBLIC template, no sensitive data,
 * no outside info, no creation PCRs. A primary key is derived from the hierarchy's seed and the
 * template, so the same template gives the same key: how Google's vTPM keeps its AK (the template
 * in NV, the certificate for the key it derives in NV beside it).
 */
export function createPrimaryCommand(
  hierarchy: number,
  template: Uint8Array,
  pw: PasswordAuth = {},
): Uint8Array {
  const w = new TpmWriter()
    // TPM2B_SENSITIVE_CREATE: size 4, empty userAuth, empty data.
    .u16(4)
    .u16(0)
    .u16(0)
    .tpm2b(template)
    .tpm2b(new Uint8Array())
    .u32(0);
  return buildCommand(TPM_CC.CreatePrimary, [hierarchy], w.finish(), [pw]);
}

export interface CreatePrimaryResult {
  /** The transient handle of the loaded key (flush it with TPM2_FlushContext). */
  handle: number;
  /** The key's TPMT_PUBLIC. */
  publicArea: Uint8Array;
  name: Uint8Array;
}

export function parseCreatePrimary(bytes: Uint8Array): CreatePrimaryResult {
  const { handles, params } = parseResponse(bytes, TPM_CC.CreatePrimary, { sessions: true, handleCount: 1 });
  const publicArea = params.tpm2b('outPublic', 4096);
  params.tpm2b('creationData', 4096);
  params.tpm2b('creationHash', 66);
  // TPMT_TK_CREATION: tag, hierarchy, TPM2B_DIGEST.
  params.u16('creationTicket tag');
  params.u32('creationTicket hierarchy');
  params.tpm2b('creationTicket digest', 66);
  const name = params.tpm2b('name', 66);
  params.end();
  return { handle: handles[0]!, publicArea, name };
}

export function flushContextCommand(handle: number): Uint8Array {
  return buildCommand(TPM_CC.FlushContext, [], new TpmWriter().u32(handle).finish());
}

export function parseFlushContext(bytes: Uint8Array): void {
  parseResponse(bytes, TPM_CC.FlushContext, { sessions: false }).params.end();
}
