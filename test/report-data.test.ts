import { describe, expect, it } from 'vitest';
import { parseSnpReport, reportDataOf as snpReportDataOf } from '../src/evidence/snp/report.js';
import { parseTdxQuote, reportDataOf as tdxReportDataOf } from '../src/evidence/tdx/quote.js';
import { reportDataOf } from '../src/evidence/verify.js';
import { allFixtures } from './snp/fixtures.js';
import { loadVector, VECTOR_IDS } from './tdx/fixtures.js';

// The channel reads REPORT_DATA before any check (to refuse evidence bound elsewhere cheaply);
// the offsets it uses are the parsers' own, and must agree with what the parsers read.
describe('reportDataOf (what the channel compares with its binder)', () => {
  it('equals the parsed REPORT_DATA of every real SNP report', () => {
    for (const f of allFixtures()) {
      const hex = Buffer.from(snpReportDataOf(f.report)!).toString('hex');
      expect(hex, f.name).toBe(parseSnpReport(f.report).reportData);
      expect(Buffer.from(reportDataOf(f.report)!).toString('hex')).toBe(hex);
    }
  });

  it('equals the parsed REPORTDATA of every real TDX quote (v4 and v5)', () => {
    const versions = new Set<number>();
    for (const id of VECTOR_IDS) {
      const { quote } = loadVector(id);
      const parsed = parseTdxQuote(quote);
      versions.add(parsed.header.version);
      expect(Buffer.from(tdxReportDataOf(quote)!).equals(Buffer.from(parsed.body.reportData)), id).toBe(true);
      expect(Buffer.from(reportDataOf(quote)!).equals(Buffer.from(parsed.body.reportData)), id).toBe(true);
    }
    expect([...versions].sort()).toEqual([4, 5]);
  });

  it('is undefined for bytes too short or of another version', () => {
    const { quote } = loadVector(VECTOR_IDS[0]!);
    expect(tdxReportDataOf(quote.subarray(0, 48 + 520 + 63))).toBeUndefined();
    const v3 = new Uint8Array(quote);
    v3[0] = 3;
    expect(tdxReportDataOf(v3)).toBeUndefined();
    expect(snpReportDataOf(new Uint8Array(0x49f))).toBeUndefined();
    expect(reportDataOf(new Uint8Array(10))).toBeUndefined();
  });
});
