/**
 * Evidence from inside an Azure confidential VM, through its vTPM (docs/reference/cloud-evidence.md
 * §1.4 and §1.6): the HCL report from NV 0x01400001, a TPM2_Quote by the AK at 0x81000003 whose
 * qualifyingData is SHA-384(binder), the PCR values, and the hardware endorsement from the
 * instance metadata service: the VCEK (THIM, SEV-SNP) or the TD quote of the TDREPORT (TDX).
 *
 * With `reportBinding`, the binder is also written to NV 0x01400002 and the HCL report is read
 * again until the paravisor has re-issued it with `user-data` = the binder (bounded polling:
 * some paravisors take a few seconds).
 */
import { AttestationError } from '../../errors.js';
import { azureQuoteNonce } from '../azure/binding.js';
import { parseHclReport } from '../azure/hcl.js';
import type { AzureEvidenceInput } from '../azure/verify.js';
import { base64url, bytesToHex, fromBase64url } from '../bytes.js';
import { TpmClient, type TpmFraming } from '../tpm/client.js';
import { AZURE_AK_HANDLE, AZURE_NV } from '../tpm/commands.js';
import { TPM_ALG } from '../tpm/marshal.js';
import type { EvidenceRequestOptions } from '../types.js';
import { pemToDer } from '../x509/pem.js';
import { reportDataArg, throwIfAborted } from './input.js';

export const AZURE_IMDS_URL = 'http://169.254.169.254';
const MAX_IMDS_BODY = 256 * 1024;

export interface AzureVtpmOptions {
  /** The TPM device (default /dev/tpmrm0). */
  device?: string;
  /** A TPM simulator instead of the device (swtpm `--server type=tcp`). */
  tcp?: { host?: string; port: number; framing?: TpmFraming };
  /** The AK handle (default 0x81000003). */
  akHandle?: number;
  /** SHA-256 PCRs to quote (default 0–23). */
  pcrs?: number[];
  /** Instance metadata service base URL (default http://169.254.169.254). */
  imdsUrl?: string;
  /** Per TPM command and per IMDS request, ms (default 10 000). */
  timeoutMs?: number;
  /** Also bind the HCL report: write the binder to NV 0x01400002 and wait for the re-issued report. */
  reportBinding?: boolean;
  /** How long to wait for the re-issued report (default 10 000 ms), and between reads (default 250 ms). */
  reportPollTimeoutMs?: number;
  reportPollIntervalMs?: number;
}

export interface AzureVtpmProvider {
  readonly format: 'azure';
  getEvidence(reportData: Uint8Array, options?: EvidenceRequestOptions): Promise<AzureEvidenceInput>;
}

function failed(message: string, details: Record<string, unknown> = {}, cause?: unknown): AttestationError {
  return new AttestationError('ERR_PROVIDER_FAILED', message, {
    details,
    ...(cause === undefined ? {} : { cause }),
  });
}

async function imds(
  url: string,
  init: { method: 'GET' | 'POST'; body?: string },
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Record<string, unknown>> {
  const timeout = AbortSignal.timeout(timeoutMs);
  let res: Response;
  try {
    res = await fetch(url, {
      method: init.method,
      // IMDS answers 415 to "application/json; charset=utf-8": exactly this (kinvolk az-tdx-vtpm #91).
      headers: {
        Metadata: 'true',
        ...(init.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      },
      ...(init.body !== undefined ? { body: init.body } : {}),
      redirect: 'error',
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
  } catch (err) {
    if (signal?.aborted) throw new AttestationError('ERR_ABORTED', 'aborted', { cause: err });
    throw new AttestationError(
      'ERR_PROVIDER_UNAVAILABLE',
      `instance metadata service ${url}: ${(err as Error).message}`,
      {
        details: { url },
        cause: err,
      },
    );
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    throw failed(`instance metadata service ${url} answered ${res.status}`, { url, status: res.status });
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body?.getReader();
  for (;;) {
    const r = reader ? await reader.read() : { done: true as const, value: undefined };
    if (r.done) break;
    size += r.value.byteLength;
    if (size > MAX_IMDS_BODY) {
      await reader?.cancel().catch(() => {});
      throw failed(`instance metadata service ${url}: answer larger than ${MAX_IMDS_BODY} bytes`, { url });
    }
    chunks.push(r.value);
  }
  try {
    const json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('not an object');
    return json;
  } catch (err) {
    throw failed(`instance metadata service ${url}: the answer is not a JSON object`, { url }, err);
  }
}

/** An EvidenceProvider for an Azure CVM's vTPM. */
function checkOptions(options: AzureVtpmOptions): void {
  const bad = (m: string) => new AttestationError('ERR_INVALID_ARGUMENT', `azureVtpm: ${m}`);
  if (typeof options !== 'object' || options === null) throw bad('options must be an object');
  const ms = (name: keyof AzureVtpmOptions) => {
    const v = options[name];
    if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 2_147_483_647))
      throw bad(`${name} must be a positive number of ms`);
  };
  ms('timeoutMs');
  ms('reportPollTimeoutMs');
  ms('reportPollIntervalMs');
  if (options.device !== undefined && typeof options.device !== 'string') throw bad('device must be a path');
  const tcp = options.tcp as unknown;
  if (tcp !== undefined) {
    const t = tcp as Record<string, unknown>;
    if (typeof tcp !== 'object' || tcp === null) throw bad('tcp must be { host?, port, framing? }');
    if (!(typeof t.port === 'number' && Number.isInteger(t.port) && t.port > 0 && t.port < 65536))
      throw bad('tcp.port must be a port number');
    if (t.host !== undefined && typeof t.host !== 'string') throw bad('tcp.host must be a string');
    if (t.framing !== undefined && t.framing !== 'mssim' && t.framing !== 'raw')
      throw bad('tcp.framing must be "mssim" or "raw"');
  }
  if (
    options.akHandle !== undefined &&
    !(Number.isInteger(options.akHandle) && options.akHandle >= 0 && options.akHandle <= 0xffffffff)
  )
    throw bad('akHandle must be a TPM handle (u32)');
  const pcrs = options.pcrs as unknown;
  if (
    pcrs !== undefined &&
    !(Array.isArray(pcrs) && pcrs.length > 0 && pcrs.every((i) => Number.isInteger(i) && i >= 0 && i <= 23))
  )
    throw bad('pcrs must be a list of PCR indices 0..23');
  if (
    options.imdsUrl !== undefined &&
    !(typeof options.imdsUrl === 'string' && /^https?:\/\/./.test(options.imdsUrl))
  )
    throw bad('imdsUrl must be an http(s) URL');
  if (options.reportBinding !== undefined && typeof options.reportBinding !== 'boolean')
    throw bad('reportBinding must be a boolean');
}

export function azureVtpm(options: AzureVtpmOptions = {}): AzureVtpmProvider {
  checkOptions(options);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const base = (options.imdsUrl ?? AZURE_IMDS_URL).replace(/\/+$/, '');
  const pcrs = options.pcrs ?? [...Array(24).keys()];
  const selection = [{ hash: TPM_ALG.SHA256, pcrs }];
  const open = () =>
    options.tcp
      ? TpmClient.tcp({ ...options.tcp, timeoutMs })
      : TpmClient.device(options.device ?? '/dev/tpmrm0', { timeoutMs });

  async function readReport(tpm: TpmClient, binder: Uint8Array | undefined, signal?: AbortSignal) {
    const deadline = Date.now() + (options.reportPollTimeoutMs ?? 10_000);
    for (;;) {
      const report = await tpm.nvRead(AZURE_NV.HCL_REPORT, { ...(signal ? { signal } : {}) });
      if (!binder) return report;
      // The re-issued report carries the binder in its user-data; an older one does not.
      const hcl = parseHclReport(report);
      const text = Buffer.from(hcl.claimsBytes).toString('utf8');
      const m = /"user-data"\s*:\s*"([0-9a-fA-F]{128})"/.exec(text);
      if (m && m[1]!.toLowerCase() === bytesToHex(binder)) return report;
      if (Date.now() >= deadline)
        throw failed('the paravisor did not re-issue the HCL report with the binder as user-data in time', {
          field: 'reportBinding',
        });
      await new Promise((r) => setTimeout(r, options.reportPollIntervalMs ?? 250));
      throwIfAborted(signal);
    }
  }

  return {
    format: 'azure',
    async getEvidence(reportData, opts = {}) {
      throwIfAborted(opts.signal);
      const binder = reportDataArg(reportData);
      const tpm = await open();
      try {
        if (options.reportBinding) {
          try {
            await tpm.nvReadPublic(AZURE_NV.USER_DATA, opts.signal);
          } catch (err) {
            if (!(err instanceof AttestationError) || err.details.rcName !== 'TPM_RC_HANDLE (handle 1)')
              throw err;
            await tpm.nvDefineSpace(AZURE_NV.USER_DATA, 64);
          }
          await tpm.nvWrite(AZURE_NV.USER_DATA, binder, { ...(opts.signal ? { signal: opts.signal } : {}) });
        }
        const report = await readReport(tpm, options.reportBinding ? binder : undefined, opts.signal);
        const hcl = parseHclReport(report);
        const quote = await tpm.quote(azureQuoteNonce(binder), selection, {
          handle: options.akHandle ?? AZURE_AK_HANDLE,
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
        const values = await tpm.pcrRead(selection, opts.signal);
        const tpmPart = { quote: quote.message, signature: quote.signature, pcrs: values };
        if (hcl.tee === 'sev-snp') {
          const thim = await imds(
            `${base}/metadata/THIM/amd/certification`,
            { method: 'GET' },
            timeoutMs,
            opts.signal,
          );
          if (typeof thim.vcekCert !== 'string' || typeof thim.certificateChain !== 'string')
            throw failed('THIM answer has no vcekCert / certificateChain');
          const vek = pemToDer(thim.vcekCert, 'ERR_PROVIDER_FAILED');
          if (vek.length !== 1) throw failed('THIM vcekCert is not one certificate');
          return { report, vek: vek[0]!, chain: thim.certificateChain, tpm: tpmPart };
        }
        const body = JSON.stringify({ report: base64url(hcl.hardwareReport) });
        const answer = await imds(`${base}/acc/tdquote`, { method: 'POST', body }, timeoutMs, opts.signal);
        const tdQuote =
          typeof answer.quote === 'string' ? fromBase64url(answer.quote.replace(/=+$/, '')) : undefined;
        if (!tdQuote || tdQuote.length === 0) throw failed('IMDS /acc/tdquote answer has no base64url quote');
        return { report, tdQuote, tpm: tpmPart };
      } finally {
        await tpm.close();
      }
    },
  };
}
