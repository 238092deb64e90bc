/**
 * Parsers for what TPM2_Quote returns: the TPMS_ATTEST it signs and the TPMT_SIGNATURE (TPM 2.0
 * Part 2 §10.12 and §11.3.4). Generic TPM 2.0, not tied to one cloud's vTPM. Strict: every size
 * is bounded by the Part 2 buffer size of its type, every field is consumed, nothing may follow,
 * and anything else is ERR_EVIDENCE_MALFORMED. Nothing cryptographic happens here (quote.ts).
 */
import { hashInfo, type PcrSelection, readPcrSelection, TPM_ALG, TpmReader } from './marshal.js';

/** TPM_GENERATED_VALUE: the TPM puts it in every structure it signs, and refuses to sign data starting with it. */
export const TPM_GENERATED_VALUE = 0xff544347;
export const TPM_ST_ATTEST_QUOTE = 0x8018;

/** sizeof(TPMU_NAME): a handle (4) or nameAlg + the largest digest (2 + 64). */
const NAME_MAX = 66;
/** TPM2B_DATA holds a TPMT_HA: hashAlg + the largest digest. */
const DATA_MAX = 66;
const DIGEST_MAX = 64;
/** MAX_RSA_KEY_BYTES for RSA-4096. */
const RSA_SIG_MAX = 512;
/** MAX_ECC_KEY_BYTES for P-521. */
const ECC_PARAM_MAX = 66;

export interface TpmsAttest {
  /** The bytes exactly as parsed (what the signature covers). */
  raw: Uint8Array;
  type: number;
  /** TPM2B_NAME of the signing key (its qualified name). */
  qualifiedSigner: Uint8Array;
  /** qualifyingData the caller gave TPM2_Quote: the verifier's nonce or the channel binder. */
  extraData: Uint8Array;
  clock: bigint;
  resetCount: number;
  restartCount: number;
  safe: boolean;
  firmwareVersion: bigint;
  /** attested.quote (TPMS_QUOTE_INFO). */
  pcrSelect: PcrSelection[];
  pcrDigest: Uint8Array;
}

function checkName(r: TpmReader, name: Uint8Array): void {
  // A name is empty, a 4-byte handle, or nameAlg ‖ digest of that algorithm's size (Part 1 §16).
  if (name.length === 0 || name.length === 4) return;
  const alg = name.length >= 2 ? (name[0]! << 8) | name[1]! : -1;
  const info = hashInfo(alg);
  if (!info || name.length !== 2 + info.size)
    throw r.fail(`qualifiedSigner (${name.length} bytes) is not a handle or nameAlg ‖ digest`);
}

/** Parses a TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE. */
export function parseTpmsAttest(bytes: Uint8Array): TpmsAttest {
  if (!(bytes instanceof Uint8Array)) throw new TpmReader(new Uint8Array(), 'TPMS_ATTEST').fail('not bytes');
  const r = new TpmReader(bytes, 'TPMS_ATTEST');
  const magic = r.u32('magic');
  if (magic !== TPM_GENERATED_VALUE)
    throw r.fail(`magic 0x${magic.toString(16)} is not TPM_GENERATED_VALUE (0xff544347)`);
  const type = r.u16('type');
  if (type !== TPM_ST_ATTEST_QUOTE)
    throw r.fail(`type 0x${type.toString(16)} is not TPM_ST_ATTEST_QUOTE (0x8018)`);
  const qualifiedSigner = r.tpm2b('qualifiedSigner', NAME_MAX);
  checkName(r, qualifiedSigner);
  const extraData = r.tpm2b('extraData', DATA_MAX);
  const clock = r.u64('clockInfo.clock');
  const resetCount = r.u32('clockInfo.resetCount');
  const restartCount = r.u32('clockInfo.restartCount');
  const safe = r.u8('clockInfo.safe');
  if (safe > 1) throw r.fail(`clockInfo.safe ${safe} is not a TPMI_YES_NO`);
  const firmwareVersion = r.u64('firmwareVersion');
  const pcrSelect = readPcrSelection(r);
  for (const bank of pcrSelect)
    if (!hashInfo(bank.hash)) throw r.fail(`PCR bank hash 0x${bank.hash.toString(16)} is not supported`);
  const pcrDigest = r.tpm2b('pcrDigest', DIGEST_MAX);
  r.end();
  return {
    raw: bytes,
    type,
    qualifiedSigner,
    extraData,
    clock,
    resetCount,
    restartCount,
    safe: safe === 1,
    firmwareVersion,
    pcrSelect,
    pcrDigest,
  };
}

export type TpmtSignature =
  | { sigAlg: typeof TPM_ALG.RSASSA | typeof TPM_ALG.RSAPSS; hash: number; sig: Uint8Array }
  | { sigAlg: typeof TPM_ALG.ECDSA; hash: number; r: Uint8Array; s: Uint8Array };

/** Parses a marshalled TPMT_SIGNATURE (RSASSA, RSAPSS or ECDSA; the schemes a quote key uses). */
export function parseTpmtSignature(bytes: Uint8Array): TpmtSignature {
  if (!(bytes instanceof Uint8Array))
    throw new TpmReader(new Uint8Array(), 'TPMT_SIGNATURE').fail('not bytes');
  const r = new TpmReader(bytes, 'TPMT_SIGNATURE');
  const out = readTpmtSignature(r);
  r.end();
  return out;
}

export function readTpmtSignature(r: TpmReader): TpmtSignature {
  const sigAlg = r.u16('sigAlg');
  if (sigAlg !== TPM_ALG.RSASSA && sigAlg !== TPM_ALG.RSAPSS && sigAlg !== TPM_ALG.ECDSA)
    throw r.fail(`sigAlg 0x${sigAlg.toString(16)} is not RSASSA, RSAPSS or ECDSA`);
  const hash = r.u16('hash');
  if (!hashInfo(hash)) throw r.fail(`hash 0x${hash.toString(16)} is not supported`);
  if (sigAlg === TPM_ALG.RSASSA || sigAlg === TPM_ALG.RSAPSS) {
    const sig = r.tpm2b('signature', RSA_SIG_MAX);
    if (sig.length === 0) throw r.fail('empty RSA signature');
    return { sigAlg, hash, sig };
  }
  {
    const rr = r.tpm2b('signatureR', ECC_PARAM_MAX);
    const s = r.tpm2b('signatureS', ECC_PARAM_MAX);
    if (rr.length === 0 || s.length === 0) throw r.fail('empty ECDSA signature component');
    return { sigAlg: TPM_ALG.ECDSA, hash, r: rr, s };
  }
}
