import { type ParseArgsConfig, parseArgs } from 'node:util';

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;
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

/**
 * A usage error (exit 2) of a command that has --json: with it, one JSON object on stdout (`head`
 * first, then `error`), so every outcome parses; without it, the message on stderr.
 */
export function usageErrorAs(
  io: CliIo,
  json: boolean,
  message: string,
  head: object = { ok: false },
): number {
  if (!json) return usageError(io, message);
  io.out(
    `${JSON.stringify({ ...head, error: { code: 'ERR_INVALID_ARGUMENT', message: oneLine(message) } })}\n`,
  );
  return 2;
}

/**
 * node:util parseArgs, strict, plus what it lets through: an option given twice keeps only its
 * last value there, so `--policy a --policy b` would silently drop a policy. Every option is
 * single-valued unless declared `multiple`; a repeat throws (the caller's usage error).
 */
export function parseOptions<T extends OptionsConfig>(
  args: string[],
  options: T,
  allowPositionals = false,
): {
  values: ReturnType<typeof parseArgs<{ options: T; allowPositionals: boolean }>>['values'];
  positionals: string[];
} {
  const { values, positionals, tokens } = parseArgs({
    args,
    options,
    allowPositionals,
    strict: true,
    tokens: true,
  });
  const seen = new Set<string>();
  for (const t of tokens) {
    if (t.kind !== 'option' || options[t.name]?.multiple) continue;
    if (seen.has(t.name)) throw new TypeError(`--${t.name} given more than once`);
    seen.add(t.name);
  }
  return { values, positionals };
}

/**
 * The start of a command that has --json (eventlog, explain, inspect): --json is looked for before
 * the arguments parse, so that with it every usage error is one JSON object (usageErrorAs(),
 * `head` first); without it a line that does not parse, or lacks its positionals (`missing`),
 * also prints the usage text. --help prints it and ends the command (`exit`).
 */
export function startJsonCommand<T extends OptionsConfig>(
  args: string[],
  options: T,
  io: CliIo,
  usageText: string,
  head?: object,
):
  | { exit: number }
  | {
      parsed: ReturnType<typeof parseOptions<T>>;
      json: boolean;
      usage: (message: string) => number;
      missing: (message: string) => number;
    } {
  const json = args.includes('--json');
  const usage = (message: string): number => usageErrorAs(io, json, message, head);
  let parsed: ReturnType<typeof parseOptions<T>>;
  try {
    parsed = parseOptions(args, options, true);
  } catch (err) {
    const message = (err as Error).message;
    return { exit: json ? usage(message) : usageError(io, `${message}\n\n${usageText}`) };
  }
  if ((parsed.values as { help?: boolean }).help) {
    io.out(usageText);
    return { exit: 0 };
  }
  const missing = (message: string): number => (json ? usage(message) : usageError(io, usageText));
  return { parsed, json, usage, missing };
}

/**
 * OpenSSL's error line: "<thread>:error:<code>:<library>:<function>:<reason>:<file>:<line>:<data>"
 * (ERR_error_string_n, OpenSSL 3). Only the reason and the data mean anything to a user.
 */
const OPENSSL_ERROR =
  /(?:\b[0-9A-Fa-f]+:)?error:[0-9A-Fa-f]{8}:[^:\n]*:[^:\n]*:([^:\n]*)(?::[^:\n]*:\d+:([^\n]*))?/g;

/**
 * A message for one log or terminal line: OpenSSL and other libraries put newlines (and their
 * own "error:0A000086:SSL routines::" prefixes) into messages, which would split a line in two.
 */
export function oneLine(message: string): string {
  return message
    .replace(OPENSSL_ERROR, (_m, reason: string, data: string | undefined) =>
      data ? `${reason} (${data})` : reason,
    )
    .replace(/\s*[\r\n]+\s*/g, '; ')
    .replace(/[\s:;]+$/, '')
    .trim();
}

/**
 * Text safe to print on one log line: control characters (C0, DEL, C1 — newlines, ANSI escape
 * sequences), Unicode line/paragraph separators and bidirectional overrides become visible escapes,
 * and a backslash is doubled so an escape cannot be forged. Every line the CLI prints that carries a
 * peer's words (an ALERT reason, a peer's code, claims) goes through it: a peer must not be able to
 * forge log lines ("\n#999 accepted …") or drive the operator's terminal.
 */
export function printable(text: string): string {
  return text.replace(/[\\\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    if (c === '\\') return '\\\\';
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
