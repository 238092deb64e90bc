/**
 * The key-proof rules of the pure session (docs/protocol.md §4.7), one side driven by hand-made
 * frames: what a challenger lists in `known`, which EVIDENCE key proofs it takes to verification,
 * and which REQUESTs listing `known` an attester refuses. Also the parsers' properties.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MediaType, REPORT_MEDIA_TYPES } from '../../src/channel/cmw.js';
import {
  encodeKeyProof,
  encodeRequest,
  encodeResult,
  FrameDecoder,
  FrameType,
  MAX_KNOWN_ENTRIES,
  parseEvidence,
  parseRequest,
} from '../../src/channel/frames.js';
import { Session, type SessionAction, type SessionConfig } from '../../src/channel/session.js';
import { AttestationError } from '../../src/errors.js';
import { base64url } from '../../src/evidence/bytes.js';

let counter = 0;
const random = () => new Uint8Array(32).fill(++counter & 0xff);
const D1 = new Uint8Array(32).fill(0xd1);
const D2 = new Uint8Array(32).fill(0xd2);

function session(o: Partial<SessionConfig>): Session {
  return new Session({ role: 'client', accept: [], exchangeTimeoutMs: 1000, random, ...o });
}

function sent(actions: SessionAction[]): Uint8Array[] {
  return actions.flatMap((a) => (a.type === 'send' ? [a.bytes] : []));
}

function payloadOf(bytes: Uint8Array): Uint8Array {
  const frames = new FrameDecoder().push(bytes);
  return frames[0]!.payload;
}

function failure(actions: SessionAction[]): AttestationError | undefined {
  const f = actions.find((a) => a.type === 'fail');
  return f?.type === 'fail' ? f.error : undefined;
}

/** A challenger that started with `known` listed; returns it and the context of its REQUEST. */
function challenger(known?: Uint8Array[]) {
  const s = session({ role: 'client', accept: REPORT_MEDIA_TYPES });
  const out = s.handle({ type: 'start', handshakeMs: 1000, ...(known ? { known } : {}) });
  const request = parseRequest(payloadOf(sent(out)[0]!));
  // The peer's own REQUEST, asking nothing.
  s.handle({ type: 'bytes', chunk: encodeRequest(new Uint8Array(32).fill(0xee), []) });
  return { s, request };
}

describe('session: key proofs on the challenger side', () => {
  it('lists the known digests in its first REQUEST and takes a proof for one of them to verify-proof', () => {
    const { s, request } = challenger([D1, D2]);
    expect(request.known).toEqual([D1, D2]);
    const out = s.handle({
      type: 'bytes',
      chunk: encodeKeyProof(request.context, { known: D2, proof: new Uint8Array(64) }),
    });
    expect(out).toEqual([
      { type: 'verify-proof', context: request.context, keyProof: { known: D2, proof: new Uint8Array(64) } },
    ]);
    const done = s.handle({ type: 'verified', context: request.context, claims: {} as never });
    expect(done.map((a) => a.type)).toContain('open');
  });

  it('a REQUEST that needs no evidence lists no known, whatever it was given', () => {
    const s = session({ role: 'client', accept: [], produces: MediaType.SNP_REPORT });
    const out = s.handle({ type: 'start', handshakeMs: 1000, known: [D1] });
    expect(parseRequest(payloadOf(sent(out)[0]!)).known).toBeUndefined();
  });

  it('a key proof answering a REQUEST without known is ERR_PROTOCOL', () => {
    const { s, request } = challenger();
    expect(request.known).toBeUndefined();
    const out = s.handle({
      type: 'bytes',
      chunk: encodeKeyProof(request.context, { known: D1, proof: new Uint8Array(64) }),
    });
    expect(failure(out)?.code).toBe('ERR_PROTOCOL');
    expect(failure(out)?.message).toMatch(/listed no known/);
  });

  it('a key proof naming a digest the REQUEST did not list is ERR_PROTOCOL', () => {
    const { s, request } = challenger([D1]);
    const out = s.handle({
      type: 'bytes',
      chunk: encodeKeyProof(request.context, { known: D2, proof: new Uint8Array(64) }),
    });
    expect(failure(out)?.code).toBe('ERR_PROTOCOL');
    expect(failure(out)?.message).toMatch(/did not list/);
  });
});

describe('session: REQUEST known on the attester side', () => {
  function attester() {
    const s = session({ role: 'server', accept: [], produces: MediaType.SNP_REPORT });
    s.handle({ type: 'start', handshakeMs: 1000 });
    return s;
  }

  it('hands the listed digests of the first REQUEST to attest', () => {
    const s = attester();
    const context = new Uint8Array(32).fill(1);
    const out = s.handle({
      type: 'bytes',
      chunk: encodeRequest(context, [MediaType.SNP_REPORT], { known: [D1] }),
    });
    expect(out).toEqual([{ type: 'attest', context, known: [D1], batch: false }]);
    // Its key proof goes out as EVIDENCE with known and proof, no evidence.
    const answer = s.handle({
      type: 'key-proof',
      context,
      keyProof: { known: D1, proof: new Uint8Array(3) },
    });
    const ev = parseEvidence(payloadOf(sent(answer)[0]!));
    expect(ev).toEqual({ context, keyProof: { known: D1, proof: new Uint8Array(3) } });
  });

  it('a re-attestation REQUEST with known is ERR_PROTOCOL', () => {
    const s = attester();
    const first = new Uint8Array(32).fill(1);
    s.handle({ type: 'bytes', chunk: encodeRequest(first, [MediaType.SNP_REPORT]) });
    s.handle({ type: 'evidence', context: first, cmw: {} });
    expect(s.handle({ type: 'bytes', chunk: encodeResult(first) }).map((a) => a.type)).toContain('open');
    const out = s.handle({
      type: 'bytes',
      chunk: encodeRequest(new Uint8Array(32).fill(2), [MediaType.SNP_REPORT], { known: [D1] }),
    });
    expect(failure(out)?.code).toBe('ERR_PROTOCOL');
    expect(failure(out)?.message).toMatch(/re-attestation/);
  });

  it('a REQUEST listing known but accepting no evidence is ERR_PROTOCOL', () => {
    const s = session({ role: 'server', accept: REPORT_MEDIA_TYPES, produces: MediaType.SNP_REPORT });
    s.handle({ type: 'start', handshakeMs: 1000 });
    const out = s.handle({
      type: 'bytes',
      chunk: encodeRequest(new Uint8Array(32).fill(1), [], { known: [D1] }),
    });
    expect(failure(out)?.code).toBe('ERR_PROTOCOL');
  });
});

/** The JSON of one control frame, without its header. */
const body = (value: unknown) => Buffer.from(JSON.stringify(value));
const CONTEXT = base64url(new Uint8Array(32).fill(1));

function outcome(f: () => unknown): 'ok' | string {
  try {
    f();
    return 'ok';
  } catch (err) {
    return err instanceof AttestationError ? err.code : `not an AttestationError: ${String(err)}`;
  }
}

describe('parsers: REQUEST known and EVIDENCE key proofs', () => {
  it('REQUEST known round-trips for 1 to 4 digests and is absent when not sent', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), {
          minLength: 1,
          maxLength: MAX_KNOWN_ENTRIES,
        }),
        (known) => {
          const context = new Uint8Array(32).fill(2);
          const parsed = parseRequest(payloadOf(encodeRequest(context, [MediaType.SNP_REPORT], { known })));
          expect(parsed.known).toEqual(known);
        },
      ),
    );
    expect(parseRequest(payloadOf(encodeRequest(new Uint8Array(32), []))).known).toBeUndefined();
  });

  it('REQUEST known with no digest, more than 4, or a digest that is not 32 bytes is ERR_PROTOCOL', () => {
    const d = base64url(D1);
    const req = (known: unknown) =>
      outcome(() => parseRequest(body({ v: 1, context: CONTEXT, accept: [], known })));
    expect(req([d, d, d, d])).toBe('ok');
    expect(req([])).toBe('ERR_PROTOCOL');
    expect(req([d, d, d, d, d])).toBe('ERR_PROTOCOL');
    expect(req([base64url(new Uint8Array(31))])).toBe('ERR_PROTOCOL');
    expect(req([base64url(new Uint8Array(33))])).toBe('ERR_PROTOCOL');
    expect(req([`${d}=`])).toBe('ERR_PROTOCOL');
    expect(req(d)).toBe('ERR_PROTOCOL');
  });

  it('any REQUEST known value either parses to 1-4 digests of 32 bytes or is ERR_PROTOCOL', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.array(fc.oneof(fc.uint8Array({ minLength: 30, maxLength: 34 }).map(base64url), fc.string()), {
            maxLength: 6,
          }),
          fc.jsonValue(),
        ),
        (known) => {
          const r = outcome(() => parseRequest(body({ v: 1, context: CONTEXT, accept: [], known })));
          const valid =
            Array.isArray(known) &&
            known.length >= 1 &&
            known.length <= MAX_KNOWN_ENTRIES &&
            known.every(
              (k) =>
                typeof k === 'string' &&
                Buffer.from(k, 'base64url').length === 32 &&
                base64url(Buffer.from(k, 'base64url')) === k,
            );
          expect(r).toBe(known === undefined || valid ? 'ok' : 'ERR_PROTOCOL');
        },
      ),
    );
  });

  it('any EVIDENCE with known/proof members either parses to one key proof or is ERR_PROTOCOL', () => {
    fc.assert(
      fc.property(
        fc.record(
          {
            known: fc.oneof(fc.uint8Array({ minLength: 31, maxLength: 33 }).map(base64url), fc.jsonValue()),
            proof: fc.oneof(fc.uint8Array({ minLength: 0, maxLength: 1100 }).map(base64url), fc.jsonValue()),
            evidence: fc.constant({}),
          },
          { requiredKeys: [] },
        ),
        (generated) => {
          const members = JSON.parse(JSON.stringify(generated)) as Record<string, unknown>;
          const r = outcome(() => parseEvidence(body({ context: CONTEXT, ...members })));
          const has = (k: string) => Object.hasOwn(members, k);
          const bytes = (v: unknown) =>
            typeof v === 'string' && base64url(Buffer.from(v, 'base64url')) === v
              ? Buffer.from(v, 'base64url').length
              : -1;
          const proofOk =
            has('known') &&
            has('proof') &&
            bytes(members.known) === 32 &&
            bytes(members.proof) >= 1 &&
            bytes(members.proof) <= 1024;
          const expected = has('evidence')
            ? has('known') || has('proof')
              ? 'ERR_PROTOCOL'
              : 'ok'
            : proofOk
              ? 'ok'
              : 'ERR_PROTOCOL';
          expect(r).toBe(expected);
        },
      ),
    );
  });

  it('EVIDENCE with an empty or over-1024-byte proof, or a known that is not 32 bytes, is ERR_PROTOCOL', () => {
    const ev = (known: Uint8Array, proof: Uint8Array) =>
      outcome(() =>
        parseEvidence(body({ context: CONTEXT, known: base64url(known), proof: base64url(proof) })),
      );
    expect(ev(D1, new Uint8Array(1024))).toBe('ok');
    expect(ev(D1, new Uint8Array(1))).toBe('ok');
    expect(ev(D1, new Uint8Array(0))).toBe('ERR_PROTOCOL');
    expect(ev(D1, new Uint8Array(1025))).toBe('ERR_PROTOCOL');
    expect(ev(new Uint8Array(31), new Uint8Array(64))).toBe('ERR_PROTOCOL');
    expect(ev(new Uint8Array(33), new Uint8Array(64))).toBe('ERR_PROTOCOL');
    expect(outcome(() => parseEvidence(body({ context: CONTEXT, known: base64url(D1) })))).toBe(
      'ERR_PROTOCOL',
    );
    expect(outcome(() => parseEvidence(body({ context: CONTEXT, proof: base64url(D1) })))).toBe(
      'ERR_PROTOCOL',
    );
  });

  it('a key proof EVIDENCE round-trips', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 1, maxLength: 1024 }),
        (known, proof) => {
          const context = new Uint8Array(32).fill(3);
          const frame = encodeKeyProof(context, { known, proof });
          expect(frame[0]).toBe(FrameType.EVIDENCE);
          expect(parseEvidence(payloadOf(frame))).toEqual({ context, keyProof: { known, proof } });
        },
      ),
    );
  });
});
