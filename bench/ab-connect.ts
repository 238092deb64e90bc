/**
 * Two builds of the package, one connect each in turn, in one process: which is cheaper per
 * one-way (or mutual) attested connect, to within about 1 %. Not a section of `npm run bench`: a
 * tool for telling a regression from the machine's drift, which moves whole bench runs by 10 % and
 * more on a shared 2-vCPU VM while both builds here see the same machine moment.
 *
 *   npx tsx bench/ab-connect.ts OLD_DIST NEW_DIST [pairs] [oneway|mutual]
 *
 * OLD_DIST and NEW_DIST are `dist/` folders (e.g. `git worktree add ../old <commit>` and build it
 * there). A folder may be given as SERVER_DIST,CLIENT_DIST to pair one build's server with the
 * other's client and see which half a difference lives in. Each pair swaps the order; the first 300
 * pairs warm up. Prints the median wall time of a connect (until the client holds an open channel)
 * and the mean CPU of connect + close (both ends), for each build and as NEW / OLD. The same build
 * against itself gives 0.99–1.01.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

type Connect = () => Promise<[wallMs: number, cpuMs: number]>;

const [oldDist, newDist] = process.argv.slice(2, 4);
if (!oldDist || !newDist) {
  process.stderr.write('usage: npx tsx bench/ab-connect.ts OLD_DIST NEW_DIST [pairs] [oneway|mutual]\n');
  process.exit(2);
}
const PAIRS = Number(process.argv[4] ?? 2000);
const MUTUAL = process.argv[5] === 'mutual';

// biome-ignore lint/suspicious/noExplicitAny: a module of either build, typed by neither
async function load(dir: string, file: string): Promise<Record<string, any>> {
  return import(pathToFileURL(resolve(dir, file)).href);
}

async function setup(spec: string): Promise<Connect> {
  const [serverDir, clientDir = serverDir] = spec.split(',') as [string, string?];
  const { simulated } = await load(serverDir, 'evidence/providers/simulated.js');
  const { createTlsIdentity } = await load(serverDir, 'channel/identity.js');
  const { createAttestedServer } = await load(serverDir, 'channel/server.js');
  const { attestedConnect } = await load(clientDir!, 'channel/connect.js');
  const verify = {
    policy: { snp: { measurements: [simulated.defaults.snpMeasurement] } },
    trustAnchors: simulated.trustAnchors(),
  };
  const server = createAttestedServer(
    { evidence: simulated.snp(), identity: createTlsIdentity(), ...(MUTUAL ? { verify } : {}) },
    (c: { resume(): void }) => c.resume(),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port as number;
  const mutual = MUTUAL ? { evidence: simulated.snp(), identity: createTlsIdentity() } : {};
  // The server end of each connection closes before the next connect starts.
  const closed: Array<() => void> = [];
  server.on('channel', (c: { once(e: string, f: () => void): void }) =>
    c.once('close', () => closed.shift()?.()),
  );
  return async () => {
    const serverClosed = new Promise<void>((r) => closed.push(r));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const c = await attestedConnect({ host: '127.0.0.1', port, verify, ...mutual });
    const wall = performance.now() - t0;
    c.destroy();
    await serverClosed;
    const cpu = process.cpuUsage(cpu0);
    return [wall, (cpu.user + cpu.system) / 1000];
  };
}

const a = await setup(oldDist);
const b = await setup(newDist);
for (let i = 0; i < 300; i++) {
  await a();
  await b();
}
const wall: [number[], number[]] = [[], []];
const cpu: [number[], number[]] = [[], []];
for (let i = 0; i < PAIRS; i++) {
  const order = i % 2 === 0 ? ([0, 1] as const) : ([1, 0] as const);
  for (const side of order) {
    const [w, c] = await (side === 0 ? a : b)();
    wall[side].push(w);
    cpu[side].push(c);
  }
}
const median = (x: number[]) => [...x].sort((p, q) => p - q)[x.length >> 1]!;
const mean = (x: number[]) => x.reduce((p, q) => p + q, 0) / x.length;
const [wa, wb] = [median(wall[0]), median(wall[1])];
const [ca, cb] = [mean(cpu[0]), mean(cpu[1])];
console.log(
  `${MUTUAL ? 'mutual' : 'one-way'} connect, ${PAIRS} pairs: wall median ${wa.toFixed(3)} / ${wb.toFixed(3)} ms ` +
    `(new/old ${(wb / wa).toFixed(3)}); CPU of connect + close ${ca.toFixed(3)} / ${cb.toFixed(3)} ms ` +
    `(new/old ${(cb / ca).toFixed(3)})`,
);
process.exit(0);
