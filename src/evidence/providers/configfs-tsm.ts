/**
 * Evidence from the Linux configfs-tsm report interface (kernel ≥ 6.7;
 * docs/reference/snp-format.md §7, docs/reference/tdx-format.md §9), for SEV-SNP and TDX guests
 * alike:
 *
 *   mkdir <root>/<unique>; write 64 bytes to inblob; read generation; read outblob (+ auxblob on
 *   SNP); re-read generation; rmdir.
 *
 * The format comes from the report directory's `provider` attribute, which exists only inside a
 * report directory, so `configfsTsm()` is an async factory: it creates one probe directory to read
 * `provider`, and every later request checks that the provider is still the same.
 */
import { randomBytes } from 'node:crypto';
import { constants, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { AttestationError } from '../../errors.js';
import { GCE_ENDORSEMENT_CERT_TABLE_GUID } from '../gce/endorsement.js';
import { MAX_LAUNCH_ENDORSEMENT_SIZE } from '../gce/launch.js';
import type { EvidenceFormat, EvidenceInput, EvidenceProvider, EvidenceRequestOptions } from '../types.js';
import { CERT_TABLE_GUIDS, parseCertTable } from './cert-table.js';
import { reportDataArg, throwIfAborted } from './input.js';

export const DEFAULT_TSM_ROOT = '/sys/kernel/config/tsm/report';

/** Largest outblob / auxblob accepted (the kernel caps outblobs at 32 KiB; DICE quotes exceed 8 KiB). */
const MAX_BLOB = 1 << 20;

/**
 * The few file operations the provider performs. The default is node:fs on the real folder; tests
 * substitute a layer that makes a plain folder behave like configfs (attributes appear on mkdir).
 */
export interface TsmFileSystem {
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  /** Reads a whole attribute; fails when it is longer than `maxBytes`. */
  read(path: string, maxBytes: number): Promise<Uint8Array>;
  /** Writes a whole attribute in one write, without creating or truncating it. */
  write(path: string, data: Uint8Array): Promise<void>;
}

export interface ConfigfsTsmOptions {
  /** Default /sys/kernel/config/tsm/report. */
  root?: string;
  /** SNP only: the VMPL to request the report at (written to `privlevel`). */
  privlevel?: number;
  /** File operations (default: node:fs). */
  fs?: TsmFileSystem;
  /**
   * TDX only: the CC event log sent with each quote (its verifier replays it to RTMR0-3).
   * Default: the ACPI log area and table at DEFAULT_CCEL_PATHS, left out when absent; paths
   * given explicitly must be readable; false sends none.
   */
  ccel?: { log?: string; table?: string } | false;
  /**
   * A file holding Google's launch endorsement (VMLaunchEndorsement) of this VM's firmware, sent
   * with each report or quote: for TDX, whose quote comes without one (fetch it once from
   * Google's gce_tcb_integrity bucket), or to replace the one in the SNP certificate table.
   * Default: the certificate table's, on SEV-SNP.
   */
  launchEndorsement?: string;
}

/** Where Linux exposes the TDX CC event log area and its ACPI table. */
export const DEFAULT_CCEL_PATHS = {
  log: '/sys/firmware/acpi/tables/data/CCEL',
  table: '/sys/firmware/acpi/tables/CCEL',
} as const;

/** The log area is at most a few MiB (eventlog/parse.ts MAX_EVENT_LOG_SIZE). */
const MAX_CCEL = 4 * 1024 * 1024;

/** Reads the CCEL (and its table) for a TDX quote; undefined when there is none to send. */
async function readCcel(
  fs: TsmFileSystem,
  option: ConfigfsTsmOptions['ccel'],
): Promise<EvidenceInput['eventLog'] | undefined> {
  if (option === false) return undefined;
  const explicit = option?.log !== undefined;
  const read = async (path: string, max: number, required: boolean) => {
    try {
      return await fs.read(path, max);
    } catch (err) {
      if (!required && errnoOf(err) === 'ENOENT') return undefined;
      throw failed(`reading ${path}`, err);
    }
  };
  const log = await read(option?.log ?? DEFAULT_CCEL_PATHS.log, MAX_CCEL, explicit);
  if (!log) return undefined;
  const table = await read(option?.table ?? DEFAULT_CCEL_PATHS.table, 4096, option?.table !== undefined);
  return { log, ccel: true, ...(table ? { ccelTable: table } : {}) };
}

async function readEndorsement(fs: TsmFileSystem, path: string): Promise<Uint8Array> {
  try {
    return await fs.read(path, MAX_LAUNCH_ENDORSEMENT_SIZE);
  } catch (err) {
    throw failed(`reading ${path}`, err);
  }
}

export const nodeTsmFileSystem: TsmFileSystem = {
  async mkdir(path) {
    await fsp.mkdir(path);
  },
  async rmdir(path) {
    await fsp.rmdir(path);
  },
  async read(path, maxBytes) {
    const fh = await fsp.open(path, constants.O_RDONLY);
    try {
      const chunks: Buffer[] = [];
      let total = 0;
      for (;;) {
        const buf = Buffer.alloc(Math.min(65536, maxBytes + 1 - total));
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        chunks.push(buf.subarray(0, bytesRead));
        total += bytesRead;
        if (total > maxBytes)
          throw Object.assign(new Error(`${path} exceeds ${maxBytes} bytes`), { code: 'EFBIG' });
      }
      return new Uint8Array(Buffer.concat(chunks));
    } finally {
      await fh.close();
    }
  },
  async write(path, data) {
    // O_WRONLY alone: configfs attributes exist already, and one write() carries the whole value.
    const fh = await fsp.open(path, constants.O_WRONLY);
    try {
      const { bytesWritten } = await fh.write(data, 0, data.length, null);
      if (bytesWritten !== data.length) throw new Error(`short write to ${path}`);
    } finally {
      await fh.close();
    }
  },
};

const PROVIDERS: Record<string, EvidenceFormat> = { sev_guest: 'sev-snp', tdx_guest: 'tdx' };

function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err
    ? String((err as { code: unknown }).code)
    : undefined;
}

function failed(what: string, err: unknown): AttestationError {
  const errno = errnoOf(err);
  return new AttestationError(
    'ERR_PROVIDER_FAILED',
    `configfs-tsm: ${what} failed${errno ? ` (${errno})` : ''}`,
    {
      cause: err,
      ...(errno ? { details: { errno } } : {}),
    },
  );
}

function text(b: Uint8Array): string {
  return Buffer.from(b).toString('utf8').trim();
}

/** One report directory: created, used, and always removed. */
async function withReportDir<T>(
  fs: TsmFileSystem,
  root: string,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  // Unique without a counter: concurrent requests, providers and processes never share a name
  // (96 random bits; the pid says whose a leftover directory was).
  const dir = join(root, `attested-channel-${process.pid}-${randomBytes(12).toString('hex')}`);
  try {
    await fs.mkdir(dir);
  } catch (err) {
    const errno = errnoOf(err);
    if (errno === 'ENOENT' || errno === 'ENOTDIR')
      throw new AttestationError('ERR_PROVIDER_UNAVAILABLE', `configfs-tsm: ${root} does not exist`, {
        cause: err,
      });
    throw failed(`mkdir ${dir}`, err);
  }
  try {
    return await fn(dir);
  } finally {
    // The kernel frees the report when its directory goes; a failure here must not mask `fn`'s outcome.
    await fs.rmdir(dir).catch(() => undefined);
  }
}

async function readProvider(fs: TsmFileSystem, dir: string): Promise<EvidenceFormat> {
  let name: string;
  try {
    name = text(await fs.read(join(dir, 'provider'), 256));
  } catch (err) {
    throw new AttestationError('ERR_PROVIDER_UNAVAILABLE', 'configfs-tsm: no provider attribute', {
      cause: err,
    });
  }
  const format = PROVIDERS[name];
  if (!format)
    throw new AttestationError('ERR_PROVIDER_UNAVAILABLE', `configfs-tsm: unsupported provider "${name}"`, {
      details: { provider: name },
    });
  return format;
}

async function readGeneration(fs: TsmFileSystem, dir: string): Promise<string> {
  try {
    const g = text(await fs.read(join(dir, 'generation'), 64));
    if (!/^\d+$/.test(g)) throw new Error(`generation is "${g}"`);
    return g;
  } catch (err) {
    throw failed('reading generation', err);
  }
}

/** Picks the VEK the report says signed it (SIGNING_KEY, bits 4:2 of 0x48) and the chain from the table. */
function snpCerts(
  report: Uint8Array,
  auxblob: Uint8Array,
): Pick<EvidenceInput, 'vek' | 'chain' | 'launchEndorsement'> {
  const entries = parseCertTable(auxblob);
  const byGuid = new Map(entries.map((e) => [e.guid, e.data]));
  const signingKey = report.length >= 0x4c ? (report[0x48]! >> 2) & 0x7 : 0;
  const vek = byGuid.get(signingKey === 1 ? CERT_TABLE_GUIDS.vlek : CERT_TABLE_GUIDS.vcek);
  const ask = byGuid.get(CERT_TABLE_GUIDS.ask);
  const ark = byGuid.get(CERT_TABLE_GUIDS.ark);
  const chain = [ask, ark].filter((c): c is Uint8Array => c !== undefined && c.length > 0);
  // Google Cloud: the launch endorsement of the running firmware (cloud-evidence.md §3.2).
  const endorsement = byGuid.get(GCE_ENDORSEMENT_CERT_TABLE_GUID);
  return {
    ...(vek && vek.length > 0 ? { vek } : {}),
    ...(chain.length > 0 ? { chain } : {}),
    ...(endorsement && endorsement.length > 0 ? { launchEndorsement: endorsement } : {}),
  };
}

/**
 * Opens the configfs-tsm interface: resolves once the provider (sev_guest or tdx_guest) is known.
 * Rejects with ERR_PROVIDER_UNAVAILABLE when the folder is missing or the provider is unknown.
 */
export async function configfsTsm(options: ConfigfsTsmOptions = {}): Promise<EvidenceProvider> {
  if (typeof options !== 'object' || options === null)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'options must be an object');
  const root = options.root ?? DEFAULT_TSM_ROOT;
  const fs = options.fs ?? nodeTsmFileSystem;
  const privlevel = options.privlevel;
  if (typeof root !== 'string' || root.length === 0)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'root must be a non-empty path');
  if (privlevel !== undefined && !(Number.isInteger(privlevel) && privlevel >= 0 && privlevel <= 3))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'privlevel must be 0..3');
  const endorsementFile = options.launchEndorsement;
  if (endorsementFile !== undefined && (typeof endorsementFile !== 'string' || endorsementFile.length === 0))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'launchEndorsement must be a non-empty path');
  const format = await withReportDir(fs, root, (dir) => readProvider(fs, dir));
  if (privlevel !== undefined && format !== 'sev-snp')
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'privlevel applies to SEV-SNP only');

  return {
    format,
    async getEvidence(reportData: Uint8Array, opts?: EvidenceRequestOptions): Promise<EvidenceInput> {
      const data = reportDataArg(reportData);
      const signal = opts?.signal;
      throwIfAborted(signal);
      return withReportDir(fs, root, async (dir) => {
        if ((await readProvider(fs, dir)) !== format)
          throw new AttestationError('ERR_PROVIDER_FAILED', 'configfs-tsm: the provider changed');
        if (privlevel !== undefined) {
          try {
            await fs.write(join(dir, 'privlevel'), new Uint8Array(Buffer.from(`${privlevel}\n`)));
          } catch (err) {
            throw failed('writing privlevel', err);
          }
        }
        // The log is read before the quote is made: a log read later could explain events that
        // extended the RTMRs after the quote.
        const eventLog = format === 'tdx' ? await readCcel(fs, options.ccel) : undefined;
        try {
          await fs.write(join(dir, 'inblob'), data);
        } catch (err) {
          throw failed('writing inblob', err);
        }
        const before = await readGeneration(fs, dir);
        throwIfAborted(signal);
        let report: Uint8Array;
        let auxblob: Uint8Array | undefined;
        try {
          report = await fs.read(join(dir, 'outblob'), MAX_BLOB);
        } catch (err) {
          throw failed('reading outblob', err);
        }
        if (report.length === 0)
          throw new AttestationError('ERR_PROVIDER_FAILED', 'configfs-tsm: empty outblob');
        if (format === 'sev-snp') {
          try {
            auxblob = await fs.read(join(dir, 'auxblob'), MAX_BLOB);
          } catch (err) {
            // Kernels before auxblob support have no such attribute: then there are no certificates.
            if (errnoOf(err) !== 'ENOENT') throw failed('reading auxblob', err);
          }
        }
        const after = await readGeneration(fs, dir);
        if (after !== before)
          throw new AttestationError(
            'ERR_PROVIDER_FAILED',
            `configfs-tsm: generation changed from ${before} to ${after} (a concurrent writer raced this request)`,
          );
        const fromFile = endorsementFile
          ? { launchEndorsement: await readEndorsement(fs, endorsementFile) }
          : {};
        if (format === 'tdx') return { report, ...(eventLog ? { eventLog } : {}), ...fromFile };
        return { report, ...(auxblob ? snpCerts(report, auxblob) : {}), ...fromFile };
      });
    },
  };
}
