// A real OpenSSH server behind `serve`, reached with a real `ssh` through `tunnel`: the use the
// CLI is for. sshd runs as the current user on 127.0.0.1 with its own host key, authorized key
// and config in a temp folder; its DEBUG log counts the TCP connections it accepted, which is how
// the refusal case shows that sshd never saw the refused client.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ServeHandle, startServe } from '../../src/cli/serve.js';
import { startTunnel, type TunnelHandle } from '../../src/cli/tunnel.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { requireTool } from '../helpers/system-tools.js';

const sshd = requireTool('sshd', 'openssh-server');
const ssh = requireTool('ssh', 'openssh-client');
const sshKeygen = requireTool('ssh-keygen', 'openssh-client');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function sink() {
  let text = '';
  return { io: { out: (t: string) => (text += t), err: (t: string) => (text += t) }, text: () => text };
}

async function waitFor(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs `ssh … true`; resolves with its exit status and stderr. */
function runSsh(dir: string, port: number): Promise<{ code: number | null; stderr: string }> {
  const { SSH_AUTH_SOCK: _agent, ...env } = process.env;
  return new Promise((resolve) => {
    const child = spawn(
      ssh!,
      [
        '-F',
        'none',
        '-i',
        join(dir, 'client_key'),
        '-o',
        'IdentitiesOnly=yes',
        '-o',
        'BatchMode=yes',
        '-o',
        'StrictHostKeyChecking=yes',
        '-o',
        `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
        '-o',
        'ConnectTimeout=10',
        '-p',
        String(port),
        `${userInfo().username}@127.0.0.1`,
        'true',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], env },
    );
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe.runIf(sshd && ssh && sshKeygen)('serve + tunnel in front of a real sshd', () => {
  let dir: string;
  let sshdPort: number;
  let daemon: ChildProcess;
  let daemonLog = '';
  let serve: ServeHandle | undefined;
  let tunnel: TunnelHandle | undefined;
  /** TCP connections sshd accepted so far (its DEBUG log line for each). */
  const connections = () => (daemonLog.match(/Connection from 127\.0\.0\.1 port \d+/g) ?? []).length;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ac-sshd-'));
    const keygen = (file: string) =>
      execFileSync(sshKeygen!, ['-q', '-t', 'ed25519', '-N', '', '-C', 'attested-channel test', '-f', file]);
    keygen(join(dir, 'host_key'));
    keygen(join(dir, 'client_key'));
    writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')));
    sshdPort = await freePort();
    writeFileSync(
      join(dir, 'sshd_config'),
      [
        `ListenAddress 127.0.0.1:${sshdPort}`,
        `HostKey ${join(dir, 'host_key')}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'AuthenticationMethods publickey',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        'UsePAM no',
        // The temp folder is world-readable on some systems; the key files are the test's own.
        'StrictModes no',
        'LogLevel DEBUG1',
        '',
      ].join('\n'),
    );
    // As root, sshd insists on its privilege-separation folder, which the Debian package creates
    // only when the service is started by the init system (not in containers or CI).
    if (process.getuid?.() === 0 && !existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 });
    daemon = spawn(sshd!, ['-D', '-e', '-f', join(dir, 'sshd_config')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    daemon.stderr!.on('data', (d: Buffer) => (daemonLog += d));
    await waitFor(
      () => /Server listening on 127\.0\.0\.1 port \d+/.test(daemonLog) || daemon.exitCode !== null,
      'sshd to listen',
    );
    if (daemon.exitCode !== null) throw new Error(`sshd exited: ${daemonLog}`);
    const hostKey = readFileSync(join(dir, 'host_key.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    // known_hosts is written per tunnel port in each test: the client must reach exactly this sshd.
    writeFileSync(join(dir, 'host_key_line'), hostKey);
    writeFileSync(
      join(dir, 'good.json'),
      JSON.stringify({ snp: { measurements: [simulated.defaults.snpMeasurement] } }),
    );
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ snp: { measurements: ['ab'.repeat(48)] } }));
  });

  afterEach(async () => {
    await tunnel?.close();
    await serve?.close();
    tunnel = undefined;
    serve = undefined;
  });

  afterAll(async () => {
    if (daemon && daemon.exitCode === null) {
      const gone = new Promise((r) => daemon.once('close', r));
      daemon.kill('SIGTERM');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(policy: 'good.json' | 'bad.json') {
    const serveOut = sink();
    const tunnelOut = sink();
    serve = await startServe(
      ['--listen', '127.0.0.1:0', '--forward', `127.0.0.1:${sshdPort}`, '--simulate', 'snp'],
      serveOut.io,
    );
    tunnel = await startTunnel(
      [
        '--listen',
        '127.0.0.1:0',
        '--connect',
        `127.0.0.1:${serve.address.port}`,
        '--policy',
        join(dir, policy),
        '--simulated-roots',
      ],
      tunnelOut.io,
    );
    const hostKey = readFileSync(join(dir, 'host_key_line'), 'utf8');
    writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${tunnel.address.port} ${hostKey}\n`);
    return { serveOut, tunnelOut, port: tunnel.address.port };
  }

  it('ssh … true succeeds through the tunnel to the attested VM, and sshd saw that one connection', async () => {
    const before = connections();
    const { tunnelOut, port } = await start('good.json');
    const r = await runSsh(dir, port);
    expect(r.stderr).not.toMatch(/Host key verification failed/);
    expect(r.code).toBe(0);
    expect(connections()).toBe(before + 1);
    expect(tunnelOut.text()).toMatch(/#1 accepted .*sev-snp Milan measurement/);
  });

  it('with a policy the VM does not satisfy, ssh fails and sshd never sees a connection', async () => {
    const before = connections();
    const { serveOut, tunnelOut, port } = await start('bad.json');
    const r = await runSsh(dir, port);
    expect(r.code).not.toBe(0);
    await waitFor(() => /ERR_EVIDENCE_POLICY/.test(tunnelOut.text()), 'the tunnel to log the refusal');
    // Give a late forward the time to show up in sshd's log before concluding it did not happen.
    await new Promise((r) => setTimeout(r, 500));
    expect(connections()).toBe(before);
    expect(serveOut.text()).not.toMatch(/#\d+ accepted/);
    expect(serveOut.text()).toMatch(/#1 refused 127\.0\.0\.1:\d+: ERR_PEER_REJECTED/);
    // The counter is live: the same sshd still answers a good tunnel.
    await tunnel!.close();
    await serve!.close();
    const good = await start('good.json');
    expect((await runSsh(dir, good.port)).code).toBe(0);
    expect(connections()).toBe(before + 1);
  });
});
