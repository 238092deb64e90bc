// `tunnel` to `serve --websocket` through a real nginx that terminates HTTPS with a self-signed
// certificate (for the name proxy.test only) and demands a bearer token: --ca, --servername and
// --header are what it takes, each refused without, and the attested channel inside is unaffected.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ServeHandle, startServe } from '../../src/cli/serve.js';
import { startTunnel, type TunnelHandle } from '../../src/cli/tunnel.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { closeServer, echoServer, outerTlsIdentity, port, readBytes } from '../helpers/edges.js';
import { requireTool } from '../helpers/system-tools.js';

const nginx = requireTool('nginx', 'nginx');
const TOKEN = 'Bearer s3cret-for-the-proxy';

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

async function waitFor(cond: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function canConnect(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(p, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function dial(p: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(p, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

describe.runIf(nginx)('tunnel through a real nginx terminating HTTPS (self-signed certificate)', () => {
  let dir: string;
  let policy: string;
  let caFile: string;
  let echo: Awaited<ReturnType<typeof echoServer>>;
  let serve: ServeHandle;
  let proxy: ChildProcess;
  let proxyPort: number;
  let tunnel: TunnelHandle | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ac-nginx-'));
    policy = join(dir, 'policy.json');
    writeFileSync(policy, JSON.stringify({ snp: { measurements: [simulated.defaults.snpMeasurement] } }));
    // The certificate names proxy.test only: reached as 127.0.0.1, the name must come from --servername.
    const outer = outerTlsIdentity('proxy.test', false);
    caFile = join(dir, 'proxy-ca.pem');
    writeFileSync(caFile, outer.cert);
    writeFileSync(join(dir, 'key.pem'), outer.key, { mode: 0o600 });
    echo = await echoServer();
    serve = await startServe(
      [
        '--listen',
        '127.0.0.1:0',
        '--forward',
        `127.0.0.1:${port(echo.server)}`,
        '--simulate',
        'snp',
        '--websocket',
        '/attested',
      ],
      sink().io,
    );
    proxyPort = await freePort();
    mkdirSync(join(dir, 'tmp'));
    const conf = join(dir, 'nginx.conf');
    writeFileSync(
      conf,
      `# one process, in the foreground, every path in this folder (no root needed)
master_process off;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} info;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'tmp')};
  proxy_temp_path ${join(dir, 'tmp')};
  fastcgi_temp_path ${join(dir, 'tmp')};
  uwsgi_temp_path ${join(dir, 'tmp')};
  scgi_temp_path ${join(dir, 'tmp')};
  server {
    listen 127.0.0.1:${proxyPort} ssl;
    server_name proxy.test;
    ssl_certificate ${caFile};
    ssl_certificate_key ${join(dir, 'key.pem')};
    location /vm {
      if ($http_authorization != "${TOKEN}") { return 401; }
      proxy_pass http://127.0.0.1:${serve.address.port}/attested;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
    }
  }
}
`,
    );
    proxy = spawn(nginx!, ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    proxy.stderr!.on('data', (d: Buffer) => (stderr += d));
    await waitFor(async () => {
      if (proxy.exitCode !== null)
        throw new Error(`nginx exited: ${stderr}${readFileSync(join(dir, 'error.log'), 'utf8')}`);
      return canConnect(proxyPort);
    }, 'nginx to listen');
  }, 60_000);

  afterEach(async () => {
    await tunnel?.close();
    tunnel = undefined;
  });

  afterAll(async () => {
    if (proxy && proxy.exitCode === null) {
      const gone = new Promise((r) => proxy.once('exit', r));
      proxy.kill('SIGTERM');
      await gone;
    }
    await serve?.close();
    if (echo) await closeServer(echo.server);
    rmSync(dir, { recursive: true, force: true });
  });

  const url = () => `wss://127.0.0.1:${proxyPort}/vm`;

  async function attempt(extra: string[]): Promise<{ text: string; echoed: boolean }> {
    const out = sink();
    tunnel = await startTunnel(
      ['--listen', '127.0.0.1:0', '--connect', url(), '--policy', policy, '--simulated-roots', ...extra],
      out.io,
    );
    const local = await dial(tunnel.address.port);
    local.on('error', () => {});
    const back = readBytes(local, 4).then(
      (b) => b.toString() === 'ping',
      () => false,
    );
    local.write('ping');
    const echoed = await Promise.race([
      back,
      new Promise<boolean>((r) => local.once('close', () => r(false))),
    ]);
    local.destroy();
    await waitFor(() => /#1 (refused|closed)/.test(out.text()), 'the tunnel to log the connection');
    return { text: out.text(), echoed };
  }

  it('with --ca, --servername and --header the channel opens through nginx and carries bytes', async () => {
    const r = await attempt([
      '--ca',
      caFile,
      '--servername',
      'proxy.test',
      '--header',
      `Authorization: ${TOKEN}`,
    ]);
    expect(r.echoed).toBe(true);
    // The evidence is checked inside, against the attested server behind nginx.
    expect(r.text).toMatch(
      new RegExp(
        `#1 accepted .* → wss://127\\.0\\.0\\.1:${proxyPort}/vm: sev-snp Milan measurement ${simulated.defaults.snpMeasurement}`,
      ),
    );
    // The start line names the proxy settings; the token is a secret: it is never printed.
    expect(r.text).toMatch(
      /tunnel listening on .* \(proxy CA .*proxy-ca\.pem; proxy name proxy\.test; headers Authorization\)/,
    );
    expect(r.text).not.toContain('s3cret');
  });

  it('without --ca the self-signed certificate is refused (ERR_TLS, on one line)', async () => {
    const r = await attempt(['--servername', 'proxy.test', '--header', `Authorization: ${TOKEN}`]);
    expect(r.echoed).toBe(false);
    const line = r.text.split('\n').find((l) => l.includes('#1 refused'))!;
    expect(line).toMatch(/ERR_TLS/);
    expect(line).toMatch(/self[- ]signed/i);
    expect(line).not.toMatch(/error:[0-9A-F]{8}:/i);
    expect(line).toMatch(/give --ca with the proxy's CA certificate/);
  });

  it('without --servername the certificate does not name 127.0.0.1 (ERR_TLS)', async () => {
    const r = await attempt(['--ca', caFile, '--header', `Authorization: ${TOKEN}`]);
    expect(r.echoed).toBe(false);
    expect(r.text).toMatch(/#1 refused .*ERR_TLS.*(altnames|does not match)/);
    expect(r.text).toMatch(/give --servername with the name/);
  });

  it('without --header nginx answers 401 (ERR_CONNECTION_CLOSED, status 401)', async () => {
    const r = await attempt(['--ca', caFile, '--servername', 'proxy.test']);
    expect(r.echoed).toBe(false);
    expect(r.text).toMatch(/#1 refused .*ERR_CONNECTION_CLOSED .*HTTP 401/);
    expect(r.text).toMatch(/the proxy wants credentials: give them with --header/);
  });
});
