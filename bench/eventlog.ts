/**
 * Event-log throughput (issue 13): parse + replay + check of the real 43-event TDX CCEL log
 * (256 KiB area, SHA-384) and of a real 105-event TPM log (SHA-1/256/384 banks), warm (files
 * read once), in events per second, next to the hashing no verifier can skip, measured with
 * node:crypto in the same run (one-shot crypto.hash, its fastest form): for each event and each
 * bank, the hash of its data (recomputing the digest) and one extend. Target: ratio ≥ 0.5.
 */
import { hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { checkReplay, parseEventLog, replayEventLog } from '../dist/evidence/eventlog/index.js';
import { interleaved, record } from './harness.js';

const DIR = new URL('../test/fixtures/eventlog/', import.meta.url);

interface Case {
  label: string;
  bytes: Uint8Array;
  options: { ccel?: boolean };
  expected: { pcrs?: Record<string, Record<string, string>>; rtmrs?: string[] };
}

function load(name: string, file: string, ccel: boolean): Case {
  const meta = JSON.parse(readFileSync(new URL(`${name}/meta.json`, DIR), 'utf8'));
  return {
    label: name,
    bytes: new Uint8Array(readFileSync(new URL(`${name}/${file}`, DIR))),
    options: ccel ? { ccel: true } : {},
    expected: ccel ? { rtmrs: meta.rtmrs } : { pcrs: meta.pcrs },
  };
}

export async function run(): Promise<void> {
  const cases = [
    load('go-eventlog__cos-113-intel-tdx', 'ccel.bin', true),
    load('go-tpm-tools__ubuntu-2104-no-secure-boot', 'eventlog.bin', false),
  ];
  for (const c of cases) {
    const log = parseEventLog(c.bytes, c.options);
    const n = log.events.length;
    // The floor: every bank's hash of every event's data, and every extend, nothing else.
    // EV_NO_ACTION events are hashed (the "same event data") but not extended (no
    // verifier extends them); each extend's input goes through one reused buffer per bank, the
    // fastest way node:crypto takes it, as replayEventLog does.
    const work = log.events.map((e) => ({
      data: e.data,
      extend: e.type !== 3,
      digests: Object.entries(e.digests).map(([bank, d]) => ({ bank, d, input: Buffer.alloc(2 * d.length) })),
    }));
    const raw = () => {
      const regs = new Map<string, Buffer>();
      for (const e of work)
        for (const { bank, d, input } of e.digests) {
          hash(bank, e.data, 'buffer');
          if (!e.extend) continue;
          input.set(regs.get(bank) ?? input.fill(0, 0, d.length).subarray(0, d.length), 0);
          input.set(d, d.length);
          regs.set(bank, hash(bank, input, 'buffer'));
        }
    };
    const ours = () => {
      const parsed = parseEventLog(c.bytes, c.options);
      checkReplay(replayEventLog(parsed), c.expected);
    };
    ours();
    const t = await interleaved({ raw: async () => raw(), lib: async () => ours() }, 2000);
    const rawRate = (n * 1000) / t.raw.median;
    const libRate = (n * 1000) / t.lib.median;
    const banks = log.banks.join('+');
    record({
      section: 'eventlog',
      metric: `raw node:crypto: ${banks} of ${n} events' data + extends`,
      value: rawRate,
      unit: 'events/s',
    });
    const ratio = libRate / rawRate;
    // The median is the figure; the best rounds show the same ratio without the machine's weather.
    console.log(`[eventlog] ${c.label}: best-round ratio ${(t.raw.best / t.lib.best).toFixed(3)}`);
    record({
      section: 'eventlog',
      metric: `parse + replay + checkReplay, ${c.label} (${n} events, ${c.bytes.length} bytes)`,
      value: libRate,
      unit: 'events/s',
      baseline: { metric: `raw ${banks} hashing`, value: rawRate },
      ratio,
      target: '≥ 0.5',
      pass: ratio >= 0.5,
    });
  }
}
