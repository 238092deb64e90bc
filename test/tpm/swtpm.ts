/**
 * A real TPM for the tests: swtpm (libtpms) on loopback, provisioned with tpm2-tools as Azure's
 * paravisor provisions its vTPM (an AK under the endorsement hierarchy, persisted at 0x81000003).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireTool } from '../helpers/system-tools.js';

const run = promisify(execFile);

const TOOLS = [
  ['swtpm', 'swtpm'],
  ['tpm2_createek', 'tpm2-tools'],
  ['tpm2_createak', 'tpm2-tools'],
  ['tpm2_evictcontrol', 'tpm2-tools'],
  ['tpm2_flushcontext', 'tpm2-tools'],
  ['tpm2_quote', 'tpm2-tools'],
  ['tpm2_readpublic', 'tpm2-tools'],
  ['tpm2_nvread', 'tpm2-tools'],
  ['tpm2_pcrextend', 'tpm2-tools'],
  ['tpm2_pcrread', 'tpm2-tools'],
  ['tpm2_nvreadpublic', 'tpm2-tools'],
] as const;

/**
 * True when swtpm and tpm2-tools are installed. Missing outside CI: the suite does not run and the
 * run ends with one line naming them; missing under CI: the file fails (requireTool()).
 */
export function haveSwtpm(): boolean {
  // Every program is looked up (not just the first missing one) so the line names them all.
  const found = TOOLS.map(([binary, pkg]) => requireTool(binary, pkg));
  return found.every((p) => p !== undefined);
}

async function freePortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    const ok = await Promise.all([port, port + 1].map(portFree));
    if (ok.every(Boolean)) return port;
  }
  throw new Error('no two consecutive free ports on 127.0.0.1');
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * A loopback proxy in front of swtpm's two ports that records the command bytes tpm2-tools send:
 * known-good marshalling to compare ours with.
 */
export async function recordingProxy(target: number): Promise<{
  port: number;
  commands(): Uint8Array[];
  close(): Promise<void>;
}> {
  const port = await freePortPair();
  const recorded: Buffer[] = [];
  const servers = [0, 1].map((k) =>
    createServer((inbound) => {
      const outbound = connect(target + k, '127.0.0.1');
      inbound.on('data', (d) => {
        if (k === 0) recorded.push(d);
        outbound.write(d);
      });
      outbound.on('data', (d) => inbound.write(d));
      inbound.on('close', () => outbound.destroy());
      outbound.on('close', () => inbound.destroy());
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
    }),
  );
  await Promise.all(servers.map((s, k) => new Promise<void>((r) => s.listen(port + k, '127.0.0.1', r))));
  return {
    port,
    commands() {
      // The data port carries raw commands back to back; each header gives its size.
      const all = Buffer.concat(recorded);
      const out: Uint8Array[] = [];
      for (let off = 0; off + 10 <= all.length; ) {
        const size = all.readUInt32BE(off + 2);
        if (size < 10) break;
        out.push(new Uint8Array(all.subarray(off, off + size)));
        off += size;
      }
      return out;
    },
    async close() {
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}

export interface Swtpm {
  port: number;
  /** Runs a tpm2-tools program against this TPM (or another port, e.g. a proxy); returns its stdout. */
  tool(name: string, args: string[], viaPort?: number): Promise<string>;
  /** Flushes transient objects and sessions (there is no resource manager between tools and swtpm). */
  flush(): Promise<void>;
  dir: string;
  stop(): Promise<void>;
}

export async function startSwtpm(): Promise<Swtpm> {
  const dir = mkdtempSync(join(tmpdir(), 'ac-swtpm-'));
  const port = await freePortPair();
  const child: ChildProcess = spawn(
    'swtpm',
    [
      'socket',
      '--tpm2',
      '--server',
      `type=tcp,port=${port},bindaddr=127.0.0.1`,
      '--ctrl',
      `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
      '--tpmstate',
      `dir=${dir}`,
      '--flags',
      'not-need-init,startup-clear',
    ],
    { stdio: 'ignore' },
  );
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill();
      throw new Error(`swtpm did not start on port ${port}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const tool = async (name: string, args: string[], viaPort = port) => {
    const env = { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${viaPort}` };
    return (await run(name, args, { env, cwd: dir, timeout: 60_000 })).stdout;
  };
  return {
    port,
    dir,
    tool,
    async flush() {
      await tool('tpm2_flushcontext', ['-t']);
      await tool('tpm2_flushcontext', ['-s']);
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Provisions the AK as Azure's vTPM has it: RSA-2048, RSASSA-SHA256, restricted, persistent 0x81000003. */
export async function provisionAk(tpm: Swtpm): Promise<void> {
  await tpm.tool('tpm2_createek', ['-c', 'ek.ctx', '-G', 'rsa', '-u', 'ek.pub']);
  await tpm.flush();
  await tpm.tool('tpm2_createak', [
    '-C',
    'ek.ctx',
    '-c',
    'ak.ctx',
    '-G',
    'rsa',
    '-g',
    'sha256',
    '-s',
    'rsassa',
    '-u',
    'ak.pub',
    '-n',
    'ak.name',
  ]);
  await tpm.flush();
  await tpm.tool('tpm2_evictcontrol', ['-C', 'o', '-c', 'ak.ctx', '0x81000003']);
  await tpm.flush();
}
