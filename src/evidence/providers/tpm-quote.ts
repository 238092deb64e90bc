/**
 * Evidence from a TPM 2.0 (issue 13): a TPM2_Quote by an attestation key over the chosen PCR
 * banks, whose qualifyingData is SHA-384(binder) (as on Azure: 48 bytes fit every TPM's
 * TPM2B_DATA), the PCR values, the AK's public area and, where the platform keeps one, the AK
 * certificate; plus the firmware's event log, which the verifier replays to the quoted PCRs.
 *
 * `tpmQuote()` is generic (a physical TPM, swtpm, a cloud vTPM); `gceVtpm()` is Google Cloud's
 * layout: the AK is a primary key of the endorsement hierarchy derived from a template in NV, with
 * Google's certificate for it in the NV index beside the template (go-tpm-tools client/handles.go:
 * RSA template 0x01c10001 / certificate 0x01c10000, ECC 0x01c10003 / 0x01c10002).
 */
import { readFile } from 'node:fs/promises';
import { AttestationError } from '../../errors.js';
import type { EventLogInput } from '../boot.js';
import { gceVtpmQuoteNonce } from '../gce/vtpm.js';
import { TpmClient, type TpmFraming } from '../tpm/client.js';
import { hashAlgOfName, type PcrBankName } from '../tpm/marshal.js';
import { reportDataArg, throwIfAborted } from './input.js';

/** Where Linux exposes the firmware's TPM event log. */
export const TPM_EVENT_LOG_PATH = '/sys/kernel/security/tpm0/binary_bios_measurements';

/** Google Cloud's vTPM NV indices (AK templates and the certificates of the keys they give). */
export const GCE_AK_NV = {
  RSA_CERT: 0x01c10000,
  RSA_TEMPLATE: 0x01c10001,
  ECC_CERT: 0x01c10002,
  ECC_TEMPLATE: 0x01c10003,
} as const;

export interface TpmQuoteOptions {
  /** The TPM device (default /dev/tpmrm0). */
  device?: string;
  /** A TPM simulator instead of the device (swtpm `--server type=tcp`). */
  tcp?: { host?: string; port: number; framing?: TpmFraming };
  /** A persistent AK. One of `akHandle` and `akTemplateNvIndex` is required. */
  akHandle?: number;
  /** Derive the AK as a primary key of the endorsement hierarchy from the TPMT_PUBLIC template in this NV index. */
  akTemplateNvIndex?: number;
  /** The NV index holding the AK certificate (DER), sent with the quote. */
  akCertNvIndex?: number;
  /** PCR banks to quote (default ['sha256']). */
  banks?: PcrBankName[];
  /** PCRs to quote in each bank (default 0-23). */
  pcrs?: number[];
  /**
   * The event log to send: a path, or false for none. Default: TPM_EVENT_LOG_PATH, left out
   * when that file does not exist (a path given explicitly must be readable).
   */
  eventLog?: string | false;
  /** Per TPM command, ms (default 10 000). */
  timeoutMs?: number;
}

/** What tpmQuote() hands over: the input of verifyGceVtpm() when `akCert` is present. */
export interface TpmQuoteEvidence {
  akCert?: Uint8Array;
  /** The AK's TPMT_PUBLIC. */
  akPublic: Uint8Array;
  tpm: { quote: Uint8Array; signature: Uint8Array; pcrs: Record<string, Record<string, string>> };
  eventLog?: EventLogInput;
}

export interface TpmQuoteProvider {
  readonly format: 'tpm';
  getEvidence(reportData: Uint8Array, options?: { signal?: AbortSignal }): Promise<TpmQuoteEvidence>;
}

/** The event log is at most a few MiB (eventlog/parse.ts MAX_EVENT_LOG_SIZE); the read is bounded by it. */
const MAX_LOG_READ = 4 * 1024 * 1024;

async function readLog(path: string, explicit: boolean): Promise<Uint8Array | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    if (!explicit && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AttestationError('ERR_PROVIDER_UNAVAILABLE', `cannot read the event log ${path}`, {
      details: { path },
      cause: err,
    });
  }
  if (bytes.length > MAX_LOG_READ)
    throw new AttestationError('ERR_PROVIDER_FAILED', `the event log ${path} is over ${MAX_LOG_READ} bytes`);
  return new Uint8Array(bytes);
}

function checkOptions(o: TpmQuoteOptions): { banks: PcrBankName[]; pcrs: number[] } {
  const bad = (m: string) => new AttestationError('ERR_INVALID_ARGUMENT', `tpmQuote: ${m}`);
  if (typeof o !== 'object' || o === null) throw bad('options must be an object');
  if (o.eventLog !== undefined && o.eventLog !== false && typeof o.eventLog !== 'string')
    throw bad('eventLog must be a path or false');
  for (const k of ['akHandle', 'akTemplateNvIndex', 'akCertNvIndex', 'timeoutMs'] as const)
    if (
      o[k] !== undefined &&
      !(Number.isInteger(o[k]) && (o[k] as number) >= 0 && (o[k] as number) <= 0xffffffff)
    )
      throw bad(`${k} must be an integer`);
  if (o.device !== undefined && typeof o.device !== 'string') throw bad('device must be a path');
  if (o.tcp !== undefined && (typeof o.tcp !== 'object' || o.tcp === null || !Number.isInteger(o.tcp.port)))
    throw bad('tcp must be { host?, port }');
  if ((o.akHandle === undefined) === (o.akTemplateNvIndex === undefined))
    throw bad('give exactly one of akHandle and akTemplateNvIndex');
  const banks = o.banks ?? ['sha256'];
  if (!Array.isArray(banks) || banks.length === 0 || banks.some((b) => hashAlgOfName(b) === undefined))
    throw bad('banks must name PCR banks (sha1, sha256, sha384, sha512)');
  const pcrs = o.pcrs ?? [...Array(24).keys()];
  if (!Array.isArray(pcrs) || pcrs.length === 0 || pcrs.some((p) => !Number.isInteger(p) || p < 0 || p > 23))
    throw bad('pcrs must be PCR indices 0-23');
  return { banks, pcrs };
}

/** An evidence provider for a TPM 2.0 quote (see the module comment). */
export function tpmQuote(options: TpmQuoteOptions): TpmQuoteProvider {
  const { banks, pcrs } = checkOptions(options);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const selection = banks.map((b) => ({ hash: hashAlgOfName(b)!, pcrs }));
  const open = () =>
    options.tcp
      ? TpmClient.tcp({ ...options.tcp, timeoutMs })
      : TpmClient.device(options.device ?? '/dev/tpmrm0', { timeoutMs });
  return {
    format: 'tpm',
    async getEvidence(reportData, opts = {}) {
      throwIfAborted(opts.signal);
      const binder = reportDataArg(reportData);
      const signal = opts.signal ? { signal: opts.signal } : {};
      const tpm = await open();
      try {
        let handle = options.akHandle;
        let transient: number | undefined;
        let akPublic: Uint8Array;
        if (options.akTemplateNvIndex !== undefined) {
          const template = await tpm.nvRead(options.akTemplateNvIndex, signal);
          const primary = await tpm.createPrimary(template, signal);
          transient = primary.handle;
          handle = primary.handle;
          akPublic = primary.publicArea;
        } else akPublic = (await tpm.readPublic(handle, opts.signal)).publicArea;
        try {
          const akCert =
            options.akCertNvIndex !== undefined ? await tpm.nvRead(options.akCertNvIndex, signal) : undefined;
          // The log is read before the quote: events the OS appends later extend PCRs after it,
          // and a log read after the quote could explain more than the quote covers.
          const path = options.eventLog === false ? undefined : (options.eventLog ?? TPM_EVENT_LOG_PATH);
          const log = path === undefined ? undefined : await readLog(path, options.eventLog !== undefined);
          const quote = await tpm.quote(gceVtpmQuoteNonce(binder), selection, { handle: handle!, ...signal });
          const values = await tpm.pcrRead(selection, opts.signal);
          return {
            ...(akCert ? { akCert } : {}),
            akPublic,
            tpm: {
              quote: quote.message,
              signature: quote.signature,
              pcrs: values as Record<string, Record<string, string>>,
            },
            ...(log ? { eventLog: { log } } : {}),
          };
        } finally {
          if (transient !== undefined) await tpm.flushContext(transient).catch(() => {});
        }
      } finally {
        await tpm.close();
      }
    },
  };
}

export interface GceVtpmOptions
  extends Omit<TpmQuoteOptions, 'akHandle' | 'akTemplateNvIndex' | 'akCertNvIndex'> {
  /** Which of Google's AKs (default 'rsa'). */
  key?: 'rsa' | 'ecc';
}

/** tpmQuote() with Google Cloud's AK: the template and certificate NV indices of GCE_AK_NV. */
export function gceVtpm(options: GceVtpmOptions = {}): TpmQuoteProvider {
  if (typeof options !== 'object' || options === null)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'gceVtpm: options must be an object');
  const { key = 'rsa', ...rest } = options;
  if (key !== 'rsa' && key !== 'ecc')
    throw new AttestationError('ERR_INVALID_ARGUMENT', "gceVtpm: key must be 'rsa' or 'ecc'");
  return tpmQuote({
    ...rest,
    akTemplateNvIndex: key === 'ecc' ? GCE_AK_NV.ECC_TEMPLATE : GCE_AK_NV.RSA_TEMPLATE,
    akCertNvIndex: key === 'ecc' ? GCE_AK_NV.ECC_CERT : GCE_AK_NV.RSA_CERT,
  });
}
