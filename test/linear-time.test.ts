/**
 * Every parser that reads peer (or network) bytes before a signature is checked runs in time
 * linear in its input, on the inputs that make backtracking regular expressions and re-scanning
 * loops quadratic: NUL runs, unterminated PEM blocks, repeated headers, long strings. Each case
 * times N and 8N bytes and bounds the ratio (linear is ~8, quadratic ~64): a generous bound, so
 * the test measures the growth, not the machine.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeCmw, MediaType, REPORT_MEDIA_TYPES } from '../src/channel/cmw.js';
import { FrameDecoder, parseAlert, parseEvidence, parseRequest } from '../src/channel/frames.js';
import { base64url, fromBase64url, hexToBytes } from '../src/evidence/bytes.js';
import { parsePolicy } from '../src/evidence/policy.js';
import { extractJsonMember } from '../src/evidence/tdx/pcs.js';
import { parseTdxQuote } from '../src/evidence/tdx/quote.js';
import { parseQeIdentity, parseTcbInfo } from '../src/evidence/tdx/tcb.js';
import { derToPem, pemToDer, toDerList } from '../src/evidence/x509/pem.js';
import { loadFixture } from './snp/fixtures.js';
import { loadVector } from './tdx/fixtures.js';

/** Time of one call of `run(input)`, ms: repeated until 20 ms have passed, best of 3 such rounds. */
function perCall(run: (input: never) => unknown, input: unknown): number {
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 3; round++) {
    let calls = 0;
    const started = performance.now();
    let elapsed = 0;
    do {
      try {
        run(input as never);
      } catch {
        // Refusing the input is as good as parsing it; only the time counts here.
      }
      calls++;
      elapsed = performance.now() - started;
    } while (elapsed < 20);
    best = Math.min(best, elapsed / calls);
  }
  return best;
}

function growth(make: (n: number) => unknown, run: (input: never) => unknown, n: number): number {
  const small = make(n);
  const large = make(8 * n);
  perCall(run, small); // warm-up (JIT)
  // A busy machine can stretch one measurement; quadratic growth stays ~64 in every attempt, so
  // the least of three ratios tells the two apart without loosening the bound.
  let ratio = Number.POSITIVE_INFINITY;
  for (let attempt = 0; attempt < 3 && ratio > 16; attempt++)
    ratio = Math.min(ratio, perCall(run, large) / perCall(run, small));
  return ratio;
}

const BEGIN = '-----BEGIN CERTIFICATE-----';
const repeatTo = (unit: string, n: number) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
/**
 * About n bytes of whole `"a":1,` members, so the JSON parses and the parser's own handling of
 * many members is timed, not a syntax error's. At 8 × 50 000 bytes a call takes a few ms: several
 * calls a round, where 1.6 MB took ~27 ms, one call, and a GC pause in it could double the ratio.
 */
const members = (n: number) => '"a":1,'.repeat(Math.ceil(n / 6));
const snp = loadFixture('ms-tav__genoa-v3');
const certPem = derToPem(snp.vek);

/** A real v4 quote with its PCK chain replaced by `chain` (every size field kept consistent). */
function quoteWithChain(chain: Uint8Array): Uint8Array {
  const q = Buffer.from(loadVector('go-tdx-guest__quote').quote);
  const off = 48 + 584;
  const s = off + 4;
  const certSizeAt = s + 64 + 64 + 2;
  const qeStart = certSizeAt + 4;
  const authSizeAt = qeStart + 384 + 64;
  const innerTypeAt = authSizeAt + 2 + q.readUInt16LE(authSizeAt);
  const chainAt = innerTypeAt + 2 + 4;
  const out = Buffer.concat([q.subarray(0, chainAt), chain]);
  out.writeUInt32LE(chain.length, innerTypeAt + 2);
  out.writeUInt32LE(chainAt - qeStart + chain.length, certSizeAt);
  out.writeUInt32LE(chainAt - s + chain.length, off);
  return out;
}

const cases: Array<[string, (n: number) => unknown, (input: never) => unknown, number]> = [
  ['pemToDer: NULs then one other byte', (n) => `${'\0'.repeat(n)}x`, (t: string) => pemToDer(t), 20_000],
  ['pemToDer: repeated BEGIN lines, no END', (n) => repeatTo(BEGIN, n), (t: string) => pemToDer(t), 20_000],
  [
    'pemToDer: one unterminated block',
    (n) => `${BEGIN}\n${'A'.repeat(n)}`,
    (t: string) => pemToDer(t),
    20_000,
  ],
  ['pemToDer: many real certificates', (n) => repeatTo(certPem, n), (t: string) => pemToDer(t), 20_000],
  [
    'pemToDer: whitespace-only body',
    (n) => `${BEGIN}${' '.repeat(n)}-----END CERTIFICATE-----`,
    (t: string) => pemToDer(t),
    20_000,
  ],
  ['toDerList: a VEK of NUL bytes', (n) => new Uint8Array(n), (b: Uint8Array) => toDerList(b), 20_000],
  [
    'decodeCmw: a chain of BEGIN lines (under the cap)',
    (n) => ({
      report: [MediaType.SNP_REPORT, base64url(snp.report)],
      chain: [MediaType.PEM_CHAIN, base64url(Buffer.from(repeatTo(BEGIN, n)))],
    }),
    (v: unknown) => decodeCmw(v, REPORT_MEDIA_TYPES),
    6_000,
  ],
  [
    'parseTdxQuote: a PCK chain of BEGIN lines',
    (n) => quoteWithChain(Buffer.from(repeatTo(BEGIN, n))),
    (q: Uint8Array) => parseTdxQuote(q),
    6_000,
  ],
  [
    'parseTdxQuote: a PCK chain with one unterminated block',
    (n) => quoteWithChain(Buffer.from(`${BEGIN}\n${'A'.repeat(n)}`)),
    (q: Uint8Array) => parseTdxQuote(q),
    6_000,
  ],
  [
    'parseEvidence: a long string member',
    (n) => Buffer.from(`{"context":"${'A'.repeat(43)}","evidence":"${'\\"'.repeat(n / 2)}"}`),
    (b: Uint8Array) => parseEvidence(b),
    200_000,
  ],
  [
    'parseRequest: many members',
    (n) => Buffer.from(`{${members(n)}"v":1}`),
    (b: Uint8Array) => parseRequest(b),
    50_000,
  ],
  [
    'parseAlert: a long reason',
    (n) => Buffer.from(`{"code":"ERR_X","reason":"${'x'.repeat(n)}"}`),
    (b: Uint8Array) => parseAlert(b),
    200_000,
  ],
  [
    'fromBase64url: valid then one bad character',
    (n) => `${'A'.repeat(n)}!`,
    (t: string) => fromBase64url(t),
    200_000,
  ],
  [
    'hexToBytes: valid then one bad character',
    (n) => `${'0'.repeat(n)}g0`,
    (t: string) => hexToBytes(t),
    200_000,
  ],
  [
    'FrameDecoder: one frame in 64-byte chunks',
    (n) => {
      const f = Buffer.alloc(n + 5, 0x41);
      f[0] = 2;
      f.writeUInt32BE(n, 1);
      const chunks: Buffer[] = [];
      for (let i = 0; i < f.length; i += 64) chunks.push(f.subarray(i, i + 64));
      return chunks;
    },
    (chunks: Buffer[]) => {
      const d = new FrameDecoder();
      for (const c of chunks) d.push(c);
    },
    50_000,
  ],
  [
    'parseTcbInfo: a long string',
    (n) => `{"tcbInfo":{"id":"${'x'.repeat(n)}"},"signature":"00"}`,
    (t: string) => parseTcbInfo(t),
    200_000,
  ],
  [
    'parseQeIdentity: many members',
    (n) => `{"enclaveIdentity":{${members(n)}"b":2},"signature":"00"}`,
    (t: string) => parseQeIdentity(t),
    50_000,
  ],
  [
    'extractJsonMember: escaped quotes in a string',
    (n) => `{"x":"${'\\"'.repeat(n / 2)}","tcbInfo":{}}`,
    (t: string) => extractJsonMember(t, 'tcbInfo'),
    200_000,
  ],
  [
    'parsePolicy: a long measurement that is not hex',
    (n) => ({ snp: { measurements: [`${'a'.repeat(n)}z`] } }),
    (p: unknown) => parsePolicy(p),
    200_000,
  ],
];

describe('parsers of peer data run in linear time', () => {
  it.each(cases)('%s', (_name, make, run, n) => {
    const ratio = growth(make, run, n);
    if (process.env.SHOW_RATIOS) console.log(_name, ratio.toFixed(1));
    expect(ratio).toBeLessThan(32);
  });

  it('the cases exercise the parsers (a real PEM chain still parses, a forged block is refused)', () => {
    expect(pemToDer(certPem + certPem).length).toBe(2);
    expect(pemToDer(`${certPem}\0`).length).toBe(1);
    expect(() => pemToDer(`${BEGIN}\nAAAA`)).toThrow(/unterminated/);
    expect(() => pemToDer('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----')).toThrow(
      /unexpected/,
    );
    expect(() => pemToDer(`${BEGIN}\nAA=A\n-----END CERTIFICATE-----`)).toThrow(/base64/);
    expect(
      readFileSync(new URL('./fixtures/snp/roots/milan_ask_ark.pem', import.meta.url), 'latin1'),
    ).toContain(BEGIN);
  });
});
