/**
 * The SEV-SNP extended-report certificate table (GHCB spec §4.1.8.1;
 * docs/reference/snp-format.md §6), which the Linux kernel hands out unchanged as configfs-tsm
 * `auxblob`. Its content comes from the host, so
 * every offset and length is bounds-checked before a byte is copied.
 */
import { AttestationError } from '../../errors.js';
import { bytesToHex, isAllZero } from '../bytes.js';

/** GUIDs in RFC 4122 string form; the table stores their 16 bytes in that order. */
export const CERT_TABLE_GUIDS = {
  vcek: '63da758d-e664-4564-adc5-f4b93be8accd',
  vlek: 'a8074bc2-a25a-483e-aae6-39c045a0b8a1',
  /** ASK, and also the ASVK: there is no separate GUID for it. */
  ask: '4ab7b379-bbac-4fe4-a02f-05aef327c782',
  ark: 'c0b406a4-a803-4952-9743-3fb6014cd0ae',
  crl: '92f81bc3-5811-4d3d-97ff-d19f88dc67ea',
} as const;

export interface CertTableEntry {
  /** Lowercase RFC 4122 string form. */
  guid: string;
  data: Uint8Array;
}

const ENTRY_SIZE = 24;

function guidString(b: Uint8Array): string {
  const h = bytesToHex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function guidBytes(guid: string): Uint8Array {
  const hex = guid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex))
    throw new AttestationError('ERR_INVALID_ARGUMENT', `not a GUID: ${guid}`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/**
 * Parses a certificate table. An empty buffer is an empty table (the host may supply no
 * certificates). Otherwise the entries must end with an all-zero entry inside the buffer, every
 * payload must lie after the entries and inside the buffer, and no GUID may repeat.
 * Throws ERR_PROVIDER_FAILED (the table comes from the platform, not from a peer).
 */
export function parseCertTable(table: Uint8Array): CertTableEntry[] {
  const fail = (why: string) =>
    new AttestationError('ERR_PROVIDER_FAILED', `malformed certificate table: ${why}`);
  if (!(table instanceof Uint8Array)) throw fail('not bytes');
  if (table.length === 0) return [];
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const headers: Array<{ guid: string; offset: number; length: number }> = [];
  let pos = 0;
  for (;;) {
    if (pos + ENTRY_SIZE > table.length) throw fail('no terminating zero entry');
    const entry = table.subarray(pos, pos + ENTRY_SIZE);
    pos += ENTRY_SIZE;
    if (isAllZero(entry)) break;
    headers.push({
      guid: guidString(entry.subarray(0, 16)),
      offset: view.getUint32(pos - 8, true),
      length: view.getUint32(pos - 4, true),
    });
  }
  const seen = new Set<string>();
  return headers.map(({ guid, offset, length }) => {
    if (seen.has(guid)) throw fail(`GUID ${guid} appears twice`);
    seen.add(guid);
    if (offset < pos) throw fail(`entry ${guid} points into the table header`);
    if (offset + length > table.length) throw fail(`entry ${guid} runs past the end`);
    return { guid, data: table.slice(offset, offset + length) };
  });
}

/** Builds a table (the inverse of parseCertTable): the entries, a zero entry, then the payloads. */
export function buildCertTable(entries: CertTableEntry[]): Uint8Array {
  const headerSize = (entries.length + 1) * ENTRY_SIZE;
  const total = headerSize + entries.reduce((n, e) => n + e.data.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let payload = headerSize;
  entries.forEach((e, i) => {
    out.set(guidBytes(e.guid), i * ENTRY_SIZE);
    view.setUint32(i * ENTRY_SIZE + 16, payload, true);
    view.setUint32(i * ENTRY_SIZE + 20, e.data.length, true);
    out.set(e.data, payload);
    payload += e.data.length;
  });
  return out;
}
