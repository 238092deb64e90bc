/**
 * The parts of an OVMF firmware image a VMM reads before an SEV-SNP launch: the GUIDed footer
 * table at the top of the image and the SEV metadata ("ASEV") it points to. Layout from edk2
 * `OvmfPkg/ResetVector` (`Ia16/ResetVectorVtf0.asm`, `X64/OvmfSevMetadata.asm`), as restated in
 * docs/reference/cloud-evidence.md §5.1.
 *
 * Everything here is pure and works on byte slices, so that the file-reading code can fetch only
 * the top of the image and the metadata, and so that the parser can be fuzzed on arbitrary bytes.
 */
import { AttestationError } from '../errors.js';

/** Where the footer table ends: 32 bytes below the top of the image (the reset vector lives there). */
export const FOOTER_END_OFFSET = 32;
const ENTRY_HEADER = 18; // u16 length + 16-byte GUID
/** The footer's u16 length caps the table at 64 KiB; this much of the top of the image holds all of it. */
export const FOOTER_WINDOW = 0xffff + FOOTER_END_OFFSET;

export const GUIDS = {
  footerTable: '96b582de-1fb2-45f7-baea-a366c55a082d',
  sevMetadata: 'dc886566-984a-4798-a75e-5585a7bf67cc',
  sevEsResetBlock: '00f771de-1a7e-4fcb-890e-68c77e2fb44e',
  sevHashTable: '7255371f-3a3b-4b04-927b-1da6efa8d454',
} as const;

/** SEV metadata section types (edk2 OvmfSevMetadata.asm). */
export const SECTION_TYPES = {
  1: 'SNP_SEC_MEM',
  2: 'SNP_SECRETS',
  3: 'CPUID',
  4: 'SVSM_CAA',
  16: 'SNP_KERNEL_HASHES',
} as const;
export type SectionTypeName = (typeof SECTION_TYPES)[keyof typeof SECTION_TYPES];

export interface OvmfSection {
  gpa: number;
  size: number;
  type: SectionTypeName;
}

/** What an SNP launch needs from the firmware image. */
export interface OvmfInfo {
  /** Image size in bytes. */
  size: number;
  /** GUID (lowercase, dashed) → entry data. */
  table: Map<string, Uint8Array>;
  /** The SEV metadata sections, in table order. */
  sections: OvmfSection[];
  /** u32 EIP where APs start (SEV-ES reset block); undefined when the image has none. */
  sevEsResetEip: number | undefined;
  /** u32 GPA of the SEV hashes table; undefined when the image has no such entry. */
  sevHashesTableGpa: number | undefined;
}

function fail(message: string, details?: Record<string, unknown>): never {
  throw new AttestationError('ERR_INVALID_ARGUMENT', `firmware: ${message}`, details ? { details } : {});
}

/** EFI GUID text → its 16 stored bytes (first three fields little-endian, last eight as written). */
export function guidBytes(guid: string): Uint8Array {
  const hex = guid.replace(/-/g, '');
  const b = Buffer.from(hex, 'hex');
  return new Uint8Array([b[3]!, b[2]!, b[1]!, b[0]!, b[5]!, b[4]!, b[7]!, b[6]!, ...b.subarray(8)]);
}

export function guidText(b: Uint8Array): string {
  const h = (i: number) => b[i]!.toString(16).padStart(2, '0');
  const le = (idx: number[]) => idx.map(h).join('');
  const rest = Buffer.from(b.subarray(8, 16)).toString('hex');
  return `${le([3, 2, 1, 0])}-${le([5, 4])}-${le([7, 6])}-${rest.slice(0, 4)}-${rest.slice(4)}`;
}

function u16(b: Uint8Array, off: number): number {
  return b[off]! | (b[off + 1]! << 8);
}
function u32(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

const FOOTER_GUID = guidBytes(GUIDS.footerTable);

/**
 * Parses the footer table from the top of an image. `top` is the last `top.length` bytes of an
 * image of `imageSize` bytes (at least FOOTER_WINDOW of them, or the whole image if smaller).
 * An image without the table GUID yields an empty table, as OVMF builds without SEV support have none.
 */
export function parseFooterTable(top: Uint8Array, imageSize: number): Map<string, Uint8Array> {
  const table = new Map<string, Uint8Array>();
  if (top.length < Math.min(imageSize, FOOTER_WINDOW)) fail('internal: footer window too small');
  const base = imageSize - top.length; // image offset of top[0]
  const trailerEnd = imageSize - FOOTER_END_OFFSET;
  const trailerStart = trailerEnd - ENTRY_HEADER;
  if (trailerStart < base) return table;
  const t = trailerStart - base;
  const guid = top.subarray(t + 2, t + ENTRY_HEADER);
  if (!Buffer.from(guid).equals(Buffer.from(FOOTER_GUID))) return table;
  const total = u16(top, t);
  if (total < ENTRY_HEADER) fail(`footer table length ${total} is shorter than its own trailer`);
  const tableStart = trailerStart - (total - ENTRY_HEADER);
  if (tableStart < base) fail(`footer table (${total} bytes) starts before the image`);
  // Entries run backwards from the trailer: data ‖ u16 length ‖ GUID, length counting all three.
  let end = trailerStart - base;
  const start = tableStart - base;
  while (end - start >= ENTRY_HEADER) {
    const len = u16(top, end - ENTRY_HEADER);
    if (len < ENTRY_HEADER) fail(`footer table entry of length ${len} (below ${ENTRY_HEADER})`);
    if (len > end - start) fail(`footer table entry of length ${len} runs past the table`);
    const id = guidText(top.subarray(end - 16, end));
    // Later (lower) entries overwrite earlier ones, as sev-snp-measure's table lookup does.
    table.set(id, top.subarray(end - len, end - ENTRY_HEADER));
    end -= len;
  }
  return table;
}

/** The image offset of the "ASEV" header named by the footer table, or undefined without one. */
export function sevMetadataOffset(table: Map<string, Uint8Array>, imageSize: number): number | undefined {
  const entry = table.get(GUIDS.sevMetadata);
  if (entry === undefined) return undefined;
  if (entry.length < 4) fail('SEV metadata entry is shorter than 4 bytes');
  const back = u32(entry, 0);
  if (back > imageSize || back < 16) fail(`SEV metadata offset ${back} is outside the image`);
  return imageSize - back;
}

export interface SevMetadataHeader {
  /** Header plus descriptors, bytes. */
  length: number;
  count: number;
}

/** Parses the 16-byte "ASEV" header. */
export function parseSevMetadataHeader(h: Uint8Array): SevMetadataHeader {
  if (h.length < 16) fail('SEV metadata header is truncated');
  if (Buffer.from(h.subarray(0, 4)).toString('latin1') !== 'ASEV')
    fail('SEV metadata has the wrong signature');
  const length = u32(h, 4);
  const version = u32(h, 8);
  const count = u32(h, 12);
  if (version !== 1) fail(`SEV metadata version ${version} (only 1 is defined)`);
  if (count * 12 > length - 16 || length < 16)
    fail(`SEV metadata declares ${count} sections in ${length} bytes`);
  return { length, count };
}

/** Parses `count` 12-byte section descriptors {u32 GPA, u32 length, u32 type}. */
export function parseSevMetadataSections(d: Uint8Array, count: number): OvmfSection[] {
  if (d.length < count * 12) fail('SEV metadata sections are truncated');
  const out: OvmfSection[] = [];
  for (let i = 0; i < count; i++) {
    const gpa = u32(d, i * 12);
    const size = u32(d, i * 12 + 4);
    const typeValue = u32(d, i * 12 + 8);
    const type = SECTION_TYPES[typeValue as keyof typeof SECTION_TYPES];
    if (type === undefined) fail(`SEV metadata section ${i} has unknown type ${typeValue}`, { section: i });
    out.push({ gpa, size, type });
  }
  return out;
}

function optionalU32(table: Map<string, Uint8Array>, guid: string, name: string): number | undefined {
  const e = table.get(guid);
  if (e === undefined) return undefined;
  if (e.length < 4) fail(`${name} entry is shorter than 4 bytes`);
  return u32(e, 0);
}

/** Assembles OvmfInfo from a parsed table and sections. */
export function ovmfInfo(size: number, table: Map<string, Uint8Array>, sections: OvmfSection[]): OvmfInfo {
  return {
    size,
    table,
    sections,
    sevEsResetEip: optionalU32(table, GUIDS.sevEsResetBlock, 'SEV-ES reset block'),
    sevHashesTableGpa: optionalU32(table, GUIDS.sevHashTable, 'SEV hashes table'),
  };
}

/**
 * Parses an in-memory image. Throws ERR_INVALID_ARGUMENT for an image that has no SEV metadata
 * (no footer table, or no metadata entry in it) or whose table or metadata is malformed.
 */
export function parseOvmf(image: Uint8Array): OvmfInfo {
  const top = image.subarray(Math.max(0, image.length - FOOTER_WINDOW));
  const table = parseFooterTable(top, image.length);
  const at = sevMetadataOffset(table, image.length);
  if (at === undefined) fail('no SEV metadata (not an SEV-capable OVMF build)');
  const header = parseSevMetadataHeader(image.subarray(at, at + 16));
  const sections = parseSevMetadataSections(
    image.subarray(at + 16, at + 16 + header.count * 12),
    header.count,
  );
  return ovmfInfo(image.length, table, sections);
}
