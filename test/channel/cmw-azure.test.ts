/** The CMW records of Azure evidence (docs/protocol.md §6.1): round trip, strictness, caps. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CmwCollection,
  decodeCmw,
  encodeCmw,
  MAX_PCRS_SIZE,
  MAX_TPM_QUOTE_SIZE,
  MediaType,
  REPORT_MEDIA_TYPES,
} from '../../src/channel/cmw.js';
import { AttestationError } from '../../src/errors.js';
import { simulated } from '../../src/evidence/providers/simulated.js';

const b64 = (b: Uint8Array | string) => Buffer.from(b).toString('base64url');
const snpAzure = simulated.azure({ tee: 'snp' });
const tdxAzure = simulated.azure({ tee: 'tdx' });

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof AttestationError) return err.code;
    throw err;
  }
}

describe('CMW: Azure records', () => {
  it('round-trips simulated Azure SNP and TDX evidence', async () => {
    for (const provider of [snpAzure, tdxAzure]) {
      const input = await provider.getEvidence(new Uint8Array(64).fill(5));
      const cmw = encodeCmw(input, 'azure');
      expect(cmw['report']![0]).toBe(MediaType.AZURE_HCL_REPORT);
      expect(cmw['tpm-quote']![0]).toBe(MediaType.TPM_QUOTE);
      expect(cmw['tpm-signature']![0]).toBe(MediaType.TPM_SIGNATURE);
      expect(cmw['pcrs']![0]).toBe(MediaType.JSON);
      const back = decodeCmw(JSON.parse(JSON.stringify(cmw)), REPORT_MEDIA_TYPES);
      expect(back.format).toBe(provider.format);
      expect(Buffer.from(back.input.report).equals(Buffer.from(input.report))).toBe(true);
      expect(Buffer.from(back.input.tpm!.quote)).toEqual(Buffer.from(input.tpm!.quote));
      expect(Buffer.from(back.input.tpm!.signature)).toEqual(Buffer.from(input.tpm!.signature));
      expect(back.input.tpm!.pcrs).toEqual(input.tpm!.pcrs);
      if (provider.format === 'azure-tdx') {
        expect(cmw['td-quote']![0]).toBe(MediaType.TDX_QUOTE);
        expect(Buffer.from(back.input.tdQuote!)).toEqual(Buffer.from(input.tdQuote!));
        expect(back.input.collateral).toBeDefined();
      } else expect(back.input.vek).toBeDefined();
    }
  });

  it('a provider declaring azure-sev-snp but producing TDX evidence is ERR_PROVIDER_FAILED', async () => {
    const input = await tdxAzure.getEvidence(new Uint8Array(64));
    expect(codeOf(() => encodeCmw(input, 'azure-sev-snp'))).toBe('ERR_PROVIDER_FAILED');
    expect(codeOf(() => encodeCmw({ ...input, tpm: undefined } as never, 'azure'))).toBe(
      'ERR_PROVIDER_FAILED',
    );
  });

  it('missing, misplaced or mistyped records are ERR_EVIDENCE_MALFORMED', async () => {
    const snp = encodeCmw(await snpAzure.getEvidence(new Uint8Array(64)), 'azure');
    const tdx = encodeCmw(await tdxAzure.getEvidence(new Uint8Array(64)), 'azure');
    const cases: CmwCollection[] = [];
    for (const label of ['tpm-quote', 'tpm-signature', 'pcrs']) {
      const { [label]: _drop, ...rest } = snp;
      cases.push(rest);
    }
    const { 'td-quote': _td, ...noTdQuote } = tdx;
    cases.push(noTdQuote);
    cases.push({ ...snp, 'td-quote': tdx['td-quote']! }); // a TDX record with SNP hardware
    cases.push({ ...tdx, vek: snp['vek']! });
    cases.push({ ...snp, 'tpm-quote': [MediaType.JSON, snp['tpm-quote']![1]] });
    cases.push({ ...snp, pcrs: [MediaType.JSON, b64('not json')] });
    cases.push({ ...snp, pcrs: [MediaType.JSON, b64('["sha256"]')] });
    cases.push({ ...snp, pcrs: [MediaType.JSON, b64('{"sha256": 7}')] });
    // The HCL media type on raw SNP bytes, and an SNP media type on an HCL report.
    const raw = await simulated.snp().getEvidence(new Uint8Array(64));
    cases.push({ ...snp, report: [MediaType.AZURE_HCL_REPORT, b64(raw.report)] });
    cases.push({ ...snp, report: [MediaType.SNP_REPORT, snp['report']![1]] });
    for (const c of cases)
      expect(codeOf(() => decodeCmw(c, REPORT_MEDIA_TYPES))).toBe('ERR_EVIDENCE_MALFORMED');
  });

  it('an HCL report the challenger did not offer is the policy refusal (ERR_EVIDENCE_POLICY)', async () => {
    const snp = encodeCmw(await snpAzure.getEvidence(new Uint8Array(64)), 'azure');
    expect(codeOf(() => decodeCmw(snp, [MediaType.SNP_REPORT, MediaType.TDX_QUOTE]))).toBe(
      'ERR_EVIDENCE_POLICY',
    );
  });

  it('oversized quote and PCR records are refused before they are decoded', async () => {
    const snp = encodeCmw(await snpAzure.getEvidence(new Uint8Array(64)), 'azure');
    const big = (n: number) => 'A'.repeat(Math.ceil((n * 4) / 3) + 4);
    for (const [label, n] of [
      ['tpm-quote', MAX_TPM_QUOTE_SIZE],
      ['pcrs', MAX_PCRS_SIZE],
    ] as const) {
      try {
        decodeCmw({ ...snp, [label]: [snp[label]![0], big(n)] }, REPORT_MEDIA_TYPES);
        expect.unreachable();
      } catch (err) {
        expect((err as AttestationError).code).toBe('ERR_EVIDENCE_MALFORMED');
        expect((err as AttestationError).details.limit).toBe(n);
      }
    }
  });

  it('property: arbitrary Azure-shaped collections give evidence or a typed error', async () => {
    const snp = encodeCmw(await snpAzure.getEvidence(new Uint8Array(64)), 'azure');
    const rec = fc.tuple(
      fc.constantFrom(...Object.values(MediaType), 'x/y'),
      fc.oneof(fc.base64String(), ...Object.values(snp).map((r) => fc.constant(r[1])), fc.string()),
    );
    const coll = fc.dictionary(
      fc.constantFrom(
        'report',
        'vek',
        'chain',
        'collateral',
        'tpm-quote',
        'tpm-signature',
        'pcrs',
        'td-quote',
      ),
      fc.oneof(rec, fc.jsonValue()),
    );
    fc.assert(
      fc.property(coll, (extra) => {
        const c = codeOf(() => decodeCmw({ ...snp, ...extra }, REPORT_MEDIA_TYPES));
        expect([
          undefined,
          'ERR_EVIDENCE_MALFORMED',
          'ERR_UNSUPPORTED_EVIDENCE',
          'ERR_EVIDENCE_POLICY',
        ]).toContain(c);
      }),
      { numRuns: 300 },
    );
  });
});
