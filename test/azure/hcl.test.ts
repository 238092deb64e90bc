/** The HCL report parser and the runtime-claims binding, on the real reports and on arbitrary bytes. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import {
  checkRuntimeClaimsBinding,
  HCL_CLAIMS_OFFSET,
  isHclReport,
  parseHclReport,
  parseRuntimeClaims,
} from '../../src/evidence/azure/hcl.js';
import { verifyAzure } from '../../src/evidence/verify.js';
import { thrownCode as code } from '../helpers/codes.js';
import { azureFixtures, codeOf, inputOf, loadFixture, mutate, optionsOf } from './fixtures.js';

const fixtures = azureFixtures();
const reportDataOffset = (tee: string) => (tee === 'sev-snp' ? 0x50 : 0x80);

describe('HCL report', () => {
  for (const fx of fixtures) {
    it(`${fx.id}: header, runtime-data header and claims as meta.json says`, () => {
      const bytes = fx.files.get('hcl-report.bin')!;
      const meta = fx.meta as unknown as {
        hcl_report: {
          header: { version: number; report_size: number; request_type: number };
          runtime_data_header: {
            report_type: number;
            report_data_hash_type: number;
            variable_data_size: number;
          };
          runtime_claims: { sha256: string };
        };
      };
      expect(isHclReport(bytes)).toBe(true);
      const hcl = parseHclReport(bytes);
      expect(hcl.version).toBe(meta.hcl_report.header.version);
      expect(hcl.reportSize).toBe(meta.hcl_report.header.report_size);
      expect(hcl.requestType).toBe(meta.hcl_report.header.request_type);
      expect(hcl.runtimeData.reportType).toBe(meta.hcl_report.runtime_data_header.report_type);
      expect(hcl.runtimeData.claimSize).toBe(meta.hcl_report.runtime_data_header.variable_data_size);
      expect(hcl.tee).toBe(fx.meta.format === 'azure-tdx' ? 'tdx' : 'sev-snp');
      expect(hcl.hardwareReport.length).toBe(hcl.tee === 'tdx' ? 1024 : 1184);
      const rd = hcl.hardwareReport.subarray(reportDataOffset(hcl.tee), reportDataOffset(hcl.tee) + 64);
      checkRuntimeClaimsBinding(hcl, rd);
      const rc = parseRuntimeClaims(hcl);
      expect(rc.sha256).toBe(meta.hcl_report.runtime_claims.sha256);
      expect(rc.userData).toBe(fx.meta.expected_claims.userData);
    });
  }

  it('the claims are hashed before they are parsed: a NUL inside HCLAkPub.n is a chain error', async () => {
    const fx = loadFixture('trustee__snp-hcl-report');
    const files = mutate(fx, [{ file: 'hcl-report.bin', op: 'set', offset: 1344, value: 0 }]);
    expect(await codeOf(verifyAzure(inputOf(fx, files), optionsOf(fx)))).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('version and report_size are not checked; report type and hash type are', () => {
    const base = loadFixture('trustee__snp-hcl-report').files.get('hcl-report.bin')!;
    const edit = (off: number, v: number) => {
      const b = new Uint8Array(base);
      new DataView(b.buffer).setUint32(off, v, true);
      return b;
    };
    expect(parseHclReport(edit(4, 7)).version).toBe(7);
    expect(parseHclReport(edit(8, 1184)).reportSize).toBe(1184);
    expect(code(() => parseHclReport(edit(0x4c8, 3)))).toBe('ERR_EVIDENCE_MALFORMED');
    expect(code(() => parseHclReport(edit(0x4c8, 4)))).toBe('ERR_EVIDENCE_MALFORMED'); // not a TDREPORT
    expect(code(() => parseHclReport(edit(0x4cc, 0)))).toBe('ERR_EVIDENCE_MALFORMED');
    expect(code(() => parseHclReport(edit(0x4cc, 4)))).toBe('ERR_EVIDENCE_MALFORMED');
    expect(code(() => parseHclReport(edit(0x4d0, 0)))).toBe('ERR_EVIDENCE_MALFORMED');
    expect(code(() => parseHclReport(edit(0x4d0, 2600 - HCL_CLAIMS_OFFSET + 1)))).toBe(
      'ERR_EVIDENCE_MALFORMED',
    );
    expect(parseHclReport(edit(0x4d0, 2600 - HCL_CLAIMS_OFFSET)).claimsBytes.length).toBe(
      2600 - HCL_CLAIMS_OFFSET,
    );
    // A longer claim size takes in the zero padding: the hash no longer matches.
    const longer = parseHclReport(edit(0x4d0, 1111));
    const rd = longer.hardwareReport.subarray(0x50, 0x90);
    expect(code(() => checkRuntimeClaimsBinding(longer, rd))).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('arbitrary bytes, with or without the magic, give only typed errors', () => {
    const base = loadFixture('trustee__tdx-hcl-report').files.get('hcl-report.bin')!;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.boolean(), (b, magic) => {
        if (magic && b.length >= 4) b.set([0x48, 0x43, 0x4c, 0x41]);
        let hcl: ReturnType<typeof parseHclReport>;
        try {
          hcl = parseHclReport(b);
        } catch (err) {
          expect(err).toBeInstanceOf(AttestationError);
          expect((err as AttestationError).code).toBe('ERR_EVIDENCE_MALFORMED');
          return;
        }
        expect(code(() => checkRuntimeClaimsBinding(hcl, base.subarray(0xa0, 0xe0)))).toBe(
          'ERR_EVIDENCE_CHAIN',
        );
      }),
      { numRuns: 1000 },
    );
  });

  it('random headers around real claims parse or fail typed; any change to the claims breaks the binding', () => {
    const fx = loadFixture('trustee__snp-evidence-v2');
    const base = fx.files.get('hcl-report.bin')!;
    const rd = base.subarray(0x20 + 0x50, 0x20 + 0x90);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2599 }), fc.integer({ min: 1, max: 255 })), {
          minLength: 1,
          maxLength: 3,
        }),
        (edits) => {
          const b = new Uint8Array(base);
          for (const [i, x] of edits) b[i]! ^= x;
          let hcl: ReturnType<typeof parseHclReport>;
          try {
            hcl = parseHclReport(b);
          } catch (err) {
            expect((err as AttestationError).code).toBe('ERR_EVIDENCE_MALFORMED');
            return;
          }
          const touchesClaims = edits.some(([i]) => i >= HCL_CLAIMS_OFFSET && i < HCL_CLAIMS_OFFSET + 1110);
          const touchesSize = edits.some(([i]) => i >= 0x4cc && i < 0x4d4);
          const c = code(() => checkRuntimeClaimsBinding(hcl, rd));
          if (touchesClaims || touchesSize) expect(c).toBe('ERR_EVIDENCE_CHAIN');
          else {
            expect(c).toBe('accepted');
            expect(code(() => parseRuntimeClaims(hcl))).toBe('accepted');
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
