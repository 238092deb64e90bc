/** The real event logs of test/fixtures/eventlog/ and a builder for synthetic logs. */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const EVENTLOG_DIR = fileURLToPath(new URL('../fixtures/eventlog/', import.meta.url));

export interface EventLogMeta {
  id: string;
  kind: 'tcg2' | 'ccel';
  expect: 'ok' | 'ok_with_anomaly';
  event_count: number;
  separators: Record<string, number[]>;
  pcrs?: Record<string, Record<string, string>>;
  rtmrs?: string[];
  efi_app_digests?: Record<string, string[]> | null;
  kernel_cmdline?: string | null;
  secure_boot?: { log_says: 'enabled' | 'disabled' } | null;
  checked: { digest_vs_data: Record<string, string> };
}

export interface EventLogFixture {
  name: string;
  meta: EventLogMeta;
  log: Uint8Array;
  table?: Uint8Array;
  /** What parseEventLog needs for this file. */
  options: { ccel?: boolean; ccelTable?: Uint8Array };
}

export function loadEventLogFixtures(): EventLogFixture[] {
  return readdirSync(EVENTLOG_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => {
      const dir = `${EVENTLOG_DIR}${d.name}/`;
      const meta = JSON.parse(readFileSync(`${dir}meta.json`, 'utf8')) as EventLogMeta;
      if (meta.kind === 'ccel') {
        const table = new Uint8Array(readFileSync(`${dir}ccel-table.bin`));
        return {
          name: d.name,
          meta,
          log: new Uint8Array(readFileSync(`${dir}ccel.bin`)),
          table,
          options: { ccel: true, ccelTable: table },
        };
      }
      return { name: d.name, meta, log: new Uint8Array(readFileSync(`${dir}eventlog.bin`)), options: {} };
    });
}

export function fixture(name: string): EventLogFixture {
  const f = loadEventLogFixtures().find((x) => x.name === name);
  if (!f) throw new Error(`no fixture ${name}`);
  return f;
}

const ALG_IDS: Record<string, [number, number]> = {
  sha1: [0x0004, 20],
  sha256: [0x000b, 32],
  sha384: [0x000c, 48],
  sha512: [0x000d, 64],
};

export interface SyntheticEvent {
  pcr: number;
  type: number;
  data: Uint8Array;
  /** Digest per bank; default: the bank's hash of `data`. */
  digests?: Record<string, Uint8Array>;
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}

/** A crypto-agile log: the Spec ID header (index `headerIndex`), then the events. */
export function buildLog(banks: string[], events: SyntheticEvent[], headerIndex = 0): Uint8Array {
  const spec = Buffer.concat([
    Buffer.from('Spec ID Event03\0', 'latin1'),
    u32(0),
    Buffer.from([0, 2, 0, 2]),
    u32(banks.length),
    ...banks.map((b) => Buffer.concat([u16(ALG_IDS[b]![0]), u16(ALG_IDS[b]![1])])),
    Buffer.from([0]),
  ]);
  const parts: Buffer[] = [u32(headerIndex), u32(3), Buffer.alloc(20), u32(spec.length), spec];
  for (const e of events) {
    parts.push(u32(e.pcr), u32(e.type), u32(banks.length));
    for (const b of banks) {
      parts.push(u16(ALG_IDS[b]![0]), Buffer.from(e.digests?.[b] ?? createHash(b).update(e.data).digest()));
    }
    parts.push(u32(e.data.length), Buffer.from(e.data));
  }
  return new Uint8Array(Buffer.concat(parts));
}

export const text = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));
export const SEPARATOR = new Uint8Array(4);
