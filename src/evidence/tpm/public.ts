/**
 * TPMT_PUBLIC / TPM2B_PUBLIC (TPM 2.0 Part 2 §12.2) for RSA and ECC keys: what TPM2_ReadPublic
 * returns for an attestation key, turned into a node:crypto key, and the key's TPM name
 * (nameAlg ‖ H_nameAlg(TPMT_PUBLIC), Part 1 §16). Strict and bounded like the other TPM parsers;
 * the only error is ERR_EVIDENCE_MALFORMED.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { AttestationError } from '../../errors.js';
import { base64url } from '../bytes.js';
import { hashInfo, TPM_ALG, TpmReader } from './marshal.js';

export const TPM_ECC_CURVE = { NIST_P256: 0x0003, NIST_P384: 0x0004, NIST_P521: 0x0005 } as const;

const CURVES: ReadonlyMap<number, { crv: 'P-256' | 'P-384' | 'P-521'; size: number }> = new Map([
  [TPM_ECC_CURVE.NIST_P256, { crv: 'P-256', size: 32 }],
  [TPM_ECC_CURVE.NIST_P384, { crv: 'P-384', size: 48 }],
  [TPM_ECC_CURVE.NIST_P521, { crv: 'P-521', size: 66 }],
]);

export interface TpmPublicCommon {
  /** The marshalled TPMT_PUBLIC, exactly as parsed (what the name is computed over). */
  raw: Uint8Array;
  nameAlg: number;
  objectAttributes: number;
  authPolicy: Uint8Array;
  /** The signing scheme of the key (TPM_ALG_NULL when the key leaves it to the command). */
  scheme: { alg: number; hash?: number };
}

export type TpmPublic =
  | (TpmPublicCommon & { type: 'rsa'; keyBits: number; exponent: number; modulus: Uint8Array })
  | (TpmPublicCommon & { type: 'ecc'; curve: number; x: Uint8Array; y: Uint8Array });

function readSymDef(r: TpmReader): void {
  const alg = r.u16('symmetric.algorithm');
  if (alg === TPM_ALG.NULL) return;
  r.u16('symmetric.keyBits');
  r.u16('symmetric.mode');
}

function readScheme(r: TpmReader, what: string): { alg: number; hash?: number } {
  const alg = r.u16(`${what}.scheme`);
  if (alg === TPM_ALG.NULL) return { alg };
  // Every asymmetric scheme but RSAES carries a hash (Part 2 §11.2.3); ECDAA also a count.
  if (alg === TPM_ALG.RSAES) return { alg };
  const hash = r.u16(`${what}.hashAlg`);
  if (alg === TPM_ALG.ECDAA) r.u16(`${what}.count`);
  return { alg, hash };
}

function readTpmtPublic(r: TpmReader): TpmPublic {
  const start = r.pos;
  const type = r.u16('type');
  const nameAlg = r.u16('nameAlg');
  if (nameAlg !== TPM_ALG.NULL && !hashInfo(nameAlg))
    throw r.fail(`nameAlg 0x${nameAlg.toString(16)} is not supported`);
  const objectAttributes = r.u32('objectAttributes');
  const authPolicy = r.tpm2b('authPolicy', 64);
  if (type === TPM_ALG.RSA) {
    readSymDef(r);
    const scheme = readScheme(r, 'rsa');
    const keyBits = r.u16('keyBits');
    const exponent = r.u32('exponent');
    const modulus = r.tpm2b('unique.rsa', 512);
    if (modulus.length === 0 || keyBits === 0 || modulus.length !== keyBits / 8)
      throw r.fail(`RSA modulus of ${modulus.length} bytes for keyBits ${keyBits}`);
    const raw = r.buf.subarray(start, r.pos);
    return { type: 'rsa', raw, nameAlg, objectAttributes, authPolicy, scheme, keyBits, exponent, modulus };
  }
  if (type === TPM_ALG.ECC) {
    readSymDef(r);
    const scheme = readScheme(r, 'ecc');
    const curve = r.u16('curveID');
    const kdf = r.u16('kdf.scheme');
    if (kdf !== TPM_ALG.NULL) r.u16('kdf.hashAlg');
    const x = r.tpm2b('unique.ecc.x', 66);
    const y = r.tpm2b('unique.ecc.y', 66);
    const info = CURVES.get(curve);
    if (!info) throw r.fail(`ECC curve 0x${curve.toString(16)} is not supported`);
    if (x.length > info.size || y.length > info.size) throw r.fail(`ECC point larger than ${info.crv}`);
    const raw = r.buf.subarray(start, r.pos);
    return { type: 'ecc', raw, nameAlg, objectAttributes, authPolicy, scheme, curve, x, y };
  }
  throw r.fail(`type 0x${type.toString(16)} is not an RSA or ECC key`);
}

/** Parses a marshalled TPMT_PUBLIC (nothing may follow it). */
export function parseTpmtPublic(bytes: Uint8Array): TpmPublic {
  const r = new TpmReader(bytes, 'TPMT_PUBLIC');
  const parsed = readTpmtPublic(r);
  r.end();
  return parsed;
}

/** Parses a TPM2B_PUBLIC (u16 size, then exactly that many bytes of TPMT_PUBLIC). */
export function parseTpm2bPublic(bytes: Uint8Array): TpmPublic {
  const r = new TpmReader(bytes, 'TPM2B_PUBLIC');
  const inner = r.tpm2b('publicArea', 0xffff);
  r.end();
  return parseTpmtPublic(inner);
}

/** The TPM name: nameAlg ‖ H_nameAlg(TPMT_PUBLIC). */
export function tpmName(pub: TpmPublic): Uint8Array {
  const info = hashInfo(pub.nameAlg);
  if (!info) throw new AttestationError('ERR_EVIDENCE_MALFORMED', 'TPMT_PUBLIC: nameAlg is TPM_ALG_NULL');
  const digest = createHash(info.name).update(pub.raw).digest();
  const out = new Uint8Array(2 + digest.length);
  out[0] = pub.nameAlg >> 8;
  out[1] = pub.nameAlg & 0xff;
  out.set(digest, 2);
  return out;
}

function stripZeros(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

function leftPad(b: Uint8Array, size: number): Uint8Array {
  if (b.length === size) return b;
  const out = new Uint8Array(size);
  out.set(b, size - b.length);
  return out;
}

/** A node:crypto public key for the TPM key (exponent 0 means 65537, Part 2 §12.2.3.5). */
export function tpmPublicToKey(pub: TpmPublic): KeyObject {
  try {
    if (pub.type === 'rsa') {
      const e = pub.exponent === 0 ? 65537 : pub.exponent;
      const eBytes = stripZeros(Uint8Array.of(e >>> 24, (e >>> 16) & 0xff, (e >>> 8) & 0xff, e & 0xff));
      return createPublicKey({
        key: { kty: 'RSA', n: base64url(stripZeros(pub.modulus)), e: base64url(eBytes) },
        format: 'jwk',
      });
    }
    const info = CURVES.get(pub.curve)!;
    return createPublicKey({
      key: {
        kty: 'EC',
        crv: info.crv,
        x: base64url(leftPad(pub.x, info.size)),
        y: base64url(leftPad(pub.y, info.size)),
      },
      format: 'jwk',
    });
  } catch (err) {
    throw new AttestationError('ERR_EVIDENCE_MALFORMED', 'TPMT_PUBLIC: not a valid public key', {
      cause: err,
    });
  }
}
