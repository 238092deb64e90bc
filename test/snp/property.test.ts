/**
 * Property tests: arbitrary bytes and mutated real reports never crash, never hang, and never
 * verify unless the report is byte-for-byte the signed original.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import { vekExtensions } from '../../src/evidence/snp/certs.js';
import {
  decodeGuestPolicy,
  decodePlatformInfo,
  parseSnpReport,
  SNP_REPORT_LENGTH,
} from '../../src/evidence/snp/report.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { parseCertificate } from '../../src/evidence/x509/cert.js';
import { allFixtures } from './fixtures.js';

const fixtures = allFixtures();

function onlyAttestationErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof AttestationError)) throw err;
  }
}

describe('SNP parser and verifier properties', () => {
  it('u64 fields decoded from two u32 halves agree with BigInt arithmetic', () => {
    const bitOf = (v: bigint, n: number) => ((v >> BigInt(n)) & 1n) === 1n;
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (v) => {
        const lo = Number(v & 0xffffffffn);
        const hi = Number(v >> 32n);
        const policy = decodeGuestPolicy(lo, hi);
        expect(policy.raw).toBe(`0x${v.toString(16)}`);
        expect(policy.abiMinor).toBe(Number(v & 0xffn));
        expect(policy.abiMajor).toBe(Number((v >> 8n) & 0xffn));
        expect([policy.smt, policy.migrateMa, policy.debug, policy.pageSwapDisable]).toEqual(
          [16, 18, 19, 25].map((n) => bitOf(v, n)),
        );
        const info = decodePlatformInfo(lo, hi);
        expect(info.raw).toBe(`0x${v.toString(16)}`);
        expect([info.smtEnabled, info.aliasCheckComplete, info.sevTioEnabled]).toEqual(
          [0, 5, 7].map((n) => bitOf(v, n)),
        );
        expect(info.unknownBits).toBe(`0x${(v & ~0b1011_1111n & (2n ** 64n - 1n)).toString(16)}`);
      }),
    );
  });

  it('parseSnpReport: arbitrary bytes of any length → a report or ERR_EVIDENCE_MALFORMED', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 1300 }), (bytes) => {
        try {
          parseSnpReport(bytes);
          expect(bytes.length).toBe(SNP_REPORT_LENGTH);
        } catch (err) {
          expect(err).toBeInstanceOf(AttestationError);
          expect((err as AttestationError).code).toBe('ERR_EVIDENCE_MALFORMED');
        }
      }),
      { numRuns: 150 },
    );
  });

  it('parseSnpReport: 1184 arbitrary bytes over a valid header never crash', () => {
    const header = fixtures[0]!.report.subarray(0, 0x50);
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: SNP_REPORT_LENGTH - 0x50, maxLength: SNP_REPORT_LENGTH - 0x50 }),
        (tail) => {
          const b = new Uint8Array(SNP_REPORT_LENGTH);
          b.set(header);
          b.set(tail, 0x50);
          onlyAttestationErrors(() => parseSnpReport(b));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('verifyEvidence: arbitrary 1184-byte reports are refused with an AttestationError', async () => {
    const f = fixtures[0]!;
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: SNP_REPORT_LENGTH, maxLength: SNP_REPORT_LENGTH }),
        async (report) => {
          await expect(
            verifyEvidence({ report, vek: f.vek }, { now: f.at, offline: true }),
          ).rejects.toBeInstanceOf(AttestationError);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('verifyEvidence: a real report with any byte changed is refused; unchanged it verifies', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: fixtures.length - 1 }),
        fc.integer({ min: 0, max: SNP_REPORT_LENGTH - 1 }),
        fc.integer({ min: 1, max: 255 }),
        async (which, offset, xor) => {
          const f = fixtures[which]!;
          const opts = { now: f.at, offline: true, policy: { snp: { allowDebug: true } } };
          const report = Uint8Array.from(f.report);
          report[offset] = report[offset]! ^ xor;
          let accepted = false;
          try {
            await verifyEvidence({ report, vek: f.vek, chain: [f.ask, f.ark] }, opts);
            accepted = true;
          } catch (err) {
            expect(err).toBeInstanceOf(AttestationError);
          }
          expect(accepted).toBe(false);
        },
      ),
      { numRuns: 100 },
    );
    for (const f of fixtures)
      await expect(
        verifyEvidence(
          { report: f.report, vek: f.vek },
          { now: f.at, offline: true, policy: { snp: { allowDebug: true } } },
        ),
      ).resolves.toBeTruthy();
  });

  it('VEK certificates: arbitrary and mutated bytes → ERR_EVIDENCE_CHAIN, never a crash or acceptance', async () => {
    const f = fixtures.find((x) => x.name === 'ms-tav__milan-v3')!;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 2000 }),
          fc
            .tuple(fc.integer({ min: 0, max: f.vek.length - 1 }), fc.integer({ min: 1, max: 255 }))
            .map(([i, x]) => {
              const v = Uint8Array.from(f.vek);
              v[i] = v[i]! ^ x;
              return v;
            }),
        ),
        async (vek) => {
          try {
            const cert = parseCertificate(vek, 'ERR_EVIDENCE_CHAIN');
            onlyAttestationErrors(() => vekExtensions(cert));
          } catch (err) {
            expect(err).toBeInstanceOf(AttestationError);
          }
          await expect(
            verifyEvidence({ report: f.report, vek }, { now: f.at, offline: true }),
          ).rejects.toBeInstanceOf(AttestationError);
        },
      ),
      { numRuns: 60 },
    );
  });
});
