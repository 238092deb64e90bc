import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesToHex } from '../../src/evidence/bytes.js';
import { parseTdxQuote } from '../../src/evidence/tdx/quote.js';
import { thrownCode } from '../helpers/codes.js';
import { loadVector, VECTOR_IDS } from './fixtures.js';

const malformed = (bytes: Uint8Array): string => thrownCode(() => parseTdxQuote(bytes));

function u16(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = v >> 8;
}
function u32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = v >>> 24;
}
function readU32(b: Uint8Array, off: number): number {
  return b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24);
}

const v4 = loadVector('dcap-qvl__quote');
const v5 = loadVector('go-tdx-guest__quote_v5');
// Offsets of the v4 layout (docs/reference/tdx-format.md §1).
const SIG_LEN = 632;
const SIG = 636;
const CERT_TYPE = SIG + 128;
const CERT_SIZE = SIG + 130;
const QE_REPORT = SIG + 134;
const AUTH_SIZE = QE_REPORT + 448;

describe('parseTdxQuote on the real vectors', () => {
  it.each(VECTOR_IDS)('%s: fields equal meta.json, trailing bytes ignored', (id) => {
    const { quote, meta } = loadVector(id);
    const q = parseTdxQuote(quote);
    expect(q.header.version).toBe(meta.quote_version);
    expect(q.bodyType).toBe(meta.body_type);
    expect(q.size).toBe(meta.quote_size - meta.trailing_bytes);
    const b = q.body;
    expect(bytesToHex(b.mrTd)).toBe(meta.mr_td);
    expect(bytesToHex(b.rtmr0)).toBe(meta.rtmr0);
    expect(bytesToHex(b.rtmr1)).toBe(meta.rtmr1);
    expect(bytesToHex(b.rtmr2)).toBe(meta.rtmr2);
    expect(bytesToHex(b.rtmr3)).toBe(meta.rtmr3);
    expect(bytesToHex(b.reportData)).toBe(meta.report_data);
    expect(bytesToHex(b.mrSeam)).toBe(meta.mr_seam);
    expect(bytesToHex(b.mrSignerSeam)).toBe(meta.mr_signer_seam);
    expect(bytesToHex(b.mrConfigId)).toBe(meta.mr_config_id);
    expect(bytesToHex(b.mrOwner)).toBe(meta.mr_owner);
    expect(bytesToHex(b.mrOwnerConfig)).toBe(meta.mr_owner_config);
    expect(bytesToHex(b.xfam)).toBe(meta.xfam);
    expect(bytesToHex(b.teeTcbSvn)).toBe(meta.tee_tcb_svn);
    expect(bytesToHex(b.tdAttributes)).toBe(meta.td_attributes);
    expect(bytesToHex(b.seamAttributes)).toBe(meta.seam_attributes);
    if (meta.body_type === 3) {
      expect(bytesToHex(b.teeTcbSvn2!)).toBe(meta.tee_tcb_svn2);
      expect(bytesToHex(b.mrServiceTd!)).toBe(meta.mr_servicetd);
    } else {
      expect(b.teeTcbSvn2).toBeUndefined();
      expect(b.mrServiceTd).toBeUndefined();
    }
    expect(q.pckChain).toHaveLength(3);
    expect(q.attestationKey).toHaveLength(64);
    expect(q.qeAuthData).toHaveLength(32);
    expect(q.qeReport.isvProdId).toBe(2);
  });

  it('v5: the signed data covers header, body descriptor and the 648-byte body', () => {
    const q = parseTdxQuote(v5.quote);
    expect(q.signedData.length).toBe(48 + 6 + 648);
    expect(readU32(v5.quote, 702)).toBe(q.size - 706);
  });

  it('v4: the signed data is header and body (632 bytes)', () => {
    expect(parseTdxQuote(v4.quote).signedData.length).toBe(632);
  });

  it('the exact quote without trailing bytes parses the same', () => {
    const q = parseTdxQuote(v4.quote);
    const exact = parseTdxQuote(v4.quote.slice(0, q.size));
    expect(bytesToHex(exact.signature)).toBe(bytesToHex(q.signature));
  });
});

describe('parseTdxQuote refuses', () => {
  const cases: Array<[string, (b: Uint8Array) => unknown]> = [
    ['version 3', (b) => u16(b, 0, 3)],
    ['version 6', (b) => u16(b, 0, 6)],
    ['attestation key type 3 (P-384)', (b) => u16(b, 2, 3)],
    ['TEE type SGX', (b) => u32(b, 4, 0)],
    [
      'a non-Intel QE vendor',
      (b) => {
        b[12]! ^= 1;
      },
    ],
    ['signature data length past the end', (b) => u32(b, SIG_LEN, 0x100000)],
    [
      'signature data length 0x10 (go-tdx-guest offset 0x278)',
      (b) => {
        b[0x278] = 0x10;
      },
    ],
    ['certification data type 5 outside', (b) => u16(b, CERT_TYPE, 5)],
    ['certification data size one too small', (b) => u32(b, CERT_SIZE, readU32(b, CERT_SIZE) - 1)],
    ['QE auth data size running past the end', (b) => u16(b, AUTH_SIZE, 0xffff)],
    ['inner certification type 4', (b) => u16(b, AUTH_SIZE + 2 + 32, 4)],
    ['truncated to the header', (b) => b.slice(0, 48)],
    ['truncated inside the PCK chain', (b) => b.slice(0, 3000)],
    ['empty input', () => new Uint8Array(0)],
  ];
  it.each(cases)('%s', (_name, mutate) => {
    const b = v4.quote.slice();
    const r = mutate(b);
    const out = r instanceof Uint8Array ? r : b;
    expect(malformed(out)).toBe('ERR_EVIDENCE_MALFORMED');
  });

  it('v5 with body type 2 but size 648, or type 1 (SGX), or type 3 of size 999', () => {
    for (const [type, size] of [
      [2, 648],
      [1, 384],
      [3, 999],
    ] as const) {
      const b = v5.quote.slice();
      u16(b, 48, type);
      u32(b, 50, size);
      expect(malformed(b)).toBe('ERR_EVIDENCE_MALFORMED');
    }
  });

  it('a PCK chain with text outside its certificates', () => {
    const q = parseTdxQuote(v4.quote);
    const chainStart = q.size - (readU32(v4.quote, AUTH_SIZE + 2 + 32 + 2) >>> 0);
    const b = v4.quote.slice(0, q.size);
    // Overwrite the first character of "-----BEGIN" with a letter: the block no longer parses as PEM.
    b[chainStart] = 0x58;
    expect(malformed(b)).toBe('ERR_EVIDENCE_MALFORMED');
  });

  it('a PCK chain of two certificates (the root dropped, lengths kept consistent)', () => {
    const q = parseTdxQuote(v4.quote);
    const innerSizeOff = AUTH_SIZE + 2 + 32 + 2;
    const chainStart = innerSizeOff + 4;
    const pem = Buffer.from(v4.quote.subarray(chainStart, q.size)).toString('latin1');
    const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g)!;
    const shorter = Buffer.from(blocks.slice(0, 2).join(''), 'latin1');
    const head = v4.quote.slice(0, chainStart);
    const delta = q.size - chainStart - shorter.length;
    u32(head, innerSizeOff, shorter.length);
    u32(head, CERT_SIZE, readU32(head, CERT_SIZE) - delta);
    u32(head, SIG_LEN, readU32(head, SIG_LEN) - delta);
    const out = new Uint8Array(head.length + shorter.length);
    out.set(head);
    out.set(shorter, head.length);
    expect(malformed(out)).toBe('ERR_EVIDENCE_MALFORMED');
    // Control: the same surgery with all three blocks gives a quote that parses.
    const full = Buffer.from(blocks.join(''), 'latin1');
    const head2 = v4.quote.slice(0, chainStart);
    const d2 = q.size - chainStart - full.length;
    u32(head2, innerSizeOff, full.length);
    u32(head2, CERT_SIZE, readU32(head2, CERT_SIZE) - d2);
    u32(head2, SIG_LEN, readU32(head2, SIG_LEN) - d2);
    const ok = new Uint8Array(head2.length + full.length);
    ok.set(head2);
    ok.set(full, head2.length);
    expect(parseTdxQuote(ok).pckChain).toHaveLength(3);
  });
});

describe('parseTdxQuote properties', () => {
  it('arbitrary bytes: a typed error or a parse, never a crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        expect(malformed(bytes)).toBe('ERR_EVIDENCE_MALFORMED');
      }),
      { numRuns: 2000 },
    );
  });

  it('arbitrary bytes behind a valid v4/v5 header reach the deeper checks and still fail cleanly', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ maxLength: 6000 }), (five, tail) => {
        const head = (five ? v5 : v4).quote.slice(0, five ? 54 : 48);
        const b = new Uint8Array(head.length + tail.length);
        b.set(head);
        b.set(tail, head.length);
        expect(malformed(b)).toBe('ERR_EVIDENCE_MALFORMED');
      }),
      { numRuns: 500 },
    );
  });

  it('mutated real quotes: parse (fields changed) or a typed error, never anything else', () => {
    const q = parseTdxQuote(v4.quote);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: q.size - 1 }), fc.integer({ min: 1, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.nat({ max: q.size }),
        (flips, cut) => {
          const b = v4.quote.slice(0, q.size);
          for (const [off, x] of flips) b[off]! ^= x;
          const r = malformed(b);
          expect(['ERR_EVIDENCE_MALFORMED', 'accepted']).toContain(r);
          expect(['ERR_EVIDENCE_MALFORMED', 'accepted']).toContain(malformed(b.slice(0, cut)));
        },
      ),
      { numRuns: 1000 },
    );
  });
});
