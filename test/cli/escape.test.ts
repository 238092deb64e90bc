/**
 * Issue 10, item 8: `serve` and `tunnel` print a peer's ALERT reason; a hostile peer must not be
 * able to forge log lines or send terminal escapes through it.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_ID } from '../../src/channel/binder.js';
import { encodeAlert } from '../../src/channel/frames.js';
import { createTlsIdentity } from '../../src/channel/identity.js';
import { printable } from '../../src/cli/io.js';
import { startServe } from '../../src/cli/serve.js';
import { startTunnel } from '../../src/cli/tunnel.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { closeServer, echoServer, port } from '../helpers/edges.js';

const FORGED = 'nope\n2026-01-01T00:00:00.000Z #999 accepted: everything is fine\x1b[31m red\x1b]0;title\x07';

describe('printable()', () => {
  it.each([
    ['\n#999 accepted', '\\n#999 accepted'],
    ['\x1b[31m', '\\x1b[31m'],
    ['a\r\tb\x00\x7f\x9b', 'a\\r\\tb\\x00\\x7f\\x9b'],
    ['line\u2028sep\u202eevil\u2066', 'line\\u2028sep\\u202eevil\\u2066'],
    ['C:\\n is not a newline', 'C:\\\\n is not a newline'],
    ['plain → text — ok ✓', 'plain → text — ok ✓'],
  ])('%j → %j', (input, output) => {
    expect(printable(input)).toBe(output);
  });

  it('leaves no control character in any string', () => {
    let all = '';
    for (let c = 0; c < 0x3000; c++) all += String.fromCharCode(c);
    expect(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test(printable(all))).toBe(
      false,
    );
  });
});

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

/** Every line printed for connection #id, and that no raw control character was printed at all. */
function expectOneEscapedLine(text: string): void {
  expect(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(text)).toBe(false);
  const lines = text.split('\n').filter((l) => l.length > 0);
  expect(lines.filter((l) => /#999/.test(l))).toHaveLength(1);
  const line = lines.find((l) => /#999/.test(l))!;
  expect(line).toMatch(/#1 refused/);
  // The newline is escaped, or (oneLine() on messages) turned into "; ": either way one line.
  expect(line).toMatch(/(\\n|; )2026-01-01T00:00:00\.000Z #999 accepted/);
  expect(line).toContain('\\x1b[31m');
  expect(lines.some((l) => /^\S+ #999 accepted/.test(l))).toBe(false);
}

let dir: string;
let policy: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ac-escape-'));
  policy = join(dir, 'policy.json');
  writeFileSync(policy, JSON.stringify({ snp: { measurements: [simulated.defaults.snpMeasurement] } }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a peer’s ALERT reason in the CLI’s log', () => {
  it('serve prints it escaped, on its own one line', async () => {
    const echo = await echoServer();
    const out = sink();
    const serve = await startServe(
      ['--listen', '127.0.0.1:0', '--forward', `127.0.0.1:${port(echo.server)}`, '--simulate', 'snp'],
      out.io,
    );
    let client: TLSSocket | undefined;
    try {
      client = tlsConnect({
        host: '127.0.0.1',
        port: serve.address.port,
        ALPNProtocols: [PROTOCOL_ID],
        rejectUnauthorized: false,
        minVersion: 'TLSv1.3',
      });
      client.on('error', () => {});
      await once(client, 'secureConnect');
      client.write(encodeAlert('ERR_EVIDENCE_POLICY', FORGED));
      await waitFor(() => /#1 refused/.test(out.text()));
      expectOneEscapedLine(out.text());
    } finally {
      client?.destroy();
      await serve.close();
      await closeServer(echo.server);
    }
  });

  it('tunnel prints it escaped, on its own one line', async () => {
    // A hostile "VM": completes TLS with the channel's ALPN, then answers with nothing but an ALERT.
    const id = createTlsIdentity();
    const conns = new Set<TLSSocket>();
    const vm = createTlsServer({ key: id.keyPem, cert: id.certPem, ALPNProtocols: [PROTOCOL_ID] }, (s) => {
      conns.add(s);
      s.on('error', () => {});
      s.end(encodeAlert('ERR_EVIDENCE_POLICY', FORGED));
    });
    await new Promise<void>((r) => vm.listen(0, '127.0.0.1', r));
    const out = sink();
    const tunnel = await startTunnel(
      [
        '--listen',
        '127.0.0.1:0',
        '--connect',
        `127.0.0.1:${(vm.address() as AddressInfo).port}`,
        '--policy',
        policy,
        '--simulated-roots',
      ],
      out.io,
    );
    const local = netConnect(tunnel.address.port, '127.0.0.1');
    local.on('error', () => {});
    try {
      await waitFor(() => /#1 refused/.test(out.text()));
      expectOneEscapedLine(out.text());
    } finally {
      local.destroy();
      await tunnel.close();
      for (const c of conns) c.destroy();
      await new Promise((r) => vm.close(r));
    }
  });
});
