/** PEM text to DER and back, and the ways a caller may hand over a chain. Knows no vendor. */
import { AttestationError, type ErrorCode } from '../../errors.js';

/**
 * Splits PEM text into DER blobs. Accepts a trailing NUL (Intel PCK chains carry one) and
 * ignores text between blocks; anything that is not a CERTIFICATE block is refused.
 */
export function pemToDer(text: string, code: ErrorCode = 'ERR_EVIDENCE_MALFORMED'): Uint8Array[] {
  const out: Uint8Array[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (const m of text.replace(/\0+$/, '').matchAll(re)) {
    if (m[1] !== 'CERTIFICATE' && m[1] !== 'X509 CRL')
      throw new AttestationError(code, `unexpected PEM block "${m[1]}"`);
    const b64 = (m[2] ?? '').replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new AttestationError(code, 'PEM body is not base64');
    out.push(new Uint8Array(Buffer.from(b64, 'base64')));
  }
  return out;
}

export function derToPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Normalises the ways a caller may hand over a chain (PEM text, PEM/DER bytes, lists of either). */
export function toDerList(
  input: string | Uint8Array | Array<Uint8Array | string>,
  code: ErrorCode = 'ERR_EVIDENCE_MALFORMED',
): Uint8Array[] {
  const items = Array.isArray(input) ? input : [input];
  const out: Uint8Array[] = [];
  for (const item of items) {
    if (typeof item === 'string') out.push(...pemToDer(item, code));
    else if (item.length > 0 && item[0] === 0x30) out.push(item);
    else out.push(...pemToDer(Buffer.from(item).toString('latin1'), code));
  }
  return out;
}
