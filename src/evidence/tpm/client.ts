/**
 * A small TPM 2.0 client: the commands an attester needs (commands.ts), over the kernel's resource
 * manager (/dev/tpmrm0) or a TCP socket to a TPM simulator (swtpm, or Microsoft's reference
 * simulator). One command at a time, each with a timeout; responses are read up to the size their
 * header gives and never beyond MAX_RESPONSE_SIZE.
 *
 * Errors: the device or socket is absent or refused → ERR_PROVIDER_UNAVAILABLE; the TPM answers
 * with an error code (named, e.g. TPM_RC_NV_UNINITIALIZED), answers garbage, closes or does not
 * answer in time → ERR_PROVIDER_FAILED.
 */
import { open } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { AttestationError } from '../../errors.js';
import {
  AZURE_AK_HANDLE,
  type CreatePrimaryResult,
  createPrimaryCommand,
  flushContextCommand,
  MAX_RESPONSE_SIZE,
  NV_CHUNK,
  type NvDefinition,
  type NvPublic,
  nvDefineSpaceCommand,
  nvReadCommand,
  nvReadPublicCommand,
  nvUndefineSpaceCommand,
  nvWriteCommand,
  type PasswordAuth,
  parseCreatePrimary,
  parseEmpty,
  parseFlushContext,
  parseNvRead,
  parseNvReadPublic,
  parsePcrRead,
  parseQuote,
  parseReadPublic,
  pcrReadCommand,
  type QuoteResult,
  type QuoteScheme,
  quoteCommand,
  type ReadPublicResult,
  readPublicCommand,
  TPM_CC,
  TPM_RH,
  TPMA_NV,
} from './commands.js';
import { hashInfo, type PcrBankName, type PcrSelection } from './marshal.js';
import { parseTpmtPublic, type TpmPublic } from './public.js';

/** Moves one command to the TPM and its response back. */
export interface TpmTransport {
  transmit(command: Uint8Array, options: { timeoutMs: number; signal?: AbortSignal }): Promise<Uint8Array>;
  close(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 30_000;
/** TPM_SEND_COMMAND of the TPM simulator's TCP protocol (swtpm and Microsoft's simulator). */
const TPM_SEND_COMMAND = 8;

function unavailable(message: string, cause?: unknown): AttestationError {
  return new AttestationError('ERR_PROVIDER_UNAVAILABLE', message, cause === undefined ? {} : { cause });
}

function failed(message: string, cause?: unknown): AttestationError {
  return new AttestationError('ERR_PROVIDER_FAILED', message, cause === undefined ? {} : { cause });
}

const ABSENT: ReadonlySet<string> = new Set([
  'ENOENT',
  'ECONNREFUSED',
  'EACCES',
  'EPERM',
  'ENXIO',
  'ENODEV',
  'EHOSTUNREACH',
  'EADDRNOTAVAIL',
]);

/**
 * Frames on a byte stream. "raw": the command bytes as they are, the response delimited by its own
 * header (how swtpm's server port and the kernel's device speak). "mssim": TPM_SEND_COMMAND,
 * locality, length, command; the answer is length, response, then a u32 0 acknowledgement.
 */
export type TpmFraming = 'raw' | 'mssim';

/** A transport over a connected byte stream (a socket, or any Duplex the caller supplies). */
export function streamTransport(stream: Duplex, framing: TpmFraming = 'raw'): TpmTransport {
  let busy = false;
  let broken: AttestationError | undefined;
  // Between commands nobody else listens: an idle reset must not become an uncaught 'error'.
  stream.on('error', (e) => {
    broken ??= failed(`TPM transport: ${e.message}`, e);
  });
  stream.on('close', () => {
    broken ??= failed('TPM transport: the connection closed');
  });
  return {
    transmit(command, { timeoutMs, signal }) {
      if (broken) return Promise.reject(broken);
      if (busy) return Promise.reject(failed('TPM transport: a command is already in flight'));
      busy = true;
      return new Promise<Uint8Array>((resolve, reject) => {
        const chunks: Buffer[] = [];
        let have = 0;
        const finish = (err: AttestationError | undefined, value?: Uint8Array) => {
          clearTimeout(timer);
          stream.off('data', onData);
          stream.off('error', onError);
          stream.off('close', onClose);
          signal?.removeEventListener('abort', onAbort);
          busy = false;
          if (err) {
            // The stream's framing is lost after a timeout or a bad frame: nothing more goes over it.
            broken = err;
            stream.destroy();
            reject(err);
          } else resolve(value!);
        };
        const expected = (): number | undefined => {
          if (framing === 'mssim') {
            if (have < 4) return undefined;
            const head = Buffer.concat(chunks, 4);
            return 4 + head.readUInt32BE(0) + 4;
          }
          if (have < 6) return undefined;
          return Buffer.concat(chunks, 6).readUInt32BE(2);
        };
        const onData = (d: Buffer) => {
          chunks.push(d);
          have += d.length;
          const want = expected();
          if (want === undefined) return;
          if (want > MAX_RESPONSE_SIZE + 8 || want < (framing === 'mssim' ? 8 : 10))
            return finish(failed(`TPM transport: response of ${want} bytes`));
          if (have > want) return finish(failed('TPM transport: more bytes than the response holds'));
          if (have < want) return;
          const all = new Uint8Array(Buffer.concat(chunks, have));
          if (framing === 'raw') return finish(undefined, all);
          const len = want - 8;
          const ack = Buffer.from(all.subarray(4 + len)).readUInt32BE(0);
          if (ack !== 0) return finish(failed(`TPM simulator acknowledged with ${ack}`));
          finish(undefined, all.slice(4, 4 + len));
        };
        const onError = (e: Error) => finish(failed(`TPM transport: ${e.message}`, e));
        const onClose = () => finish(failed('TPM transport: the connection closed before the response'));
        const onAbort = () => finish(new AttestationError('ERR_ABORTED', 'TPM command aborted'));
        const timer = setTimeout(
          () => finish(failed(`TPM transport: no response within ${timeoutMs} ms`)),
          timeoutMs,
        );
        stream.on('data', onData);
        stream.on('error', onError);
        stream.on('close', onClose);
        if (signal?.aborted) return onAbort();
        signal?.addEventListener('abort', onAbort, { once: true });
        if (framing === 'mssim') {
          const head = Buffer.alloc(9);
          head.writeUInt32BE(TPM_SEND_COMMAND, 0);
          head[4] = 0; // locality 0
          head.writeUInt32BE(command.length, 5);
          stream.write(Buffer.concat([head, command]));
        } else stream.write(command);
      });
    },
    async close() {
      broken ??= failed('TPM transport is closed');
      stream.destroy();
    },
  };
}

/** Connects to a TPM simulator's command port (swtpm `--server type=tcp,port=P`). */
export async function tcpTransport(options: {
  host?: string;
  port: number;
  framing?: TpmFraming;
  timeoutMs?: number;
}): Promise<TpmTransport> {
  const host = options.host ?? '127.0.0.1';
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect({ host, port: options.port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(
        unavailable(
          `TPM simulator at ${host}:${options.port}: no connection within ${options.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`,
        ),
      );
    }, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    s.once('connect', () => {
      clearTimeout(timer);
      s.off('error', onError);
      resolve(s);
    });
    const onError = (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const absent = e.code !== undefined && ABSENT.has(e.code);
      reject(
        absent
          ? unavailable(`no TPM simulator at ${host}:${options.port} (${e.code})`, e)
          : failed(`TPM simulator at ${host}:${options.port}: ${e.message}`, e),
      );
    };
    s.once('error', onError);
  });
  socket.setNoDelay(true);
  return streamTransport(socket, options.framing ?? 'mssim');
}

/** What the device transport needs of an open device: node:fs/promises' FileHandle has it. */
export interface TpmDeviceHandle {
  write(buffer: Uint8Array): Promise<unknown>;
  read(buffer: Uint8Array, offset: number, length: number, position: null): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

/**
 * The kernel's TPM device (a path, or a handle the caller opened): one write() is one command, one read() returns one whole response
 * (Linux drivers/char/tpm/tpm-dev-common.c). /dev/tpmrm0 shares the TPM with other users through
 * the kernel's resource manager.
 */
export async function deviceTransport(
  device: string | TpmDeviceHandle = '/dev/tpmrm0',
): Promise<TpmTransport> {
  let fh: TpmDeviceHandle;
  if (typeof device !== 'string') fh = device;
  else
    try {
      fh = await open(device, 'r+');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== undefined && ABSENT.has(code)) throw unavailable(`no TPM at ${device} (${code})`, err);
      throw failed(`cannot open ${device}: ${(err as Error).message}`, err);
    }
  let busy = false;
  let closed = false;
  return {
    async transmit(command, { timeoutMs, signal }) {
      if (closed) throw failed('TPM device is closed');
      if (busy) throw failed('TPM transport: a command is already in flight');
      signal?.throwIfAborted();
      busy = true;
      let timer: NodeJS.Timeout | undefined;
      try {
        const work = (async () => {
          await fh.write(command);
          const buf = new Uint8Array(MAX_RESPONSE_SIZE);
          const { bytesRead } = await fh.read(buf, 0, buf.length, null);
          return buf.slice(0, bytesRead);
        })();
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(failed(`TPM device: no response within ${timeoutMs} ms`)),
            timeoutMs,
          );
        });
        return await Promise.race([work, timeout]);
      } catch (err) {
        if (err instanceof AttestationError) {
          // A read may still be pending in the thread pool; the handle is not used again.
          closed = true;
          void fh.close().catch(() => {});
          throw err;
        }
        throw failed(`TPM device: ${(err as Error).message}`, err);
      } finally {
        clearTimeout(timer);
        busy = false;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await fh.close();
    },
  };
}

/** TPM_RC_RETRY, TPM_RC_YIELDED, TPM_RC_TESTING. */
const RETRY_CODES: ReadonlySet<number> = new Set([0x922, 0x908, 0x90a]);
const MAX_RETRIES = 20;

export interface TpmClientOptions {
  /** Per-command timeout in ms (default 30 000: RSA operations on a physical TPM can take seconds). */
  timeoutMs?: number;
  /** NV_Read / NV_Write chunk size (default 1024, MAX_NV_BUFFER_SIZE of common TPMs). */
  nvChunkSize?: number;
}

/** PCR values read from the TPM, hex by bank and index (the shape of pcrs.json). */
export type PcrReadValues = Partial<Record<PcrBankName, Record<string, string>>>;

export class TpmClient {
  private readonly timeoutMs: number;
  private readonly chunk: number;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly transport: TpmTransport,
    options: TpmClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.chunk = options.nvChunkSize ?? NV_CHUNK;
    if (!Number.isInteger(this.chunk) || this.chunk < 1 || this.chunk > 4096)
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'nvChunkSize must be an integer from 1 to 4096');
  }

  /** A client for a TPM simulator's TCP command port. */
  static async tcp(
    options: { host?: string; port: number; framing?: TpmFraming } & TpmClientOptions,
  ): Promise<TpmClient> {
    return new TpmClient(await tcpTransport(options), options);
  }

  /** A client for a TPM character device (default /dev/tpmrm0), by path or as an open handle. */
  static async device(device?: string | TpmDeviceHandle, options: TpmClientOptions = {}): Promise<TpmClient> {
    return new TpmClient(await deviceTransport(device), options);
  }

  /**
   * Sends one command; commands are serialised (a TPM runs one at a time). TPM_RC_RETRY,
   * TPM_RC_YIELDED and TPM_RC_TESTING mean "send it again" (Part 2 §6.6.3); that is done a
   * bounded number of times, with a growing pause.
   */
  send(command: Uint8Array, signal?: AbortSignal): Promise<Uint8Array> {
    const run = this.queue.then(async () => {
      for (let attempt = 1; ; attempt++) {
        const res = await this.transport.transmit(command, {
          timeoutMs: this.timeoutMs,
          ...(signal ? { signal } : {}),
        });
        const rc = res.length >= 10 ? Buffer.from(res.buffer, res.byteOffset, res.length).readUInt32BE(6) : 0;
        if (!RETRY_CODES.has(rc) || attempt >= MAX_RETRIES) return res;
        await new Promise((r) => setTimeout(r, Math.min(20 * attempt, 200)));
        signal?.throwIfAborted();
      }
    });
    this.queue = run.catch(() => {});
    return run;
  }

  async nvReadPublic(index: number, signal?: AbortSignal): Promise<NvPublic> {
    return parseNvReadPublic(await this.send(nvReadPublicCommand(index), signal));
  }

  /** Reads an NV index whole (its dataSize from NV_ReadPublic), in chunks. */
  async nvRead(
    index: number,
    options: { auth?: number; password?: Uint8Array; size?: number; signal?: AbortSignal } = {},
  ): Promise<Uint8Array> {
    const size = options.size ?? (await this.nvReadPublic(index, options.signal)).dataSize;
    const auth = options.auth ?? TPM_RH.OWNER;
    const pw: PasswordAuth = options.password ? { password: options.password } : {};
    const out = new Uint8Array(size);
    for (let off = 0; off < size; off += this.chunk) {
      const n = Math.min(this.chunk, size - off);
      out.set(parseNvRead(await this.send(nvReadCommand(auth, index, n, off, pw), options.signal), n), off);
    }
    return out;
  }

  /** Defines an NV index (default: owner read/write, as Azure's user-data index 0x01400002). */
  async nvDefineSpace(
    index: number,
    dataSize: number,
    options: Partial<Omit<NvDefinition, 'index' | 'dataSize'>> & {
      auth?: number;
      password?: Uint8Array;
    } = {},
  ): Promise<void> {
    const def: NvDefinition = {
      index,
      dataSize,
      attributes: options.attributes ?? TPMA_NV.OWNERWRITE | TPMA_NV.OWNERREAD,
      ...(options.nameAlg !== undefined ? { nameAlg: options.nameAlg } : {}),
      ...(options.authPolicy ? { authPolicy: options.authPolicy } : {}),
      ...(options.authValue ? { authValue: options.authValue } : {}),
    };
    const pw = options.password ? { password: options.password } : {};
    parseEmpty(
      await this.send(nvDefineSpaceCommand(options.auth ?? TPM_RH.OWNER, def, pw)),
      TPM_CC.NV_DefineSpace,
    );
  }

  async nvUndefineSpace(
    index: number,
    options: { auth?: number; password?: Uint8Array } = {},
  ): Promise<void> {
    const pw = options.password ? { password: options.password } : {};
    parseEmpty(
      await this.send(nvUndefineSpaceCommand(options.auth ?? TPM_RH.OWNER, index, pw)),
      TPM_CC.NV_UndefineSpace,
    );
  }

  async nvWrite(
    index: number,
    data: Uint8Array,
    options: { auth?: number; password?: Uint8Array; offset?: number; signal?: AbortSignal } = {},
  ): Promise<void> {
    const auth = options.auth ?? TPM_RH.OWNER;
    const pw = options.password ? { password: options.password } : {};
    const base = options.offset ?? 0;
    for (let off = 0; off < data.length; off += this.chunk) {
      const part = data.subarray(off, off + this.chunk);
      parseEmpty(
        await this.send(nvWriteCommand(auth, index, part, base + off, pw), options.signal),
        TPM_CC.NV_Write,
      );
    }
  }

  /** TPM2_ReadPublic of a loaded or persistent key (default Azure's AK, 0x81000003). */
  async readPublic(
    handle = AZURE_AK_HANDLE,
    signal?: AbortSignal,
  ): Promise<ReadPublicResult & { public: TpmPublic }> {
    const res = parseReadPublic(await this.send(readPublicCommand(handle), signal));
    let pub: TpmPublic;
    try {
      pub = parseTpmtPublic(res.publicArea);
    } catch (err) {
      throw failed(`TPM2_ReadPublic returned a key this library cannot use: ${(err as Error).message}`, err);
    }
    return { ...res, public: pub };
  }

  /** TPM2_Quote with the key at `handle` (default 0x81000003) over the selected PCRs. */
  async quote(
    qualifyingData: Uint8Array,
    selection: readonly PcrSelection[],
    options: { handle?: number; scheme?: QuoteScheme; password?: Uint8Array; signal?: AbortSignal } = {},
  ): Promise<QuoteResult> {
    if (qualifyingData.length > 64)
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'qualifyingData is at most 64 bytes');
    const pw = options.password ? { password: options.password } : {};
    const cmd = quoteCommand(
      options.handle ?? AZURE_AK_HANDLE,
      qualifyingData,
      selection,
      options.scheme,
      pw,
    );
    return parseQuote(await this.send(cmd, options.signal));
  }

  /** Reads the selected PCRs (TPM2_PCR_Read answers at most 8 per call; asks until all are read). */
  async pcrRead(selection: readonly PcrSelection[], signal?: AbortSignal): Promise<PcrReadValues> {
    const out: PcrReadValues = {};
    const pending = selection.map((s) => ({
      hash: s.hash,
      pcrs: [...new Set(s.pcrs)].sort((a, b) => a - b),
    }));
    for (const s of pending) {
      const bank = hashInfo(s.hash);
      if (!bank)
        throw new AttestationError(
          'ERR_INVALID_ARGUMENT',
          `PCR bank 0x${s.hash.toString(16)} is not supported`,
        );
      out[bank.name] ??= {};
    }
    // Each round reads at least one PCR or fails, so this ends after at most (number of PCRs) rounds.
    while (pending.some((s) => s.pcrs.length > 0)) {
      const ask = pending.filter((s) => s.pcrs.length > 0);
      const res = parsePcrRead(await this.send(pcrReadCommand(ask), signal));
      let i = 0;
      let got = 0;
      for (const sel of res.selection) {
        const bank = hashInfo(sel.hash);
        const want = pending.find((p) => p.hash === sel.hash);
        if (!bank || !want) throw failed('TPM2_PCR_Read returned a bank that was not asked for');
        for (const pcr of sel.pcrs) {
          const value = res.digests[i++]!;
          if (value.length !== bank.size || !want.pcrs.includes(pcr))
            throw failed(`TPM2_PCR_Read returned an unexpected value for ${bank.name}:${pcr}`);
          out[bank.name]![String(pcr)] = Buffer.from(value).toString('hex');
          want.pcrs = want.pcrs.filter((p) => p !== pcr);
          got++;
        }
      }
      // A bank the TPM does not have comes back empty: it cannot be read.
      if (got === 0)
        throw failed('TPM2_PCR_Read returned none of the PCRs asked for (is the bank allocated?)');
    }
    return out;
  }

  /** TPM2_CreatePrimary from a TPMT_PUBLIC template (default: the endorsement hierarchy). */
  async createPrimary(
    template: Uint8Array,
    options: { hierarchy?: number; signal?: AbortSignal } = {},
  ): Promise<CreatePrimaryResult> {
    const cmd = createPrimaryCommand(options.hierarchy ?? TPM_RH.ENDORSEMENT, template);
    return parseCreatePrimary(await this.send(cmd, options.signal));
  }

  /** TPM2_FlushContext: unloads a transient object. */
  async flushContext(handle: number, signal?: AbortSignal): Promise<void> {
    parseFlushContext(await this.send(flushContextCommand(handle), signal));
  }

  async close(): Promise<void> {
    await this.transport.close();
  }
}
