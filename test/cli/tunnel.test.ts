// `serve` in the VM and `tunnel` on the user's side, end to end on loopback with an echo server as
// the forwarded service (standing in for sshd; sshd.test.ts puts a real OpenSSH server there).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { type ServeHandle, startServe } from '../../src/cli/serve.js';
import { startTunnel, type TunnelHandle } from '../../src/cli/tunnel.js';
import { AttestationError } from '../../src/errors.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { closeServer, echoServer, leakCheck, port, readBytes } from '../helpers/edges.js';

let dir: string;
let goodPolicy: string;
let badPolicy: string;
const OTHER = 'ab'.repeat(48);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ac-tunnel-'));
  goodPolicy = join(dir, 'good.json');
  badPolicy = join(dir, 'bad.json');
  writeFileSync(goodPolicy, JSON.stringify({ snp: { measurements: [simulated.defaults.snpMeasurement] } }));
  writeFileSync(badPolicy, JSON.stringify({ snp: { measurements: [OTHER] } }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sink(): { io: { out: (t: string) => void; err: (t: string) => void }; text: () => string } {
  let text = '';
  return { io: { out: (t) => (text += t), err: (t) => (text += t) }, text: () => text };
}

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function dial(p: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(p, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

function closedSocket(s: Socket): Promise<void> {
  return new Promise((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
}

let echo: Awaited<ReturnType<typeof echoServer>>;
let serve: ServeHandle | undefined;
let tunnel: TunnelHandle | undefined;
let leaks: ReturnType<typeof leakCheck>;
let serveOut: ReturnType<typeof sink>;
let tunnelOut: ReturnType<typeof sink>;

beforeEach(async () => {
  leaks = leakCheck();
  echo = await echoServer();
  serveOut = sink();
  tunnelOut = sink();
});

afterEach(async () => {
  await tunnel?.close();
  await serve?.close();
  tunnel = undefined;
  serve = undefined;
  await closeServer(echo.server);
  await leaks.assertNoLeaks(3000);
});

async function start(serveArgs: string[], tunnelArgs: string[]): Promise<void> {
  serve = await startServe(
    ['--listen', '127.0.0.1:0', '--forward', `127.0.0.1:${port(echo.server)}`, ...serveArgs],
    serveOut.io,
  );
  const target = serveArgs.includes('--websocket')
    ? `ws://127.0.0.1:${serve.address.port}${serveArgs[serveArgs.indexOf('--websocket') + 1]}`
    : `127.0.0.1:${serve.address.port}`;
  tunnel = await startTunnel(['--listen', '127.0.0.1:0', '--connect', target, ...tunnelArgs], tunnelOut.io);
}

describe('serve + tunnel', () => {
  it('forwards a local connection once the VM attested, and says so on both ends', async () => {
    await start(['--simulate', 'snp'], ['--policy', goodPolicy, '--simulated-roots']);
    const local = await dial(tunnel!.address.port);
    const back = readBytes(local, 11);
    local.write('hello there');
    expect((await back).toString()).toBe('hello there');
    local.end();
    await closedSocket(local);
    await waitFor(() => /#1 closed/.test(tunnelOut.text()) && /#1 closed/.test(serveOut.text()));
    expect(tunnelOut.text()).toMatch(
      new RegExp(
        `#1 accepted 127\\.0\\.0\\.1:\\d+ → 127\\.0\\.0\\.1:\\d+: sev-snp Milan measurement ${simulated.defaults.snpMeasurement} \\(SIMULATED`,
      ),
    );
    expect(tunnelOut.text()).toMatch(/#1 closed .*\(11 bytes out, 11 bytes back\)/);
    expect(serveOut.text()).toMatch(/#1 accepted: peer not attested → forwarding to 127\.0\.0\.1:\d+/);
    expect(echo.received()).toBe(11);
  });

  it('works with serve in a process of its own, as a user runs them (simulated roots agree across processes)', async () => {
    // The simulator's roots are embedded; were they built at run time, their randomised signatures
    // would differ between the two processes and the tunnel would refuse the chain.
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));
    const child = spawn(
      tsx,
      [
        'src/cli/bin.ts',
        'serve',
        '--listen',
        '127.0.0.1:0',
        '--forward',
        `127.0.0.1:${port(echo.server)}`,
        '--simulate',
        'snp',
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let childOut = '';
    child.stdout.on('data', (d: Buffer) => (childOut += d));
    child.stderr.on('data', (d: Buffer) => (childOut += d));
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    try {
      await waitFor(() => /serving attested-channel\/1 on 127\.0\.0\.1:\d+/.test(childOut), 60_000);
      const servePort = /on 127\.0\.0\.1:(\d+)/.exec(childOut)![1]!;
      tunnel = await startTunnel(
        [
          '--listen',
          '127.0.0.1:0',
          '--connect',
          `127.0.0.1:${servePort}`,
          '--policy',
          goodPolicy,
          '--simulated-roots',
        ],
        tunnelOut.io,
      );
      const local = await dial(tunnel.address.port);
      const back = readBytes(local, 5);
      local.write('hello');
      expect((await back).toString()).toBe('hello');
      local.end();
      await closedSocket(local);
      expect(tunnelOut.text()).toMatch(/#1 accepted .*sev-snp Milan/);
      await waitFor(() => /#1 closed/.test(childOut));
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  }, 90_000);

  it('closes the local connection and forwards nothing when the policy refuses the VM', async () => {
    await start(['--simulate', 'snp'], ['--policy', badPolicy, '--simulated-roots']);
    const local = await dial(tunnel!.address.port);
    local.on('error', () => {});
    local.write('secret that must never reach the VM');
    await closedSocket(local);
    await waitFor(() => /refused/.test(serveOut.text()));
    expect(tunnelOut.text()).toMatch(
      new RegExp(
        `#1 refused 127\\.0\\.0\\.1:\\d+ → .*: ERR_EVIDENCE_POLICY — .*measurement ${simulated.defaults.snpMeasurement}.*; local connection closed`,
      ),
    );
    // The refused client's address, from attestationError's details.remote.
    expect(serveOut.text()).toMatch(
      /#1 refused 127\.0\.0\.1:\d+: ERR_PEER_REJECTED \(peer said ERR_EVIDENCE_POLICY\)/,
    );
    expect(echo.connections()).toBe(0);
    expect(echo.received()).toBe(0);
  });

  it('refuses simulated evidence unless --simulated-roots is given', async () => {
    await start(['--simulate', 'snp'], ['--policy', goodPolicy]);
    const local = await dial(tunnel!.address.port);
    local.on('error', () => {});
    await closedSocket(local);
    await waitFor(() => /refused/.test(tunnelOut.text()));
    expect(tunnelOut.text()).toMatch(/#1 refused .*: ERR_EVIDENCE_CHAIN/);
    // The message says what to do.
    expect(tunnelOut.text()).toMatch(/the evidence is SIMULATED.*give --simulated-roots to accept it/);
    expect(echo.connections()).toBe(0);
  });

  it('tunnels through a WebSocket path (serve --websocket, tunnel --connect ws://)', async () => {
    await start(['--simulate', 'snp', '--websocket', '/ssh'], ['--policy', goodPolicy, '--simulated-roots']);
    expect(serveOut.text()).toMatch(/serving attested-channel\/1 on ws:\/\/127\.0\.0\.1:\d+\/ssh/);
    const local = await dial(tunnel!.address.port);
    const back = readBytes(local, 3);
    local.write('abc');
    expect((await back).toString()).toBe('abc');
    local.destroy();
    await waitFor(() => /#1 closed/.test(serveOut.text()));
    expect(tunnelOut.text()).toMatch(/#1 accepted .* → ws:\/\/127\.0\.0\.1:\d+\/ssh: sev-snp/);
  });

  it('with serve --policy, the tunnel must attest too (mutual), or it is refused', async () => {
    await start(
      ['--simulate', 'snp', '--policy', goodPolicy, '--simulated-roots'],
      ['--policy', goodPolicy, '--simulated-roots', '--simulate', 'snp'],
    );
    const local = await dial(tunnel!.address.port);
    const back = readBytes(local, 2);
    local.write('ok');
    expect((await back).toString()).toBe('ok');
    local.destroy();
    await waitFor(() => /#1 accepted/.test(serveOut.text()));
    expect(serveOut.text()).toMatch(
      new RegExp(`#1 accepted: sev-snp Milan measurement ${simulated.defaults.snpMeasurement}`),
    );
    // A second tunnel that cannot attest is refused by the VM; nothing is forwarded for it.
    const before = echo.connections();
    const out2 = sink();
    const plain = await startTunnel(
      [
        '--listen',
        '127.0.0.1:0',
        '--connect',
        `127.0.0.1:${serve!.address.port}`,
        '--policy',
        goodPolicy,
        '--simulated-roots',
      ],
      out2.io,
    );
    try {
      const s = await dial(plain.address.port);
      s.on('error', () => {});
      await closedSocket(s);
      await waitFor(() => /refused/.test(out2.text()));
      expect(out2.text()).toMatch(/#1 refused .*: ERR_(PEER_REJECTED|UNSUPPORTED_EVIDENCE)/);
      expect(echo.connections()).toBe(before);
    } finally {
      await plain.close();
    }
  });

  it('exits 2 with usage on bad arguments', async () => {
    const cases: string[][] = [
      ['serve'],
      ['serve', '--listen', '127.0.0.1:0', '--forward', '127.0.0.1:22'],
      ['serve', '--listen', 'nope', '--forward', '127.0.0.1:22', '--simulate', 'snp'],
      ['serve', '--listen', '127.0.0.1:0', '--forward', '127.0.0.1:0', '--simulate', 'snp'],
      ['serve', '--listen', '127.0.0.1:0', '--forward', '127.0.0.1:22', '--simulate', 'sgx'],
      [
        'serve',
        '--listen',
        '127.0.0.1:0',
        '--forward',
        '127.0.0.1:22',
        '--simulate',
        'snp',
        '--websocket',
        'x',
      ],
      ['serve', '--listen', '127.0.0.1:0', '--forward', '127.0.0.1:22', '--simulate', 'snp', '--bogus'],
      ['tunnel', '--listen', '127.0.0.1:0', '--connect', '127.0.0.1:1'],
      ['tunnel', '--listen', '127.0.0.1:0', '--policy', goodPolicy],
      ['tunnel', '--listen', '127.0.0.1:0', '--connect', 'http://x/', '--policy', goodPolicy],
      [
        'tunnel',
        '--listen',
        '127.0.0.1:0',
        '--connect',
        '127.0.0.1:1',
        '--policy',
        join(dir, 'missing.json'),
      ],
    ];
    writeFileSync(join(dir, 'invalid.json'), JSON.stringify({ snp: { measurements: ['xyz'] } }));
    cases.push([
      'tunnel',
      '--listen',
      '127.0.0.1:0',
      '--connect',
      '127.0.0.1:1',
      '--policy',
      join(dir, 'invalid.json'),
    ]);
    for (const args of cases) {
      const out = sink();
      expect(await main(args, out.io), args.join(' ')).toBe(2);
      expect(out.text(), args.join(' ')).toMatch(/usage: attested-channel (serve|tunnel)/);
    }
    await expect(startTunnel(['--listen', '127.0.0.1:0'], sink().io)).rejects.toBeInstanceOf(
      AttestationError,
    );
  });

  it('serve and tunnel refuse a policy that pins no workload unless --any-workload is given', async () => {
    const policies = {
      empty: {},
      commentOnly: { comment: 'strict defaults' },
      snpSection: { snp: { allowDebug: false } },
      tdxPlatformOnly: { tdx: { mrSeam: ['00'.repeat(48)] } },
      // Pins SNP but admits any TDX guest.
      oneUnpinned: { snp: { measurements: [simulated.defaults.snpMeasurement] }, tdx: {} },
    };
    for (const [name, policy] of Object.entries(policies)) {
      const file = join(dir, `unpinned-${name}.json`);
      writeFileSync(file, JSON.stringify(policy));
      const forward = ['--forward', '127.0.0.1:1', '--simulate', 'snp'];
      for (const args of [
        ['tunnel', '--listen', '127.0.0.1:0', '--connect', '127.0.0.1:1', '--policy', file],
        ['serve', '--listen', '127.0.0.1:0', ...forward, '--policy', file],
      ]) {
        const out = sink();
        expect(await main(args, out.io), `${name}: ${args[0]}`).toBe(2);
        expect(out.text()).toMatch(/pins no workload .*--any-workload/);
      }
    }
    // With --any-workload the tunnel starts, says so, and marks what it accepts.
    await start(
      ['--simulate', 'snp'],
      ['--policy', join(dir, 'unpinned-empty.json'), '--simulated-roots', '--any-workload'],
    );
    expect(tunnelOut.text()).toMatch(/ANY sev-snp or tdx or azure-sev-snp or azure-tdx workload is accepted/);
    const local = await dial(tunnel!.address.port);
    const back = readBytes(local, 2);
    local.write('ok');
    expect((await back).toString()).toBe('ok');
    local.destroy();
    await waitFor(() => /#1 accepted/.test(tunnelOut.text()));
    expect(tunnelOut.text()).toMatch(/#1 accepted .*\(workload NOT pinned by the policy\)/);
    // The simulated server has no CRLs to check against, and the operator is told so.
    expect(tunnelOut.text()).toMatch(/#1 accepted .*\(revocation NOT checked[:)]/);
    const out = sink();
    expect(
      await main(
        [
          'serve',
          '--listen',
          '127.0.0.1:0',
          '--forward',
          '127.0.0.1:1',
          '--simulate',
          'snp',
          '--any-workload',
        ],
        out.io,
      ),
    ).toBe(2);
    expect(out.text()).toMatch(/--any-workload only applies with --policy/);
  });

  it('a tunnel with an SNP policy refuses a genuine (simulated) TDX VM', async () => {
    await start(['--simulate', 'tdx'], ['--policy', goodPolicy, '--simulated-roots']);
    const local = await dial(tunnel!.address.port);
    local.on('error', () => {});
    await closedSocket(local);
    await waitFor(() => /#1 refused/.test(tunnelOut.text()));
    expect(tunnelOut.text()).toMatch(/#1 refused .*ERR_UNSUPPORTED_EVIDENCE/);
    expect(echo.connections()).toBe(0);
  });

  it('--help prints the usage and exits 0', async () => {
    for (const cmd of ['serve', 'tunnel']) {
      const out = sink();
      expect(await main([cmd, '--help'], out.io)).toBe(0);
      expect(out.text()).toContain(`usage: attested-channel ${cmd}`);
    }
  });
});
