import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../src/errors.js';
import { verifyEvidence } from '../src/evidence/verify.js';
import { derToPem, pemToDer } from '../src/evidence/x509/pem.js';
import { loadFixture } from './snp/fixtures.js';

describe('pemToDer (property)', () => {
  it('gives back the DER of every block, whatever the line breaks, whitespace and text between blocks', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 4 }),
        fc.constantFrom('\n', '\r\n', ' ', '\t', ''),
        fc.constantFrom('', 'comment\n', '\n\n'),
        fc.integer({ min: 0, max: 3 }),
        (ders, eol, between, nuls) => {
          const text =
            ders
              .map((d) => between + derToPem(d, 'CERTIFICATE').replaceAll('\n', eol === '' ? '\n' : eol))
              .join('') + '\0'.repeat(nuls);
          expect(pemToDer(text).map((d) => Buffer.from(d).toString('hex'))).toEqual(
            ders.map((d) => Buffer.from(d).toString('hex')),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('anything built from PEM fragments parses or is refused with an AttestationError, never worse', () => {
    const fragment = fc.constantFrom(
      '-----BEGIN CERTIFICATE-----',
      '-----END CERTIFICATE-----',
      '-----BEGIN X509 CRL-----',
      '-----END X509 CRL-----',
      '-----BEGIN ',
      '-----',
      'MIIB',
      'AAAA',
      '==',
      '=',
      '\n',
      ' ',
      '\0',
      'x',
      '-',
    );
    fc.assert(
      fc.property(fc.array(fragment, { maxLength: 30 }), (parts) => {
        try {
          for (const d of pemToDer(parts.join(''), 'ERR_EVIDENCE_CHAIN'))
            expect(d).toBeInstanceOf(Uint8Array);
        } catch (err) {
          expect(err).toBeInstanceOf(AttestationError);
          expect((err as AttestationError).code).toBe('ERR_EVIDENCE_CHAIN');
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('takes a block body as base64 with whitespace anywhere and at most two "=" at its end, nothing else', () => {
    // The rule, one character at a time (the loop pemToDer once ran), against the parser.
    const oracle = (body: string): string | undefined => {
      let pad = 0;
      let kept = '';
      for (const ch of body) {
        if (' \t\n\r\v\f'.includes(ch)) continue;
        if (ch === '=') pad++;
        else if (!/^[A-Za-z0-9+/]$/.test(ch) || pad > 0) return undefined;
        if (pad > 2) return undefined;
        kept += ch;
      }
      return kept;
    };
    const piece = fc.constantFrom(
      'A',
      'b',
      '9',
      '+',
      '/',
      '=',
      ' ',
      '\n',
      '\t',
      '\r',
      '\v',
      '-',
      '_',
      'é',
      '\0',
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 24 }), (parts) => {
        const body = parts.join('');
        const text = `-----BEGIN CERTIFICATE-----${body}-----END CERTIFICATE-----`;
        const expected = oracle(body);
        if (expected === undefined) expect(() => pemToDer(text)).toThrow(/PEM body is not base64/);
        else
          expect(Buffer.from(pemToDer(text)[0]!).toString('hex')).toBe(
            Buffer.from(expected, 'base64').toString('hex'),
          );
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses what the old regular expressions skipped: unterminated blocks and malformed headers', () => {
    expect(() => pemToDer('-----BEGIN CERTIFICATE-----\nAAAA')).toThrow(/unterminated/);
    expect(() => pemToDer('-----BEGIN certificate-----\nAAAA\n-----END certificate-----')).toThrow(
      /malformed/,
    );
    expect(() => pemToDer('-----BEGIN CERTIFICATE-----\nAAAA\n-----END X509 CRL-----')).toThrow(
      /unterminated/,
    );
    expect(pemToDer('no PEM here')).toEqual([]);
  });
});

describe('toDerList: an item that holds no certificate is refused, not skipped', () => {
  const f = loadFixture('ms-tav__genoa-v3');

  it.each([
    ['text with no PEM block', 'hello'],
    ['garbage before the ARK', [new Uint8Array([1, 2, 3]), f.ark]],
    ['an empty item', [new Uint8Array(0), f.ask, f.ark]],
  ])(
    '%s: ERR_EVIDENCE_CHAIN from verifyEvidence (the pinned chain is not silently used)',
    async (_name, chain) => {
      const err = await verifyEvidence(
        { report: f.report, vek: f.vek, chain: chain as never },
        { now: f.at, offline: true },
      ).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AttestationError);
      expect((err as AttestationError).code).toBe('ERR_EVIDENCE_CHAIN');
    },
  );

  it('a genuine ASK and ARK as DER items are still accepted', async () => {
    const claims = await verifyEvidence(
      { report: f.report, vek: f.vek, chain: [f.ask, f.ark] },
      { now: f.at, offline: true },
    );
    expect(claims.format).toBe('sev-snp');
  });
});
