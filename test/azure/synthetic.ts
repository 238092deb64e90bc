/**
 * Test-only builders for Azure-shaped evidence around a simulated hardware report: an HCL report
 * (layout of test/fixtures/azure/README.md), runtime claims with a chosen AK, and TPM quotes
 * signed by a node:crypto key with the TPMS_ATTEST layout of TPM 2.0 Part 2 §10.12.
 */
import { constants, createHash, type KeyObject, sign } from 'node:crypto';
import { TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE } from '../../src/evidence/tpm/attest.js';
import { hashInfo, TPM_ALG, TpmWriter, writePcrSelection } from '../../src/evidence/tpm/marshal.js';

export function runtimeClaimsJson(
  ak: KeyObject | null,
  extra: { userData?: string | null; vmConfiguration?: unknown; keys?: unknown[] } = {},
): Uint8Array {
  const keys = extra.keys ?? [];
  if (ak) keys.unshift({ kid: 'HCLAkPub', key_ops: ['sign'], ...ak.export({ format: 'jwk' }) });
  const json: Record<string, unknown> = {
    keys,
    'vm-configuration': extra.vmConfiguration ?? {
      'console-enabled': false,
      'secure-boot': true,
      'tpm-enabled': true,
      vmUniqueId: '00000000-0000-0000-0000-000000000000',
    },
  };
  if (extra.userData !== null) json['user-data'] = extra.userData ?? '0'.repeat(128);
  return new Uint8Array(Buffer.from(JSON.stringify(json)));
}

const HASH_NAMES = { 1: 'sha256', 2: 'sha384', 3: 'sha512' } as const;

/** REPORT_DATA the paravisor would request: hash(claims) ‖ zeros. */
export function reportDataFor(claims: Uint8Array, hashType: 1 | 2 | 3 = 1): Uint8Array {
  const out = new Uint8Array(64);
  out.set(createHash(HASH_NAMES[hashType]).update(claims).digest());
  return out;
}

export function buildHcl(opts: {
  tee: 'sev-snp' | 'tdx';
  hardwareReport: Uint8Array;
  claims: Uint8Array;
  hashType?: number;
  size?: number;
}): Uint8Array {
  const size = Math.max(opts.size ?? 2600, 0x4d4 + opts.claims.length);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x414c4348, true);
  v.setUint32(4, 2, true);
  v.setUint32(8, 0x4d4 + opts.claims.length, true);
  v.setUint32(12, 2, true);
  out.set(opts.hardwareReport.subarray(0, 1184), 0x20);
  v.setUint32(0x4c0, opts.claims.length + 20, true);
  v.setUint32(0x4c4, 1, true);
  v.setUint32(0x4c8, opts.tee === 'sev-snp' ? 2 : 4, true);
  v.setUint32(0x4cc, opts.hashType ?? 1, true);
  v.setUint32(0x4d0, opts.claims.length, true);
  out.set(opts.claims, 0x4d4);
  return out;
}

export function pcrBank(count = 24, seed = 'pcr', size = 32): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < count; i++)
    out[String(i)] = createHash('sha512')
      .update(`${seed}${i}`)
      .digest('hex')
      .slice(0, 2 * size);
  return out;
}

/** A TPMS_ATTEST of type quote and its TPMT_SIGNATURE by `key`. */
export function signQuote(
  key: KeyObject,
  opts: {
    extraData: Uint8Array;
    pcrs: Record<string, string>;
    bank?: number;
    sigAlg?: number;
    hash?: number;
    digestOverride?: Uint8Array;
    signerName?: Uint8Array;
  },
): { message: Uint8Array; signature: Uint8Array } {
  const hash = opts.hash ?? TPM_ALG.SHA256;
  const bank = opts.bank ?? TPM_ALG.SHA256;
  const indices = Object.keys(opts.pcrs)
    .map(Number)
    .sort((a, b) => a - b);
  const h = createHash(hashInfo(hash)!.name);
  for (const i of indices) h.update(Buffer.from(opts.pcrs[String(i)]!, 'hex'));
  const digest = opts.digestOverride ?? new Uint8Array(h.digest());
  const name = opts.signerName ?? Uint8Array.of(0x00, 0x0b, ...new Uint8Array(32).fill(7));
  const w = new TpmWriter()
    .u32(TPM_GENERATED_VALUE)
    .u16(TPM_ST_ATTEST_QUOTE)
    .tpm2b(name)
    .tpm2b(opts.extraData)
    .u32(0)
    .u32(123456)
    .u32(3)
    .u32(0)
    .u8(1)
    .u32(0x20200312)
    .u32(0x00120003);
  writePcrSelection(w, [{ hash: bank, pcrs: indices }]);
  w.tpm2b(digest);
  const message = w.finish();
  const sigAlg = opts.sigAlg ?? TPM_ALG.RSASSA;
  const hashName = hashInfo(hash)!.name;
  const s = new TpmWriter().u16(sigAlg).u16(hash);
  if (sigAlg === TPM_ALG.ECDSA) {
    const raw = sign(hashName, message, { key, dsaEncoding: 'ieee-p1363' });
    const half = raw.length / 2;
    s.tpm2b(raw.subarray(0, half)).tpm2b(raw.subarray(half));
  } else {
    const raw = sign(
      hashName,
      message,
      sigAlg === TPM_ALG.RSAPSS
        ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: hashInfo(hash)!.size }
        : { key, padding: constants.RSA_PKCS1_PADDING },
    );
    s.tpm2b(raw);
  }
  return { message, signature: s.finish() };
}

/** A TDREPORT_STRUCT with the quote body's fields at their offsets (Intel TDX module ABI). */
export function tdreportOf(claims: Record<string, unknown>): Uint8Array {
  const r = new Uint8Array(1024);
  r[0] = 0x81;
  const put = (off: number, hex: unknown) => r.set(Buffer.from(String(hex), 'hex'), off);
  const c = claims as Record<string, string> & { tdAttributes: { raw: string } };
  put(128, c.reportData);
  put(264, c.teeTcbSvn);
  put(280, c.mrSeam);
  put(328, c.mrSignerSeam);
  put(376, c.seamAttributes);
  put(512, c.tdAttributes.raw);
  put(520, c.xfam);
  put(528, c.mrTd);
  put(576, c.mrConfigId);
  put(624, c.mrOwner);
  put(672, c.mrOwnerConfig);
  put(720, c.rtmr0);
  put(768, c.rtmr1);
  put(816, c.rtmr2);
  put(864, c.rtmr3);
  return r;
}
