/**
 * ssh bulk transfer through the CLI: `head -c 200M /dev/zero | ssh … 'cat > /dev/null'` against a
 * real sshd on 127.0.0.1, (a) directly, (b) through two hops of plain node:tls relays written here
 * (a local TCP listener that relays over TLS 1.3 to a TLS server that relays to sshd: what `tunnel`
 * and `serve` are without attestation), and (c) through `serve` + `tunnel` of this library
 * (simulated SEV-SNP). The target compares (c) with (b); both relays run in this process, as serve
 * and tunnel do, and the three are interleaved round by round.
 *
 * BENCH_TUNNEL_MB (default 200) and BENCH_TUNNEL_ROUNDS (default 5) shrink the run. Without
 * sshd, ssh or ssh-keygen the section says so and measures nothing.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer as createNetServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls';
import { createTlsIdentity } from '../dist/channel/identity.js';
import { startServe } from '../dist/cli/serve.js';
import { startTunnel } from '../dist/cli/tunnel.js';
import { simulated } from '../dist/evidence/providers/simulated.js';
import { interleaved, record } from './harness.js';

const SECTION = 'tunnel';
const MB = Number(process.env['BENCH_TUNNEL_MB'] ?? 200);
const ROUNDS = Number(process.env['BENCH_TUNNEL_ROUNDS'] ?? 5);
const progress = (what: string) => process.stderr.write(`  [tunnel] ${what}\n`);

/** sshd lives in sbin, which is not on every PATH (as test/helpers/system-tools.ts looks). */
function findTool(binary: string): string | undefined {
  const dirs = [
    ...(process.env['PATH'] ?? '').split(delimiter).filter(Boolean),
    '/usr/local/sbin',
    '/usr/sbin',
    '/sbin',
  ];
  for (const dir of dirs) {
    try {
      accessSync(join(dir, binary), constants.X_OK);
      return join(dir, binary);
    } catch {
      // not here
    }
  }
  return undefined;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
  });
}

/** Both directions piped, each end closed with the other (a relay's whole job). */
function relay(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
  a.on('close', () => b.destroy());
  b.on('close', () => a.destroy());
}

/** Starts sshd on a free port with its own host key, authorized key and config in `dir`. */
async function startSshd(
  sshd: string,
  sshKeygen: string,
  dir: string,
): Promise<{ daemon: ChildProcess; port: number }> {
  const keygen = (file: string) =>
    execFileSync(sshKeygen, ['-q', '-t', 'ed25519', '-N', '', '-C', 'attested-channel bench', '-f', file]);
  keygen(join(dir, 'host_key'));
  keygen(join(dir, 'client_key'));
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')));
  const probe = createNetServer();
  const port = await listen(probe);
  await new Promise((r) => probe.close(r));
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${join(dir, 'host_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'AuthenticationMethods publickey',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'UsePAM no',
      'StrictModes no',
      '',
    ].join('\n'),
  );
  // As root, sshd wants its privilege-separation folder (see test/cli/sshd.test.ts).
  if (process.getuid?.() === 0 && !existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 });
  const daemon = spawn(sshd, ['-D', '-e', '-f', join(dir, 'sshd_config')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  daemon.stderr!.on('data', (d: Buffer) => {
    log += d;
  });
  const deadline = Date.now() + 15_000;
  while (!/Server listening on 127\.0\.0\.1 port \d+/.test(log)) {
    if (daemon.exitCode !== null || Date.now() > deadline) throw new Error(`sshd did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const hostKey = readFileSync(join(dir, 'host_key.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
  // One alias for every port, so one known_hosts line pins this sshd's key behind any relay.
  writeFileSync(join(dir, 'known_hosts'), `bench-sshd ${hostKey}\n`);
  return { daemon, port };
}

/** `head -c MB /dev/zero | ssh -p port … 'cat > /dev/null'`; resolves when ssh exits 0. */
function sshTransfer(ssh: string, dir: string, port: number): Promise<void> {
  const { SSH_AUTH_SOCK: _agent, ...env } = process.env;
  const args = [
    '-F',
    'none',
    '-i',
    join(dir, 'client_key'),
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'HostKeyAlias=bench-sshd',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
    '-p',
    String(port),
    `${userInfo().username}@127.0.0.1`,
    'cat > /dev/null',
  ];
  const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', `head -c ${MB}M /dev/zero | '${ssh}' ${quoted}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env,
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d;
    });
    child.once('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`ssh exited ${code}: ${stderr}`)),
    );
  });
}

export async function run(): Promise<void> {
  const sshd = findTool('sshd');
  const ssh = findTool('ssh');
  const sshKeygen = findTool('ssh-keygen');
  if (!sshd || !ssh || !sshKeygen) {
    console.log(
      '[tunnel] skipped: sshd, ssh and ssh-keygen are needed (apt-get install -y openssh-server openssh-client)',
    );
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'bench-tunnel-'));
  const { daemon, port: sshdPort } = await startSshd(sshd, sshKeygen, dir);
  const closers: Array<() => Promise<unknown>> = [];
  try {
    // (b) Plain relays: TLS 1.3 with the same kind of P-256 identity the channel uses.
    const identity = createTlsIdentity();
    // Socket options as serve and tunnel have them: TLS hops without Nagle (server.ts, connect.ts),
    // the local and the sshd-side TCP connections with the defaults.
    const far = createTlsServer(
      {
        key: identity.keyPem,
        cert: identity.certPem,
        minVersion: 'TLSv1.3',
        maxVersion: 'TLSv1.3',
        noDelay: true,
      },
      (tls) => {
        const upstream = netConnect({ host: '127.0.0.1', port: sshdPort });
        relay(tls, upstream);
      },
    );
    const farPort = await listen(far);
    const near = createNetServer((local) => {
      const tls = tlsConnect({
        host: '127.0.0.1',
        port: farPort,
        rejectUnauthorized: false,
        ...{ noDelay: true },
      });
      relay(local, tls);
    });
    const nearPort = await listen(near);
    closers.push(
      () => new Promise((r) => far.close(r)),
      () => new Promise((r) => near.close(r)),
    );

    // (c) serve + tunnel, simulated SEV-SNP, the tunnel's policy pinning the simulated measurement.
    const quiet = { out: () => {}, err: () => {} };
    const serve = await startServe(
      ['--listen', '127.0.0.1:0', '--forward', `127.0.0.1:${sshdPort}`, '--simulate', 'snp'],
      quiet,
    );
    writeFileSync(
      join(dir, 'policy.json'),
      JSON.stringify({ snp: { measurements: [simulated.defaults.snpMeasurement] } }),
    );
    const tunnel = await startTunnel(
      [
        '--listen',
        '127.0.0.1:0',
        '--connect',
        `127.0.0.1:${serve.address.port}`,
        '--policy',
        join(dir, 'policy.json'),
        '--simulated-roots',
      ],
      quiet,
    );
    closers.push(
      () => tunnel.close(),
      () => serve.close(),
    );

    progress(`${ROUNDS} rounds of ${MB} MB each: direct, plain TLS relays, serve + tunnel, interleaved`);
    const t = await interleaved(
      {
        direct: () => sshTransfer(ssh, dir, sshdPort),
        relays: () => sshTransfer(ssh, dir, nearPort),
        tunnel: () => sshTransfer(ssh, dir, tunnel.address.port),
      },
      ROUNDS,
    );
    const mbs = (ms: number) => MB / (ms / 1000);
    record({
      section: SECTION,
      metric: `ssh ${MB} MB direct to sshd (best round)`,
      value: mbs(t.direct.best),
      unit: 'MB/s',
    });
    record({
      section: SECTION,
      metric: `ssh ${MB} MB through serve + tunnel (best round)`,
      value: mbs(t.tunnel.best),
      unit: 'MB/s',
      baseline: { metric: 'two plain node:tls relay hops, best round', value: mbs(t.relays.best) },
      ratio: t.relays.best / t.tunnel.best,
      target: '≥ 0.9',
      pass: t.relays.best / t.tunnel.best >= 0.9,
    });
    record({
      section: SECTION,
      metric: `ssh ${MB} MB through serve + tunnel (median round)`,
      value: mbs(t.tunnel.median),
      unit: 'MB/s',
      baseline: { metric: 'two plain node:tls relay hops, median round', value: mbs(t.relays.median) },
      ratio: t.relays.median / t.tunnel.median,
    });
    record({
      section: SECTION,
      metric: `ssh ${MB} MB through serve + tunnel against direct (median round)`,
      value: mbs(t.tunnel.median),
      unit: 'MB/s',
      baseline: { metric: 'direct, median round', value: mbs(t.direct.median) },
      ratio: t.direct.median / t.tunnel.median,
    });
  } finally {
    for (const close of closers.reverse()) await close();
    const gone = new Promise((r) => daemon.once('close', r));
    daemon.kill('SIGTERM');
    await gone;
    rmSync(dir, { recursive: true, force: true });
  }
}
