/** Output sinks for the CLI, so tests can run commands in-process and read what they print. */
export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

export function defaultIo(): CliIo {
  return {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
  };
}

export function usageError(io: CliIo, message: string): number {
  io.err(`attested-channel: ${message.endsWith('\n') ? message : `${message}\n`}`);
  return 2;
}
