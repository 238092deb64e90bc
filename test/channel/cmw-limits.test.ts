/**
 * The CMW records a peer sends are bounded before anything parses them: an application/pkix-cert
 * record is one DER certificate (no PEM to search through), and the VEK and chain are capped at
 * sizes far above the largest real ones in the fixtures.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeCmw, encodeCmw, MediaType, REPORT_MEDIA_TYPES } from '../../src/channel/cmw.js';
import type { AttestationError } from '../../src/errors.js';
import { base64url } from '../../src/evidence/bytes.js';
import { MAX_CHAIN_SIZE, MAX_VEK_SIZE } from '../../src/evidence/snp/verify.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { derToPem, pemToDer } from '../../src/evidence/x509/pem.js';
import { thrownCode as codeOf } from '../helpers/codes.js';
import { allFixtures, loadFixture } from '../snp/fixtures.js';

const f = loadFixture('trustee__azure-milan-v2-hcl');
const bundle = readFileSync(
  new URL('../fixtures/snp/trustee__azure-milan-v2-hcl/vcek-bundle.pem', import.meta.url),
);

const withVek = (vek: Uint8Array) => ({
  report: [MediaType.SNP_REPORT, base64url(f.report)],
  vek: [MediaType.PKIX_CERT, base64url(vek)],
});
const withChain = (chain: Uint8Array) => ({
  report: [MediaType.SNP_REPORT, base64url(f.report)],
  chain: [MediaType.PEM_CHAIN, base64url(chain)],
});

describe('CMW: the VEK record is DER only, and VEK and chain are capped', () => {
  it('every real VEK passes as DER, and the largest real chain (Azure, 6.5 KB) is well under the cap', () => {
    for (const x of allFixtures()) {
      expect(decodeCmw(withVek(x.vek), REPORT_MEDIA_TYPES).input.vek).toEqual(x.vek);
      expect(x.vek.length * 8).toBeLessThan(MAX_VEK_SIZE);
    }
    expect(bundle.length).toBe(6503);
    expect(pemToDer(bundle.toString('latin1')).length).toBe(3);
    expect(decodeCmw(withChain(bundle), REPORT_MEDIA_TYPES).input.chain).toBe(bundle.toString('utf8'));
    expect(bundle.length * 8).toBeLessThan(MAX_CHAIN_SIZE);
  });

  it('a VEK record in PEM is refused (application/pkix-cert is DER)', () => {
    expect(codeOf(() => decodeCmw(withVek(Buffer.from(derToPem(f.vek))), REPORT_MEDIA_TYPES))).toBe(
      'ERR_EVIDENCE_MALFORMED',
    );
  });

  it('a VEK record that is not exactly one DER element is refused', () => {
    expect(codeOf(() => decodeCmw(withVek(Buffer.concat([f.vek, Buffer.of(0)])), REPORT_MEDIA_TYPES))).toBe(
      'ERR_EVIDENCE_MALFORMED',
    );
    expect(codeOf(() => decodeCmw(withVek(f.vek.subarray(0, f.vek.length - 1)), REPORT_MEDIA_TYPES))).toBe(
      'ERR_EVIDENCE_MALFORMED',
    );
    expect(codeOf(() => decodeCmw(withVek(new Uint8Array(160_000)), REPORT_MEDIA_TYPES))).toBe(
      'ERR_EVIDENCE_MALFORMED',
    );
  });

  it('a VEK or chain over its cap is refused before it is decoded', () => {
    const bigVek = Buffer.alloc(MAX_VEK_SIZE + 1);
    bigVek[0] = 0x30;
    bigVek[1] = 0x82;
    bigVek.writeUInt16BE(MAX_VEK_SIZE - 3, 2);
    expect(() => decodeCmw(withVek(bigVek), REPORT_MEDIA_TYPES)).toThrow(/over the limit/);
    const bigChain = Buffer.from(
      bundle.toString('latin1').repeat(Math.ceil((MAX_CHAIN_SIZE + 1) / bundle.length)),
    );
    expect(() => decodeCmw(withChain(bigChain), REPORT_MEDIA_TYPES)).toThrow(/over the limit/);
  });

  it('what the encoder sends for real evidence decodes', () => {
    const cmw = encodeCmw({ report: f.report, vek: f.vek, chain: bundle.toString('latin1') }, 'sev-snp');
    expect(decodeCmw(cmw, REPORT_MEDIA_TYPES).input.vek).toEqual(f.vek);
  });
});

describe('verifyEvidence caps the VEK and chain before parsing them', () => {
  it('a VEK of 160 000 NUL bytes is ERR_EVIDENCE_CHAIN at once', async () => {
    const err = await verifyEvidence({ report: f.report, vek: new Uint8Array(160_000) }, { now: f.at }).catch(
      (e: unknown) => e,
    );
    expect((err as AttestationError).code).toBe('ERR_EVIDENCE_CHAIN');
    // Refused by the size cap, before any PEM or DER parsing of the bytes.
    expect((err as AttestationError).message).toMatch(/over the limit/);
  });

  it('a chain over the cap is ERR_EVIDENCE_CHAIN', async () => {
    const chain = [f.ask, f.ark, new Uint8Array(MAX_CHAIN_SIZE)];
    const err = await verifyEvidence({ report: f.report, vek: f.vek, chain }, { now: f.at }).catch(
      (e: unknown) => e,
    );
    expect((err as AttestationError).code).toBe('ERR_EVIDENCE_CHAIN');
    expect((err as AttestationError).message).toMatch(/over the limit/);
  });
});
