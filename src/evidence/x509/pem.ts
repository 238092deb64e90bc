/** PEM text to DER and back, and the ways a caller may hand over a chain. Knows no vendor. */
import { AttestationError, type ErrorCode } from '../../errors.js';

/**
 * Splits PEM text into DER blobs. Accepts trailing NULs (Intel PCK chains carry one) and
 * ignores text between blocks; anything that is not a CERTIFICATE or X509 CRL block, an
 * unterminated block, or a body that is not base64 is refused.
 *
 * Peer text reaches this before any signature is checked, so it is one forward scan (indexOf
 * and per-character loops that never step back): linear in the input, whatever it holds. The
 * regular expressions it replaces backtracked quadratically on NUL runs and unterminated blocks.
 */
export function pemToDer(text: string, code: ErrorCode = 'ERR_EVIDENCE_MALFORMED'): Uint8Array[] {
  const BEGIN = '-----BEGIN ';
  const DASHES = '-----';
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0) end--;
  const out: Uint8Array[] = [];
  let at = 0;
  for (;;) {
    const begin = text.indexOf(BEGIN, at);
    if (begin < 0 || begin + BEGIN.length > end) break;
    // The label: capitals, digits and spaces up to the closing dashes (RFC 7468 §2).
    let i = begin + BEGIN.length;
    while (i < end && isLabelChar(text.charCodeAt(i))) i++;
    if (i === begin + BEGIN.length || !text.startsWith(DASHES, i) || i + DASHES.length > end)
      throw new AttestationError(code, 'malformed PEM header');
    const label = text.slice(begin + BEGIN.length, i);
    if (label !== 'CERTIFICATE' && label !== 'X509 CRL')
      throw new AttestationError(code, `unexpected PEM block "${label}"`);
    const bodyStart = i + DASHES.length;
    const footer = `-----END ${label}-----`;
    const bodyEnd = text.indexOf(footer, bodyStart);
    if (bodyEnd < 0 || bodyEnd + footer.length > end)
      throw new AttestationError(code, `unterminated PEM block "${label}"`);
    out.push(base64Body(text, bodyStart, bodyEnd, code));
    at = bodyEnd + footer.length;
  }
  return out;
}

function isLabelChar(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x20;
}

/** The base64 between `from` and `to`, whitespace skipped, at most two '=' and only at the end. */
function base64Body(text: string, from: number, to: number, code: ErrorCode): Uint8Array {
  // Two passes of the regular-expression engine over a character class (nothing to backtrack
  // into beyond the final '=' run, so linear): ~10× faster than a loop over the characters, which
  // made a 4.5 KB chain cost ~0.1 ms to read.
  const body = text.slice(from, to).replace(/[ \t\n\r\v\f]+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw new AttestationError(code, 'PEM body is not base64');
  return new Uint8Array(Buffer.from(body, 'base64'));
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
    if (typeof item !== 'string' && item.length > 0 && item[0] === 0x30) {
      out.push(item);
      continue;
    }
    const ders = pemToDer(typeof item === 'string' ? item : Buffer.from(item).toString('latin1'), code);
    // An item that holds no certificate is refused, not skipped: skipping it would let a verifier
    // fall back to its pinned intermediates and accept input it never read (found by npm run fuzz).
    if (ders.length === 0)
      throw new AttestationError(code, 'a chain item holds no certificate (neither DER nor PEM)');
    out.push(...ders);
  }
  return out;
}
