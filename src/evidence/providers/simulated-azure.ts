/**
 * A simulated Azure confidential VM (issue 12), in TypeScript alone: a vTPM with its own RSA-2048
 * attestation key, an HCL report (layout of docs/reference/cloud-evidence.md §1.2) around a
 * simulated SEV-SNP report at VMPL 0 or a simulated TDREPORT with its TD quote, and TPM2_Quotes
 * (TPMS_ATTEST of TPM 2.0 Part 2 §10.12, RSASSA-SHA256) over the SHA-256 PCRs.
 *
 * Like a real paravisor, it puts hash(runtime claims) in REPORT_DATA; the binder goes into the
 * quote's qualifyingData (SHA-384(binder)) and, unless `reportBinding` is false, into the runtime
 * claims' user-data (as a paravisor that re-issued the report after NV 0x01400002 was written).
 * Its hardware reports chain only to the simulated roots (`simulated.trustAnchors()`).
 */
import { constants, createHash, createPublicKey, type KeyObject, randomUUID, sign } from 'node:crypto';
import { AttestationError } from '../../errors.js';
import { azureQuoteNonce } from '../azure/binding.js';
import { HCL_CLAIMS_OFFSET, HCL_HEADER_SIZE, HCL_MAGIC, HCL_RUNTIME_HEADER_OFFSET } from '../azure/hcl.js';
import { bytesToHex } from '../bytes.js';
import { parseTdxQuote } from '../tdx/quote.js';
import { TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE } from '../tpm/attest.js';
import { TPM_ALG, TpmWriter, writePcrSelection } from '../tpm/marshal.js';
import type { EvidenceInput, EvidenceProvider, EvidenceRequestOptions } from '../types.js';
import { fixedBytes, reportDataArg, throwIfAborted } from './input.js';
import { type SimulatedSnpOptions, simulatedKey, simulatedSnp } from './simulated-snp.js';
import { type SimulatedTdxOptions, simulatedTdx } from './simulated-tdx.js';

export interface SimulatedAzureOptions {
  /** The hardware under the paravisor (default 'snp'). */
  tee?: 'snp' | 'tdx';
  /**
   * SHA-256 PCR values by index ("0"–"23"), 32 bytes or 64 hex digits each. Missing ones take
   * SIMULATED_AZURE_PCRS (fixed values, the same for every simulated VM).
   */
  pcrs?: Record<string, Uint8Array | string>;
  /** Put the binder in the runtime claims' user-data too (default true). False: a boot-time report, user-data zero. */
  reportBinding?: boolean;
  /** The simulated SEV-SNP platform's options (VMPL is the paravisor's 0 unless given). */
  snp?: SimulatedSnpOptions;
  /** The simulated TDX platform's options. */
  tdx?: SimulatedTdxOptions;
  /** The vTPM attestation key (RSA, private). Default: the simulator's published RSA-2048 AK. */
  ak?: KeyObject;
}

/** The PCR values a simulated Azure VM reports by default: SHA-256("simulated azure PCR <i>"). */
export const SIMULATED_AZURE_PCRS: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries(
    Array.from({ length: 24 }, (_, i) => [
      String(i),
      createHash('sha256').update(`simulated azure PCR ${i}`).digest('hex'),
    ]),
  ),
);

export interface SimulatedAzureProvider extends EvidenceProvider {
  readonly format: 'azure-sev-snp' | 'azure-tdx';
  /** The AK's public key (what the HCL report names as HCLAkPub). */
  readonly akPublic: KeyObject;
  /** The PCR values it quotes, `{ sha256: { "0": hex, … } }`. */
  readonly pcrs: { sha256: Record<string, string> };
}

function hclReport(tee: 'snp' | 'tdx', hardware: Uint8Array, claims: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.max(2600, HCL_CLAIMS_OFFSET + claims.length));
  const v = new DataView(out.buffer);
  v.setUint32(0, HCL_MAGIC, true);
  // Real reports: version 1 (SNP) or 2 (TDX), report_size = 0x4D4 + claim size, request type 2.
  v.setUint32(4, tee === 'snp' ? 1 : 2, true);
  v.setUint32(8, HCL_CLAIMS_OFFSET + claims.length, true);
  v.setUint32(12, 2, true);
  out.set(hardware, HCL_HEADER_SIZE);
  const rt = HCL_RUNTIME_HEADER_OFFSET;
  v.setUint32(rt, claims.length + 20, true);
  v.setUint32(rt + 4, 1, true);
  v.setUint32(rt + 8, tee === 'snp' ? 2 : 4, true);
  v.setUint32(rt + 12, 1, true); // SHA-256, as every real report
  v.setUint32(rt + 16, claims.length, true);
  out.set(claims, HCL_CLAIMS_OFFSET);
  return out;
}

/** A TDREPORT_STRUCT (Intel TDX module ABI) with the fields of a TD quote's body at their offsets. */
function tdreportOf(quote: Uint8Array): Uint8Array {
  const b = parseTdxQuote(quote).body;
  const r = new Uint8Array(1024);
  r[0] = 0x81; // REPORTTYPE.TYPE: TDX
  const fields: Array<[Uint8Array | undefined, number]> = [
    [b.reportData, 128],
    [b.teeTcbSvn, 264],
    [b.mrSeam, 280],
    [b.mrSignerSeam, 328],
    [b.seamAttributes, 376],
    [b.teeTcbSvn2, 384],
    [b.tdAttributes, 512],
    [b.xfam, 520],
    [b.mrTd, 528],
    [b.mrConfigId, 576],
    [b.mrOwner, 624],
    [b.mrOwnerConfig, 672],
    [b.rtmr0, 720],
    [b.rtmr1, 768],
    [b.rtmr2, 816],
    [b.rtmr3, 864],
    [b.mrServiceTd, 912],
  ];
  for (const [value, offset] of fields) if (value) r.set(value, offset);
  return r;
}

/** A simulated Azure CVM: an EvidenceProvider of format azure-sev-snp or azure-tdx. */
export function simulatedAzure(options: SimulatedAzureOptions = {}): SimulatedAzureProvider {
  if (typeof options !== 'object' || options === null)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'options must be an object');
  const tee = options.tee ?? 'snp';
  if (tee !== 'snp' && tee !== 'tdx')
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'tee must be "snp" or "tdx"');
  const pcrs: Record<string, string> = { ...SIMULATED_AZURE_PCRS };
  for (const [index, value] of Object.entries(options.pcrs ?? {})) {
    if (!Object.hasOwn(SIMULATED_AZURE_PCRS, index))
      throw new AttestationError('ERR_INVALID_ARGUMENT', `pcrs: "${index}" is not a PCR index 0..23`);
    pcrs[index] = bytesToHex(fixedBytes(`pcrs.${index}`, value, [32], new Uint8Array(32)));
  }
  // A published key, like every simulator key (simulated-keys.ts): keys are never generated here.
  const ak = options.ak ?? simulatedKey('azureAk');
  if (ak.type !== 'private' || ak.asymmetricKeyType !== 'rsa')
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'ak must be an RSA private key');
  const akPublic = createPublicKey(ak);
  const hardware =
    tee === 'snp' ? simulatedSnp({ vmpl: 0, ...options.snp }) : simulatedTdx({ ...options.tdx });
  const indices = Object.keys(pcrs)
    .map(Number)
    .sort((a, b) => a - b);
  const pcrDigest = createHash('sha256');
  for (const i of indices) pcrDigest.update(Buffer.from(pcrs[String(i)]!, 'hex'));
  const digest = pcrDigest.digest();
  const vmUniqueId = randomUUID().toUpperCase();
  let clock = 1_000_000;

  function quote(binder: Uint8Array): { quote: Uint8Array; signature: Uint8Array } {
    clock += 1000;
    const w = new TpmWriter()
      .u32(TPM_GENERATED_VALUE)
      .u16(TPM_ST_ATTEST_QUOTE)
      // qualifiedSigner: nameAlg SHA-256 ‖ a digest standing for the AK's qualified name.
      .tpm2b(Uint8Array.of(0x00, 0x0b, ...createHash('sha256').update(akDer(akPublic)).digest()))
      .tpm2b(azureQuoteNonce(binder))
      .u32(Math.floor(clock / 2 ** 32))
      .u32(clock >>> 0)
      .u32(1) // resetCount
      .u32(0) // restartCount
      .u8(1) // safe
      // firmwareVersion of Azure's vTPM (docs/reference/cloud-evidence.md §1.5)
      .u32(0x20200312)
      .u32(0x00120003);
    writePcrSelection(w, [{ hash: TPM_ALG.SHA256, pcrs: indices }]);
    w.tpm2b(digest);
    const message = w.finish();
    const sig = sign('sha256', message, { key: ak, padding: constants.RSA_PKCS1_PADDING });
    return {
      quote: message,
      signature: new TpmWriter().u16(TPM_ALG.RSASSA).u16(TPM_ALG.SHA256).tpm2b(sig).finish(),
    };
  }

  return {
    format: tee === 'snp' ? 'azure-sev-snp' : 'azure-tdx',
    akPublic,
    pcrs: { sha256: { ...pcrs } },
    async getEvidence(reportData: Uint8Array, opts?: EvidenceRequestOptions): Promise<EvidenceInput> {
      throwIfAborted(opts?.signal);
      const binder = reportDataArg(reportData);
      const json = {
        keys: [{ kid: 'HCLAkPub', key_ops: ['sign'], ...akPublic.export({ format: 'jwk' }) }],
        'vm-configuration': {
          'console-enabled': false,
          'secure-boot': true,
          'tpm-enabled': true,
          'tpm-persisted': true,
          vmUniqueId,
        },
        'user-data': options.reportBinding === false ? '0'.repeat(128) : bytesToHex(binder).toUpperCase(),
      };
      const claims = new Uint8Array(Buffer.from(JSON.stringify(json), 'utf8'));
      const hwReportData = new Uint8Array(64);
      hwReportData.set(createHash('sha256').update(claims).digest());
      const hw = await hardware.getEvidence(hwReportData, opts ?? {});
      const tpm = { ...quote(binder), pcrs: { sha256: { ...pcrs } } };
      if (tee === 'snp') {
        return {
          report: hclReport('snp', hw.report, claims),
          ...(hw.vek ? { vek: hw.vek } : {}),
          ...(hw.chain ? { chain: hw.chain } : {}),
          tpm,
        };
      }
      return {
        report: hclReport('tdx', tdreportOf(hw.report), claims),
        tdQuote: hw.report,
        ...(hw.collateral ? { collateral: hw.collateral } : {}),
        tpm,
      };
    },
  };
}

function akDer(key: KeyObject): Uint8Array {
  return new Uint8Array(key.export({ format: 'der', type: 'spki' }));
}
