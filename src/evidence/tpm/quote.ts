/**
 * Verification of a TPM 2.0 quote: the TPMT_SIGNATURE over the TPMS_ATTEST bytes by the
 * attestation key, then the PCR values the caller supplies against the signed pcrDigest. Generic
 * TPM 2.0 (Azure's vTPM, Google's, a physical TPM, swtpm).
 *
 * The digest algorithm is the signing scheme's hash, not the PCR bank's: TPM2_Quote computes
 * pcrDigest with the hash of the scheme it signs with (TPM 2.0 Part 3 §18.4, "PCRComputeCurrentDigest
 * (hashAlg of the signing scheme)"); real vTPMs quote a SHA-1 or SHA-384 bank with a SHA-256
 * digest (docs/reference/cloud-evidence.md §1.5).
 *
 * Errors: unparseable structures and PCR values that are missing or of the wrong size are
 * ERR_EVIDENCE_MALFORMED; a signature that does not verify, a key that cannot make it, and PCR
 * values that do not hash to pcrDigest are ERR_EVIDENCE_SIGNATURE.
 */
import { constants, createHash, createPublicKey, type JsonWebKey, KeyObject, verify } from 'node:crypto';
import { AttestationError, type ErrorCode } from '../../errors.js';
import { bytesToHex, equalBytes, fromBase64url } from '../bytes.js';
import { parseTpmsAttest, parseTpmtSignature, type TpmsAttest, type TpmtSignature } from './attest.js';
import { hashAlgOfName, hashInfo, PCR_SELECT_MAX_BYTES, type PcrBankName, TPM_ALG } from './marshal.js';
import { parseTpm2bPublic, parseTpmtPublic, tpmPublicToKey } from './public.js';

/** PCR values by bank and index, as in pcrs.json: `{"sha256": {"0": "<hex>", …}}`. */
export type PcrValues = Partial<Record<PcrBankName, Record<string, string | Uint8Array>>>;

/** The tpm member of the claims (issue 12's names). */
export interface TpmQuoteClaims {
  /** qualifyingData of the quote (the verifier's nonce or the channel binder), lowercase hex. */
  extraData: string;
  /** The quoted PCRs only, lowercase hex, by bank then decimal index. */
  pcrs: Partial<Record<PcrBankName, Record<string, string>>>;
  /** TPMS_CLOCK_INFO.clock: milliseconds the TPM has been powered since it was last cleared. */
  clock: number;
  resetCount: number;
  /** The TPM vendor's firmware version, 16 lowercase hex digits. */
  firmwareVersion: string;
  /** SHA-256 of the attestation key: of the RSA modulus (big-endian, no leading zeros), or of X ‖ Y for an EC key. */
  akSha256: string;
}

export interface VerifiedTpmQuote {
  attest: TpmsAttest;
  signature: TpmtSignature;
  claims: TpmQuoteClaims;
}

/** Signature hashes accepted: SHA-1 signatures are forgeable by collision. */
const SIGNATURE_HASHES: ReadonlySet<number> = new Set([TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512]);
const PCR_INDEX_MAX = PCR_SELECT_MAX_BYTES * 8 - 1;
const MIN_RSA_BITS = 2048;

function sigError(message: string): AttestationError {
  return new AttestationError('ERR_EVIDENCE_SIGNATURE', `TPM quote: ${message}`);
}

function malformed(message: string): AttestationError {
  return new AttestationError('ERR_EVIDENCE_MALFORMED', `TPM quote: ${message}`);
}

/** An RSA or EC attestation key from a JWK (e.g. Azure's HCLAkPub). */
export function akFromJwk(jwk: unknown, code: ErrorCode = 'ERR_EVIDENCE_MALFORMED'): KeyObject {
  const bad = (why: string, cause?: unknown) =>
    new AttestationError(code, `attestation key JWK: ${why}`, cause === undefined ? {} : { cause });
  if (typeof jwk !== 'object' || jwk === null) throw bad('not an object');
  const j = jwk as Record<string, unknown>;
  let key: JsonWebKey;
  if (j.kty === 'RSA') {
    if (typeof j.n !== 'string' || typeof j.e !== 'string') throw bad('n and e must be strings');
    const n = fromBase64url(j.n);
    const e = fromBase64url(j.e);
    if (!n || !e || n.length === 0 || e.length === 0) throw bad('n or e is not base64url');
    if (n.length > 512 || e.length > 8) throw bad('RSA key larger than 4096 bits or exponent over 64 bits');
    key = { kty: 'RSA', n: j.n, e: j.e };
  } else if (j.kty === 'EC') {
    if (j.crv !== 'P-256' && j.crv !== 'P-384') throw bad('EC curve must be P-256 or P-384');
    if (typeof j.x !== 'string' || typeof j.y !== 'string') throw bad('x and y must be strings');
    key = { kty: 'EC', crv: j.crv, x: j.x, y: j.y };
  } else throw bad('kty must be RSA or EC');
  try {
    return createPublicKey({ key, format: 'jwk' });
  } catch (err) {
    throw bad('not a valid public key', err);
  }
}

/** An attestation key from SubjectPublicKeyInfo DER or PEM. */
export function akFromSpki(spki: Uint8Array | string, code: ErrorCode = 'ERR_EVIDENCE_MALFORMED'): KeyObject {
  try {
    const key =
      typeof spki === 'string'
        ? createPublicKey({ key: spki, format: 'pem' })
        : createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    const type = key.asymmetricKeyType;
    if (type !== 'rsa' && type !== 'ec') throw new Error(`a ${type} key`);
    return key;
  } catch (err) {
    throw new AttestationError(code, 'attestation key: not an RSA or EC SubjectPublicKeyInfo', {
      cause: err,
    });
  }
}

/** An attestation key from a marshalled TPMT_PUBLIC or TPM2B_PUBLIC (what TPM2_ReadPublic returns). */
export function akFromTpmPublic(bytes: Uint8Array, form: 'tpmt' | 'tpm2b' = 'tpmt'): KeyObject {
  return tpmPublicToKey(form === 'tpm2b' ? parseTpm2bPublic(bytes) : parseTpmtPublic(bytes));
}

/** SHA-256 of the key's RSA modulus or EC point X ‖ Y (the `akSha256` claim). */
export function akSha256(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  const h = createHash('sha256');
  if (jwk.kty === 'RSA') {
    const n = fromBase64url(jwk.n ?? '') ?? new Uint8Array();
    let i = 0;
    while (i < n.length - 1 && n[i] === 0) i++;
    h.update(n.subarray(i));
  } else {
    h.update(fromBase64url(jwk.x ?? '') ?? new Uint8Array());
    h.update(fromBase64url(jwk.y ?? '') ?? new Uint8Array());
  }
  return h.digest('hex');
}

function ecdsaSize(key: KeyObject): number | undefined {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (curve === 'prime256v1') return 32;
  if (curve === 'secp384r1') return 48;
  return undefined;
}

function fixedWidth(b: Uint8Array, size: number): Uint8Array | undefined {
  let i = 0;
  while (i < b.length && b[i] === 0 && b.length - i > size) i++;
  const v = b.subarray(i);
  if (v.length > size) return undefined;
  const out = new Uint8Array(size);
  out.set(v, size - v.length);
  return out;
}

/** Checks the TPMT_SIGNATURE over the exact TPMS_ATTEST bytes with the attestation key. */
export function verifyQuoteSignature(message: Uint8Array, sig: TpmtSignature, ak: KeyObject): void {
  const hash = hashInfo(sig.hash);
  if (!hash || !SIGNATURE_HASHES.has(sig.hash))
    throw sigError(`signature hash 0x${sig.hash.toString(16)} is not SHA-256, SHA-384 or SHA-512`);
  const keyType = ak.asymmetricKeyType;
  let ok = false;
  try {
    if (sig.sigAlg === TPM_ALG.ECDSA) {
      const size = keyType === 'ec' ? ecdsaSize(ak) : undefined;
      if (size === undefined)
        throw sigError('an ECDSA signature, but the attestation key is not P-256 or P-384');
      const r = fixedWidth(sig.r, size);
      const s = fixedWidth(sig.s, size);
      if (!r || !s) throw sigError('ECDSA signature component larger than the curve');
      const p1363 = new Uint8Array(2 * size);
      p1363.set(r, 0);
      p1363.set(s, size);
      ok = verify(hash.name, message, { key: ak, dsaEncoding: 'ieee-p1363' }, p1363);
    } else {
      if (keyType !== 'rsa') throw sigError(`an RSA signature, but the attestation key is ${keyType}`);
      // Anyone can factor a small modulus and sign quotes with it.
      const bits = ak.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS)
        throw sigError(`the attestation key is RSA-${bits}, smaller than ${MIN_RSA_BITS} bits`);
      ok = verify(
        hash.name,
        message,
        sig.sigAlg === TPM_ALG.RSASSA
          ? { key: ak, padding: constants.RSA_PKCS1_PADDING }
          : // The TPM picks the salt length (the hash size, or less for a small key: Part 1 §B.7).
            { key: ak, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO },
        sig.sig,
      );
    }
  } catch (err) {
    if (err instanceof AttestationError) throw err;
    ok = false;
  }
  if (!ok) throw sigError('the signature by the attestation key does not verify');
}

const HEX = /^[0-9a-fA-F]*$/;
/** "0" … "63": the PCR numbers a selection bitmap of PCR_SELECT_MAX_BYTES can name. */
const PCR_KEYS: ReadonlySet<string> = new Set(Array.from({ length: PCR_INDEX_MAX + 1 }, (_, i) => String(i)));

/** A PCR value as lowercase hex, checked for its size (strings are kept, not decoded one by one). */
function pcrHex(raw: string | Uint8Array, size: number, where: string): string {
  // The expression, not the write's length: Node's hex decoder reads only the low byte of each
  // UTF-16 unit, so it takes "\u0130" for "0".
  if (typeof raw === 'string') {
    if (raw.length !== 2 * size || !HEX.test(raw))
      throw malformed(`PCR ${where} must be ${2 * size} hex digits`);
    return raw.toLowerCase();
  }
  if (!(raw instanceof Uint8Array)) throw malformed(`PCR ${where} must be a hex string or bytes`);
  if (raw.length !== size) throw malformed(`PCR ${where} is ${raw.length} bytes, not ${size}`);
  return bytesToHex(raw);
}

/**
 * Checks the supplied PCR values against the quote's pcrDigest and returns the quoted ones, in
 * hex. Values for PCRs the quote does not select are not attested and are left out.
 */
export function checkPcrDigest(
  attest: TpmsAttest,
  digestAlg: number,
  pcrs: PcrValues,
): TpmQuoteClaims['pcrs'] {
  if (typeof pcrs !== 'object' || pcrs === null) throw malformed('PCR values must be an object');
  const digest = hashInfo(digestAlg);
  if (!digest) throw sigError(`digest hash 0x${digestAlg.toString(16)} is not supported`);
  for (const [bank, values] of Object.entries(pcrs)) {
    if (hashAlgOfName(bank) === undefined) throw malformed(`unknown PCR bank "${bank}"`);
    for (const key of Object.keys(values ?? {}))
      if (!PCR_KEYS.has(key)) throw malformed(`PCR index "${key}" in bank ${bank} is not a PCR number`);
  }
  // One pass over the selected values: each decoded straight into its place in one buffer, one hash.
  let total = 0;
  for (const sel of attest.pcrSelect) total += sel.pcrs.length * hashInfo(sel.hash)!.size;
  const selected = Buffer.allocUnsafe(total);
  let at = 0;
  const out: TpmQuoteClaims['pcrs'] = {};
  for (const sel of attest.pcrSelect) {
    const bank = hashInfo(sel.hash)!;
    const supplied = Object.hasOwn(pcrs, bank.name) ? pcrs[bank.name] : undefined;
    if (sel.pcrs.length > 0 && (typeof supplied !== 'object' || supplied === null))
      throw malformed(`no ${bank.name} PCR values, but the quote selects that bank`);
    const hexes: Record<string, string> = out[bank.name] ?? {};
    for (const index of sel.pcrs) {
      const key = String(index);
      const raw = Object.hasOwn(supplied!, key) ? supplied![key] : undefined;
      if (raw === undefined)
        throw malformed(`${bank.name} PCR ${index} is selected by the quote but not supplied`);
      const hex = pcrHex(raw, bank.size, `${bank.name}:${index}`);
      // pcrHex checked the digits: the write fills exactly bank.size bytes.
      at += selected.write(hex, at, bank.size, 'hex');
      hexes[key] = hex;
    }
    out[bank.name] = hexes;
  }
  const computed = createHash(digest.name).update(selected.subarray(0, at)).digest();
  if (!equalBytes(computed, attest.pcrDigest))
    throw sigError('the PCR values do not hash to the signed pcrDigest');
  return out;
}

export interface TpmQuoteInput {
  /** The TPMS_ATTEST bytes exactly as the TPM signed them. */
  message: Uint8Array;
  /** The marshalled TPMT_SIGNATURE, as TPM2_Quote returns it. */
  signature: Uint8Array;
  /** The values of the PCRs the quote selects. */
  pcrs: PcrValues;
}

/**
 * Parses and verifies a quote with the attestation key; returns the parsed quote and its claims.
 * `akDigest`: akSha256(ak) when the caller has it already (a Verifier's cached AK).
 */
export function verifyTpmQuote(input: TpmQuoteInput, ak: KeyObject, akDigest?: string): VerifiedTpmQuote {
  const bad = (m: string) => new AttestationError('ERR_INVALID_ARGUMENT', `verifyTpmQuote: ${m}`);
  if (typeof input !== 'object' || input === null) throw bad('input must be { message, signature, pcrs }');
  if (!(ak instanceof KeyObject) || ak.type === 'secret')
    throw bad('ak must be a public (or private) KeyObject');
  return verifyParsedTpmQuote(
    parseTpmsAttest(input.message),
    parseTpmtSignature(input.signature),
    input.pcrs,
    ak,
    akDigest,
  );
}

/**
 * verifyTpmQuote() on a quote the caller parsed already (Azure parses it before the hardware
 * checks, to refuse unparseable bytes first). `attest.raw` must be the caller's own copy: it is
 * what the signature is checked over, and the claims are read from the parsed fields.
 */
export function verifyParsedTpmQuote(
  attest: TpmsAttest,
  signature: TpmtSignature,
  pcrValues: PcrValues,
  ak: KeyObject,
  akDigest?: string,
): VerifiedTpmQuote {
  verifyQuoteSignature(attest.raw, signature, ak);
  const pcrs = checkPcrDigest(attest, signature.hash, pcrValues);
  if (attest.clock > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed('clock is larger than 2^53 - 1');
  return {
    attest,
    signature,
    claims: {
      extraData: bytesToHex(attest.extraData),
      pcrs,
      clock: Number(attest.clock),
      resetCount: attest.resetCount,
      firmwareVersion: attest.firmwareVersion.toString(16).padStart(16, '0'),
      akSha256: akDigest ?? akSha256(ak),
    },
  };
}
