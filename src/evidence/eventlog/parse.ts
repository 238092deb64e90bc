/**
 * Parser for measured-boot event logs: the TCG PC Client crypto-agile log (Spec ID Event03 header,
 * then TCG_PCR_EVENT2 records with any mix of SHA-1/256/384/512/SM3 digests), the older SHA-1
 * format (TCG_PCR_EVENT records only), and the TDX CC event log (CCEL: the same crypto-agile
 * format, where the index is the CC measurement register, 1..4 = RTMR0..3), with its ACPI CCEL
 * table. Format facts: TCG PC Client Platform Firmware Profile 1.05 §10; UEFI 2.10 §38.4 (CC
 * measurement); docs/reference/cloud-evidence.md §2; test/fixtures/eventlog/README.md §1.
 *
 * Bounded and linear: at most MAX_EVENT_LOG_SIZE bytes and MAX_EVENT_COUNT records, each record's
 * data at most MAX_EVENT_DATA_SIZE; every loop moves forward through the buffer, and where the log
 * ends in fill is found once, from the end. Everything unparseable is ERR_EVIDENCE_MALFORMED.
 */
import { AttestationError } from '../../errors.js';
import { type DecodedEvent, type DigestCheck, decodeEvent, EV, eventTypeName, HASH_ALGS } from './decode.js';

/** The largest log accepted: real firmware logs are 15-50 KiB, CCEL areas 64 KiB to 1 MiB. */
export const MAX_EVENT_LOG_SIZE = 4 * 1024 * 1024;
/** The most records accepted (real logs: 25-120; servers with many option ROMs a few hundred). */
export const MAX_EVENT_COUNT = 16384;
/** The largest event data accepted (the largest real ones, dbx and TD HOBs, are tens of KiB). */
export const MAX_EVENT_DATA_SIZE = 1024 * 1024;

export type EventLogKind = 'tcg2' | 'ccel';

export interface ParseEventLogOptions {
  /**
   * The bytes are a TDX CC event log (CCEL). It cannot be told from a TPM log by its bytes alone:
   * the caller says which it read (`/sys/firmware/acpi/tables/data/CCEL` vs the TPM's log).
   */
  ccel?: boolean;
  /** CCEL only: the ACPI CCEL table (`/sys/firmware/acpi/tables/CCEL`), checked against the log. */
  ccelTable?: Uint8Array;
}

export interface SpecIdEvent {
  platformClass: number;
  specVersion: { major: number; minor: number; errata: number };
  uintnSize: number;
  algorithms: Array<{ algorithmId: number; name: string; digestSize: number }>;
  vendorInfo: Uint8Array;
}

export interface CcelTable {
  revision: number;
  oemId: string;
  oemTableId: string;
  /** 2 = TDX (UEFI 2.10 EFI_CC_TYPE_TDX). */
  ccType: number;
  ccSubtype: number;
  /** Log area minimum length, bytes. */
  laml: number;
  /** Log area start address (guest-physical), hex. */
  lasa: string;
}

export type AnomalyKind =
  | 'duplicate-separator'
  | 'missing-separator'
  | 'separator-error'
  | 'digest-mismatch'
  | 'ccel-log-area-size'
  | 'unmeasured-records';

/** Something in a log that replays fine but makes its single events unreliable to interpret. */
export interface Anomaly {
  kind: AnomalyKind;
  message: string;
  /** 'PCR7', 'RTMR0', ... */
  register?: string;
  /** The event's `index`. */
  event?: number;
}

export interface LogEvent {
  /** Position among the events, 0-based; the Spec ID header is not an event. */
  index: number;
  /** Byte offset of the record in the log, and its length (the data is its last bytes). */
  offset: number;
  length: number;
  /** As logged: the PCR index (tcg2) or the CC measurement register index (ccel: 1..4). */
  pcrIndex: number;
  /** 'PCR4', or for a CCEL 'RTMR0'..'RTMR3' ('MRTD' for index 0, never extended). */
  register: string;
  type: number;
  typeName: string;
  /** One digest per bank, by bank name ('sha256', ...; an unknown algorithm as '0x0012'). */
  digests: Record<string, Uint8Array>;
  data: Uint8Array;
  /**
   * Whether the digests are the hash of (part of) the data, so the decoded content is what was
   * measured: 'verified'; 'mismatch' where a rule demands it and it fails (an anomaly);
   * 'not-recomputable' where the digest covers something not in the log (PE images, files);
   * 'not-extended' for EV_NO_ACTION.
   */
  digestCheck: DigestCheck;
  digestVerified: boolean;
  decoded?: DecodedEvent;
  /** Why `decoded` is missing although the type has a decoder. */
  decodeError?: string;
}

export interface EventLog {
  kind: EventLogKind;
  /** 'crypto-agile' (Spec ID Event03) or 'sha1' (the pre-TPM2 TCG_PCR_EVENT format). */
  format: 'crypto-agile' | 'sha1';
  specId?: SpecIdEvent;
  /** Bank names in the Spec ID header's order ('sha1' only for the SHA-1 format). */
  banks: string[];
  events: LogEvent[];
  anomalies: Anomaly[];
  /** Bytes taken by records (the header included). */
  size: number;
  /** Bytes of 0xFF or 0x00 fill after the last record. */
  trailing: number;
  ccelTable?: CcelTable;
}

function malformed(message: string, details?: Record<string, unknown>): AttestationError {
  return new AttestationError('ERR_EVIDENCE_MALFORMED', `event log: ${message}`, details ? { details } : {});
}

/**
 * Answers "is everything from `pos` on 0xFF (or 0x00)?" at record boundaries in linear total
 * time: the first other byte found is remembered, so a later question from before it is answered
 * at once, and a scan stops at the first other byte. Long fill is checked natively and without
 * allocating: a run is uniform exactly when it equals itself shifted by one byte, compared in
 * chunks that double from 256 bytes (so a scan costs about twice the distance it covers).
 */
function fillProbe(b: Uint8Array): (pos: number) => boolean {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const other = new Map<number, number>();
  const isFill = (pos: number, fill: number): boolean => {
    const known = other.get(fill);
    if (known !== undefined && known >= pos) return false;
    const found = (i: number) => {
      let j = i;
      while (b[j] === fill) j++;
      other.set(fill, j);
      return false;
    };
    let i = pos;
    // Real records end the scan within a few bytes; only fill gets to the chunked compare.
    for (const stop = Math.min(b.length, pos + 64); i < stop; i++) if (b[i] !== fill) return found(i);
    // Here b[i - 1] === fill: [i - 1, i + n) is uniform iff it equals itself shifted by one.
    for (let n = 256; i < b.length; i += n, n = Math.min(2 * n, 65536)) {
      n = Math.min(n, b.length - i);
      if (!buf.subarray(i - 1, i + n - 1).equals(buf.subarray(i, i + n))) return found(i);
    }
    return true;
  };
  return (pos) => (b[pos] === 0xff && isFill(pos, 0xff)) || (b[pos] === 0x00 && isFill(pos, 0x00));
}

const SPEC_ID_03 = 'Spec ID Event03\0';

/** A SHA-1-layout record (index, type, digest[20], size, data) of index 0xFFFFFFFF, type EV_NO_ACTION, that fits. */
function isUnmeasuredRecord(v: DataView, pos: number, end: number): boolean {
  return (
    end - pos >= 32 &&
    v.getUint32(pos, true) === 0xffffffff &&
    v.getUint32(pos + 4, true) === EV.NO_ACTION &&
    v.getUint32(pos + 28, true) <= end - pos - 32
  );
}

function parseSpecId(data: Uint8Array): SpecIdEvent {
  // TCG_EfiSpecIdEvent (PFP §10.4.5.1): signature[16], platformClass u32, minor u8, major u8,
  // errata u8, uintnSize u8, numberOfAlgorithms u32, {algorithmId u16, digestSize u16}[n],
  // vendorInfoSize u8, vendorInfo.
  if (data.length < 29) throw malformed('Spec ID event is shorter than 29 bytes');
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const n = v.getUint32(24, true);
  if (n === 0 || n > HASH_ALGS.size || 28 + 4 * n + 1 > data.length)
    throw malformed(`Spec ID event lists ${n} algorithms`);
  const algorithms: SpecIdEvent['algorithms'] = [];
  for (let i = 0; i < n; i++) {
    const algorithmId = v.getUint16(28 + 4 * i, true);
    const digestSize = v.getUint16(30 + 4 * i, true);
    const known = HASH_ALGS.get(algorithmId);
    if (!known) throw malformed(`Spec ID event names unknown hash algorithm 0x${algorithmId.toString(16)}`);
    if (known.size !== digestSize)
      throw malformed(`Spec ID event gives ${known.name} a digest size of ${digestSize}, not ${known.size}`);
    if (algorithms.some((a) => a.algorithmId === algorithmId))
      throw malformed(`Spec ID event lists ${known.name} twice`);
    algorithms.push({ algorithmId, name: known.name, digestSize });
  }
  const vendorSize = data[28 + 4 * n]!;
  if (29 + 4 * n + vendorSize !== data.length)
    throw malformed(`Spec ID event is ${data.length} bytes, its fields say ${29 + 4 * n + vendorSize}`);
  return {
    platformClass: v.getUint32(16, true),
    specVersion: { minor: data[20]!, major: data[21]!, errata: data[22]! },
    uintnSize: data[23]!,
    algorithms,
    vendorInfo: data.slice(29 + 4 * n),
  };
}

/** The ACPI CCEL table (UEFI 2.10 §38.4.2; ACPI 6.5 §5.2.6 header). */
export function parseCcelTable(b: Uint8Array): CcelTable {
  if (!(b instanceof Uint8Array)) throw malformed('expected a Uint8Array');
  if (b.length < 56) throw malformed(`CCEL table is ${b.length} bytes, not 56`);
  const s = (o: number, n: number) => Buffer.from(b.subarray(o, o + n)).toString('latin1');
  if (s(0, 4) !== 'CCEL') throw malformed('CCEL table signature is not "CCEL"');
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const length = v.getUint32(4, true);
  if (length !== b.length)
    throw malformed(`CCEL table length field is ${length}, the table ${b.length} bytes`);
  let sum = 0;
  for (const x of b) sum = (sum + x) & 0xff;
  if (sum !== 0) throw malformed('CCEL table checksum is wrong');
  const ccType = b[36]!;
  if (ccType !== 2) throw malformed(`CCEL table CC type is ${ccType}, not 2 (TDX)`);
  const laml = v.getBigUint64(40, true);
  return {
    revision: b[8]!,
    oemId: s(10, 6),
    oemTableId: s(16, 8),
    ccType,
    ccSubtype: b[37]!,
    laml: laml > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(laml),
    lasa: `0x${v.getBigUint64(48, true).toString(16)}`,
  };
}

function registerName(kind: EventLogKind, index: number): string {
  if (kind === 'tcg2') return `PCR${index}`;
  return index === 0 ? 'MRTD' : `RTMR${index - 1}`;
}

/**
 * Parses an event log. Throws ERR_EVIDENCE_MALFORMED for anything that is not a complete,
 * consistent log (truncated records, digest lists that disagree with the Spec ID header, indexes
 * out of range, oversize); oddities that replay fine are listed in `anomalies` instead.
 */
export function parseEventLog(input: Uint8Array, options: ParseEventLogOptions = {}): EventLog {
  if (!(input instanceof Uint8Array)) throw malformed('expected a Uint8Array');
  if (input.length > MAX_EVENT_LOG_SIZE)
    throw malformed(`${input.length} bytes is over the ${MAX_EVENT_LOG_SIZE}-byte limit`);
  const bytes = input;
  const kind: EventLogKind = options.ccel ? 'ccel' : 'tcg2';
  if (options.ccelTable !== undefined && !options.ccel)
    throw malformed('a CCEL table was given for a TPM log');
  const ccelTable = options.ccelTable ? parseCcelTable(options.ccelTable) : undefined;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.length;
  const restIsFill = fillProbe(bytes);
  const need = (pos: number, n: number, what: string) => {
    if (end - pos < n) throw malformed(`${what} at offset ${pos} is truncated`);
  };
  const maxIndex = kind === 'ccel' ? 4 : 23;

  // The first record is always in the SHA-1 layout: pcr u32, type u32, digest[20], size u32.
  need(0, 32, 'first record');
  const firstType = v.getUint32(4, true);
  const firstSize = v.getUint32(28, true);
  const agile =
    firstType === EV.NO_ACTION &&
    firstSize >= 16 &&
    end >= 48 &&
    Buffer.from(bytes.subarray(32, 48)).toString('latin1') === SPEC_ID_03;
  let pos = 0;
  let specId: SpecIdEvent | undefined;
  let algs: SpecIdEvent['algorithms'];
  if (agile) {
    const headerIndex = v.getUint32(0, true);
    if (headerIndex > maxIndex) throw malformed(`Spec ID event index ${headerIndex} is out of range`);
    for (let i = 8; i < 28; i++) if (bytes[i] !== 0) throw malformed('Spec ID event digest is not zero');
    need(32, firstSize, 'Spec ID event');
    specId = parseSpecId(bytes.subarray(32, 32 + firstSize));
    algs = specId.algorithms;
    pos = 32 + firstSize;
  } else {
    if (kind === 'ccel') throw malformed('a CCEL must start with a Spec ID Event03 header');
    algs = [{ algorithmId: 0x0004, name: 'sha1', digestSize: 20 }];
  }
  if (kind === 'ccel' && !algs.some((a) => a.name === 'sha384'))
    throw malformed('a CCEL must carry SHA-384 digests (RTMRs are SHA-384)');

  // First the framing (offsets only), then one copy of the records, so the caller changing its
  // buffer later cannot change the parsed log; digests and data are views into that copy (an
  // ArrayBuffer per event would make the garbage collector's work grow faster than the log),
  // and the fill after the records is not copied.
  const records: Array<{
    offset: number;
    pcrIndex: number;
    type: number;
    digests: Array<readonly [string, number, number]>;
    dataStart: number;
    end: number;
  }> = [];
  let unmeasured = 0;
  while (pos < end) {
    // The rest is fill: 0xFF (TDVF CCEL areas), 0x00 (td-shim), or exactly nothing (TPM logs).
    if (restIsFill(pos)) break;
    if (unmeasured > 0 || (!agile && kind === 'tcg2' && isUnmeasuredRecord(v, pos, end))) {
      // After the events of a SHA-1-format log: records with index 0xFFFFFFFF and type
      // EV_NO_ACTION, as a Windows boot on Google Cloud appends them (go-eventlog's
      // option_rom_eventlog; its parser stops there). No register is extended by them, so they
      // are framed, counted as an anomaly, and not read; an event after them is refused.
      if (!isUnmeasuredRecord(v, pos, end))
        throw malformed(`a record at offset ${pos} follows the unmeasured 0xFFFFFFFF records`);
      if (++unmeasured > MAX_EVENT_COUNT) throw malformed(`more than ${MAX_EVENT_COUNT} unmeasured records`);
      pos += 32 + v.getUint32(pos + 28, true);
      continue;
    }
    if (records.length >= MAX_EVENT_COUNT) throw malformed(`more than ${MAX_EVENT_COUNT} events`);
    const offset = pos;
    need(pos, 8, 'event header');
    const pcrIndex = v.getUint32(pos, true);
    const type = v.getUint32(pos + 4, true);
    if (pcrIndex === 0xffffffff)
      throw malformed(`an 0xFFFFFFFF record at offset ${pos} is not followed by fill`);
    if (pcrIndex > maxIndex) throw malformed(`event at offset ${pos} has index ${pcrIndex}`);
    if (kind === 'ccel' && pcrIndex === 0 && type !== EV.NO_ACTION)
      throw malformed(`event at offset ${pos} extends index 0 (MRTD), which no log can`);
    pos += 8;
    const digests: Array<readonly [string, number, number]> = [];
    if (agile) {
      need(pos, 4, 'digest count');
      const count = v.getUint32(pos, true);
      pos += 4;
      if (count !== algs.length)
        throw malformed(`event at offset ${offset} has ${count} digests, the Spec ID header ${algs.length}`);
      for (let i = 0; i < count; i++) {
        need(pos, 2, 'digest algorithm');
        const id = v.getUint16(pos, true);
        const alg = algs.find((a) => a.algorithmId === id);
        if (!alg)
          throw malformed(
            `event at offset ${offset} has a digest of algorithm 0x${id.toString(16)} not in the Spec ID header`,
          );
        if (digests.some(([n]) => n === alg.name))
          throw malformed(`event at offset ${offset} has two ${alg.name} digests`);
        need(pos + 2, alg.digestSize, 'digest');
        digests.push([alg.name, pos + 2, alg.digestSize]);
        pos += 2 + alg.digestSize;
      }
    } else {
      need(pos, 20, 'SHA-1 digest');
      digests.push(['sha1', pos, 20]);
      pos += 20;
    }
    need(pos, 4, 'event size');
    const size = v.getUint32(pos, true);
    pos += 4;
    if (size > MAX_EVENT_DATA_SIZE) throw malformed(`event at offset ${offset} has ${size} bytes of data`);
    need(pos, size, 'event data');
    records.push({ offset, pcrIndex, type, digests, dataStart: pos, end: pos + size });
    pos += size;
  }

  const own = bytes.slice(0, pos);
  const events: LogEvent[] = [];
  const anomalies: Anomaly[] = [];
  let localitySeen = false;
  let pcr0Extended = false;
  for (const rec of records) {
    const { offset, pcrIndex, type } = rec;
    const digests: Record<string, Uint8Array> = {};
    const pairs: Array<readonly [string, Uint8Array]> = [];
    for (const [name, at, n] of rec.digests) {
      const d = own.subarray(at, at + n);
      digests[name] = d;
      pairs.push([name, d]);
    }
    const data = own.subarray(rec.dataStart, rec.end);
    const r = decodeEvent(type, data, pairs, true);
    const index = events.length;
    const register = registerName(kind, pcrIndex);
    const ev: LogEvent = {
      index,
      offset,
      length: rec.end - offset,
      pcrIndex,
      register,
      type,
      typeName: eventTypeName(type),
      digests,
      data,
      digestCheck: r.check,
      digestVerified: r.check === 'verified',
    };
    if (r.later) decodeOnRead(ev, r.later);
    else {
      if (r.decoded) ev.decoded = r.decoded;
      if (r.decodeError) ev.decodeError = r.decodeError;
    }
    events.push(ev);
    if (r.decoded?.kind === 'startup-locality') {
      // Sets PCR0's starting value (PFP §10.4.5.3), so it must come once and before PCR0 moves.
      if (kind !== 'tcg2' || pcrIndex !== 0 || localitySeen || pcr0Extended)
        throw malformed(`StartupLocality event ${index} is misplaced or repeated`);
      localitySeen = true;
    }
    if (type !== EV.NO_ACTION && pcrIndex === 0) pcr0Extended = true;
    if (r.check === 'mismatch')
      anomalies.push({
        kind: 'digest-mismatch',
        message: `event ${index} (${ev.typeName}, ${register}): its digest is not the hash of its data`,
        register,
        event: index,
      });
    if (r.decoded?.kind === 'separator' && r.decoded.error)
      anomalies.push({
        kind: 'separator-error',
        message: `event ${index}: separator value ${r.decoded.value} in ${register} signals a firmware error`,
        register,
        event: index,
      });
  }
  const size = pos;
  separatorAnomalies(kind, events, anomalies);
  if (unmeasured > 0)
    anomalies.push({
      kind: 'unmeasured-records',
      message: `${unmeasured} record(s) with index 0xFFFFFFFF (EV_NO_ACTION, SHA-1 layout) follow the events: they extend nothing and are not read`,
    });
  if (ccelTable) {
    if (size > ccelTable.laml)
      throw malformed(`events take ${size} bytes, more than the CCEL table's log area (${ccelTable.laml})`);
    if (end > ccelTable.laml)
      anomalies.push({
        kind: 'ccel-log-area-size',
        message: `the log area is ${end} bytes, the CCEL table says ${ccelTable.laml}`,
      });
  }
  return {
    kind,
    format: agile ? 'crypto-agile' : 'sha1',
    ...(specId ? { specId } : {}),
    banks: algs.map((a) => a.name),
    events,
    anomalies,
    size,
    trailing: end - size,
    ...(ccelTable ? { ccelTable } : {}),
  };
}

/** Where an event decoded on read keeps its decoder, then what it gave. */
const PENDING = Symbol('pending decode');
interface Pending {
  decode?: () => DecodedEvent;
  decoded?: DecodedEvent;
  decodeError?: string;
}
type LazyEvent = LogEvent & { [PENDING]: Pending };

function settle(ev: LazyEvent): Pending {
  const p = ev[PENDING];
  const decode = p.decode;
  if (decode) {
    p.decode = undefined;
    try {
      p.decoded = decode();
    } catch (err) {
      p.decodeError = err instanceof Error ? err.message : String(err);
    }
  }
  return p;
}

// The same accessor functions on every event, so that all events keep one shape (an accessor
// made per event would give each its own, and every read of an event a slow path).
const ON_READ: PropertyDescriptorMap = {
  decoded: {
    enumerable: true,
    get(this: LazyEvent) {
      return settle(this).decoded;
    },
  },
  decodeError: {
    enumerable: true,
    get(this: LazyEvent) {
      return settle(this).decodeError;
    },
  },
};

/**
 * `decoded` and `decodeError` of an event whose content parsing does not need, decoded from its
 * data (a view of the log's own copy) on the first read of either, once. The digest check was
 * made on the same bytes; a caller that writes into `data` changes what both describe.
 */
function decodeOnRead(ev: LogEvent, decode: () => DecodedEvent): void {
  Object.defineProperty(ev, PENDING, { value: { decode } satisfies Pending });
  Object.defineProperties(ev, ON_READ);
}

/**
 * Each register the firmware closes with a separator gets exactly one: PCR0-7 in a TPM log (PFP
 * §3.3.2), RTMR0 and RTMR1 in a CCEL (TDVF maps PCR0-7 onto them). Real TDX firmware has logged
 * both separators in RTMR0 and none in RTMR1; such a log replays to well-defined values but its
 * events' placement is not what a reader assumes, hence an anomaly, not a parse error.
 */
function separatorAnomalies(kind: EventLogKind, events: LogEvent[], anomalies: Anomaly[]): void {
  const expected = kind === 'tcg2' ? [0, 1, 2, 3, 4, 5, 6, 7] : [1, 2];
  // Logs without a single separator are partial logs (firmware that logs nothing there); only
  // a log that has separators at all is held to one per register.
  const seen = new Map<number, number[]>();
  for (const e of events) {
    if (e.type !== EV.SEPARATOR) continue;
    const list = seen.get(e.pcrIndex);
    if (list) list.push(e.index);
    else seen.set(e.pcrIndex, [e.index]);
  }
  if (seen.size === 0) return;
  for (const [idx, list] of seen)
    for (const dup of list.slice(1))
      anomalies.push({
        kind: 'duplicate-separator',
        message: `duplicate separator at event ${dup} in ${registerName(kind, idx)} (first at event ${list[0]})`,
        register: registerName(kind, idx),
        event: dup,
      });
  for (const idx of expected)
    if (!seen.has(idx))
      anomalies.push({
        kind: 'missing-separator',
        message: `no separator in ${registerName(kind, idx)}`,
        register: registerName(kind, idx),
      });
}
