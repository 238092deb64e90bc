/**
 * `npm run leaks`: 10 000 failed handshakes of each kind (fuzz/failed-handshakes.ts) against one
 * server, then what is left: sockets, timers, listeners, pending channels, and memory after GC.
 * Exits 1 when anything is left behind, a kind was refused with another code than intended, or
 * the heap grew by more than --max-heap-mb (default 16).
 *
 *   npm run leaks                   # 10 000 of each (node --expose-gc)
 *   npm run leaks -- --count 1000
 */
import { parseArgs } from 'node:util';
import {
  attempts,
  EXPECTED_CODE,
  FAILURE_KINDS,
  type Snapshot,
  settle,
  snapshot,
  startServer,
} from './failed-handshakes.js';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '10000' },
    parallel: { type: 'string', default: '64' },
    // Long enough for a TLS handshake on a loaded machine: the stalls run many at once instead.
    'timeout-ms': { type: 'string', default: '2000' },
    'max-heap-mb': { type: 'string', default: '16' },
  },
});
const count = Number(values.count);
const parallel = Number(values.parallel);
const maxHeapMb = Number(values['max-heap-mb']);
if (!(globalThis as { gc?: unknown }).gc)
  console.log('(run with node --expose-gc for memory figures after GC)');

const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
const run = await startServer(Number(values['timeout-ms']));
// A short warm-up, so the baseline includes what the first connections allocate once (JIT, pools).
for (const kind of FAILURE_KINDS) await attempts(run.port, kind, 50, 10);
const base = await settle(run.server, await snapshot(run.server));
run.codes.clear();
const problems: string[] = [];
const show = (label: string, s: Snapshot) =>
  console.log(
    `${label.padEnd(14)} rss ${mb(s.rss).padStart(10)}  heap ${mb(s.heapUsed).padStart(10)}  pending ${s.pending}  resources ${JSON.stringify(s.resources)}  listeners ${JSON.stringify(s.listeners)}`,
  );
show('baseline', base);

for (const kind of FAILURE_KINDS) {
  const t0 = performance.now();
  await attempts(run.port, kind, count, kind === 'stall' ? parallel * 8 : parallel);
  const after = await settle(run.server, base);
  const seconds = (performance.now() - t0) / 1000;
  const refused = run.codes.get(EXPECTED_CODE[kind]) ?? 0;
  show(`after ${kind}`, after);
  console.log(
    `  ${count} × ${kind} in ${seconds.toFixed(1)} s: ${refused} refused with ${EXPECTED_CODE[kind]}, codes ${JSON.stringify(Object.fromEntries(run.codes))}`,
  );
  // A handshake that outlasts the server's timeout on a loaded machine is refused as a stall: that
  // is a slow attempt, not a leak. Any other code means the attempt did not test what it says.
  const slow = kind === 'stall' ? 0 : (run.codes.get('ERR_ATTESTATION_TIMEOUT') ?? 0);
  if (slow > 0) console.log(`  (${slow} of them timed out instead: a loaded machine)`);
  if (refused + slow !== count)
    problems.push(`${kind}: ${refused} of ${count} refused with ${EXPECTED_CODE[kind]}`);
  run.codes.clear();
  if (after.pending !== 0) problems.push(`${kind}: ${after.pending} channels still pending`);
  for (const k of ['TCPSocketWrap', 'TLSWrap', 'Timeout', 'Immediate'])
    if ((after.resources[k] ?? 0) > (base.resources[k] ?? 0))
      problems.push(`${kind}: ${k} ${base.resources[k] ?? 0} → ${after.resources[k]}`);
  if (JSON.stringify(after.listeners) !== JSON.stringify(base.listeners))
    problems.push(
      `${kind}: listeners ${JSON.stringify(base.listeners)} → ${JSON.stringify(after.listeners)}`,
    );
  const grown = after.heapUsed - base.heapUsed;
  if (grown > maxHeapMb * 2 ** 20) problems.push(`${kind}: heap grew by ${mb(grown)}`);
}
await run.close();
console.log(problems.length === 0 ? '\nno leaks' : `\nLEAKS:\n  ${problems.join('\n  ')}`);
process.exitCode = problems.length === 0 ? 0 : 1;
