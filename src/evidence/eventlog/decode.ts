/**
 * Event data decoding and digest recomputation for the TCG PC Client event log.
 *
 * An event's digest is what the quote (through the PCR/RTMR replay) vouches for; its data is not.
 * So content is only worth reading where the digest is recomputable from it. The rules below are
 * the TCG PC Client Platform Firmware Profile's (PFP 1.05 §10.4) and the boot loaders' own, as
 * reproduced on the real logs in test/fixtures/eventlog/ (README there, §2 rule 7):
 * - EV_SEPARATOR, EV_EFI_ACTION, EV_ACTION, EV_EFI_GPT_EVENT, EV_EFI_VARIABLE_DRIVER_CONFIG:
 *   digest = H(event data), mandated: anything else is a mismatch (an anomaly of the log).
 * - EV_EFI_VARIABLE_BOOT(2): H(UEFI_VARIABLE_DATA) or, as EDK2 does for Boot####/BootOrder,
 *   H(VariableData) only. EV_EFI_VARIABLE_AUTHORITY: H(UEFI_VARIABLE_DATA) in current firmware;
 *   older shims measured something else (not recomputable then).
 * - EV_S_CRTM_VERSION, EV_NONHOST_INFO: H(data) in every log seen.
 * - GRUB's EV_IPL strings: H(text after the "grub_cmd: " / "kernel_cmdline: " prefix) without
 *   the NUL (upstream GRUB), or after "grub_cmd " / "grub_kernel_cmdline " with the NUL (RHEL).
 *   The prefix itself is not measured: a kernel command line is only taken from a
 *   kernel_cmdline event, so relabelling can only show a string GRUB did measure.
 * - EV_EFI_BOOT_SERVICES_APPLICATION/DRIVER: the digest is the PE image's Authenticode hash, and
 *   GRUB's file events and the Linux EFI stub's tagged events hash files or buffers that are not
 *   in the log: never recomputable here.
 * The event *type* is not measured either; decoding follows the logged type.
 */
import { createHash, hash } from 'node:crypto';
import { devicePathToText, guidToString, utf16z } from './devicepath.js';

export const EV = {
  PREBOOT_CERT: 0x0,
  POST_CODE: 0x1,
  NO_ACTION: 0x3,
  SEPARATOR: 0x4,
  ACTION: 0x5,
  EVENT_TAG: 0x6,
  S_CRTM_CONTENTS: 0x7,
  S_CRTM_VERSION: 0x8,
  CPU_MICROCODE: 0x9,
  PLATFORM_CONFIG_FLAGS: 0xa,
  TABLE_OF_DEVICES: 0xb,
  COMPACT_HASH: 0xc,
  IPL: 0xd,
  IPL_PARTITION_DATA: 0xe,
  NONHOST_CODE: 0xf,
  NONHOST_CONFIG: 0x10,
  NONHOST_INFO: 0x11,
  OMIT_BOOT_DEVICE_EVENTS: 0x12,
  POST_CODE2: 0x13,
  EFI_VARIABLE_DRIVER_CONFIG: 0x80000001,
  EFI_VARIABLE_BOOT: 0x80000002,
  EFI_BOOT_SERVICES_APPLICATION: 0x80000003,
  EFI_BOOT_SERVICES_DRIVER: 0x80000004,
  EFI_RUNTIME_SERVICES_DRIVER: 0x80000005,
  EFI_GPT_EVENT: 0x80000006,
  EFI_ACTION: 0x80000007,
  EFI_PLATFORM_FIRMWARE_BLOB: 0x80000008,
  EFI_HANDOFF_TABLES: 0x80000009,
  EFI_PLATFORM_FIRMWARE_BLOB2: 0x8000000a,
  EFI_HANDOFF_TABLES2: 0x8000000b,
  EFI_VARIABLE_BOOT2: 0x8000000c,
  EFI_GPT_EVENT2: 0x8000000d,
  EFI_HCRTM_EVENT: 0x80000010,
  EFI_VARIABLE_AUTHORITY: 0x800000e0,
  EFI_SPDM_FIRMWARE_BLOB: 0x800000e1,
  EFI_SPDM_FIRMWARE_CONFIG: 0x800000e2,
} as const;

const TYPE_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(EV).map(([k, v]) => [v, `EV_${k}`]));

export function eventTypeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `unknown (0x${type.toString(16).padStart(8, '0')})`;
}

/** Hash algorithms of TPM2 (TCG Algorithm Registry) that a log may carry. */
export type HashName = 'sha1' | 'sha256' | 'sha384' | 'sha512' | 'sm3_256';

export const HASH_ALGS: ReadonlyMap<number, { name: HashName; size: number; node: string }> = new Map([
  [0x0004, { name: 'sha1', size: 20, node: 'sha1' }],
  [0x000b, { name: 'sha256', size: 32, node: 'sha256' }],
  [0x000c, { name: 'sha384', size: 48, node: 'sha384' }],
  [0x000d, { name: 'sha512', size: 64, node: 'sha512' }],
  [0x0012, { name: 'sm3_256', size: 32, node: 'sm3' }],
]);

/** node:crypto's name for a bank, or undefined when this Node build cannot compute it. */
export function nodeHash(name: string): string | undefined {
  for (const a of HASH_ALGS.values()) if (a.name === name) return SUPPORTED.has(a.node) ? a.node : undefined;
  return undefined;
}

function supported(): Set<string> {
  const s = new Set<string>();
  for (const a of HASH_ALGS.values()) {
    try {
      createHash(a.node);
      s.add(a.node);
    } catch {
      // An OpenSSL without SM3: that bank is parsed, not replayed.
    }
  }
  return s;
}
// Computed once: which digests this process can compute does not change while it runs.
const SUPPORTED: ReadonlySet<string> = supported();

/** 'verified': the digest in every computable bank is the hash of (part of) the data shown. */
export type DigestCheck = 'verified' | 'mismatch' | 'not-recomputable' | 'not-extended';

export interface SignatureEntry {
  /** 'x509', 'sha256' or the signature type GUID. */
  type: string;
  owner: string;
  /** SHA-256 of the certificate (x509) or the hash itself (sha256 entries), hex. */
  sha256?: string;
  /** Other signature types: the data, hex. */
  data?: string;
}

export type DecodedEvent =
  | { kind: 'separator'; value: string; error: boolean }
  | { kind: 'string'; text: string }
  | {
      kind: 'efi-variable';
      guid: string;
      name: string;
      /** The variable's data (in JSON output: hex). */
      data: Uint8Array;
      secureBoot?: boolean;
      signatures?: SignatureEntry[];
      bootOrder?: string[];
      loadOption?: { description: string; devicePath: string };
    }
  | {
      kind: 'efi-image';
      location: string;
      length: string;
      linkTimeAddress: string;
      devicePath: string;
    }
  | { kind: 'grub-command'; command: string; kernel?: string; initrd?: string[] }
  | { kind: 'grub-kernel-cmdline'; cmdline: string }
  | { kind: 'tagged'; tagId: string; description: string }
  | {
      kind: 'gpt';
      diskGuid: string;
      partitions: Array<{ type: string; guid: string; firstLba: string; lastLba: string; name: string }>;
    }
  | { kind: 'startup-locality'; locality: number }
  | { kind: 'sp800-155'; text: string }
  | { kind: 'nonhost-info'; text: string; technology?: number };

export interface DecodeResult {
  check: DigestCheck;
  decoded?: DecodedEvent;
  decodeError?: string;
  /**
   * Content nothing in parsing depends on (GUIDs, device paths, UTF-16 names, signature lists),
   * decoded only when read: most callers replay and never look at it. `check` does not depend
   * on it.
   */
  later?: () => DecodedEvent;
}

const EFI_GLOBAL_VARIABLE = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
const EFI_IMAGE_SECURITY_DATABASE = 'd719b2cb-3d3a-4596-a3bc-dad00e67656f';
const EFI_CERT_X509 = 'a5c059a1-94e4-4aa7-87b5-ab155c2bf072';
const EFI_CERT_SHA256 = 'c1c41626-504c-4092-aca9-41f936934328';
// Linux EFI stub tags (drivers/firmware/efi/libstub/efistub.h: INITRD_EVENT_TAG_ID,
// LOAD_OPTIONS_EVENT_TAG_ID).
const LINUX_TAGS: Record<number, string> = {
  2403017452: 'Linux initrd',
  2403017453: 'LOADED_IMAGE::LoadOptions',
};

type Digests = ReadonlyArray<readonly [string, Uint8Array]>;

/** True when every computable bank's digest is the hash of `m` (and at least one bank is). */
function digestsAre(digests: Digests, m: Uint8Array): boolean {
  let any = false;
  for (const [name, d] of digests) {
    const alg = nodeHash(name);
    if (!alg) continue;
    if (!hash(alg, m, 'buffer').equals(d)) return false;
    any = true;
  }
  return any;
}

function dv(data: Uint8Array): DataView {
  return new DataView(data.buffer, data.byteOffset, data.byteLength);
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

function u64hex(v: DataView, o: number): string {
  return `0x${v.getBigUint64(o, true).toString(16)}`;
}

/** u64 that must index into `limit` bytes (so it fits a JS number). */
function u64len(v: DataView, o: number, limit: number, what: string): number {
  const n = v.getBigUint64(o, true);
  if (n > BigInt(limit)) throw new TypeError(`${what} ${n} exceeds the event data`);
  return Number(n);
}

/** Printable ASCII/UTF-8 text up to a trailing NUL; undefined when the bytes are not text. */
function text(data: Uint8Array): string | undefined {
  let end = data.length;
  while (end > 0 && data[end - 1] === 0) end--;
  const body = data.subarray(0, end);
  if (body.indexOf(0) !== -1) return undefined;
  const s = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  return s.includes('\ufffd') ? undefined : s;
}

interface UefiVariable {
  guid: string;
  name: string;
  value: Uint8Array;
}

/** UEFI_VARIABLE_DATA (PFP §10.4.3). */
function parseVariable(data: Uint8Array): UefiVariable {
  if (data.length < 32) throw new TypeError('UEFI_VARIABLE_DATA shorter than its 32-byte header');
  const v = dv(data);
  const nameLen = u64len(v, 16, data.length, 'UnicodeNameLength');
  const dataLen = u64len(v, 24, data.length, 'VariableDataLength');
  if (32 + 2 * nameLen + dataLen > data.length)
    throw new TypeError('UEFI_VARIABLE_DATA name and data run past the event');
  const name = Buffer.from(data.buffer, data.byteOffset + 32, 2 * nameLen).toString('utf16le');
  return {
    guid: guidToString(data, 0),
    name: name.replace(/\0+$/, ''),
    value: data.subarray(32 + 2 * nameLen, 32 + 2 * nameLen + dataLen),
  };
}

/** EFI_SIGNATURE_LIST sequence (UEFI 2.10 §32.4.1). */
function parseSignatureLists(b: Uint8Array): SignatureEntry[] {
  const v = dv(b);
  const out: SignatureEntry[] = [];
  let off = 0;
  while (off < b.length) {
    if (b.length - off < 28) throw new TypeError('EFI_SIGNATURE_LIST header truncated');
    const type = guidToString(b, off);
    const listSize = v.getUint32(off + 16, true);
    const headerSize = v.getUint32(off + 20, true);
    const sigSize = v.getUint32(off + 24, true);
    if (listSize < 28 || listSize > b.length - off) throw new TypeError('EFI_SIGNATURE_LIST size is invalid');
    if (sigSize < 16 || 28 + headerSize > listSize || (listSize - 28 - headerSize) % sigSize !== 0)
      throw new TypeError('EFI_SIGNATURE_LIST signature size is invalid');
    for (let s = off + 28 + headerSize; s < off + listSize; s += sigSize) {
      const owner = guidToString(b, s);
      const body = b.subarray(s + 16, s + sigSize);
      if (type === EFI_CERT_X509) out.push({ type: 'x509', owner, sha256: hash('sha256', body, 'hex') });
      else if (type === EFI_CERT_SHA256) out.push({ type: 'sha256', owner, sha256: hex(body) });
      else out.push({ type, owner, data: hex(body) });
    }
    off += listSize;
  }
  return out;
}

function decodeVariable(type: number, data: Uint8Array): DecodedEvent {
  const variable = parseVariable(data);
  const out: DecodedEvent & { kind: 'efi-variable' } = {
    kind: 'efi-variable',
    guid: variable.guid,
    name: variable.name,
    data: variable.value,
  };
  const global = variable.guid === EFI_GLOBAL_VARIABLE;
  if (global && variable.name === 'SecureBoot')
    // An absent variable (logged with no data, as on the Arch workstation) means no Secure Boot.
    out.secureBoot = variable.value.length === 1 && variable.value[0] === 1;
  else if (
    (global && (variable.name === 'PK' || variable.name === 'KEK')) ||
    (variable.guid === EFI_IMAGE_SECURITY_DATABASE && (variable.name === 'db' || variable.name === 'dbx'))
  ) {
    if (type === EV.EFI_VARIABLE_DRIVER_CONFIG) out.signatures = parseSignatureLists(variable.value);
  } else if (global && variable.name === 'BootOrder') {
    const order: string[] = [];
    for (let i = 0; i + 1 < variable.value.length; i += 2)
      order.push(
        `Boot${(variable.value[i]! | (variable.value[i + 1]! << 8)).toString(16).toUpperCase().padStart(4, '0')}`,
      );
    out.bootOrder = order;
  } else if (global && /^Boot[0-9A-F]{4}$/.test(variable.name)) {
    // EFI_LOAD_OPTION (UEFI 2.10 §3.1.3): Attributes u32, FilePathListLength u16, Description, paths.
    const val = variable.value;
    if (val.length < 6) throw new TypeError('EFI_LOAD_OPTION truncated');
    const pathLen = val[4]! | (val[5]! << 8);
    let end = 6;
    while (end + 1 < val.length && !(val[end] === 0 && val[end + 1] === 0)) end += 2;
    if (end + 2 + pathLen > val.length) throw new TypeError('EFI_LOAD_OPTION file path runs past the data');
    out.loadOption = {
      description: utf16z(val.subarray(6, end)),
      devicePath: devicePathToText(val.subarray(end + 2, end + 2 + pathLen)),
    };
  }
  return out;
}

function decodeImage(data: Uint8Array): DecodedEvent {
  // UEFI_IMAGE_LOAD_EVENT (PFP §10.4.4): location, length, link-time address, path length: u64.
  if (data.length < 32) throw new TypeError('UEFI_IMAGE_LOAD_EVENT shorter than its 32-byte header');
  const v = dv(data);
  const pathLen = u64len(v, 24, data.length - 32, 'LengthOfDevicePath');
  return {
    kind: 'efi-image',
    location: u64hex(v, 0),
    length: u64hex(v, 8),
    linkTimeAddress: u64hex(v, 16),
    devicePath: devicePathToText(data.subarray(32, 32 + pathLen)),
  };
}

function decodeGpt(data: Uint8Array): DecodedEvent {
  // UEFI_GPT_DATA (PFP §10.4.5): the 92-byte EFI_PARTITION_TABLE_HEADER, NumberOfPartitions u64,
  // then that many entries of the header's SizeOfPartitionEntry.
  if (data.length < 100) throw new TypeError('UEFI_GPT_DATA truncated');
  if (Buffer.from(data.subarray(0, 8)).toString('latin1') !== 'EFI PART')
    throw new TypeError('UEFI_GPT_DATA has no "EFI PART" signature');
  const v = dv(data);
  const entrySize = v.getUint32(84, true);
  const count = u64len(v, 92, data.length, 'NumberOfPartitions');
  if (entrySize < 128 || count * entrySize > data.length - 100)
    throw new TypeError('UEFI_GPT_DATA partitions run past the event');
  const partitions = [];
  for (let i = 0; i < count; i++) {
    const o = 100 + i * entrySize;
    // An unused entry has a zero type GUID (UEFI 2.10 §5.3.3); firmware logs all 128 slots.
    if (data.subarray(o, o + 16).every((x) => x === 0)) continue;
    partitions.push({
      type: guidToString(data, o),
      guid: guidToString(data, o + 16),
      firstLba: u64hex(v, o + 32),
      lastLba: u64hex(v, o + 40),
      name: utf16z(data.subarray(o + 56, o + 128)),
    });
  }
  return { kind: 'gpt', diskGuid: guidToString(data, 56), partitions };
}

const GRUB_PREFIXES: ReadonlyArray<readonly [string, 'cmd' | 'cmdline']> = [
  ['grub_cmd: ', 'cmd'],
  ['kernel_cmdline: ', 'cmdline'],
  ['grub_kernel_cmdline ', 'cmdline'],
  ['grub_cmd ', 'cmd'],
];

function decodeGrubCommand(line: string): DecodedEvent {
  const out: DecodedEvent & { kind: 'grub-command' } = { kind: 'grub-command', command: line };
  const m = /^(linux|initrd)(?:efi|16)? +(.*)$/.exec(line);
  if (!m) return out;
  const args = m[2]!.split(' ').filter((w) => w !== '');
  if (m[1] === 'linux' && args[0]) out.kernel = args[0];
  if (m[1] === 'initrd' && args.length > 0) out.initrd = args;
  return out;
}

/** EV_IPL: GRUB's commands and command line, or a file name / variable name (not recomputable). */
function decodeIpl(data: Uint8Array, digests: Digests): DecodeResult {
  const t = text(data);
  if (t === undefined) return { check: digestsAre(digests, data) ? 'verified' : 'not-recomputable' };
  for (const [prefix, kind] of GRUB_PREFIXES) {
    if (!t.startsWith(prefix)) continue;
    const rest = data.subarray(prefix.length);
    let bare = rest.length;
    while (bare > 0 && rest[bare - 1] === 0) bare--;
    const value = t.slice(prefix.length);
    const ok =
      digestsAre(digests, rest.subarray(0, bare)) || (bare < rest.length && digestsAre(digests, rest));
    // Every GRUB line in every real log here hashes this way (README §2 rule 7): one that does
    // not was altered, so it is a mismatch, not merely unverifiable.
    return {
      check: ok ? 'verified' : 'mismatch',
      decoded:
        kind === 'cmdline' ? { kind: 'grub-kernel-cmdline', cmdline: value } : decodeGrubCommand(value),
    };
  }
  return {
    check: digestsAre(digests, data) ? 'verified' : 'not-recomputable',
    decoded: { kind: 'string', text: t },
  };
}

/**
 * Decodes one event and recomputes its digest where a rule says how. Never throws. With `lazy`,
 * content that parsing does not need (all but EV_NO_ACTION, EV_SEPARATOR and EV_IPL) is returned
 * as `later` instead of being decoded now.
 */
export function decodeEvent(type: number, data: Uint8Array, digests: Digests, lazy = false): DecodeResult {
  const withDecode = (check: DigestCheck, decode?: () => DecodedEvent): DecodeResult =>
    lazy && decode ? { check, later: decode } : decodeNow(check, decode);
  const mandated = (decode?: () => DecodedEvent): DecodeResult => {
    const check = digestsAre(digests, data) ? 'verified' : 'mismatch';
    return withDecode(check, decode);
  };
  const optional = (decode?: () => DecodedEvent): DecodeResult =>
    withDecode(digestsAre(digests, data) ? 'verified' : 'not-recomputable', decode);
  const opaque = (decode?: () => DecodedEvent): DecodeResult => withDecode('not-recomputable', decode);
  switch (type) {
    case EV.NO_ACTION:
      return decodeNow('not-extended', () => decodeNoAction(data));
    case EV.SEPARATOR:
      // Decoded now: parsing lists an error value as an anomaly.
      return decodeNow(digestsAre(digests, data) ? 'verified' : 'mismatch', () => {
        const value = hex(data);
        // PFP §10.4.1: 00000000 normally; 00000001 (or FFFFFFFF) when the firmware hit an error.
        return { kind: 'separator', value, error: value !== '00000000' };
      });
    case EV.ACTION:
    case EV.EFI_ACTION:
      return mandated(() => ({ kind: 'string', text: text(data) ?? hex(data) }));
    case EV.EFI_GPT_EVENT:
      return mandated(() => decodeGpt(data));
    case EV.EFI_VARIABLE_DRIVER_CONFIG:
      return mandated(() => decodeVariable(type, data));
    case EV.EFI_VARIABLE_BOOT:
    case EV.EFI_VARIABLE_BOOT2: {
      let check: DigestCheck = digestsAre(digests, data) ? 'verified' : 'not-recomputable';
      if (check !== 'verified') {
        try {
          if (digestsAre(digests, parseVariable(data).value)) check = 'verified';
        } catch {
          // decoded below, where the error is reported
        }
      }
      return withDecode(check, () => decodeVariable(type, data));
    }
    case EV.EFI_VARIABLE_AUTHORITY:
      return optional(() => decodeVariable(type, data));
    case EV.S_CRTM_VERSION:
      return optional(() => ({
        kind: 'string',
        text: data.length % 2 === 0 && data[1] === 0 ? utf16z(data) : (text(data) ?? hex(data)),
      }));
    case EV.NONHOST_INFO:
      return optional(() => {
        // GCE: "GCE NonHostInfo\0" and one technology byte (0 none, 1 SEV, 2 SEV-ES, 4 SEV-SNP).
        const gce = Buffer.from(data.subarray(0, 16)).toString('latin1') === 'GCE NonHostInfo\0';
        return gce && data.length > 16
          ? { kind: 'nonhost-info', text: 'GCE NonHostInfo', technology: data[16]! }
          : { kind: 'nonhost-info', text: text(data) ?? hex(data) };
      });
    case EV.EFI_BOOT_SERVICES_APPLICATION:
    case EV.EFI_BOOT_SERVICES_DRIVER:
    case EV.EFI_RUNTIME_SERVICES_DRIVER:
      return opaque(() => decodeImage(data));
    case EV.IPL:
      return decodeIpl(data, digests);
    case EV.EVENT_TAG:
      return opaque(() => {
        // TCG_PCClientTaggedEvent: taggedEventID u32, taggedEventDataSize u32, data.
        if (data.length < 8) throw new TypeError('tagged event truncated');
        const v = dv(data);
        const id = v.getUint32(0, true);
        const size = v.getUint32(4, true);
        if (size > data.length - 8) throw new TypeError('tagged event data runs past the event');
        const d = data.subarray(8, 8 + size);
        return {
          kind: 'tagged',
          tagId: `0x${id.toString(16)}`,
          description: text(d) ?? LINUX_TAGS[id] ?? hex(d),
        };
      });
    case EV.POST_CODE:
    case EV.PLATFORM_CONFIG_FLAGS:
    case EV.S_CRTM_CONTENTS:
      return withDecode(digestsAre(digests, data) ? 'verified' : 'not-recomputable', () => {
        const t = text(data);
        if (t === undefined) throw new TypeError('not text (a firmware blob reference)');
        return { kind: 'string', text: t };
      });
    default:
      return optional();
  }
}

function decodeNow(check: DigestCheck, decode?: () => DecodedEvent): DecodeResult {
  if (!decode) return { check };
  try {
    return { check, decoded: decode() };
  } catch (err) {
    return { check, decodeError: err instanceof Error ? err.message : String(err) };
  }
}

function decodeNoAction(data: Uint8Array): DecodedEvent {
  const head = Buffer.from(data.subarray(0, 16)).toString('latin1');
  if (head === 'StartupLocality\0' && data.length === 17)
    return { kind: 'startup-locality', locality: data[16]! };
  if (head.startsWith('SP800-155 Event')) return { kind: 'sp800-155', text: head.replace(/\0+$/, '') };
  throw new TypeError('unrecognised EV_NO_ACTION event');
}
