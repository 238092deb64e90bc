import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeAlert,
  encodeEvidence,
  encodeFrame,
  encodeRequest,
  encodeResult,
  FrameDecoder,
  FrameType,
  MAX_DATA_PAYLOAD,
  parseAlert,
  parseEvidence,
  parseRequest,
  parseResult,
} from '../../src/channel/frames.js';
import { AttestationError } from '../../src/errors.js';
import { thrownCode as codeOf } from '../helpers/codes.js';

const ctx = new Uint8Array(32).fill(7);
const ctxB64 = Buffer.from(ctx).toString('base64url');
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('frame encoding', () => {
  it('writes type, big-endian length, payload', () => {
    expect(Buffer.from(encodeFrame(FrameType.DATA, Buffer.from('hi'))).toString('hex')).toBe(
      '04000000026869',
    );
    expect(Buffer.from(encodeFrame(FrameType.ALERT, new Uint8Array(0))).toString('hex')).toBe('0500000000');
  });

  it('encodes control messages as documented JSON', () => {
    const req = encodeRequest(ctx, ['application/vnd.amd.sev-snp.report']);
    expect(req[0]).toBe(1);
    expect(req.subarray(5).toString()).toBe(
      `{"v":1,"context":"${ctxB64}","accept":["application/vnd.amd.sev-snp.report"]}`,
    );
    expect(req.readUInt32BE(1)).toBe(req.length - 5);
    expect(encodeResult(ctx).subarray(5).toString()).toBe(`{"context":"${ctxB64}","ok":true}`);
    expect(encodeResult(ctx, { code: 'ERR_EVIDENCE_POLICY', reason: 'no' }).subarray(5).toString()).toBe(
      `{"context":"${ctxB64}","ok":false,"code":"ERR_EVIDENCE_POLICY","reason":"no"}`,
    );
    expect(encodeAlert('ERR_PROTOCOL', 'x').subarray(5).toString()).toBe(
      '{"code":"ERR_PROTOCOL","reason":"x"}',
    );
    expect(encodeEvidence(ctx, { a: 1 }).subarray(5).toString()).toBe(
      `{"context":"${ctxB64}","evidence":{"a":1}}`,
    );
  });

  it('writes the same bytes as JSON.stringify for any evidence value (long plain strings are copied raw)', () => {
    const ctx = new Uint8Array(32).fill(7);
    const long = fc.stringMatching(/^[A-Za-z0-9_-]{256,600}$/);
    const escaped = fc.string({ minLength: 256, maxLength: 400, unit: 'binary' });
    // Printable ASCII, so '"' and '\\' (which must be escaped) sit among the characters that need not.
    const ascii = fc.stringMatching(/^[\x20-\x7e]{256,400}$/);
    const leaf = fc.oneof(fc.jsonValue(), long, escaped, ascii, fc.constant(undefined));
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        leaf,
        fc.array(tie('node')),
        fc.dictionary(fc.string(), tie('node')),
      ),
    })).node;
    fc.assert(
      fc.property(value, (evidence) => {
        const frame = encodeEvidence(ctx, evidence);
        const text = JSON.stringify({ context: Buffer.from(ctx).toString('base64url'), evidence });
        expect(frame.subarray(5).equals(Buffer.from(text, 'utf8'))).toBe(true);
        expect(frame.readUInt32BE(1)).toBe(frame.length - 5);
      }),
    );
  });

  it('escapes a long printable string with one quote or backslash in it', () => {
    const ctx = new Uint8Array(32).fill(7);
    for (const odd of ['"', '\\', '\u007f', '\u001f']) {
      const evidence = { s: `${'A'.repeat(300)}${odd}${'B'.repeat(10)}` };
      const text = JSON.stringify({ context: Buffer.from(ctx).toString('base64url'), evidence });
      expect(encodeEvidence(ctx, evidence).subarray(5).toString('utf8')).toBe(text);
    }
  });

  it('refuses to encode an oversized DATA frame', () => {
    expect(codeOf(() => encodeFrame(FrameType.DATA, new Uint8Array(MAX_DATA_PAYLOAD + 1)))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });
});

describe('FrameDecoder', () => {
  const frames = [
    encodeFrame(FrameType.REQUEST, json({ v: 1 })),
    encodeFrame(FrameType.DATA, new Uint8Array(0)),
    encodeFrame(FrameType.DATA, new Uint8Array(MAX_DATA_PAYLOAD).fill(9)),
    encodeFrame(FrameType.ALERT, json({ code: 'ERR_X' })),
  ];
  const stream = Buffer.concat(frames);

  it('reassembles frames split at every possible point', () => {
    for (const cut of [0, 1, 4, 5, 6, 20, 5 + 11, stream.length - 1]) {
      const d = new FrameDecoder();
      const got = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
      expect(got.map((f) => f.type)).toEqual([1, 4, 4, 5]);
      expect(got[2]!.payload.length).toBe(MAX_DATA_PAYLOAD);
      expect(d.buffered).toBe(0);
    }
  });

  it('reassembles byte by byte', () => {
    const d = new FrameDecoder();
    const got = [];
    for (const b of stream.subarray(0, 40)) got.push(...d.push(Uint8Array.of(b)));
    expect(got.map((f) => f.type)).toEqual([1, 4]);
  });

  it('refuses an unknown type on its first byte', () => {
    for (const t of [0x00, 0x06, 0x7f, 0xff])
      expect(codeOf(() => new FrameDecoder().push(Uint8Array.of(t)))).toBe('ERR_PROTOCOL');
  });

  it('refuses a DATA frame over 64 KiB from its header alone', () => {
    const h = Buffer.from([4, 0, 1, 0, 1]); // 65 537
    expect(codeOf(() => new FrameDecoder().push(h))).toBe('ERR_PROTOCOL');
    expect(
      new FrameDecoder().push(Buffer.concat([Buffer.from([4, 0, 1, 0, 0]), Buffer.alloc(65_536)])).length,
    ).toBe(1);
  });

  it('refuses a control frame over the limit from its header alone, and honours a custom limit', () => {
    const over = Buffer.from([1, 0, 0x10, 0, 1]); // 1 MiB + 1
    expect(codeOf(() => new FrameDecoder().push(over))).toBe('ERR_PROTOCOL');
    const d = new FrameDecoder({ maxControlPayload: 2048 });
    expect(codeOf(() => d.push(Buffer.from([2, 0, 0, 8, 1])))).toBe('ERR_PROTOCOL');
    expect(new FrameDecoder({ maxControlPayload: 2048 }).push(Buffer.from([2, 0, 0, 8, 0]))).toEqual([]);
  });

  it('stays failed after an error', () => {
    const d = new FrameDecoder();
    expect(codeOf(() => d.push(Uint8Array.of(9)))).toBe('ERR_PROTOCOL');
    expect(codeOf(() => d.push(encodeFrame(FrameType.DATA, new Uint8Array(1))))).toBe('ERR_PROTOCOL');
  });

  it('property: arbitrary bytes give frames or ERR_PROTOCOL, never anything else, and bounded buffering', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), (chunks) => {
        const d = new FrameDecoder({ maxControlPayload: 4096 });
        try {
          for (const c of chunks) {
            for (const f of d.push(c)) {
              expect(f.type >= 1 && f.type <= 5).toBe(true);
              expect(f.payload.length).toBeLessThanOrEqual(f.type === 4 ? MAX_DATA_PAYLOAD : 4096);
            }
            expect(d.buffered).toBeLessThanOrEqual(5 + MAX_DATA_PAYLOAD);
          }
        } catch (err) {
          expect(err).toBeInstanceOf(AttestationError);
          expect((err as AttestationError).code).toBe('ERR_PROTOCOL');
        }
      }),
      { numRuns: 500 },
    );
  });

  it('property: any sequence of valid frames round-trips through any chunking', () => {
    const frameArb = fc.record({
      type: fc.constantFrom(1, 2, 3, 4, 5) as fc.Arbitrary<FrameType>,
      payload: fc.uint8Array({ maxLength: 200 }),
    });
    fc.assert(
      fc.property(
        fc.array(frameArb, { maxLength: 10 }),
        fc.array(fc.nat(50), { maxLength: 10 }),
        (fs, cuts) => {
          const bytes = Buffer.concat(fs.map((f) => encodeFrame(f.type, f.payload)));
          const d = new FrameDecoder();
          const got = [];
          let pos = 0;
          for (const c of cuts) {
            got.push(...d.push(bytes.subarray(pos, pos + c)));
            pos = Math.min(bytes.length, pos + c);
          }
          got.push(...d.push(bytes.subarray(pos)));
          expect(got.map((f) => [f.type, Buffer.from(f.payload).toString('hex')])).toEqual(
            fs.map((f) => [f.type, Buffer.from(f.payload).toString('hex')]),
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('control message parsers', () => {
  it('accept well-formed messages and ignore unknown members', () => {
    expect(parseRequest(json({ v: 1, context: ctxB64, accept: [], x: 1 })).accept).toEqual([]);
    expect(parseEvidence(json({ context: ctxB64, evidence: {} })).evidence).toEqual({});
    expect(parseResult(json({ context: ctxB64, ok: true })).ok).toBe(true);
    expect(
      parseResult(json({ context: ctxB64, ok: false, code: 'ERR_EVIDENCE_TCB', reason: 'old' })),
    ).toMatchObject({
      ok: false,
      code: 'ERR_EVIDENCE_TCB',
      reason: 'old',
    });
    expect(parseAlert(json({ code: 'ERR_PROTOCOL' }))).toEqual({ code: 'ERR_PROTOCOL', reason: '' });
  });

  it.each([
    ['REQUEST v 2', () => parseRequest(json({ v: 2, context: ctxB64, accept: [] }))],
    ['REQUEST v "1"', () => parseRequest(json({ v: '1', context: ctxB64, accept: [] }))],
    ['REQUEST short context', () => parseRequest(json({ v: 1, context: 'AAAA', accept: [] }))],
    [
      'REQUEST padded context',
      () =>
        parseRequest(
          json({ v: 1, context: `${Buffer.from(new Uint8Array(32)).toString('base64')}`, accept: [] }),
        ),
    ],
    ['REQUEST accept not array', () => parseRequest(json({ v: 1, context: ctxB64, accept: 'x' }))],
    ['REQUEST accept non-string', () => parseRequest(json({ v: 1, context: ctxB64, accept: [1] }))],
    [
      'REQUEST accept too long',
      () => parseRequest(json({ v: 1, context: ctxB64, accept: Array(65).fill('a') })),
    ],
    ['EVIDENCE without evidence', () => parseEvidence(json({ context: ctxB64 }))],
    ['RESULT ok "true"', () => parseResult(json({ context: ctxB64, ok: 'true' }))],
    ['RESULT ok:false without code', () => parseResult(json({ context: ctxB64, ok: false }))],
    ['ALERT lowercase code', () => parseAlert(json({ code: 'err_x' }))],
    ['array payload', () => parseAlert(json([]))],
    ['not JSON', () => parseAlert(Buffer.from('{'))],
    ['BOM', () => parseAlert(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), json({ code: 'ERR_X' })]))],
    ['invalid UTF-8', () => parseAlert(Buffer.from([0x7b, 0xff, 0x7d]))],
  ])('refuses %s with ERR_PROTOCOL', (_name, fn) => {
    expect(codeOf(fn)).toBe('ERR_PROTOCOL');
  });

  it('property: arbitrary payloads give a message or ERR_PROTOCOL', () => {
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.jsonValue().map((v) => json(v)),
      fc
        .record(
          {
            v: fc.jsonValue(),
            context: fc.oneof(fc.string(), fc.constant(ctxB64)),
            accept: fc.jsonValue(),
            ok: fc.jsonValue(),
            code: fc.oneof(fc.string(), fc.constant('ERR_A')),
            evidence: fc.jsonValue(),
          },
          { requiredKeys: [] },
        )
        .map((v) => json(v)),
    );
    fc.assert(
      fc.property(payload, (p) => {
        for (const parse of [parseRequest, parseEvidence, parseResult, parseAlert]) {
          const code = codeOf(() => parse(p));
          if (code !== 'accepted') expect(code).toBe('ERR_PROTOCOL');
        }
      }),
      { numRuns: 500 },
    );
  });
});
