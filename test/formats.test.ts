/**
 * The format table (src/evidence/formats.ts): one entry per format, from which detection, the
 * REPORT_DATA the channel compares, the wire media types and the CLI's unverified view come. The
 * view is the parser's: for evidence that verifies, every field of it is the claims' field.
 */
import { describe, expect, it } from 'vitest';
import { acceptedMediaTypes, REPORT_MEDIA_TYPES } from '../src/channel/cmw.js';
import { bytesToHex } from '../src/evidence/bytes.js';
import { detectFormat, FORMATS, formatNamed, formatOf, formatOfMediaType } from '../src/evidence/formats.js';
import { parseSnpReport } from '../src/evidence/snp/report.js';
import { parseTdxQuote } from '../src/evidence/tdx/quote.js';
import { createVerifier } from '../src/evidence/verifier.js';
import { allFixtures } from './snp/fixtures.js';
import { loadVector, VECTOR_IDS } from './tdx/fixtures.js';

describe('the format table', () => {
  it('has one entry per format, each with its own media type and policy section', () => {
    expect(FORMATS.map((f) => f.name)).toEqual(['sev-snp', 'tdx', 'azure-sev-snp', 'azure-tdx']);
    // Both Azure formats have the HCL report as their report record: one media type.
    expect(new Set(FORMATS.map((f) => f.mediaType)).size).toBe(3);
    expect(FORMATS.map((f) => f.policySection)).toEqual(['snp', 'tdx', 'azure', 'azure']);
    for (const f of FORMATS) {
      expect(formatNamed(f.name)).toBe(f);
      expect(formatOfMediaType(f.mediaType)).toBe(f.name === 'azure-tdx' ? formatNamed('azure-sev-snp') : f);
    }
    expect(formatOfMediaType('application/octet-stream')).toBeUndefined();
  });

  it("the channel's report media types are the table's", () => {
    expect(REPORT_MEDIA_TYPES).toEqual([...new Set(FORMATS.map((f) => f.mediaType))]);
    expect(acceptedMediaTypes({ tdx: {} })).toEqual([formatNamed('tdx').mediaType]);
  });

  it('REPORT_DATA from the table is what each parser reads, for every real vector', () => {
    for (const f of allFixtures()) {
      expect(detectFormat(f.report), f.name).toBe('sev-snp');
      expect(bytesToHex(formatOf(f.report)!.reportDataOf(f.report)!)).toBe(
        parseSnpReport(f.report).reportData,
      );
    }
    for (const id of VECTOR_IDS) {
      const { quote } = loadVector(id);
      expect(detectFormat(quote), id).toBe('tdx');
      expect(formatOf(quote)!.reportDataOf(quote)).toEqual(parseTdxQuote(quote).body.reportData);
    }
  });

  it('a report with a TDX header is TDX even at the size of an SNP report (header formats first)', () => {
    const quote = loadVector(VECTOR_IDS[0]!).quote;
    const sized = quote.slice(0, 0x4a0);
    expect(detectFormat(sized)).toBe('tdx');
    expect(formatNamed('sev-snp').reportDataOf(quote)).toBeUndefined();
    expect(formatNamed('tdx').reportDataOf(new Uint8Array(0x4a0))).toBeUndefined();
  });

  it('the unverified view of verified SNP evidence is a part of its claims', async () => {
    for (const f of allFixtures()) {
      const claims = await createVerifier({ offline: true }).verify(
        { report: f.report, vek: f.vek, chain: [f.ask, f.ark] },
        { now: f.at, policy: { snp: { allowDebug: true } } },
      );
      const view = formatOf(f.report)!.view(f.report);
      expect(view.format).toBe('sev-snp');
      expect(view, f.name).toEqual(Object.fromEntries(Object.keys(view).map((k) => [k, claims[k as never]])));
      expect(Object.keys(view)).not.toContain('revocation');
      expect(Object.keys(view)).not.toContain('simulated');
    }
  });

  it('the unverified view of a verified TDX quote is a part of its claims', async () => {
    let compared = 0;
    for (const id of VECTOR_IDS) {
      const v = loadVector(id);
      if (!v.collateral) continue;
      const claims = await createVerifier({ offline: true })
        .verify(
          { report: v.quote, collateral: v.collateral },
          {
            now: v.now,
            policy: { tdx: { acceptTcbStatus: ['UpToDate', 'OutOfDate', 'SWHardeningNeeded'] } },
          },
        )
        .catch(() => undefined);
      if (!claims) continue;
      const view = formatOf(v.quote)!.view(v.quote);
      expect(view.fmspc, id).toBe(claims.format === 'tdx' ? claims.fmspc : undefined);
      expect(view, id).toEqual(Object.fromEntries(Object.keys(view).map((k) => [k, claims[k as never]])));
      expect(Object.keys(view)).not.toContain('tcbStatus');
      compared++;
    }
    expect(compared).toBeGreaterThan(0);
  });
});
