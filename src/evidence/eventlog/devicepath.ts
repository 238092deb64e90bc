/**
 * UEFI device paths (UEFI 2.10 §10.3) as text, in the notation of the UEFI spec's §10.6 for the
 * node types boot logs carry (PCI root, PCI, SCSI, SATA, NVMe, USB, MAC, hard drive, CD-ROM, file
 * path, firmware volume/file, vendor nodes); any other node is printed in the generic
 * `Path(type,subtype,hex)` form. A path in a log is *not* covered by the event's digest (that is
 * the image's Authenticode hash): it is information, never something to trust.
 *
 * Linear in the input: every node is at least 4 bytes long and the loop only moves forward.
 */

/** Formats a GUID stored in the UEFI mixed-endian layout (first three fields little-endian). */
export function guidToString(b: Uint8Array, off = 0): string {
  const h = Buffer.from(b.buffer, b.byteOffset + off, 16).toString('hex');
  const p = (i: number) => h.slice(2 * i, 2 * i + 2);
  return `${p(3)}${p(2)}${p(1)}${p(0)}-${p(5)}${p(4)}-${p(7)}${p(6)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** UTF-16LE up to the first NUL (or the end). Odd trailing bytes are dropped. */
export function utf16z(b: Uint8Array): string {
  let end = b.length - (b.length % 2);
  for (let i = 0; i + 1 < end; i += 2)
    if (b[i] === 0 && b[i + 1] === 0) {
      end = i;
      break;
    }
  return Buffer.from(b.buffer, b.byteOffset, end).toString('utf16le');
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

function num(n: number | bigint): string {
  return `0x${n.toString(16)}`;
}

function node(type: number, sub: number, d: Uint8Array): string {
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const u8 = (o: number) => d[o]!;
  const u16 = (o: number) => v.getUint16(o, true);
  const u32 = (o: number) => v.getUint32(o, true);
  const u64 = (o: number) => v.getBigUint64(o, true);
  const has = (n: number) => d.length >= n;
  if (type === 1 && sub === 1 && has(2)) return `Pci(${num(u8(1))},${num(u8(0))})`;
  if (type === 1 && sub === 3 && has(20))
    return `MemoryMapped(${num(u32(0))},${num(u64(4))},${num(u64(12))})`;
  if (type === 1 && sub === 4 && has(16))
    return `VenHw(${guidToString(d)}${d.length > 16 ? `,${hex(d.subarray(16))}` : ''})`;
  if (type === 2 && sub === 1 && has(8)) {
    const hid = u32(0);
    const uid = u32(4);
    // EISA id PNP0A03 / PNP0A08 (PCI / PCIe root bridge), compressed as in ACPI 6.5 §6.1.5.
    if (hid === 0x0a0341d0) return `PciRoot(${num(uid)})`;
    if (hid === 0x0a0841d0) return `PcieRoot(${num(uid)})`;
    return `Acpi(${num(hid)},${num(uid)})`;
  }
  if (type === 3 && sub === 2 && has(4)) return `Scsi(${num(u16(0))},${num(u16(2))})`;
  if (type === 3 && sub === 5 && has(2)) return `USB(${num(u8(0))},${num(u8(1))})`;
  if (type === 3 && sub === 11 && has(33)) return `MAC(${hex(d.subarray(0, 6))},${num(u8(32))})`;
  if (type === 3 && sub === 18 && has(6)) return `Sata(${num(u16(0))},${num(u16(2))},${num(u16(4))})`;
  if (type === 3 && sub === 23 && has(12)) return `NVMe(${num(u32(0))},${hex(d.subarray(4, 12))})`;
  if (type === 3 && sub === 10 && has(16))
    return `VenMsg(${guidToString(d)}${d.length > 16 ? `,${hex(d.subarray(16))}` : ''})`;
  if (type === 4 && sub === 1 && has(38)) {
    const fmt = u8(36);
    const sigType = u8(37);
    const sig = sigType === 2 ? guidToString(d, 20) : sigType === 1 ? num(u32(20)) : hex(d.subarray(20, 36));
    return `HD(${u32(0)},${fmt === 2 ? 'GPT' : fmt === 1 ? 'MBR' : num(fmt)},${sig},${num(u64(4))},${num(u64(12))})`;
  }
  if (type === 4 && sub === 2 && has(20)) return `CDROM(${num(u32(0))},${num(u64(4))},${num(u64(12))})`;
  if (type === 4 && sub === 3 && has(16))
    return `VenMedia(${guidToString(d)}${d.length > 16 ? `,${hex(d.subarray(16))}` : ''})`;
  if (type === 4 && sub === 4) return utf16z(d);
  if (type === 4 && sub === 6 && has(16)) return `FvFile(${guidToString(d)})`;
  if (type === 4 && sub === 7 && has(16)) return `Fv(${guidToString(d)})`;
  if (type === 4 && sub === 8 && has(20)) return `Offset(${num(u64(4))},${num(u64(12))})`;
  return `Path(${type},${sub},${hex(d)})`;
}

/**
 * The text form of a device path. Throws TypeError on a node whose length runs past the buffer or
 * is below the 4-byte node header (callers turn that into a decode error of the event).
 */
export function devicePathToText(b: Uint8Array): string {
  const parts: string[] = [];
  let off = 0;
  while (off < b.length) {
    if (b.length - off < 4) throw new TypeError('device path node header truncated');
    const type = b[off]!;
    const sub = b[off + 1]!;
    const len = b[off + 2]! | (b[off + 3]! << 8);
    if (len < 4 || off + len > b.length) throw new TypeError(`device path node length ${len} is invalid`);
    if (type === 0x7f && sub === 0xff) break; // end of the entire path
    parts.push(type === 0x7f && sub === 0x01 ? ',' : node(type, sub, b.subarray(off + 4, off + len)));
    off += len;
  }
  // File path nodes join with backslashes that the nodes themselves carry.
  let out = '';
  for (const p of parts) {
    if (p === ',') out += ',';
    else if (out === '' || out.endsWith(',')) out += p;
    else out += p.startsWith('\\') && out.endsWith('\\') ? p.slice(1) : `/${p}`;
  }
  return out;
}
