/**
 * The attested-channel command. Each subcommand lives in its own file and returns an exit code:
 * 0 accepted / done, 1 rejected / failed, 2 usage error.
 */
import { readFileSync } from 'node:fs';
import type { CliIo } from './io.js';
import { defaultIo, usageError } from './io.js';

type Command = (args: string[], io: CliIo) => Promise<number>;

const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  inspect: {
    summary: 'print every field of a report or quote',
    load: async () => (await import('./inspect.js')).run,
  },
  verify: {
    summary: 'verify evidence against vendor roots and a policy',
    load: async () => (await import('./verify.js')).run,
  },
  eventlog: {
    summary: 'print and replay a TPM or TDX (CCEL) measured-boot event log',
    load: async () => (await import('./eventlog.js')).run,
  },
  demo: {
    summary: 'run the demo on the simulated platform',
    load: async () => (await import('./demo.js')).run,
  },
  serve: {
    summary: 'in the CVM: attest and forward to a local port',
    load: async () => (await import('./serve.js')).run,
  },
  tunnel: {
    summary: 'on your side: carry local TCP connections through attested channels',
    load: async () => (await import('./tunnel.js')).run,
  },
  measure: {
    summary: 'the launch measurement a VM built from your firmware and kernel will report',
    load: async () => (await import('./measure.js')).run,
  },
  policy: {
    summary: 'write a strict policy from measure output, verified evidence, a boot log or an endorsement',
    load: async () => (await import('./policy.js')).run,
  },
  explain: {
    summary: 'say in plain words what a piece of evidence proves',
    load: async () => (await import('./explain.js')).run,
  },
};

export function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
  return `usage: attested-channel <command> [options]\n       attested-channel --version\n\ncommands:\n${lines.join('\n')}\n\nRun 'attested-channel <command> --help' for a command's options.\n`;
}

/** The package's version: package.json is two levels up from both src/cli/ and dist/cli/. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: unknown;
  };
  return String(pkg.version);
}

export async function main(argv: string[], io: CliIo = defaultIo()): Promise<number> {
  const [name, ...rest] = argv;
  if ((name === '--version' || name === '-V') && rest.length === 0) {
    io.out(`attested-channel ${version()}\n`);
    return 0;
  }
  if (!name || name === '--help' || name === '-h') {
    (name ? io.out : io.err)(usage());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) return usageError(io, `unknown command "${name}"\n\n${usage()}`);
  return (await command.load())(rest, io);
}
