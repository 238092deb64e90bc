/**
 * Replay of a parsed event log into the registers it claims to explain, and the comparison with
 * the values a quote vouches for. Rules (PFP 1.05 §10.4.5.3 and §3.3.3; UEFI 2.10 §38.4;
 * test/fixtures/eventlog/README.md §2, reproduced on every real log there):
 * - every bank of every register starts at zero and each extending event does R = H(R ‖ digest);
 * - EV_NO_ACTION is never extended; a StartupLocality event sets PCR0's start to 00…00‖locality;
 * - PCR17-22 (DRTM) start at all-0xFF;
 * - CCEL: MR index 1..4 = RTMR0..3, SHA-384, from zero.
 */
import { createHash, hash } from 'node:crypto';
import { AttestationError } from '../../errors.js';
import { EV, nodeHash } from './decode.js';
import type { EventLog, EventLogKind } from './parse.js';

export interface ReplayedRegisters {
  kind: EventLogKind;
  /**
   * tcg2: per bank, the value of every PCR the log extends (and PCR0 when a StartupLocality
   * event sets its start). Banks this Node build cannot hash (SM3 without OpenSSL support) are
   * absent. ccel: empty.
   */
  pcrs: Record<string, Record<number, Uint8Array>>;
  /** ccel: RTMR0-3 (zero where the log has no event). */
  rtmrs?: Uint8Array[];
  /** ccel: the RTMRs (0..3) the log extends. */
  extendedRtmrs?: number[];
}

/** An argument that must be what parseEventLog / replayEventLog returned (ERR_INVALID_ARGUMENT otherwise). */
export function checkKind(value: unknown, what: string): void {
  const kind = typeof value === 'object' && value !== null ? (value as { kind?: unknown }).kind : undefined;
  if (kind !== 'tcg2' && kind !== 'ccel')
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      `${what} is not an event log of kind "tcg2" or "ccel"`,
    );
}

/** Replays the log. Pure; linear in the number of events times the number of banks. */
export function replayEventLog(log: EventLog): ReplayedRegisters {
  checkKind(log, 'replayEventLog: log');
  if (log.kind === 'ccel') {
    const rtmrs = [0, 1, 2, 3].map(() => new Uint8Array(48));
    const extended = new Set<number>();
    // One buffer for every extend's input (register ‖ digest), not one per event.
    const input = Buffer.alloc(96);
    for (const e of log.events) {
      if (e.type === EV.NO_ACTION) continue;
      const r = e.pcrIndex - 1;
      input.set(rtmrs[r]!, 0);
      input.set(e.digests.sha384!, 48);
      rtmrs[r] = hash('sha384', input, 'buffer');
      extended.add(r);
    }
    return { kind: 'ccel', pcrs: {}, rtmrs, extendedRtmrs: [...extended].sort((a, b) => a - b) };
  }
  let locality: number | undefined;
  // Only EV_NO_ACTION can be a StartupLocality event (and its content is decoded at parse time).
  for (const e of log.events)
    if (e.type === EV.NO_ACTION && e.decoded?.kind === 'startup-locality') locality = e.decoded.locality;
  const pcrs: Record<string, Record<number, Uint8Array>> = {};
  for (const bank of log.banks) {
    const alg = nodeHash(bank);
    if (!alg) continue;
    const size = createHash(alg).digest().length;
    const values: Record<number, Uint8Array> = {};
    const input = Buffer.alloc(2 * size);
    const start = (i: number) => {
      const v = new Uint8Array(size);
      if (i >= 17 && i <= 22) v.fill(0xff);
      if (i === 0 && locality !== undefined) v[size - 1] = locality;
      return v;
    };
    if (locality !== undefined) values[0] = start(0);
    for (const e of log.events) {
      if (e.type === EV.NO_ACTION) continue;
      const prev = values[e.pcrIndex] ?? start(e.pcrIndex);
      input.set(prev, 0);
      input.set(e.digests[bank]!, size);
      values[e.pcrIndex] = hash(alg, input, 'buffer');
    }
    pcrs[bank] = values;
  }
  return { kind: 'tcg2', pcrs };
}

/** Register values to compare with: from a verified quote, or a policy. Hex or bytes. */
export interface ExpectedRegisters {
  /** tcg2: `{ sha256: { "0": hex, ... }, ... }`. */
  pcrs?: Record<string, Record<string | number, string | Uint8Array>>;
  /** ccel: RTMR0-3, in order (fewer allowed: the rest are not compared). */
  rtmrs?: ReadonlyArray<string | Uint8Array>;
}

export interface ReplayCheck {
  /** What was compared and equal: 'sha256:PCR4', 'RTMR1', ... */
  matched: string[];
  /**
   * Given registers the log does not extend and that are not at their reset value (PCR10 when
   * IMA runs, RTMR3 when the OS extends it): the log says nothing about them.
   */
  unexplained: string[];
}

function toBytes(v: string | Uint8Array, what: string): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v !== 'string' || v.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(v))
    throw new AttestationError('ERR_INVALID_ARGUMENT', `checkReplay: ${what} is not a hex string`);
  return new Uint8Array(Buffer.from(v, 'hex'));
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

function mismatch(
  register: string,
  expected: Uint8Array | undefined,
  replayed: Uint8Array | undefined,
  why: string,
) {
  return new AttestationError(
    'ERR_EVENTLOG_MISMATCH',
    `event log does not replay to the given values: ${why}`,
    {
      details: {
        register,
        ...(expected ? { expected: hex(expected) } : {}),
        ...(replayed ? { replayed: hex(replayed) } : {}),
      },
    },
  );
}

/** A log that extends none of the registers (an empty log) vouches for nothing: refused. */
function explained(matched: string[], unexplained: string[]): ReplayCheck {
  if (matched.length === 0) throw mismatch('none', undefined, undefined, 'the log extends no register');
  return { matched, unexplained };
}

/**
 * Checks replayed registers against the values a quote vouches for. Every register the log
 * extends must be given and equal, in every bank given; registers the log does not extend are
 * not compared (listed in `unexplained` when not at their reset value). A bank given that the
 * log has no digests for fails: nothing in the log would be vouched for in it.
 * Throws ERR_EVENTLOG_MISMATCH on any difference, ERR_INVALID_ARGUMENT on unusable input.
 */
export function checkReplay(replayed: ReplayedRegisters, expected: ExpectedRegisters): ReplayCheck {
  checkKind(replayed, 'checkReplay: replayed');
  if (typeof expected !== 'object' || expected === null)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'checkReplay: expected must be an object');
  const matched: string[] = [];
  const unexplained: string[] = [];
  if (replayed.kind === 'ccel') {
    if (!expected.rtmrs || expected.pcrs)
      throw new AttestationError(
        'ERR_INVALID_ARGUMENT',
        'checkReplay: a CCEL is checked against `rtmrs` only',
      );
    if (expected.rtmrs.length === 0 || expected.rtmrs.length > 4)
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'checkReplay: `rtmrs` must have 1 to 4 values');
    const ext = new Set(replayed.extendedRtmrs ?? []);
    for (let r = 0; r < 4; r++) {
      const name = `RTMR${r}`;
      const want = r < expected.rtmrs.length ? toBytes(expected.rtmrs[r]!, name) : undefined;
      if (want && want.length !== 48)
        throw new AttestationError('ERR_INVALID_ARGUMENT', `checkReplay: ${name} is not 48 bytes`);
      if (!ext.has(r)) {
        if (want?.some((x) => x !== 0)) unexplained.push(name);
        continue;
      }
      const got = replayed.rtmrs![r]!;
      if (!want)
        throw mismatch(name, undefined, got, `the log extends ${name} and no value was given for it`);
      if (!Buffer.from(got).equals(want)) throw mismatch(name, want, got, `${name} differs`);
      matched.push(name);
    }
    return explained(matched, unexplained);
  }
  if (!expected.pcrs || expected.rtmrs)
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      'checkReplay: a TPM log is checked against `pcrs` only',
    );
  const banks = Object.keys(expected.pcrs);
  if (banks.length === 0)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'checkReplay: `pcrs` names no bank');
  for (const bank of banks) {
    const got = replayed.pcrs[bank];
    if (!got)
      throw mismatch(`${bank}`, undefined, undefined, `the log has no ${bank} digests that can be replayed`);
    const want = new Map<number, Uint8Array>();
    for (const [k, val] of Object.entries(expected.pcrs[bank]!)) {
      const i = Number(k);
      if (!Number.isInteger(i) || i < 0 || i > 23 || String(i) !== k)
        throw new AttestationError('ERR_INVALID_ARGUMENT', `checkReplay: "${k}" is not a PCR index`);
      const b = toBytes(val, `${bank} PCR${i}`);
      want.set(i, b);
    }
    for (const [k, value] of Object.entries(got)) {
      const i = Number(k);
      const name = `${bank}:PCR${i}`;
      const w = want.get(i);
      if (!w)
        throw mismatch(
          name,
          undefined,
          value,
          `the log extends PCR${i} and no ${bank} value was given for it`,
        );
      if (!Buffer.from(value).equals(w)) throw mismatch(name, w, value, `${bank} PCR${i} differs`);
      matched.push(name);
    }
    for (const [i, w] of want) {
      if (got[i]) continue;
      const reset = i >= 17 && i <= 22 ? 0xff : 0;
      if (w.some((x) => x !== reset)) unexplained.push(`${bank}:PCR${i}`);
    }
  }
  return explained(matched, unexplained);
}
