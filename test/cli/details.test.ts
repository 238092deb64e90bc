// The command line as a user meets it: --version, complete --help texts, usage errors for repeated
// or misplaced options, serve --simulate naming what a policy must pin, and SIGTERM on serve
// letting open sessions finish (bounded), in a process of its own.
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { SERVE_OPTIONS, SERVE_USAGE, startServe } from '../../src/cli/serve.js';
import { startTunnel, TUNNEL_OPTIONS, TUNNEL_USAGE } from '../../src/cli/tunnel.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { closeServer, echoServer, outerTlsIdentity, port, readBytes } from '../helpers/edges.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSX = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));

function sink() {
  let text = '';
  return { io: { out: (t: string) => (text += t), err: (t: string) => (text += t) }, text: () => text };
}

async function waitFor(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

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

function dial(p: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(p, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

let dir: string;
let pinned: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ac-cli-details-'));
  pinned = join(dir, 'pinned.json');
  writeFileSync(pinned, JSON.stringify({ snp: { measurements: [simulated.defaults.snpMeasurement] } }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('attested-channel --version and --help', () => {
  it('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    const out = sink();
    expect(await main(['--version'], out.io)).toBe(0);
    expect(out.text()).toBe(`attested-channel ${pkg.version}\n`);
  });

  it('serve --help and tunnel --help describe every option they take', () => {
    for (const [usage, options] of [
      [SERVE_USAGE, SERVE_OPTIONS],
      [TUNNEL_USAGE, TUNNEL_OPTIONS],
    ] as const) {
      for (const name of Object.keys(options)) {
        // Listed on a line of its own, with a description after it.
        expect(usage, name).toMatch(new RegExp(`^ {2}--${name}\\b.*\\S+\\s+\\S+`, 'm'));
      }
    }
  });
});

describe('usage errors of serve and tunnel', () => {
  const tunnel = ['tunnel', '--listen', '127.0.0.1:0', '--policy'];
  const cases = (): Array<[string[], RegExp]> => [
    [
      [...tunnel, pinned, '--connect', '127.0.0.1:1', '--ca', pinned],
      /--ca applies to a wss:\/\/ --connect only/,
    ],
    [
      [...tunnel, pinned, '--connect', 'ws://127.0.0.1:1/', '--servername', 'x'],
      /--servername applies to a wss:/,
    ],
    [
      [...tunnel, pinned, '--connect', '127.0.0.1:1', '--header', 'A: b'],
      /--header applies to a ws:\/\/ or wss:/,
    ],
    [
      [...tunnel, pinned, '--connect', 'wss://127.0.0.1:1/', '--header', 'no colon'],
      /--header must be 'NAME: VALUE'/,
    ],
    [
      [...tunnel, pinned, '--connect', 'wss://127.0.0.1:1/', '--header', 'A: 1', '--header', 'a: 2'],
      /--header a given more than once/,
    ],
    [
      [...tunnel, pinned, '--connect', 'wss://127.0.0.1:1/', '--ca', join(dir, 'nope.pem')],
      /cannot read --ca/,
    ],
    [[...tunnel, pinned, '--connect', 'wss://127.0.0.1:1/', '--ca', pinned], /holds no PEM certificate/],
    [
      [...tunnel, pinned, '--connect', '127.0.0.1:1', '--listen', '127.0.0.1:0'],
      /--listen given more than once/,
    ],
    [[...tunnel, pinned, '--policy', pinned, '--connect', '127.0.0.1:1'], /--policy given more than once/],
    [
      [
        'serve',
        '--listen',
        '127.0.0.1:0',
        '--forward',
        '127.0.0.1:1',
        '--simulate',
        'snp',
        '--simulate',
        'tdx',
      ],
      /--simulate given more than once/,
    ],
    [
      ['serve', '--listen', '127.0.0.1:0', '--forward', '127.0.0.1:1', '--simulate', 'snp', '--grace', '-1'],
      /--grace/,
    ],
  ];

  it('exit 2, with the reason and the usage', async () => {
    for (const [args, re] of cases()) {
      const out = sink();
      expect(await main(args, out.io), args.join(' ')).toBe(2);
      expect(out.text(), args.join(' ')).toMatch(re);
      expect(out.text()).toMatch(/usage: attested-channel (serve|tunnel)/);
    }
  });

  it('the API refuses tls/headers it would otherwise ignore (ERR_INVALID_ARGUMENT)', async () => {
    const { attestedConnect } = await import('../../src/channel/connect.js');
    const { connectWebSocket } = await import('../../src/channel/websocket.js');
    const verify = { policy: {} };
    const ca = outerTlsIdentity().cert;
    await expect(attestedConnect({ host: '127.0.0.1', port: 1, verify, tls: { ca } })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      message: expect.stringMatching(/tls applies to a ws:\/\/ or wss:\/\/ url only/),
    });
    await expect(
      attestedConnect({ host: '127.0.0.1', port: 1, verify, headers: { authorization: 'x' } }),
    ).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      message: expect.stringMatching(/headers applies/),
    });
    const { duplexPair } = await import('../channel/helpers.js');
    const [a] = duplexPair();
    await expect(attestedConnect({ socket: a, verify, tls: { ca } })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
    a.destroy();
    await expect(connectWebSocket('ws://127.0.0.1:1/', { tls: { ca } })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      message: expect.stringMatching(/wss:\/\/ URL only/),
    });
    await expect(
      connectWebSocket('ws://127.0.0.1:1/', { headers: { a: 1 as unknown as string } }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });
});

describe('tunnel messages say what to do, on one line', () => {
  it('a TLS server that is not serve: OpenSSL reason only, and a hint; nothing listening: a hint', async () => {
    const { createServer: createTlsServer } = await import('node:tls');
    const id = outerTlsIdentity();
    const other = createTlsServer({ cert: id.cert, key: id.key, ALPNProtocols: ['h2'] }, (c) => c.end());
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    try {
      for (const [target, re] of [
        [
          `127.0.0.1:${port(other)}`,
          /ERR_TLS — transport: tlsv1 alert no application protocol \(SSL alert number 120\) \(the server at --connect does not speak attested-channel\/1 over TLS 1\.3/,
        ],
        [`127.0.0.1:${await freePort()}`, /ERR_CONNECTION_CLOSED .*\(nothing listens at --connect/],
      ] as const) {
        const out = sink();
        const tunnel = await startTunnel(
          ['--listen', '127.0.0.1:0', '--connect', target, '--policy', pinned],
          out.io,
        );
        try {
          const local = await dial(tunnel.address.port);
          local.on('error', () => {});
          await new Promise((r) => local.once('close', r));
          await waitFor(() => /#1 refused/.test(out.text()), 'the refusal');
        } finally {
          await tunnel.close();
        }
        const line = out
          .text()
          .split('\n')
          .find((l) => l.includes('#1 refused'))!;
        expect(line).toMatch(re);
        // No OpenSSL error-queue text: thread id, error code, source file and line.
        expect(line).not.toMatch(/error:[0-9A-F]{8}|\.c:\d+|[0-9A-F]{12,}:/i);
      }
    } finally {
      other.close();
    }
  });
});

describe('serve --simulate', () => {
  it('prints the measurement to pin and a policy.json that a tunnel accepts as is', async () => {
    const echo = await echoServer();
    const serveOut = sink();
    const serve = await startServe(
      ['--listen', '127.0.0.1:0', '--forward', `127.0.0.1:${port(echo.server)}`, '--simulate', 'snp'],
      serveOut.io,
    );
    try {
      const line = serveOut
        .text()
        .split('\n')
        .find((l) => l.includes('simulated measurement'))!;
      expect(line).toContain(`simulated measurement ${simulated.defaults.snpMeasurement}`);
      const policyText =
        /policy\.json that admits this VM only: (\{.*\}) \(with tunnel --simulated-roots\)/.exec(line)![1]!;
      const policy = join(dir, 'from-serve.json');
      writeFileSync(policy, policyText);
      const tunnelOut = sink();
      // No --any-workload: the printed policy pins the workload.
      const tunnel = await startTunnel(
        [
          '--listen',
          '127.0.0.1:0',
          '--connect',
          `127.0.0.1:${serve.address.port}`,
          '--policy',
          policy,
          '--simulated-roots',
        ],
        tunnelOut.io,
      );
      try {
        const local = await dial(tunnel.address.port);
        const back = readBytes(local, 2);
        local.write('hi');
        expect((await back).toString()).toBe('hi');
        local.destroy();
      } finally {
        await tunnel.close();
      }
    } finally {
      await serve.close();
      await closeServer(echo.server);
    }
    // README's sample policy.json for the tunnel is this printed one.
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const sample = /`policy\.json` says what the VM must be[\s\S]*?```json\n([\s\S]*?)```/.exec(readme)![1]!;
    expect(JSON.parse(sample)).toEqual({ snp: { measurements: [simulated.defaults.snpMeasurement] } });
    const tdxOut = sink();
    const tdx = await startServe(
      ['--listen', '127.0.0.1:0', '--forward', '127.0.0.1:1', '--simulate', 'tdx'],
      tdxOut.io,
    );
    await tdx.close();
    expect(tdxOut.text()).toContain(
      `simulated MRTD ${simulated.defaults.tdxMrTd}; a tunnel's policy.json that admits this VM only: {"tdx":{"mrTd":["${simulated.defaults.tdxMrTd}"]}}`,
    );
  });
});

describe('SIGTERM on serve, in this process', () => {
  it('a second signal closes the open sessions at once, whatever --grace is left', async () => {
    const echo = await echoServer();
    const out = sink();
    const done = main(
      [
        'serve',
        '--listen',
        '127.0.0.1:0',
        '--forward',
        `127.0.0.1:${port(echo.server)}`,
        '--simulate',
        'snp',
        '--grace',
        '600000',
      ],
      out.io,
    );
    let tunnel: Awaited<ReturnType<typeof startTunnel>> | undefined;
    try {
      await waitFor(
        () => /serving attested-channel\/1 on 127\.0\.0\.1:\d+/.test(out.text()),
        'serve to start',
      );
      const servePort = Number(/on 127\.0\.0\.1:(\d+)/.exec(out.text())![1]);
      tunnel = await startTunnel(
        [
          '--listen',
          '127.0.0.1:0',
          '--connect',
          `127.0.0.1:${servePort}`,
          '--policy',
          pinned,
          '--simulated-roots',
        ],
        sink().io,
      );
      const local = await dial(tunnel.address.port);
      local.on('error', () => {});
      const back = readBytes(local, 2);
      local.write('hi');
      expect((await back).toString()).toBe('hi');
      const closed = new Promise<void>((r) => local.once('close', () => r()));
      process.emit('SIGTERM');
      await waitFor(
        () => /stopping: no new connections; 1 open session may finish within 600000 ms/.test(out.text()),
        'the drain',
      );
      const at = Date.now();
      process.emit('SIGTERM');
      expect(await done).toBe(0);
      await closed;
      expect(Date.now() - at).toBeLessThan(5_000);
      expect(out.text()).not.toMatch(/grace period over/);
      expect(out.text()).toMatch(/ stopped\n/);
    } finally {
      await tunnel?.close();
      await closeServer(echo.server);
    }
  }, 60_000);
});

describe('SIGTERM on serve (a process of its own)', () => {
  it('stops accepting, lets an open session carry on, then closes what is left after --grace', async () => {
    const echo = await echoServer();
    const child = spawn(
      TSX,
      [
        'src/cli/bin.ts',
        'serve',
        '--listen',
        '127.0.0.1:0',
        '--forward',
        `127.0.0.1:${port(echo.server)}`,
        '--simulate',
        'snp',
        '--grace',
        '1500',
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    const tunnelOut = sink();
    let tunnel: Awaited<ReturnType<typeof startTunnel>> | undefined;
    try {
      await waitFor(
        () => /serving attested-channel\/1 on 127\.0\.0\.1:\d+/.test(out),
        'serve to start',
        60_000,
      );
      const servePort = Number(/on 127\.0\.0\.1:(\d+)/.exec(out)![1]);
      tunnel = await startTunnel(
        [
          '--listen',
          '127.0.0.1:0',
          '--connect',
          `127.0.0.1:${servePort}`,
          '--policy',
          pinned,
          '--simulated-roots',
        ],
        tunnelOut.io,
      );
      // Two sessions open before the signal.
      const first = await dial(tunnel.address.port);
      const second = await dial(tunnel.address.port);
      for (const s of [first, second]) {
        s.on('error', () => {});
        const back = readBytes(s, 3);
        s.write('one');
        expect((await back).toString()).toBe('one');
      }
      const signalledAt = Date.now();
      child.kill('SIGTERM');
      await waitFor(() => /stopping: no new connections; 2 open sessions/.test(out), 'the drain message');
      // No new connection is taken...
      const refused = await new Promise<string>((resolve) => {
        const s = connect(servePort, '127.0.0.1', () => {
          s.destroy();
          resolve('connected');
        });
        s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      });
      expect(refused).toBe('ECONNREFUSED');
      // ...while the open sessions still carry bytes both ways.
      const back = readBytes(first, 5);
      first.write('after');
      expect((await back).toString()).toBe('after');
      first.end();
      // The second stays open: the grace period bounds it, then serve closes it and exits 0.
      const secondClosed = new Promise<void>((r) => second.once('close', () => r()));
      expect(await exited).toBe(0);
      await secondClosed;
      const took = Date.now() - signalledAt;
      expect(took).toBeGreaterThanOrEqual(1400);
      expect(took).toBeLessThan(10_000);
      expect(out).toMatch(/grace period over: closing 1 open session\n/);
      // (Numbered in the order their attestation finished.)
      expect(out).toMatch(/#[12] closed \(8 bytes in, 8 bytes out\)/);
      expect(out).toMatch(/#[12] closed \(3 bytes in, 3 bytes out\)/);
      expect(out).toMatch(/ stopped\n/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await tunnel?.close();
      await closeServer(echo.server);
    }
  }, 90_000);
});
