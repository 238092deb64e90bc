/**
 * The Azure parts of the CLI (issue 12): the `--tpm-quote`, `--tpm-signature`, `--pcrs`,
 * `--td-quote` and `--ak` options of `verify`, what `inspect` prints for an HCL report or a
 * TPMS_ATTEST, and the unverified fields of Azure evidence that did not verify. verify.ts and
 * inspect.ts stay format-neutral and call into here.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { AttestationError } from '../errors.js';
import { parseHclReport } from '../evidence/azure/hcl.js';
import { bytesToHex } from '../evidence/bytes.js';
import {
  type AzureVtpmOptions,
  type AzureVtpmProvider,
  azureVtpm,
} from '../evidence/providers/azure-vtpm.js';
import { parseSnpReport } from '../evidence/snp/report.js';
import { parseTpmsAttest, TPM_GENERATED_VALUE } from '../evidence/tpm/attest.js';
import { hashInfo } from '../evidence/tpm/marshal.js';
import { akFromSpki } from '../evidence/tpm/quote.js';
import type { AzureClaims, EvidenceInput, VerifyOptions } from '../evidence/types.js';

export const AZURE_OPTIONS = {
  'tpm-quote': { type: 'string' },
  'tpm-signature': { type: 'string' },
  pcrs: { type: 'string' },
  'td-quote': { type: 'string' },
  ak: { type: 'string' },
} as const;

export const AZURE_USAGE = `  Azure (the evidence is an HCL report, vTPM NV 0x01400001):
  --tpm-quote F     the TPM2_Quote message (TPMS_ATTEST, as tpm2_quote -m writes it)
  --tpm-signature F its TPMT_SIGNATURE (tpm2_quote -s)
  --pcrs F          the quoted PCR values, {"sha256": {"0": "<hex>", ...}}
  --td-quote F      TDX: the TD quote of the HCL report's TDREPORT (IMDS /acc/tdquote)
  --ak F            the AK you expect (SPKI, PEM or DER): must be the report's HCLAkPub
  --nonce HEX       the quote's qualifyingData must be these bytes (ERR_BINDING_MISMATCH)
`;

interface AzureValues {
  'tpm-quote'?: string;
  'tpm-signature'?: string;
  pcrs?: string;
  'td-quote'?: string;
  ak?: string;
  nonce?: string;
}

/**
 * Turns the Azure options into the EvidenceInput's tpm / tdQuote, the expected AK, and with
 * --nonce a check that the quote's qualifyingData is that nonce (ERR_BINDING_MISMATCH otherwise).
 */
export async function applyAzureOptions(
  values: AzureValues,
  input: EvidenceInput,
  options: VerifyOptions,
  fail: (message: string) => Error,
): Promise<void> {
  const read = async (flag: keyof AzureValues): Promise<Uint8Array | undefined> => {
    const path = values[flag];
    if (path === undefined) return undefined;
    try {
      return new Uint8Array(await readFile(path));
    } catch (err) {
      throw fail(`cannot read --${flag} ${path}: ${(err as Error).message}`);
    }
  };
  const quote = await read('tpm-quote');
  const signature = await read('tpm-signature');
  const pcrsFile = await read('pcrs');
  const given = [quote, signature, pcrsFile].filter((x) => x !== undefined).length;
  if (given !== 0 && given !== 3) throw fail('--tpm-quote, --tpm-signature and --pcrs go together');
  if (quote && signature && pcrsFile) {
    let pcrs: unknown;
    try {
      pcrs = JSON.parse(Buffer.from(pcrsFile).toString('utf8'));
    } catch {
      throw fail(`--pcrs ${values.pcrs} is not JSON`);
    }
    if (typeof pcrs !== 'object' || pcrs === null || Array.isArray(pcrs))
      throw fail(`--pcrs ${values.pcrs} is not an object like {"sha256": {"0": "<hex>"}}`);
    input.tpm = { quote, signature, pcrs: pcrs as NonNullable<EvidenceInput['tpm']>['pcrs'] };
  }
  const tdQuote = await read('td-quote');
  if (tdQuote) input.tdQuote = tdQuote;
  if (values.nonce !== undefined) {
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(values.nonce)) throw fail(`--nonce ${values.nonce} is not hex`);
    const nonce = values.nonce.toLowerCase();
    options.check = (claims) => {
      const extraData = (claims as AzureClaims).tpm.extraData;
      if (extraData !== nonce)
        throw new AttestationError('ERR_BINDING_MISMATCH', 'the TPM quote extraData is not --nonce', {
          details: { extraData },
        });
      return true;
    };
  }
  const ak = await read('ak');
  if (ak) {
    const text = Buffer.from(ak).toString('latin1');
    try {
      options.expectedAk = akFromSpki(text.includes('-----BEGIN') ? text : ak);
    } catch {
      throw fail(`--ak ${values.ak} is not a public key (SubjectPublicKeyInfo, PEM or DER)`);
    }
  }
}

/** True when the bytes are a TPMS_ATTEST (TPM_GENERATED_VALUE first): `inspect` shows its fields. */
export function isTpmsAttest(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && Buffer.from(bytes.subarray(0, 4)).readUInt32BE(0) === TPM_GENERATED_VALUE;
}

/** The fields of a TPMS_ATTEST (quote), nothing verified. */
export function inspectTpmsAttest(bytes: Uint8Array): Record<string, unknown> {
  const a = parseTpmsAttest(bytes);
  return {
    magic: `0x${TPM_GENERATED_VALUE.toString(16)}`,
    type: `0x${a.type.toString(16)} (TPM_ST_ATTEST_QUOTE)`,
    qualifiedSigner: a.qualifiedSigner,
    extraData: a.extraData,
    clockInfo: { clock: a.clock, resetCount: a.resetCount, restartCount: a.restartCount, safe: a.safe },
    firmwareVersion: a.firmwareVersion.toString(16).padStart(16, '0'),
    pcrSelect: a.pcrSelect.map((s) => ({ bank: hashInfo(s.hash)?.name ?? s.hash, pcrs: s.pcrs })),
    pcrDigest: a.pcrDigest,
  };
}

/**
 * An HCL report's header, runtime-data header, runtime claims (parsed as JSON here only for
 * display: nothing is verified) and the hardware report's fields.
 */
export function inspectHclFields(bytes: Uint8Array): Record<string, unknown> {
  const hcl = parseHclReport(bytes);
  let runtimeClaims: unknown;
  try {
    runtimeClaims = JSON.parse(Buffer.from(hcl.claimsBytes).toString('utf8'));
  } catch (err) {
    runtimeClaims = { error: `not JSON: ${(err as Error).message}` };
  }
  let hardware: Record<string, unknown>;
  try {
    if (hcl.tee === 'sev-snp') {
      const { raw: _raw, ...report } = parseSnpReport(hcl.hardwareReport);
      hardware = report;
    } else hardware = tdreportFields(hcl.hardwareReport);
  } catch (err) {
    hardware = { error: (err as Error).message };
  }
  return {
    header: {
      signature: 'HCLA',
      version: hcl.version,
      reportSize: hcl.reportSize,
      requestType: hcl.requestType,
      status: hcl.status,
    },
    runtimeData: { ...hcl.runtimeData, hash: hcl.hash.name },
    runtimeClaimsSha256: createHash('sha256').update(hcl.claimsBytes).digest('hex'),
    runtimeClaims,
    hardwareReport: hardware,
  };
}

/** TDREPORT_STRUCT fields (Intel TDX module ABI), for inspect. */
export function tdreportFields(r: Uint8Array): Record<string, unknown> {
  const hex = (off: number, len: number) => bytesToHex(r.subarray(off, off + len));
  return {
    reportType: hex(0, 4),
    reportData: hex(128, 64),
    teeTcbSvn: hex(264, 16),
    mrSeam: hex(280, 48),
    mrSignerSeam: hex(328, 48),
    seamAttributes: hex(376, 8),
    tdAttributes: hex(512, 8),
    xfam: hex(520, 8),
    mrTd: hex(528, 48),
    mrConfigId: hex(576, 48),
    mrOwner: hex(624, 48),
    mrOwnerConfig: hex(672, 48),
    rtmr0: hex(720, 48),
    rtmr1: hex(768, 48),
    rtmr2: hex(816, 48),
    rtmr3: hex(864, 48),
  };
}

/** What an HCL report that did not verify states by itself (nothing in it is trusted). */
export function unverifiedAzureClaims(report: Uint8Array): Record<string, unknown> | undefined {
  try {
    return inspectHclFields(report);
  } catch {
    return undefined;
  }
}

/** serve's Azure options: `--azure [--tpm DEVICE | --tpm-tcp HOST:PORT] [--imds-url URL] [--report-binding]`. */
export const AZURE_SERVE_OPTIONS = {
  azure: { type: 'boolean' },
  tpm: { type: 'string' },
  'tpm-tcp': { type: 'string' },
  'imds-url': { type: 'string' },
  'report-binding': { type: 'boolean' },
} as const;

export const AZURE_SERVE_USAGE = `  --azure             evidence from this Azure confidential VM's vTPM (HCL report, TPM quote, IMDS)
  --tpm DEVICE        the TPM device for --azure (default /dev/tpmrm0)
  --tpm-tcp HOST:PORT a TPM simulator for --azure instead of the device
  --imds-url URL      instance metadata service (default http://169.254.169.254)
  --report-binding    also bind the HCL report (NV 0x01400002 user-data; current paravisors)
`;

/** The azureVtpm() provider of serve's options, or undefined without --azure. */
export function azureProviderFrom(values: Record<string, unknown>): AzureVtpmProvider | undefined {
  const bad = (m: string) => new AttestationError('ERR_INVALID_ARGUMENT', m);
  if (!values['azure']) {
    for (const k of ['tpm', 'tpm-tcp', 'imds-url', 'report-binding'])
      if (values[k] !== undefined) throw bad(`--${k} needs --azure`);
    return undefined;
  }
  if (values['tpm'] !== undefined && values['tpm-tcp'] !== undefined)
    throw bad('give --tpm or --tpm-tcp, not both');
  const options: AzureVtpmOptions = {};
  if (typeof values['tpm'] === 'string') options.device = values['tpm'];
  if (typeof values['tpm-tcp'] === 'string') {
    const m = /^(.+):(\d{1,5})$/.exec(values['tpm-tcp']);
    if (!m || Number(m[2]) > 65535) throw bad(`--tpm-tcp ${values['tpm-tcp']} is not HOST:PORT`);
    options.tcp = { host: m[1]!, port: Number(m[2]) };
  }
  if (typeof values['imds-url'] === 'string') {
    if (!/^https?:\/\/./.test(values['imds-url']))
      throw bad(`--imds-url ${values['imds-url']} is not an http(s) URL`);
    options.imdsUrl = values['imds-url'];
  }
  if (values['report-binding']) options.reportBinding = true;
  return azureVtpm(options);
}

/**
 * A policy that admits a simulated Azure VM of `format` only: its hardware section, and the
 * simulated PCRs that pin the workload (PCR 4, 7 and 11: boot manager, Secure Boot, unified kernel).
 */
export function simulatedAzurePin(
  format: string,
  simulated: { defaults: { azurePcrs: Readonly<Record<string, string>> } },
): { azure: Record<string, unknown> } {
  const pcrs = simulated.defaults.azurePcrs;
  return {
    azure: {
      ...(format === 'azure-tdx' ? { tdx: {} } : { snp: {} }),
      pcrs: { sha256: { '4': [pcrs['4']], '7': [pcrs['7']], '11': [pcrs['11']] } },
    },
  };
}
