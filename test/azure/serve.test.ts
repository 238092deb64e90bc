/**
 * `serve` as an Azure VM: `--simulate azure-snp|azure-tdx` prints the policy that admits it (PCRs),
 * and a tunnel with that policy forwards bytes once the Azure evidence verified and bound; `--azure`
 * options are checked.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type ServeHandle, startServe } from '../../src/cli/serve.js';
import { startTunnel, type TunnelHandle } from '../../src/cli/tunnel.js';
import { closeServer, echoServer, port, readBytes } from '../helpers/edges.js';

const dir = mkdtempSync(join(tmpdir(), 'ac-azure-serve-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sink() {
  let text = '';
  return { io: { out: (t: string) => (text += t), err: (t: string) => (text += t) }, text: () => text };
}

let serve: ServeHandle | undefined;
let tunnel: TunnelHandle | undefined;
const echoes: Array<Awaited<ReturnType<typeof echoServer>>> = [];
afterEach(async () => {
  await tunnel?.close();
  await serve?.close();
  tunnel = serve = undefined;
  for (const e of echoes.splice(0)) await closeServer(e.server);
});

describe('serve as an Azure VM', () => {
  it.each(['azure-snp', 'azure-tdx'])(
    '--simulate %s: the printed policy admits it, and the tunnel forwards',
    async (tee) => {
      const echo = await echoServer();
      echoes.push(echo);
      const serveOut = sink();
      serve = await startServe(
        ['--listen', '127.0.0.1:0', '--forward', `127.0.0.1:${port(echo.server)}`, '--simulate', tee],
        serveOut.io,
      );
      const m = /policy\.json that admits this VM only: (\{.*\}) \(with tunnel/.exec(serveOut.text());
      expect(m).not.toBeNull();
      const policy = JSON.parse(m![1]!);
      expect(policy.azure.pcrs.sha256['7']).toHaveLength(1);
      const file = join(dir, `${tee}.json`);
      writeFileSync(file, JSON.stringify(policy));
      const tunnelOut = sink();
      tunnel = await startTunnel(
        [
          '--listen',
          '127.0.0.1:0',
          '--connect',
          `127.0.0.1:${serve.address.port}`,
          '--policy',
          file,
          '--simulated-roots',
        ],
        tunnelOut.io,
      );
      const local = await new Promise<Socket>((resolve, reject) => {
        const s = connect(tunnel!.address.port, '127.0.0.1', () => resolve(s));
        s.once('error', reject);
      });
      const back = readBytes(local, 5);
      local.write('hello');
      expect((await back).toString()).toBe('hello');
      local.destroy();
      expect(tunnelOut.text()).toContain(tee === 'azure-snp' ? 'azure-sev-snp' : 'azure-tdx');
      expect(tunnelOut.text()).toContain('binding report');
    },
  );

  it('--azure options: refused without --azure, and together with --simulate', async () => {
    const base = ['--listen', '127.0.0.1:0', '--forward', '127.0.0.1:9'];
    for (const args of [
      [...base, '--simulate', 'snp', '--tpm-tcp', '127.0.0.1:1'],
      [...base, '--azure', '--simulate', 'snp'],
      [...base, '--azure', '--tpm', '/dev/x', '--tpm-tcp', '127.0.0.1:1'],
      [...base, '--azure', '--tpm-tcp', 'nohost'],
      [...base, '--azure', '--imds-url', 'ftp://x'],
    ])
      await expect(startServe(args, sink().io)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });
});
