/**
 * Property tests for the event-log parser: arbitrary bytes and mutated real logs give a parsed
 * log or ERR_EVIDENCE_MALFORMED, nothing else; a one-byte change to a real log never changes
 * what a policy reads without being caught; parsing time is linear.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import {
  type BootSummary,
  bootSummary,
  checkReplay,
  type EventLog,
  parseEventLog,
  replayEventLog,
} from '../../src/evidence/eventlog/index.js';
import { buildLog, fixture, SEPARATOR, text } from './fixtures.js';

function tryParse(
  bytes: Uint8Array,
  options: { ccel?: boolean; ccelTable?: Uint8Array },
): EventLog | undefined {
  try {
    const log = parseEventLog(bytes, options);
    // Whatever parses must also replay and summarise without throwing.
    replayEventLog(log);
    bootSummary(log);
    return log;
  } catch (err) {
    expect(err).toBeInstanceOf(AttestationError);
    expect((err as AttestationError).code).toBe('ERR_EVIDENCE_MALFORMED');
    return undefined;
  }
}

const tpm = fixture('go-tpm-tools__ubuntu-2404-amd-sevsnp');
const rhel = fixture('go-tpm-tools__rhel8-uefi');
const tdx = fixture('go-eventlog__cos-113-intel-tdx');
// The CCEL area is 256 KiB of mostly fill: mutate its used part (and a little fill after it).
const tdxUsed = tdx.log.subarray(0, parseEventLog(tdx.log, { ccel: true }).size + 64);

describe('event log parser: typed errors only', () => {
  it('arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (b, ccel) => {
        tryParse(b, { ccel });
      }),
      { numRuns: 400 },
    );
  });

  it('arbitrary bytes after a valid Spec ID header', () => {
    const header = buildLog(['sha1', 'sha256'], []);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (b) => {
        tryParse(new Uint8Array([...header, ...b]), {});
      }),
      { numRuns: 300 },
    );
  });

  for (const [name, f, base] of [
    ['TPM log', tpm, tpm.log],
    ['CCEL', tdx, tdxUsed],
  ] as const) {
    it(`mutated real ${name}: changed bytes, truncation, insertion`, () => {
      const opts = f.meta.kind === 'ccel' ? { ccel: true } : {};
      fc.assert(
        fc.property(
          fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), {
            minLength: 1,
            maxLength: 6,
          }),
          fc.nat(base.length),
          fc.constantFrom('change', 'truncate', 'insert'),
          (changes, at, how) => {
            let b = base.slice();
            if (how === 'truncate') b = b.subarray(0, at);
            else if (how === 'insert')
              b = new Uint8Array([...b.subarray(0, at), 0xff, 0, 0, 0x10, ...b.subarray(at)]);
            for (const [pos, v] of changes) if (pos < b.length) b[pos] = v;
            tryParse(b, opts);
          },
        ),
        { numRuns: 300 },
      );
    });
  }
});

/**
 * What a policy reads, minus the EFI application paths (device paths are not measured). A change
 * that is not caught may only make the summary know less (null/absent) — or add EFI app digests
 * that are the digests of other events in the same register, which no allow-list contains.
 */
function policyView(s: BootSummary) {
  return {
    secureBoot: s.secureBoot,
    kernelCmdlines: s.kernelCmdlines,
    kernel: s.kernel,
    initrd: s.initrd,
    apps: s.efiApps?.map((a) => a.digest),
  };
}

describe('a one-byte change to a real log is caught or changes nothing a policy reads', () => {
  for (const f of [tpm, rhel, tdx]) {
    it(f.name, () => {
      const opts = f.meta.kind === 'ccel' ? { ccel: true } : {};
      const orig = parseEventLog(f.log, opts);
      const before = policyView(bootSummary(orig));
      const appRegister = f.meta.kind === 'ccel' ? 2 : 4;
      const registerDigests = new Set(
        orig.events
          .filter((e) => e.pcrIndex === appRegister)
          .map((e) => Buffer.from(e.digests[f.meta.kind === 'ccel' ? 'sha384' : 'sha256']!).toString('hex')),
      );
      const used = orig.size;
      const expected = f.meta.kind === 'ccel' ? { rtmrs: f.meta.rtmrs! } : { pcrs: f.meta.pcrs! };
      let undetected = 0;
      fc.assert(
        fc.property(fc.nat(used - 1), fc.integer({ min: 1, max: 255 }), (pos, x) => {
          const b = f.log.slice();
          b[pos]! ^= x;
          const log = tryParse(b, opts);
          if (!log) return;
          try {
            checkReplay(replayEventLog(log), expected);
          } catch (err) {
            expect((err as AttestationError).code).toBe('ERR_EVENTLOG_MISMATCH');
            return;
          }
          if (log.anomalies.length > 0) return;
          undetected++;
          const after = policyView(bootSummary(log));
          expect([before.secureBoot, null]).toContain(after.secureBoot);
          expect([before.kernel, null]).toContain(after.kernel);
          for (const c of after.kernelCmdlines ?? []) expect(before.kernelCmdlines).toContain(c);
          for (const d of after.initrd ?? []) expect(before.initrd).toContain(d);
          for (const d of after.apps ?? []) expect(registerDigests.has(d)).toBe(true);
        }),
        { numRuns: 250 },
      );
      // Most bytes are data of events whose content is not measured (paths, file names, blobs).
      expect(undetected).toBeGreaterThan(0);
    });
  }
});

/** CPU time of this process running `fn` once, in ms: other processes taking the CPU do not count. */
function cpuTime(fn: () => void): number {
  const t0 = process.cpuUsage();
  fn();
  const t = process.cpuUsage(t0);
  return (t.user + t.system) / 1000;
}

/**
 * CPU time for input `large` over that for `small`, each the best of seven runs
 * taken in turn, so neither side alone meets a stretch of contention on a shared machine.
 */
function bestRatio(small: Uint8Array, large: Uint8Array, fn: (b: Uint8Array) => void): number {
  fn(small); // warm-up
  fn(large);
  let s = Number.POSITIVE_INFINITY;
  let l = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 7; i++) {
    s = Math.min(
      s,
      cpuTime(() => fn(small)),
    );
    l = Math.min(
      l,
      cpuTime(() => fn(large)),
    );
  }
  return l / Math.max(s, 0.1);
}

describe('parsing time is linear', () => {
  const build = (n: number) =>
    buildLog(
      ['sha1', 'sha256', 'sha384'],
      Array.from({ length: n }, (_, i) =>
        i % 2 === 0
          ? { pcr: 8, type: 0xd, data: text(`grub_cmd: echo ${'x'.repeat(i % 50)}`) }
          : { pcr: i % 8, type: 4, data: SEPARATOR },
      ),
    );

  // Linear gives about 8; quadratic would give about 64. 32 leaves room for a noisy machine.
  it('N vs 8N events: within a generous factor of 8', () => {
    expect(bestRatio(build(1000), build(8000), (b) => replayEventLog(parseEventLog(b)))).toBeLessThan(32);
  });

  it('records that look like zero fill but are not cost what ordinary records cost', () => {
    // SHA-1 format records of zeros (PCR0, EV_PREBOOT_CERT, zero digest, no data), one non-zero
    // byte at the very end: every record boundary asks whether the rest is zero fill, and the
    // answer must not rescan the rest (that costs about 10× here at 16000 records).
    const n = 16000;
    const zeros = new Uint8Array(n * 32 + 1);
    zeros[zeros.length - 1] = 1;
    const ordinary = new Uint8Array(n * 32);
    for (let i = 0; i < n; i++) {
      ordinary[i * 32] = 8; // PCR8
      ordinary[i * 32 + 4] = 0x0d; // EV_IPL
      ordinary.fill(1, i * 32 + 8, i * 32 + 28); // digest; no data
    }
    const parse = (b: Uint8Array) => {
      try {
        parseEventLog(b);
      } catch (err) {
        expect((err as AttestationError).code).toBe('ERR_EVIDENCE_MALFORMED');
      }
    };
    // Same size, so the ratio of the two is about 1; the rescan bug makes it about 10.
    expect(bestRatio(ordinary, zeros, parse)).toBeLessThan(4);
  });
});
