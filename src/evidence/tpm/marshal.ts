/**
 * TPM 2.0 marshalling: big-endian integers and size-prefixed (TPM2B) buffers, as TPM 2.0 Part 1
 * §18 ("Command/Response Structure") and Part 2 define them. Shared by the evidence parsers
 * (TPMS_ATTEST, TPMT_SIGNATURE, TPMT_PUBLIC) and the command client, so that what we send and what
 * we parse follow one set of rules.
 *
 * The reader never reads past its limit: every length comes from the data and is checked against
 * a caller-given maximum (the Part 2 size of the structure) before anything is copied, so a peer
 * sending a huge length costs nothing.
 */
import { AttestationError, type ErrorCode } from '../../errors.js';

/** TPM_ALG_ID values used here (TPM 2.0 Part 2 §6.3). */
export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  KEYEDHASH: 0x0008,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  SM3_256: 0x0012,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECDAA: 0x001a,
  SM2: 0x001b,
  ECSCHNORR: 0x001c,
  KDF1_SP800_56A: 0x0020,
  KDF2: 0x0021,
  KDF1_SP800_108: 0x0022,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CFB: 0x0043,
} as const;

/** Hash algorithms this library computes, with node:crypto's name and the digest size. */
export const TPM_HASHES: ReadonlyMap<
  number,
  { name: 'sha1' | 'sha256' | 'sha384' | 'sha512'; size: number }
> = new Map([
  [TPM_ALG.SHA1, { name: 'sha1', size: 20 }],
  [TPM_ALG.SHA256, { name: 'sha256', size: 32 }],
  [TPM_ALG.SHA384, { name: 'sha384', size: 48 }],
  [TPM_ALG.SHA512, { name: 'sha512', size: 64 }],
]);

/** PCR bank names as they appear in pcrs.json and claims (`{"sha256": {"0": hex}}`). */
export type PcrBankName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

export function hashInfo(alg: number): { name: PcrBankName; size: number } | undefined {
  return TPM_HASHES.get(alg);
}

export function hashAlgOfName(name: string): number | undefined {
  for (const [alg, info] of TPM_HASHES) if (info.name === name) return alg;
  return undefined;
}

/** A bounds-checked big-endian cursor. Errors carry `code` (MALFORMED for evidence, FAILED for a TPM's answer). */
export class TpmReader {
  pos = 0;

  constructor(
    readonly buf: Uint8Array,
    private readonly what: string,
    private readonly code: ErrorCode = 'ERR_EVIDENCE_MALFORMED',
    readonly limit: number = buf.length,
  ) {}

  fail(message: string): AttestationError {
    return new AttestationError(this.code, `${this.what}: ${message}`);
  }

  /** Moves the cursor (to start a reader over part of a buffer). */
  at(pos: number): this {
    if (pos < 0 || pos > this.limit) throw this.fail(`offset ${pos} is outside the structure`);
    this.pos = pos;
    return this;
  }

  get remaining(): number {
    return this.limit - this.pos;
  }

  bytes(n: number, field: string): Uint8Array {
    if (n > this.remaining)
      throw this.fail(`${field} (${n} bytes at offset ${this.pos}) runs past the end (${this.limit})`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  u8(field: string): number {
    return this.bytes(1, field)[0]!;
  }

  u16(field: string): number {
    const b = this.bytes(2, field);
    return (b[0]! << 8) | b[1]!;
  }

  u32(field: string): number {
    const b = this.bytes(4, field);
    return b[0]! * 0x1000000 + ((b[1]! << 16) | (b[2]! << 8) | b[3]!);
  }

  u64(field: string): bigint {
    const hi = this.u32(field);
    const lo = this.u32(field);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** A TPM2B: u16 size then that many bytes; `max` is the buffer size Part 2 gives the type. */
  tpm2b(field: string, max: number): Uint8Array {
    const size = this.u16(`${field} size`);
    if (size > max) throw this.fail(`${field} size ${size} is larger than ${max}`);
    return this.bytes(size, field);
  }

  /** Nothing may follow a structure that the caller says is complete. */
  end(): void {
    if (this.pos !== this.limit)
      throw this.fail(`${this.limit - this.pos} unexpected bytes after the structure`);
  }
}

/** Builds command bytes; sizes are checked by the caller against the Part 2 maxima. */
export class TpmWriter {
  private parts: number[] = [];

  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }

  u16(v: number): this {
    this.parts.push((v >>> 8) & 0xff, v & 0xff);
    return this;
  }

  u32(v: number): this {
    this.parts.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
    return this;
  }

  bytes(b: Uint8Array): this {
    for (const x of b) this.parts.push(x);
    return this;
  }

  tpm2b(b: Uint8Array): this {
    if (b.length > 0xffff) throw new RangeError('TPM2B buffer larger than 65535 bytes');
    return this.u16(b.length).bytes(b);
  }

  get length(): number {
    return this.parts.length;
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/**
 * One TPMS_PCR_SELECTION: a hash and the selected PCR indices in ascending order (bit i of byte
 * i/8 selects PCR i, TPM 2.0 Part 2 §10.6.1).
 */
export interface PcrSelection {
  hash: number;
  pcrs: number[];
}

/** PCR_SELECT_MAX for 24 PCRs is 3; allow room for platforms with more, never unbounded. */
export const PCR_SELECT_MAX_BYTES = 8;
/** HASH_COUNT: a TPM has at most a handful of banks; more in a selection is not a real TPM's. */
export const PCR_BANKS_MAX = 16;

export function readPcrSelection(r: TpmReader): PcrSelection[] {
  const count = r.u32('TPML_PCR_SELECTION count');
  if (count > PCR_BANKS_MAX)
    throw r.fail(`TPML_PCR_SELECTION count ${count} is larger than ${PCR_BANKS_MAX}`);
  const out: PcrSelection[] = [];
  for (let i = 0; i < count; i++) {
    const hash = r.u16('TPMS_PCR_SELECTION hash');
    const size = r.u8('TPMS_PCR_SELECTION sizeofSelect');
    if (size > PCR_SELECT_MAX_BYTES)
      throw r.fail(`TPMS_PCR_SELECTION sizeofSelect ${size} is larger than ${PCR_SELECT_MAX_BYTES}`);
    const bitmap = r.bytes(size, 'TPMS_PCR_SELECTION pcrSelect');
    const pcrs: number[] = [];
    for (let byte = 0; byte < size; byte++)
      for (let bit = 0; bit < 8; bit++) if ((bitmap[byte]! >> bit) & 1) pcrs.push(byte * 8 + bit);
    out.push({ hash, pcrs });
  }
  return out;
}

export function writePcrSelection(w: TpmWriter, banks: readonly PcrSelection[]): void {
  if (banks.length > PCR_BANKS_MAX) throw new RangeError(`more than ${PCR_BANKS_MAX} PCR banks`);
  w.u32(banks.length);
  for (const bank of banks) {
    const max = bank.pcrs.reduce((m, p) => Math.max(m, p), -1);
    // At least 3 bytes (PCR_SELECT_MIN for a PC Client TPM with 24 PCRs).
    const size = Math.max(3, Math.floor(max / 8) + 1);
    if (size > PCR_SELECT_MAX_BYTES) throw new RangeError(`PCR index ${max} is out of range`);
    const bitmap = new Uint8Array(size);
    for (const p of bank.pcrs) {
      if (!Number.isInteger(p) || p < 0) throw new RangeError(`invalid PCR index ${p}`);
      bitmap[p >> 3]! |= 1 << (p & 7);
    }
    w.u16(bank.hash).u8(size).bytes(bitmap);
  }
}
