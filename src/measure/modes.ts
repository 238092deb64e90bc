/**
 * The launch digests of the other AMD launch flows sev-snp-measure knows, for completeness of the
 * shared vectors (../../shared/fixtures/measure/README.md §10):
 *
 * - SEV-SNP with COCONUT-SVSM (`snp:svsm`): firmware and SVSM image measured as NORMAL pages, the
 *   SVSM image's own SEV metadata with QEMU's rules, then one flat 32-bit VMSA per vCPU starting
 *   in the SVSM (entry from the SVSM info GUID of its footer table).
 * - SEV-ES and SEV: one SHA-256 over the firmware, the SEV hashes table for a direct boot and (SEV-ES)
 *   the VMSAs. This is the digest the PSP's LAUNCH_MEASURE HMAC covers, not the HMAC; this
 *   library verifies no SEV or SEV-ES evidence.
 */
import { createHash } from 'node:crypto';
import { GUIDS } from './ovmf.js';
import {
  addImagePages,
  addSections,
  checkInteger,
  checkSections,
  directBootHashes,
  FOUR_GIB,
  invalid,
  LaunchDigest,
  MAX_VCPUS,
  type MeasureSource,
  openReader,
  PAGE,
  PAGE_VMSA,
  readOvmfInfo,
  resolveRdx,
  sevHashesTable,
  VMSA_GPA,
  type VmmType,
  vmsaPage,
  writeSegment,
} from './snp.js';

/** COCONUT-SVSM's footer-table entry: u32 entry point, relative to the SVSM image's GPA. */
const SVSM_INFO_GUID = 'a789a612-0597-4c4b-a49f-cbb1fe9d1ddd';

export interface SnpSvsmLaunchDigestOptions {
  ovmf: MeasureSource;
  /** The SVSM image, loaded to end where the OVMF variable store begins. */
  svsm: MeasureSource;
  /** Size of the OVMF variable store (OVMF_VARS.fd) mapped between the SVSM and the firmware. */
  ovmfVarsSize: number;
  vcpus: number;
  vcpuType?: string;
  vcpuSignature?: number;
}

/** A VMSA of an SVSM vCPU: flat 32-bit protected mode at the SVSM's entry (sev-snp-measure vmsa.py). */
function svsmVmsaPage(eip: number, rdx: number): Uint8Array {
  const v = Buffer.alloc(PAGE);
  for (const off of [0x00, 0x20, 0x30, 0x40]) writeSegment(v, off, 16, 0xc93, 0xffffffff, 0); // es ss ds fs
  writeSegment(v, 0x10, 8, 0xc9b, 0xffffffff, 0); // cs
  writeSegment(v, 0x50, 0, 0x93, 0xffff, 0); // gs
  writeSegment(v, 0x60, 0, 0, 0xffff, 0); // gdtr
  writeSegment(v, 0x70, 0, 0x82, 0xffff, 0); // ldtr
  writeSegment(v, 0x80, 0, 0, 0xffff, 0); // idtr
  writeSegment(v, 0x90, 0, 0x8b, 0xffff, 0); // tr
  v.writeUInt32LE(0x1000, 0xd0); // EFER.SVME
  v.writeUInt32LE(0x40, 0x148); // CR4.MCE
  v.writeUInt32LE(0x11, 0x158); // CR0.PE | ET
  v.writeUInt32LE(0x400, 0x160);
  v.writeUInt32LE(0xffff0ff0, 0x168);
  v.writeUInt32LE(0x2, 0x170);
  v.writeBigUInt64LE(BigInt(eip), 0x178); // RIP: the whole entry address
  v.writeBigUInt64LE(0x0007040600070406n, 0x268);
  v.writeUInt32LE(rdx >>> 0, 0x310);
  v.writeBigUInt64LE(0x1n, 0x3b0); // SEV_FEATURES: SNPActive only, whatever the guest asks
  v.writeUInt32LE(1, 0x3e8);
  v.writeUInt32LE(0x1f80, 0x408); // MXCSR; x87 FCW stays 0 (what real SVSM launches measured)
  return new Uint8Array(v);
}

/** SEV-SNP launch digest of a QEMU guest booted through COCONUT-SVSM. */
export async function snpSvsmLaunchDigest(options: SnpSvsmLaunchDigestOptions): Promise<Uint8Array> {
  if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
  const o = options;
  const vcpus = checkInteger(o.vcpus, 'vcpus', 1, MAX_VCPUS);
  const varsSize = checkInteger(o.ovmfVarsSize, 'ovmfVarsSize', 0, FOUR_GIB);
  const rdx = resolveRdx({ ...o, vmmType: 'qemu' });
  const ld = new LaunchDigest();
  const fw = await openReader(o.ovmf, 'firmware');
  let fwGpa: number;
  try {
    if (fw.size === 0 || fw.size % PAGE !== 0 || fw.size > FOUR_GIB)
      throw invalid(`firmware: size ${fw.size} is not a whole number of 4 KiB pages below 4 GiB`);
    fwGpa = FOUR_GIB - fw.size;
    await addImagePages(ld, fw, fwGpa);
  } finally {
    await fw.close();
  }
  const sv = await openReader(o.svsm, 'SVSM image');
  try {
    const svGpa = fwGpa - varsSize - sv.size;
    if (sv.size === 0 || sv.size % PAGE !== 0 || svGpa < 0)
      throw invalid(`SVSM image: size ${sv.size} is not a whole number of pages below the firmware`);
    const info = await readOvmfInfo(sv);
    checkSections(info.sections, false);
    const entry = info.table.get(SVSM_INFO_GUID);
    if (!entry || entry.length < 4)
      throw invalid('SVSM image: no SVSM info entry (entry point) in its footer table');
    const eip = Buffer.from(entry).readUInt32LE(0) + svGpa;
    await addImagePages(ld, sv, svGpa);
    addSections(ld, info, 'qemu', undefined);
    const vmsa = createHash('sha384').update(svsmVmsaPage(eip, rdx)).digest();
    for (let i = 0; i < vcpus; i++) ld.update(PAGE_VMSA, VMSA_GPA, vmsa);
  } finally {
    await sv.close();
  }
  return ld.value;
}

export interface SevLaunchDigestOptions {
  mode: 'sev' | 'sev-es';
  ovmf: MeasureSource;
  kernel?: MeasureSource;
  initrd?: MeasureSource;
  append?: string;
  /** SEV-ES only: one VMSA each. */
  vcpus?: number;
  vcpuType?: string;
  vcpuSignature?: number;
  vmmType?: VmmType;
}

/** The 32-byte SHA-256 launch digest of an SEV or SEV-ES guest. */
export async function sevLaunchDigest(options: SevLaunchDigestOptions): Promise<Uint8Array> {
  if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
  const o = options;
  if (o.mode !== 'sev' && o.mode !== 'sev-es') throw invalid("mode must be 'sev' or 'sev-es'");
  if (o.kernel === undefined && o.initrd !== undefined) throw invalid('initrd needs kernel');
  if (o.kernel === undefined && o.append !== undefined && o.append !== '')
    throw invalid('append needs kernel');
  const vmm = o.vmmType ?? 'qemu';
  const es = o.mode === 'sev-es';
  const vcpus = es ? checkInteger(o.vcpus, 'vcpus', 1, MAX_VCPUS) : 0;
  const rdx = es ? resolveRdx({ ...o, vmmType: vmm }) : 0;
  const h = createHash('sha256');
  const fw = await openReader(o.ovmf, 'firmware');
  let info: Awaited<ReturnType<typeof readOvmfInfo>>;
  try {
    info = await readOvmfInfo(fw, true);
    if (o.kernel !== undefined && !(info.table.has(GUIDS.sevHashTable) && info.sevHashesTableGpa !== 0))
      throw invalid('kernel given but the firmware has no SEV hashes table (no measured direct boot)', {
        reason: 'no-kernel-hashes',
      });
    if (es && info.sevEsResetEip === undefined)
      throw invalid('firmware: no SEV-ES reset block (needed for the VMSAs)', { reason: 'no-reset-block' });
    await fw.chunks((c) => h.update(c));
  } finally {
    await fw.close();
  }
  if (o.kernel !== undefined) h.update(sevHashesTable(await directBootHashes(o.kernel, o.initrd, o.append)));
  if (es) {
    // SEV-ES VMSAs carry no SEV_FEATURES.
    h.update(vmsaPage(0xfffffff0, vmm, rdx, 0n));
    const ap = vmsaPage(info.sevEsResetEip!, vmm, rdx, 0n);
    for (let i = 1; i < vcpus; i++) h.update(ap);
  }
  return new Uint8Array(h.digest());
}
