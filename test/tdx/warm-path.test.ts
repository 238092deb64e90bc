/**
 * The warm TDX path (a Verifier that has seen the quote's PCK chain, attestation key and
 * collateral before) skips only work whose answer cannot have changed: every check that depends
 * on the quote in hand or on `now` still runs, and what it hands out is the caller's own.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesToHex } from '../../src/evidence/bytes.js';
import { tdxQuoteFields } from '../../src/evidence/tdx/appraise.js';
import { parseTdxQuote, type TdReportBody } from '../../src/evidence/tdx/quote.js';
import type { TdxClaims } from '../../src/evidence/types.js';
import { createVerifier } from '../../src/evidence/verifier.js';
import { codeOf, loadVector } from './fixtures.js';

const v4 = loadVector('dcap-qvl__quote');
const v5 = loadVector('go-tdx-guest__quote_v5');
/** Offset of the TD report body: the 48-byte header, and for v5 its u16 type and u32 size. */
const BODY = (version: number) => (version === 5 ? 54 : 48);
/** Offsets of the quote signature (v4): after the 584-byte body, its u32 length. */
const V4_SIGNATURE = 48 + 584 + 4;

function fieldByField(b: TdReportBody): Record<string, string> {
  return Object.fromEntries(Object.entries(b).map(([k, v]) => [k, bytesToHex(v as Uint8Array)])) as Record<
    string,
    string
  >;
}

describe('tdxQuoteFields (one hex conversion of the body, sliced per field)', () => {
  it.each([
    ['v4', v4],
    ['v5', v5],
  ])('%s: every field equals its own hex, for any body bytes', (_, v) => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 648, maxLength: 648 }), (random) => {
        const quote = new Uint8Array(v.quote);
        const at = BODY(v.meta.quote_version);
        const size = v.meta.body_type === 3 ? 648 : 584;
        quote.set(random.subarray(0, size), at);
        const q = parseTdxQuote(quote);
        const f = tdxQuoteFields(q);
        const expected = fieldByField(q.body);
        for (const [k, hex] of Object.entries(expected)) {
          if (k === 'tdAttributes') expect(f.tdAttributes.raw).toBe(hex);
          else expect((f as unknown as Record<string, string>)[k]).toBe(hex);
        }
        expect(f.tdAttributes.debug).toBe((q.body.tdAttributes[0]! & 1) !== 0);
      }),
      { numRuns: 50 },
    );
  });

  it('a body whose fields are not views of one buffer is converted field by field', () => {
    const q = parseTdxQuote(v5.quote);
    const copied = Object.fromEntries(
      Object.entries(q.body).map(([k, v]) => [k, new Uint8Array(v as Uint8Array)]),
    ) as unknown as TdReportBody;
    // One field moved to a buffer of its own, the rest left as views: both kinds in one body.
    const mixed = { ...q.body, rtmr2: copied.rtmr2, reportData: copied.reportData };
    expect(tdxQuoteFields({ ...q, body: copied })).toEqual(tdxQuoteFields(q));
    expect(tdxQuoteFields({ ...q, body: mixed })).toEqual(tdxQuoteFields(q));
  });
});

describe('warm TDX verification', () => {
  const now = v4.now;
  const input = () => ({ report: new Uint8Array(v4.quote), collateral: v4.collateral! });

  it('claims are the caller’s: changing one result changes nothing in the next', async () => {
    const verifier = createVerifier({});
    const first = (await verifier.verify(input(), { now })) as TdxClaims;
    const pristine = structuredClone(first);
    first.revocation.crls[0]!.issuer = 'changed';
    first.revocation.crls.push({ issuer: 'added', thisUpdate: '' });
    const second = (await verifier.verify(input(), { now })) as TdxClaims;
    expect(second).toEqual(pristine);
    expect(second.revocation.crls).toHaveLength(2);
    expect(second.revocation.crls[0]!.issuer).toBe(pristine.revocation.crls[0]!.issuer);
  });

  it('a warm Verifier still checks the quote signature, the body it covers and `now` on every quote', async () => {
    const verifier = createVerifier({});
    expect((await verifier.verify(input(), { now })).format).toBe('tdx');
    const badSignature = input();
    badSignature.report[V4_SIGNATURE + 10]! ^= 1;
    expect(await codeOf(() => verifier.verify(badSignature, { now }))).toBe('ERR_EVIDENCE_SIGNATURE');
    const badBody = input();
    badBody.report[BODY(4) + 584 - 1]! ^= 1; // REPORTDATA's last byte: signed, not cached anywhere
    expect(await codeOf(() => verifier.verify(badBody, { now }))).toBe('ERR_EVIDENCE_SIGNATURE');
    const [, notAfter] = v4.meta.collateral_valid_window!;
    const late = new Date(new Date(notAfter).getTime() + 24 * 3600 * 1000);
    expect(await codeOf(() => verifier.verify(input(), { now: late }))).not.toBe('accepted');
    // And it is still warm for the genuine quote.
    expect((await verifier.verify(input(), { now })).format).toBe('tdx');
  });

  it('the kept PCK chain is the Verifier’s: changing the caller’s quote after a verification does not reach it', async () => {
    const verifier = createVerifier({});
    const mine = input();
    await verifier.verify(mine, { now });
    // Scribble over the PEM chain at the end of the caller's buffer (it was handed to the cache once).
    const q = parseTdxQuote(v4.quote);
    mine.report.fill(0x41, q.size - 600, q.size - 100);
    expect(await codeOf(() => verifier.verify(mine, { now }))).not.toBe('accepted');
    expect((await verifier.verify(input(), { now })).format).toBe('tdx');
  });
});
