import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import {
  buildCertTable,
  CERT_TABLE_GUIDS,
  type CertTableEntry,
  parseCertTable,
} from '../../src/evidence/providers/cert-table.js';
import { thrownCode as code } from '../helpers/codes.js';

const sample: CertTableEntry[] = [
  { guid: CERT_TABLE_GUIDS.vcek, data: Uint8Array.of(1, 2, 3) },
  { guid: CERT_TABLE_GUIDS.ask, data: Uint8Array.of(4, 5) },
  { guid: CERT_TABLE_GUIDS.ark, data: Uint8Array.of(6) },
];

describe('SNP certificate table', () => {
  it('lays entries out as GUID, offset, length, then a zero entry, then payloads', () => {
    const t = buildCertTable(sample);
    expect(t.length).toBe(4 * 24 + 6);
    // GUID bytes are in RFC 4122 string order.
    expect(Buffer.from(t.subarray(0, 16)).toString('hex')).toBe('63da758de6644564adc5f4b93be8accd');
    const v = new DataView(t.buffer);
    expect(v.getUint32(16, true)).toBe(96);
    expect(v.getUint32(20, true)).toBe(3);
    expect(t.subarray(72, 96).every((b) => b === 0)).toBe(true);
    expect(parseCertTable(t)).toEqual(sample);
  });

  it('an empty buffer or a lone zero entry is an empty table; trailing padding is fine', () => {
    expect(parseCertTable(new Uint8Array())).toEqual([]);
    expect(parseCertTable(new Uint8Array(24))).toEqual([]);
    const padded = new Uint8Array(buildCertTable(sample).length + 4096);
    padded.set(buildCertTable(sample));
    expect(parseCertTable(padded)).toEqual(sample);
  });

  it.each([
    ['no terminating entry', (t: Uint8Array) => t.subarray(0, 24)],
    ['a truncated entry', (t: Uint8Array) => t.subarray(0, 30)],
    [
      'an offset into the header',
      (t: Uint8Array) => {
        new DataView(t.buffer).setUint32(16, 10, true);
        return t;
      },
    ],
    [
      'a payload past the end',
      (t: Uint8Array) => {
        new DataView(t.buffer).setUint32(20, t.length, true);
        return t;
      },
    ],
    [
      'an offset near 2^32',
      (t: Uint8Array) => {
        new DataView(t.buffer).setUint32(16, 0xffffffff, true);
        return t;
      },
    ],
    [
      'a repeated GUID',
      (t: Uint8Array) => {
        t.set(t.subarray(0, 16), 24);
        return t;
      },
    ],
  ])('refuses %s with ERR_PROVIDER_FAILED', (_name, mutate) => {
    expect(code(() => parseCertTable(mutate(buildCertTable(sample))))).toBe('ERR_PROVIDER_FAILED');
  });

  it('property: arbitrary bytes give entries inside the buffer or ERR_PROVIDER_FAILED, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        let entries: CertTableEntry[];
        try {
          entries = parseCertTable(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(AttestationError);
          expect((err as AttestationError).code).toBe('ERR_PROVIDER_FAILED');
          return;
        }
        const total = entries.reduce((n, e) => n + e.data.length, 0);
        expect(total).toBeLessThanOrEqual(bytes.length);
        expect(new Set(entries.map((e) => e.guid)).size).toBe(entries.length);
      }),
      { numRuns: 500 },
    );
  });

  it('property: mutated valid tables never crash', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 4 * 24 + 5 }),
        fc.integer({ min: 0, max: 255 }),
        fc.nat({ max: 200 }),
        (pos, value, cut) => {
          const t = buildCertTable(sample);
          t[pos] = value;
          const result = code(() => parseCertTable(t.subarray(0, Math.max(0, t.length - cut))));
          expect(result === 'accepted' || result === 'ERR_PROVIDER_FAILED').toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('property: parse(build(entries)) returns the entries', () => {
    const entry = fc.record({
      guid: fc.uuid().filter((g) => g !== '00000000-0000-0000-0000-000000000000'),
      data: fc.uint8Array({ maxLength: 64 }),
    });
    fc.assert(
      fc.property(fc.uniqueArray(entry, { selector: (e) => e.guid, maxLength: 6 }), (entries) => {
        expect(parseCertTable(buildCertTable(entries))).toEqual(entries);
      }),
      { numRuns: 200 },
    );
  });
});
