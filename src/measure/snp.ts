/**
 * The SEV-SNP launch MEASUREMENT a VM will report (report offset 0x90), computed from its inputs
 * the way the AMD PSP computes it while the VMM adds pages with SNP_LAUNCH_UPDATE.
 *
 * Facts and their sources (restated in ../../shared/fixtures/measure/README.md and
 * docs/reference/cloud-evidence.md §4–§5.1; AMD pub. 56860 "SNP_LAUNCH_UPDATE", PAGE_INFO; AMD
 * APM vol. 2 appendix B, VMSA layout; QEMU target/i386/sev.c, SEV hashes table). The conventions
 * of each VMM (QEMU, AWS EC2, Google GCE) follow virtee/sev-snp-measure 0.0.13, whose vectors
 * this code reproduces (test/measure/snp.test.ts).
 *
 * Files are read in chunks into two reused buffers (the next read while the last is hashed): a
 * firmware image, kernel or initrd is hashed as it streams and never held whole.
 */
import { createHash, type Hash } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import { AttestationError } from '../errors.js';
import {
  FOOTER_WINDOW,
  guidBytes,
  type OvmfInfo,
  type OvmfSection,
  ovmfInfo,
  parseFooterTable,
  parseSevMetadataHeader,
  parseSevMetadataSections,
  sevMetadataOffset,
} from './ovmf.js';

export type VmmType = 'qemu' | 'ec2' | 'gce';
export const VMM_TYPES: readonly VmmType[] = ['qemu', 'ec2', 'gce'];

/** A file path, or the bytes themselves. */
export type MeasureSource = string | Uint8Array;

export interface SnpLaunchDigestOptions {
  /** The OVMF image (the whole file the VMM maps below 4 GiB). */
  ovmf: MeasureSource;
  /** Number of vCPUs: one VMSA page each. 1 … 65535. */
  vcpus: number;
  /** QEMU CPU model name (`EPYC-v4`, `EPYC-Milan`, …; see VCPU_SIGNATURES). */
  vcpuType?: string;
  /** Raw CPUID Fn0000_0001_EAX signature instead of `vcpuType`. */
  vcpuSignature?: number;
  vmmType: VmmType;
  /** Direct boot: the kernel QEMU was given with `-kernel` (an empty file is still a kernel). */
  kernel?: MeasureSource;
  /** Direct boot: the initrd (needs `kernel`). */
  initrd?: MeasureSource;
  /** Direct boot: the kernel command line (needs `kernel`). */
  append?: string;
  /** SEV_FEATURES of every VMSA. Default 0x1 (SNPActive), sev-snp-measure's default. */
  guestFeatures?: bigint | number;
  /**
   * The digest after the firmware pages, computed earlier (`firmwareDigest` of a previous
   * result): the image's pages are then not hashed again, though its metadata is still read.
   */
  firmwareDigest?: Uint8Array;
}

export interface SnpLaunchDigest {
  /** The 48-byte MEASUREMENT. */
  measurement: Uint8Array;
  /** The launch digest after the firmware pages (what `firmwareDigest` takes back). */
  firmwareDigest: Uint8Array;
  firmware: {
    size: number;
    /**
     * SHA-384 of the image file: the name Google's launch endorsements give a firmware build
     * (`LaunchEndorsement.uefiDigest`). Undefined when `firmwareDigest` spared reading the pages.
     */
    sha384: Uint8Array | undefined;
    /** GPA of the image's first byte (4 GiB − size). */
    gpa: number;
    sevEsResetEip: number | undefined;
    sevHashesTableGpa: number | undefined;
    sections: OvmfSection[];
  };
  /** RDX of the VMSAs: the vCPU signature for QEMU, 0x600 for EC2 and GCE. */
  rdx: number;
  guestFeatures: bigint;
  /** The SEV hashes table's SHA-256 values, for a direct boot. */
  kernelHashes?: { cmdline: Uint8Array; initrd: Uint8Array; kernel: Uint8Array };
}

/** CPUID signature = ext family ‖ ext model ‖ base family ‖ base model ‖ stepping (AMD pub. 25481). */
export function cpuSignature(family: number, model: number, stepping: number): number {
  const baseFamily = Math.min(family, 0xf);
  const extFamily = family > 0xf ? (family - 0xf) & 0xff : 0;
  return (
    ((extFamily << 20) |
      ((model >> 4) << 16) |
      (baseFamily << 8) |
      ((model & 0xf) << 4) |
      (stepping & 0xf)) >>>
    0
  );
}

/** The AMD CPU models QEMU knows (its builtin_x86_defs) and the signature each stands for. */
export const VCPU_SIGNATURES: Readonly<Record<string, number>> = Object.freeze({
  EPYC: cpuSignature(23, 1, 2),
  'EPYC-v1': cpuSignature(23, 1, 2),
  'EPYC-v2': cpuSignature(23, 1, 2),
  'EPYC-v3': cpuSignature(23, 1, 2),
  'EPYC-v4': cpuSignature(23, 1, 2),
  'EPYC-IBPB': cpuSignature(23, 1, 2),
  'EPYC-Rome': cpuSignature(23, 49, 0),
  'EPYC-Rome-v1': cpuSignature(23, 49, 0),
  'EPYC-Rome-v2': cpuSignature(23, 49, 0),
  'EPYC-Rome-v3': cpuSignature(23, 49, 0),
  'EPYC-Milan': cpuSignature(25, 1, 1),
  'EPYC-Milan-v1': cpuSignature(25, 1, 1),
  'EPYC-Milan-v2': cpuSignature(25, 1, 1),
  'EPYC-Genoa': cpuSignature(25, 17, 0),
  'EPYC-Genoa-v1': cpuSignature(25, 17, 0),
  'EPYC-Turin': cpuSignature(26, 0, 0),
});

export const MAX_VCPUS = 65535;
/** Pages the metadata sections may add in all: 4 GiB of guest memory, the most 32-bit ranges can name. */
const MAX_SECTION_PAGES = 1 << 20;
export const PAGE = 4096;
export const FOUR_GIB = 2 ** 32;
/** Bytes a file is read in (two such buffers at a time: Reader.chunks). */
export const CHUNK = 1 << 20;
/**
 * PAGE_INFO names a VMSA page by GPA (u64)−1 page-aligned and cut to 48 bits, 0x0000FFFFFFFFF000
 * (sev-snp-measure gctx.py; the value its vectors from real launches confirm).
 */
export const VMSA_GPA = 0xfffffffff000;
const BSP_EIP = 0xfffffff0;

export const PAGE_NORMAL = 1;
export const PAGE_VMSA = 2;
const PAGE_ZERO = 3;
const PAGE_UNMEASURED = 4;
const PAGE_SECRETS = 5;
const PAGE_CPUID = 6;

export function invalid(message: string, details?: Record<string, unknown>): AttestationError {
  return new AttestationError('ERR_INVALID_ARGUMENT', message, details ? { details } : {});
}

/** The PSP's running launch digest: LD = SHA-384(PAGE_INFO) per page added. */
export class LaunchDigest {
  /** PAGE_INFO, 0x70 bytes: LD ‖ CONTENTS ‖ u16 0x70 ‖ type ‖ is_imi ‖ vmpl3..1 perms ‖ rsvd ‖ u64 GPA. */
  private readonly info = Buffer.alloc(0x70);
  private static readonly NO_CONTENTS = Buffer.alloc(48);

  constructor(seed?: Uint8Array) {
    if (seed) this.info.set(seed, 0);
    this.info.writeUInt16LE(0x70, 0x60);
  }

  update(type: number, gpa: number, contents: Uint8Array): void {
    const info = this.info;
    info.set(contents, 0x30);
    info[0x62] = type;
    info.writeUInt32LE(gpa % FOUR_GIB, 0x68);
    info.writeUInt32LE(Math.floor(gpa / FOUR_GIB), 0x6c);
    createHash('sha384').update(info).digest().copy(info, 0);
  }

  page(type: number, gpa: number, page: Uint8Array): void {
    this.update(type, gpa, createHash('sha384').update(page).digest());
  }

  /** `count` pages of a type whose CONTENTS field is zero. */
  empty(type: number, gpa: number, count: number): void {
    for (let i = 0; i < count; i++) this.update(type, gpa + i * PAGE, LaunchDigest.NO_CONTENTS);
  }

  get value(): Uint8Array {
    return new Uint8Array(this.info.subarray(0, 48));
  }
}

/** Random access to a source: a file opened once, or bytes in memory. */
export interface Reader {
  size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Calls `each` with consecutive chunks (whole pages when the size allows). */
  chunks(each: (chunk: Uint8Array) => void): Promise<void>;
  close(): Promise<void>;
}

export async function openReader(src: MeasureSource, what: string): Promise<Reader> {
  if (src instanceof Uint8Array) {
    return {
      size: src.length,
      read: async (o, l) => src.subarray(o, o + l),
      chunks: async (each) => {
        for (let o = 0; o < src.length; o += CHUNK) each(src.subarray(o, Math.min(src.length, o + CHUNK)));
      },
      close: async () => {},
    };
  }
  if (typeof src !== 'string' || src === '') throw invalid(`${what} must be a file path or bytes`);
  let fh: FileHandle;
  let size: number;
  try {
    fh = await open(src, 'r');
  } catch (err) {
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      `cannot read ${what} ${src}: ${(err as Error).message}`,
      {
        cause: err,
        details: { path: src },
      },
    );
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw invalid(`${what} ${src} is not a regular file`, { path: src });
    size = st.size;
  } catch (err) {
    await fh.close();
    throw err instanceof AttestationError
      ? err
      : invalid(`cannot read ${what} ${src}: ${(err as Error).message}`);
  }
  // A read that comes back short is retried; one that returns nothing means the file shrank.
  const readFully = async (buf: Buffer, length: number, position: number) => {
    for (let got = 0; got < length; ) {
      const { bytesRead } = await fh.read(buf, got, length - got, position + got);
      if (bytesRead === 0) throw invalid(`${what} ${src} changed while it was read`, { path: src });
      got += bytesRead;
    }
  };
  return {
    size,
    async read(offset, length) {
      const buf = Buffer.alloc(length);
      await readFully(buf, length, offset);
      return buf;
    },
    async chunks(each) {
      // Two buffers: the next chunk is read (on libuv's threadpool) while this one is hashed on
      // the event loop, so a file costs about its hashing rather than its reading plus hashing.
      const length = Math.min(CHUNK, Math.max(size, 1));
      const first = Buffer.allocUnsafe(length);
      // A file of one chunk never reads into the second buffer.
      const bufs = [first, size > length ? Buffer.allocUnsafe(length) : first] as const;
      const readAt = (i: number, offset: number) =>
        offset < size ? readFully(bufs[i]!, Math.min(length, size - offset), offset) : undefined;
      let pending = readAt(0, 0);
      for (let offset = 0, i = 0; offset < size; i ^= 1) {
        const want = Math.min(length, size - offset);
        await pending;
        pending = readAt(i ^ 1, offset + want);
        try {
          each(bufs[i]!.subarray(0, want));
        } catch (err) {
          // The read in flight ends before the caller closes the file, and its failure, if any,
          // is not left as an unhandled rejection: the callback's error is the one to report.
          await pending?.catch(() => {});
          throw err;
        }
        offset += want;
      }
    },
    close: () => fh.close(),
  };
}

export async function sha256Of(src: MeasureSource, what: string): Promise<Uint8Array> {
  const r = await openReader(src, what);
  try {
    const h = createHash('sha256');
    await r.chunks((c) => h.update(c));
    return new Uint8Array(h.digest());
  } finally {
    await r.close();
  }
}

/**
 * Reads the footer table and SEV metadata of an image. Without metadata: an error, or (with
 * `optional`, for the modes that measure the image only) no sections.
 */
export async function readOvmfInfo(r: Reader, optional = false): Promise<OvmfInfo> {
  const windowLength = Math.min(r.size, FOOTER_WINDOW);
  const top = await r.read(r.size - windowLength, windowLength);
  const table = parseFooterTable(top, r.size);
  const at = sevMetadataOffset(table, r.size);
  if (at === undefined && optional) return ovmfInfo(r.size, table, []);
  if (at === undefined)
    throw invalid('firmware: no SEV metadata (not an SEV-SNP-capable OVMF build)', {
      reason: 'no-sev-metadata',
    });
  const header = parseSevMetadataHeader(await r.read(at, 16));
  if (at + 16 + header.count * 12 > r.size)
    throw invalid('firmware: SEV metadata sections run past the image');
  const sections = parseSevMetadataSections(await r.read(at + 16, header.count * 12), header.count);
  return ovmfInfo(r.size, table, sections);
}

// SEV hashes table GUIDs (QEMU target/i386/sev.c; edk2 BlobVerifierLib).
const HT_HEADER = guidBytes('9438d606-4f22-4cc9-b479-a793d411fd21');
const HT_CMDLINE = guidBytes('97d02dd8-bd20-4c94-aa78-e7714d36ab2a');
const HT_INITRD = guidBytes('44baf731-3a2f-4bd7-9af1-41e29169781d');
const HT_KERNEL = guidBytes('4de79437-abd2-427f-b835-d5b172d2045b');
/** 18-byte header + three 50-byte entries = 168, zero-padded to a multiple of 16. */
const HT_LENGTH = 168;
export const HT_PADDED = 176;

export interface DirectBootHashes {
  cmdline: Uint8Array;
  initrd: Uint8Array;
  kernel: Uint8Array;
}

/** The SHA-256 values QEMU puts in the SEV hashes table. */
export async function directBootHashes(
  kernelSrc: MeasureSource,
  initrdSrc: MeasureSource | undefined,
  append: string | undefined,
): Promise<DirectBootHashes> {
  const kernel = await sha256Of(kernelSrc, 'kernel');
  const initrd =
    initrdSrc === undefined
      ? new Uint8Array(createHash('sha256').digest())
      : await sha256Of(initrdSrc, 'initrd');
  // QEMU hashes the command line with its terminating NUL; no command line is the empty one.
  const cmdline = new Uint8Array(
    createHash('sha256')
      .update(Buffer.concat([Buffer.from(append ?? '', 'utf8'), Buffer.of(0)]))
      .digest(),
  );
  return { cmdline, initrd, kernel };
}

/** The 176-byte SEV hashes table QEMU writes for a measured direct boot. */
export function sevHashesTable(h: {
  cmdline: Uint8Array;
  initrd: Uint8Array;
  kernel: Uint8Array;
}): Uint8Array {
  const t = Buffer.alloc(HT_PADDED);
  t.set(HT_HEADER, 0);
  t.writeUInt16LE(HT_LENGTH, 16);
  let off = 18;
  for (const [guid, hash] of [
    [HT_CMDLINE, h.cmdline],
    [HT_INITRD, h.initrd],
    [HT_KERNEL, h.kernel],
  ] as const) {
    t.set(guid, off);
    t.writeUInt16LE(50, off + 16);
    t.set(hash, off + 18);
    off += 50;
  }
  return new Uint8Array(t);
}

export function writeSegment(
  v: Buffer,
  off: number,
  selector: number,
  attrib: number,
  limit: number,
  base: number,
): void {
  v.writeUInt16LE(selector, off);
  v.writeUInt16LE(attrib, off + 2);
  v.writeUInt32LE(limit, off + 4);
  v.writeUInt32LE(base, off + 8); // bases here are below 4 GiB; the high half stays 0
}

/**
 * One VMSA page (SEV-ES save area, AMD APM vol. 2 table B-4) in the reset state the VMM gives a
 * vCPU starting at `eip`. The three VMMs differ in a few attributes and registers (see
 * ../../shared/fixtures/measure/README.md §6).
 */
export function vmsaPage(eip: number, vmm: VmmType, rdx: number, guestFeatures: bigint): Uint8Array {
  const v = Buffer.alloc(PAGE);
  const ec2 = vmm === 'ec2';
  const csAttr = ec2 && eip === BSP_EIP ? 0x9a : 0x9b;
  writeSegment(v, 0x00, 0, 0x93, 0xffff, 0); // es
  writeSegment(v, 0x10, 0xf000, csAttr, 0xffff, (eip & 0xffff0000) >>> 0); // cs
  writeSegment(v, 0x20, 0, ec2 ? 0x92 : 0x93, 0xffff, 0); // ss
  writeSegment(v, 0x30, 0, 0x93, 0xffff, 0); // ds
  writeSegment(v, 0x40, 0, 0x93, 0xffff, 0); // fs
  writeSegment(v, 0x50, 0, 0x93, 0xffff, 0); // gs
  writeSegment(v, 0x60, 0, 0, 0xffff, 0); // gdtr
  writeSegment(v, 0x70, 0, 0x82, 0xffff, 0); // ldtr
  writeSegment(v, 0x80, 0, 0, 0xffff, 0); // idtr
  writeSegment(v, 0x90, 0, ec2 ? 0x83 : 0x8b, 0xffff, 0); // tr
  v.writeUInt32LE(0x1000, 0xd0); // EFER.SVME (KVM sets it)
  v.writeUInt32LE(0x40, 0x148); // CR4.MCE
  v.writeUInt32LE(0x10, 0x158); // CR0.ET
  v.writeUInt32LE(0x400, 0x160); // DR7
  v.writeUInt32LE(0xffff0ff0, 0x168); // DR6
  v.writeUInt32LE(0x2, 0x170); // RFLAGS
  v.writeUInt32LE(eip & 0xffff, 0x178); // RIP
  // PAT MSR reset value (APM vol. 2 §A.3); GCE's hypervisor writes its own.
  v.writeBigUInt64LE(vmm === 'gce' ? 0x70106n : 0x0007040600070406n, 0x268);
  v.writeUInt32LE(rdx >>> 0, 0x310);
  v.writeBigUInt64LE(guestFeatures, 0x3b0); // SEV_FEATURES
  v.writeUInt32LE(1, 0x3e8); // XCR0
  if (vmm === 'qemu') {
    v.writeUInt32LE(0x1f80, 0x408); // MXCSR
    v.writeUInt16LE(0x37f, 0x410); // x87 FCW
  }
  return new Uint8Array(v);
}

export function checkInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw invalid(`${name} must be an integer from ${min} to ${max}`, { [name]: value });
  return value;
}

function checkFeatures(value: unknown): bigint {
  if (value === undefined) return 0x1n;
  let v: bigint;
  if (typeof value === 'bigint') v = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) v = BigInt(value);
  else throw invalid('guestFeatures must be a bigint or an integer');
  if (v < 0n || v >= 1n << 64n) throw invalid('guestFeatures must fit in 64 bits');
  return v;
}

export function resolveRdx(
  o: Pick<SnpLaunchDigestOptions, 'vcpuType' | 'vcpuSignature' | 'vmmType'>,
): number {
  const hasType = o.vcpuType !== undefined;
  const hasSig = o.vcpuSignature !== undefined;
  if (hasType && hasSig) throw invalid('give vcpuType or vcpuSignature, not both');
  let signature: number | undefined;
  if (hasType) {
    signature = Object.hasOwn(VCPU_SIGNATURES, o.vcpuType as string)
      ? VCPU_SIGNATURES[o.vcpuType as string]
      : undefined;
    if (signature === undefined)
      throw invalid(
        `unknown vCPU type ${JSON.stringify(o.vcpuType)} (known: ${Object.keys(VCPU_SIGNATURES).join(', ')})`,
        {
          vcpuType: o.vcpuType,
        },
      );
  } else if (hasSig) signature = checkInteger(o.vcpuSignature, 'vcpuSignature', 0, 0xffffffff);
  // EC2's and GCE's hypervisors put the family-6 reset value in RDX whatever the CPU model.
  if (o.vmmType !== 'qemu') return 0x600;
  if (signature === undefined)
    throw invalid('QEMU needs vcpuType or vcpuSignature (the VMSA carries it in RDX)');
  return signature;
}

/**
 * Computes the SEV-SNP launch measurement of a VM from its firmware, direct-boot inputs and vCPU
 * configuration. Throws ERR_INVALID_ARGUMENT for bad options, unreadable files and firmware
 * without (or with malformed) SEV metadata.
 */
export async function snpLaunchDigest(options: SnpLaunchDigestOptions): Promise<SnpLaunchDigest> {
  if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
  const o = options;
  if (!VMM_TYPES.includes(o.vmmType))
    throw invalid(`vmmType must be one of ${VMM_TYPES.join(', ')}`, { vmmType: o.vmmType });
  const vcpus = checkInteger(o.vcpus, 'vcpus', 1, MAX_VCPUS);
  const guestFeatures = checkFeatures(o.guestFeatures);
  const rdx = resolveRdx(o);
  if (o.kernel === undefined && o.initrd !== undefined) throw invalid('initrd needs kernel');
  if (o.kernel === undefined && o.append !== undefined && o.append !== '')
    throw invalid('append needs kernel');
  if (o.append !== undefined && typeof o.append !== 'string') throw invalid('append must be a string');
  if (
    o.firmwareDigest !== undefined &&
    (!(o.firmwareDigest instanceof Uint8Array) || o.firmwareDigest.length !== 48)
  )
    throw invalid('firmwareDigest must be 48 bytes');

  const fw = await openReader(o.ovmf, 'firmware');
  let info: OvmfInfo;
  const ld = new LaunchDigest(o.firmwareDigest);
  let firmwareDigest: Uint8Array;
  let fileSha384: Uint8Array | undefined;
  try {
    if (fw.size === 0 || fw.size % PAGE !== 0 || fw.size > FOUR_GIB)
      throw invalid(`firmware: size ${fw.size} is not a whole number of 4 KiB pages below 4 GiB`);
    info = await readOvmfInfo(fw);
    checkSections(info.sections, o.kernel !== undefined);
    if (o.kernel !== undefined && ((info.sevHashesTableGpa ?? 0) & 0xfff) + HT_PADDED > PAGE)
      throw invalid('firmware: the SEV hashes table GPA leaves no room for the table in its page');
    if (info.sevEsResetEip === undefined)
      throw invalid('firmware: no SEV-ES reset block (needed for the VMSAs)', { reason: 'no-reset-block' });
    const gpa = FOUR_GIB - fw.size;
    if (o.firmwareDigest === undefined) {
      const whole = createHash('sha384');
      await addImagePages(ld, fw, gpa, whole);
      fileSha384 = new Uint8Array(whole.digest());
    }
    firmwareDigest = ld.value;
  } finally {
    await fw.close();
  }

  const kernelHashes =
    o.kernel === undefined ? undefined : await directBootHashes(o.kernel, o.initrd, o.append);

  addSections(ld, info, o.vmmType, kernelHashes);
  const vmm = o.vmmType;

  // One VMSA per vCPU: the BSP at the reset vector, the APs at the SEV-ES reset block's EIP.
  const bsp = createHash('sha384')
    .update(vmsaPage(BSP_EIP, vmm, rdx, guestFeatures))
    .digest();
  ld.update(PAGE_VMSA, VMSA_GPA, bsp);
  if (vcpus > 1) {
    const ap = createHash('sha384')
      .update(vmsaPage(info.sevEsResetEip!, vmm, rdx, guestFeatures))
      .digest();
    for (let i = 1; i < vcpus; i++) ld.update(PAGE_VMSA, VMSA_GPA, ap);
  }

  return {
    measurement: ld.value,
    firmwareDigest,
    firmware: {
      size: info.size,
      sha384: fileSha384,
      gpa: FOUR_GIB - info.size,
      sevEsResetEip: info.sevEsResetEip,
      sevHashesTableGpa: info.sevHashesTableGpa,
      sections: info.sections,
    },
    rdx,
    guestFeatures,
    ...(kernelHashes ? { kernelHashes } : {}),
  };
}

/** Adds every page of an image as NORMAL, from `gpa` up, as it streams. */
export async function addImagePages(ld: LaunchDigest, r: Reader, gpa: number, whole?: Hash): Promise<void> {
  let at = gpa;
  await r.chunks((chunk) => {
    whole?.update(chunk);
    for (let p = 0; p < chunk.length; p += PAGE) {
      ld.page(PAGE_NORMAL, at, chunk.subarray(p, p + PAGE));
      at += PAGE;
    }
  });
}

/**
 * Adds the firmware's SEV metadata sections, in table order, with the VMM's conventions; EC2
 * adds the CPUID page after all the others.
 */
export function addSections(
  ld: LaunchDigest,
  info: OvmfInfo,
  vmm: VmmType,
  kernelHashes: DirectBootHashes | undefined,
): void {
  for (const s of info.sections) {
    switch (s.type) {
      case 'SNP_SEC_MEM':
        ld.empty(vmm === 'gce' ? PAGE_UNMEASURED : PAGE_ZERO, s.gpa, s.size / PAGE);
        break;
      case 'SNP_SECRETS':
        ld.empty(PAGE_SECRETS, s.gpa, 1);
        break;
      case 'CPUID':
        if (vmm !== 'ec2') ld.empty(PAGE_CPUID, s.gpa, 1);
        break;
      case 'SVSM_CAA':
        ld.empty(PAGE_ZERO, s.gpa, s.size / PAGE);
        break;
      case 'SNP_KERNEL_HASHES':
        if (kernelHashes) {
          // The table sits at the table GPA's offset within the page; the page is measured at the
          // section's GPA (sev-snp-measure guest.py; QEMU fills that page).
          const offset = (info.sevHashesTableGpa ?? 0) & 0xfff;
          const page = new Uint8Array(PAGE);
          page.set(sevHashesTable(kernelHashes), offset);
          ld.page(PAGE_NORMAL, s.gpa, page);
        } else ld.empty(PAGE_ZERO, s.gpa, s.size / PAGE);
        break;
    }
  }
  if (vmm === 'ec2') for (const s of info.sections) if (s.type === 'CPUID') ld.empty(PAGE_CPUID, s.gpa, 1);
}

/** Refuses sections the launch cannot add, before any page is hashed. */
export function checkSections(sections: OvmfSection[], withKernel: boolean): void {
  let pages = 0;
  for (const [i, s] of sections.entries()) {
    const oneShot =
      s.type === 'SNP_SECRETS' || s.type === 'CPUID' || (s.type === 'SNP_KERNEL_HASHES' && withKernel);
    if (s.type === 'SNP_KERNEL_HASHES' && withKernel && s.size !== PAGE)
      throw invalid(`firmware: SNP_KERNEL_HASHES section ${i} is ${s.size} bytes, not one page`, {
        section: i,
      });
    if (!oneShot && s.size % PAGE !== 0)
      throw invalid(`firmware: ${s.type} section ${i} is ${s.size} bytes, not whole pages`, { section: i });
    pages += oneShot ? 1 : s.size / PAGE;
    if (pages > MAX_SECTION_PAGES)
      throw invalid('firmware: SEV metadata sections add more than 4 GiB of pages', { section: i });
  }
  if (withKernel && !sections.some((s) => s.type === 'SNP_KERNEL_HASHES'))
    throw invalid(
      "kernel given but the firmware's SEV metadata has no SNP_KERNEL_HASHES section (not a measured-direct-boot build)",
      { reason: 'no-kernel-hashes' },
    );
}
