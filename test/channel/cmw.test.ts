import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChainEncoder, decodeCmw, encodeCmw, MediaType, REPORT_MEDIA_TYPES } from '../../src/channel/cmw.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { derToPem } from '../../src/evidence/x509/pem.js';
import { thrownCode as codeOf } from '../helpers/codes.js';
import { fakeReport } from './helpers.js';

const b64 = (b: Uint8Array | string) => Buffer.from(b).toString('base64url');
const snp = fakeReport(new Uint8Array(64).fill(1));

describe('CMW collection', () => {
  it('round-trips real simulated SNP evidence (report, VEK, chain)', async () => {
    const input = await simulated.snp().getEvidence(new Uint8Array(64).fill(3));
    const cmw = encodeCmw(input, 'sev-snp');
    expect(cmw['report']![0]).toBe(MediaType.SNP_REPORT);
    const wire = JSON.parse(JSON.stringify(cmw));
    const back = decodeCmw(wire, REPORT_MEDIA_TYPES);
    expect(back.format).toBe('sev-snp');
    expect(Buffer.from(back.input.report).equals(Buffer.from(input.report))).toBe(true);
    if (input.vek) expect(Buffer.from(back.input.vek!).equals(Buffer.from(input.vek))).toBe(true);
    if (input.chain) expect(typeof back.input.chain).toBe('string');
  });

  it('a ChainEncoder gives each chain its own encoding, as encodeCmw without one does', async () => {
    const one = await simulated.snp({ product: 'Milan' }).getEvidence(new Uint8Array(64));
    const two = await simulated.snp({ product: 'Genoa' }).getEvidence(new Uint8Array(64));
    const chains = new ChainEncoder();
    for (const input of [one, one, two, one, two, two]) {
      const memo = encodeCmw(input, 'sev-snp', chains)['chain'];
      expect(memo).toEqual(encodeCmw(input, 'sev-snp')['chain']);
    }
    expect(encodeCmw(one, 'sev-snp', chains)['chain']).not.toEqual(
      encodeCmw(two, 'sev-snp', chains)['chain'],
    );
  });

  it('each chain decodes to its own text, the same one twice included, and a bad one after a good one fails', () => {
    const chainOf = (text: string) => ({
      report: [MediaType.SNP_REPORT, b64(snp)],
      chain: [MediaType.PEM_CHAIN, b64(text)],
    });
    const [a, b] = ['-----BEGIN CERTIFICATE-----\nAAAA\n', '-----BEGIN CERTIFICATE-----\nBBBB\n'];
    expect(decodeCmw(chainOf(a!), REPORT_MEDIA_TYPES).input.chain).toBe(a);
    expect(decodeCmw(chainOf(a!), REPORT_MEDIA_TYPES).input.chain).toBe(a);
    expect(decodeCmw(chainOf(b!), REPORT_MEDIA_TYPES).input.chain).toBe(b);
    const bad = { report: [MediaType.SNP_REPORT, b64(snp)], chain: [MediaType.PEM_CHAIN, `${b64(b!)}=`] };
    expect(codeOf(() => decodeCmw(bad, REPORT_MEDIA_TYPES))).toBe('ERR_EVIDENCE_MALFORMED');
    const notUtf8 = {
      report: [MediaType.SNP_REPORT, b64(snp)],
      chain: [MediaType.PEM_CHAIN, b64(Uint8Array.of(0xff))],
    };
    expect(codeOf(() => decodeCmw(notUtf8, REPORT_MEDIA_TYPES))).toBe('ERR_EVIDENCE_MALFORMED');
  });

  it('round-trips real simulated TDX evidence with collateral', async () => {
    const input = await simulated.tdx().getEvidence(new Uint8Array(64).fill(3));
    const back = decodeCmw(JSON.parse(JSON.stringify(encodeCmw(input, 'tdx'))), REPORT_MEDIA_TYPES);
    expect(back.format).toBe('tdx');
    expect(back.mediaType).toBe(MediaType.TDX_QUOTE);
    if (input.collateral) expect(JSON.parse(back.input.collateral as string)).toBeTypeOf('object');
  });

  it('writes PEM chains as one PEM text and uses unpadded base64url', () => {
    const der = Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x01);
    const cmw = encodeCmw({ report: snp, chain: [der, der] }, 'sev-snp');
    expect(cmw['chain']![0]).toBe(MediaType.PEM_CHAIN);
    expect(Buffer.from(cmw['chain']![1], 'base64url').toString()).toBe(derToPem(der) + derToPem(der));
    for (const [, v] of Object.values(cmw)) expect(v).toMatch(/^[A-Za-z0-9_-]*$/);
  });

  it('refuses a provider whose report is not of its declared format', () => {
    expect(codeOf(() => encodeCmw({ report: snp }, 'tdx'))).toBe('ERR_PROVIDER_FAILED');
  });

  it('refuses a known report type that was not offered by the policy (field "format"), an unknown one as unsupported', () => {
    const c = { report: [MediaType.SNP_REPORT, b64(snp)] };
    expect(codeOf(() => decodeCmw(c, [MediaType.TDX_QUOTE]))).toBe('ERR_EVIDENCE_POLICY');
    let details: unknown;
    try {
      decodeCmw(c, [MediaType.TDX_QUOTE]);
    } catch (err) {
      details = (err as { details?: unknown }).details;
    }
    expect(details).toEqual({ field: 'format', format: 'sev-snp', allowed: ['tdx'] });
    expect(codeOf(() => decodeCmw({ report: ['application/x-other', b64(snp)] }, REPORT_MEDIA_TYPES))).toBe(
      'ERR_UNSUPPORTED_EVIDENCE',
    );
  });

  it.each([
    ['not an object', []],
    ['no report', { vek: [MediaType.PKIX_CERT, 'AA'] }],
    ['unknown label', { report: [MediaType.SNP_REPORT, b64(snp)], extra: [MediaType.JSON, 'AA'] }],
    ['record of 1', { report: [MediaType.SNP_REPORT] }],
    ['record of 4', { report: [MediaType.SNP_REPORT, b64(snp), 4, 5] }],
    ['bad indicator', { report: [MediaType.SNP_REPORT, b64(snp), 'x'] }],
    [
      'padded base64',
      { report: [MediaType.SNP_REPORT, Buffer.from(snp.subarray(0, 1183)).toString('base64')] },
    ],
    ['standard alphabet', { report: [MediaType.SNP_REPORT, `${b64(snp).slice(0, -2)}+/`] }],
    ['wrong size for SNP', { report: [MediaType.SNP_REPORT, b64(snp.subarray(1))] }],
    [
      'media type with parameters',
      { report: [MediaType.SNP_REPORT, b64(snp)], vek: [`${MediaType.PKIX_CERT}; x=1`, 'AA'] },
    ],
    [
      'collateral with SNP',
      { report: [MediaType.SNP_REPORT, b64(snp)], collateral: [MediaType.JSON, b64('{}')] },
    ],
    ['vek typed as JSON', { report: [MediaType.SNP_REPORT, b64(snp)], vek: [MediaType.JSON, 'AA'] }],
    [
      'chain not UTF-8',
      { report: [MediaType.SNP_REPORT, b64(snp)], chain: [MediaType.PEM_CHAIN, b64(Uint8Array.of(0xff))] },
    ],
    ['TDX type on SNP bytes', { report: [MediaType.TDX_QUOTE, b64(snp)] }],
  ])('refuses %s with ERR_EVIDENCE_MALFORMED', (_n, value) => {
    expect(codeOf(() => decodeCmw(value, REPORT_MEDIA_TYPES))).toBe('ERR_EVIDENCE_MALFORMED');
  });

  it('accepts a CMW indicator as third element', () => {
    expect(decodeCmw({ report: [MediaType.SNP_REPORT, b64(snp), 4] }, REPORT_MEDIA_TYPES).format).toBe(
      'sev-snp',
    );
  });

  it('property: arbitrary JSON gives evidence or a typed error', () => {
    const rec = fc.tuple(
      fc.constantFrom(...Object.values(MediaType), 'x/y'),
      fc.oneof(fc.base64String(), fc.constant(b64(snp)), fc.string()),
    );
    const coll = fc.dictionary(
      fc.constantFrom('report', 'vek', 'chain', 'collateral', 'other'),
      fc.oneof(rec, fc.jsonValue()),
    );
    fc.assert(
      fc.property(fc.oneof(coll, fc.jsonValue()), (v) => {
        const code = codeOf(() => decodeCmw(v, REPORT_MEDIA_TYPES));
        if (code !== 'accepted')
          expect(['ERR_EVIDENCE_MALFORMED', 'ERR_UNSUPPORTED_EVIDENCE']).toContain(code);
      }),
      { numRuns: 500 },
    );
  });
});
