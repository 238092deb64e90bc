/**
 * The pure state machine, two instances wired back to back in memory: no TLS, no timers, no I/O.
 * The harness plays the driver: it delivers 'send' bytes to the other side, answers 'attest' with
 * a CMW collection and 'verify' with a verdict, and records every other action.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeCmw, MediaType, REPORT_MEDIA_TYPES } from '../../src/channel/cmw.js';
import {
  encodeAlert,
  encodeEvidence,
  encodeFrame,
  encodeRequest,
  encodeResult,
  FrameDecoder,
  FrameType,
  parseRequest,
} from '../../src/channel/frames.js';
import { Session, type SessionAction, type SessionConfig } from '../../src/channel/session.js';
import { AttestationError } from '../../src/errors.js';
import type { Claims } from '../../src/evidence/types.js';
import { fakeReport } from './helpers.js';

let counter = 0;
const random = () => new Uint8Array(32).fill(++counter & 0xff);
const claims = { format: 'sev-snp', reportData: '', simulated: true } as unknown as Claims;

function config(o: Partial<SessionConfig>): SessionConfig {
  return { role: 'client', accept: [], exchangeTimeoutMs: 1000, random, ...o };
}

type Verdict = 'ok' | AttestationError | 'hold';

/** Two sessions and a driver loop. `verdict` decides each verification; 'hold' leaves it pending. */
class Pair {
  readonly log: Record<'a' | 'b', SessionAction[]> = { a: [], b: [] };
  readonly held: Array<{ side: 'a' | 'b'; context: Uint8Array }> = [];
  verdict: Verdict = 'ok';
  attest: 'ok' | 'hold' = 'ok';
  pendingAttest: Array<{ side: 'a' | 'b'; context: Uint8Array }> = [];
  constructor(
    readonly a: Session,
    readonly b: Session,
  ) {}

  start(): this {
    this.run('a', this.a.handle({ type: 'start', handshakeMs: 1000 }));
    this.run('b', this.b.handle({ type: 'start', handshakeMs: 1000 }));
    return this;
  }

  session(side: 'a' | 'b'): Session {
    return side === 'a' ? this.a : this.b;
  }

  run(side: 'a' | 'b', actions: SessionAction[]): void {
    const other = side === 'a' ? 'b' : 'a';
    for (const act of actions) {
      this.log[side].push(act);
      if (act.type === 'send')
        this.run(other, this.session(other).handle({ type: 'bytes', chunk: act.bytes }));
      else if (act.type === 'attest') {
        if (this.attest === 'hold') this.pendingAttest.push({ side, context: act.context });
        else this.answerAttest(side, act.context);
      } else if (act.type === 'verify') {
        const v = this.verdict;
        if (v === 'hold') this.held.push({ side, context: act.context });
        else if (v === 'ok')
          this.run(side, this.session(side).handle({ type: 'verified', context: act.context, claims }));
        else
          this.run(
            side,
            this.session(side).handle({ type: 'verify-failed', context: act.context, error: v }),
          );
      }
    }
  }

  answerAttest(side: 'a' | 'b', context: Uint8Array): void {
    const cmw = encodeCmw({ report: fakeReport(new Uint8Array(64)) }, 'sev-snp');
    this.run(side, this.session(side).handle({ type: 'evidence', context, cmw }));
  }

  actions(side: 'a' | 'b', type: SessionAction['type']): SessionAction[] {
    return this.log[side].filter((x) => x.type === type);
  }

  failure(side: 'a' | 'b'): AttestationError | undefined {
    const f = this.log[side].find((x) => x.type === 'fail');
    return f && f.type === 'fail' ? f.error : undefined;
  }

  sentTypes(side: 'a' | 'b'): number[] {
    return this.actions(side, 'send').map((x) => (x.type === 'send' ? x.bytes[0]! : 0));
  }
}

const verifier = (role: 'client' | 'server') => config({ role, accept: REPORT_MEDIA_TYPES });
const attester = (role: 'client' | 'server', accept: readonly string[] = []) =>
  config({ role, accept, produces: MediaType.SNP_REPORT });

function oneWay(): Pair {
  return new Pair(new Session(verifier('client')), new Session(attester('server'))).start();
}

describe('session: handshake', () => {
  it('one-way: both open, the verifier holds the claims, frames go REQUEST, EVIDENCE, RESULT', () => {
    const p = oneWay();
    expect(p.a.state).toBe('open');
    expect(p.b.state).toBe('open');
    expect(p.a.peer).toBe(claims);
    expect(p.b.peer).toBeUndefined();
    expect(p.sentTypes('a')).toEqual([FrameType.REQUEST, FrameType.RESULT]);
    expect(p.sentTypes('b')).toEqual([FrameType.REQUEST, FrameType.EVIDENCE]);
    expect(p.actions('a', 'open')).toHaveLength(1);
    // The handshake timer is armed at start and cleared at open.
    expect(p.log.a[0]).toEqual({ type: 'arm-timer', key: 'handshake', ms: 1000 });
    expect(p.log.a).toContainEqual({ type: 'clear-timer', key: 'handshake' });
  });

  it('the first REQUEST is sent at start, before anything is received', () => {
    const s = new Session(verifier('client'));
    const out = s.handle({ type: 'start', handshakeMs: 5 });
    const send = out.find((x) => x.type === 'send');
    expect(send && send.type === 'send' ? send.bytes[0] : 0).toBe(FrameType.REQUEST);
    const req = parseRequest((send as { bytes: Uint8Array }).bytes.subarray(5));
    expect(req.accept).toEqual(REPORT_MEDIA_TYPES);
    expect(s.state).toBe('handshaking');
  });

  it('mutual: both verify, both open with claims', () => {
    const p = new Pair(
      new Session(config({ role: 'client', accept: REPORT_MEDIA_TYPES, produces: MediaType.SNP_REPORT })),
      new Session(config({ role: 'server', accept: REPORT_MEDIA_TYPES, produces: MediaType.SNP_REPORT })),
    ).start();
    expect([p.a.state, p.b.state]).toEqual(['open', 'open']);
    expect(p.a.peer).toBe(claims);
    expect(p.b.peer).toBe(claims);
  });

  it('is not open while verification is pending, and DATA then is a protocol error', () => {
    const a = new Session(verifier('client'));
    const b = new Session(attester('server'));
    const p = new Pair(a, b);
    p.verdict = 'hold';
    p.start();
    expect(a.state).toBe('handshaking');
    expect(b.state).toBe('handshaking');
    const out = a.handle({ type: 'bytes', chunk: encodeFrame(FrameType.DATA, Buffer.from('early')) });
    expect(out.some((x) => x.type === 'data')).toBe(false);
    const fail = out.find((x) => x.type === 'fail');
    expect(fail && fail.type === 'fail' ? fail.error.code : '').toBe('ERR_PROTOCOL');
    // An ALERT with the same code is sent before failing.
    const alert = out.find((x) => x.type === 'send');
    expect(alert && alert.type === 'send' ? alert.bytes[0] : 0).toBe(FrameType.ALERT);
  });

  it('the attester is not open before RESULT ok arrives (DATA to it is refused)', () => {
    const b = new Session(attester('server'));
    b.handle({ type: 'start', handshakeMs: 5 });
    const ctx = new Uint8Array(32).fill(0xaa);
    const out1 = b.handle({ type: 'bytes', chunk: encodeRequest(ctx, REPORT_MEDIA_TYPES) });
    expect(out1.some((x) => x.type === 'attest')).toBe(true);
    b.handle({
      type: 'evidence',
      context: ctx,
      cmw: encodeCmw({ report: fakeReport(new Uint8Array(64)) }, 'sev-snp'),
    });
    expect(b.state).toBe('handshaking');
    const out2 = b.handle({ type: 'bytes', chunk: encodeFrame(FrameType.DATA, Buffer.from('x')) });
    expect(out2.find((x) => x.type === 'fail')).toBeDefined();
    expect(b.error?.code).toBe('ERR_PROTOCOL');
  });

  it("a verification failure sends RESULT ok:false then ALERT with the verifier's code", () => {
    const a = new Session(verifier('client'));
    const b = new Session(attester('server'));
    const p = new Pair(a, b);
    p.verdict = new AttestationError('ERR_EVIDENCE_POLICY', 'measurement');
    p.start();
    expect(p.failure('a')?.code).toBe('ERR_EVIDENCE_POLICY');
    expect(p.sentTypes('a')).toEqual([FrameType.REQUEST, FrameType.RESULT, FrameType.ALERT]);
    const peer = p.failure('b');
    expect(peer?.code).toBe('ERR_PEER_REJECTED');
    expect(peer?.details['peerCode']).toBe('ERR_EVIDENCE_POLICY');
    expect(peer?.details['via']).toBe('RESULT');
    // The rejected side does not answer with an ALERT of its own.
    expect(p.sentTypes('b')).toEqual([FrameType.REQUEST, FrameType.EVIDENCE]);
  });

  it('a side that cannot attest answers ALERT ERR_UNSUPPORTED_EVIDENCE', () => {
    const p = new Pair(new Session(verifier('client')), new Session(config({ role: 'server' }))).start();
    expect(p.failure('b')?.code).toBe('ERR_UNSUPPORTED_EVIDENCE');
    expect(p.failure('a')?.details['peerCode']).toBe('ERR_UNSUPPORTED_EVIDENCE');
  });

  it('a media type that is not offered is ERR_UNSUPPORTED_EVIDENCE', () => {
    const p = new Pair(
      new Session(config({ role: 'client', accept: [MediaType.TDX_QUOTE] })),
      new Session(attester('server')),
    ).start();
    expect(p.failure('b')?.code).toBe('ERR_UNSUPPORTED_EVIDENCE');
  });

  it('evidence of a format not offered (a peer ignoring accept) is refused by the policy: ERR_EVIDENCE_POLICY', () => {
    const a = new Session(config({ role: 'client', accept: [MediaType.TDX_QUOTE] }));
    const out = a.handle({ type: 'start', handshakeMs: 5 });
    const ctx = parseRequest(
      (out.find((x) => x.type === 'send') as { bytes: Uint8Array }).bytes.subarray(5),
    ).context;
    a.handle({ type: 'bytes', chunk: encodeRequest(new Uint8Array(32).fill(1), []) });
    const cmw = encodeCmw({ report: fakeReport(new Uint8Array(64)) }, 'sev-snp');
    a.handle({ type: 'bytes', chunk: encodeEvidence(ctx, cmw) });
    expect(a.error?.code).toBe('ERR_EVIDENCE_POLICY');
    expect(a.error?.details).toMatchObject({ field: 'format', format: 'sev-snp' });
  });

  it('neither side asking for evidence is refused', () => {
    const p = new Pair(new Session(attester('client')), new Session(attester('server'))).start();
    expect(p.failure('a')?.code).toBe('ERR_PROTOCOL');
  });

  it('a frame other than REQUEST first is a protocol error', () => {
    for (const first of [
      encodeFrame(FrameType.DATA, Buffer.from('x')),
      encodeResult(new Uint8Array(32)),
      encodeEvidence(new Uint8Array(32), {}),
    ]) {
      const s = new Session(verifier('client'));
      s.handle({ type: 'start', handshakeMs: 5 });
      s.handle({ type: 'bytes', chunk: first });
      expect(s.error?.code).toBe('ERR_PROTOCOL');
    }
  });

  it('EVIDENCE or RESULT with a context that answers nothing is a protocol error', () => {
    const s = new Session(verifier('client'));
    s.handle({ type: 'start', handshakeMs: 5 });
    s.handle({ type: 'bytes', chunk: encodeRequest(new Uint8Array(32).fill(9), []) });
    s.handle({ type: 'bytes', chunk: encodeEvidence(new Uint8Array(32).fill(8), {}) });
    expect(s.error?.code).toBe('ERR_PROTOCOL');
    const t = new Session(attester('server'));
    t.handle({ type: 'start', handshakeMs: 5 });
    t.handle({ type: 'bytes', chunk: encodeRequest(new Uint8Array(32).fill(9), REPORT_MEDIA_TYPES) });
    t.handle({ type: 'bytes', chunk: encodeResult(new Uint8Array(32).fill(9)) }); // before EVIDENCE was sent
    expect(t.error?.code).toBe('ERR_PROTOCOL');
  });

  it('a REQUEST that reflects our own context is refused', () => {
    const s = new Session(verifier('server'));
    const out = s.handle({ type: 'start', handshakeMs: 5 });
    const req = (out.find((x) => x.type === 'send') as { bytes: Uint8Array }).bytes;
    s.handle({ type: 'bytes', chunk: req });
    expect(s.error?.code).toBe('ERR_PROTOCOL');
  });

  it('a second REQUEST before open is a protocol error', () => {
    const s = new Session(attester('server'));
    s.handle({ type: 'start', handshakeMs: 5 });
    s.handle({ type: 'bytes', chunk: encodeRequest(new Uint8Array(32).fill(1), REPORT_MEDIA_TYPES) });
    s.handle({ type: 'bytes', chunk: encodeRequest(new Uint8Array(32).fill(2), REPORT_MEDIA_TYPES) });
    expect(s.error?.code).toBe('ERR_PROTOCOL');
  });

  it("an ALERT surfaces as ERR_PEER_REJECTED with the peer's code and nothing is sent back", () => {
    const s = new Session(verifier('client'));
    s.handle({ type: 'start', handshakeMs: 5 });
    const out = s.handle({ type: 'bytes', chunk: encodeAlert('ERR_EVIDENCE_TCB', 'old firmware') });
    expect(out.some((x) => x.type === 'send')).toBe(false);
    expect(s.error?.code).toBe('ERR_PEER_REJECTED');
    expect(s.error?.details).toMatchObject({
      peerCode: 'ERR_EVIDENCE_TCB',
      peerReason: 'old firmware',
      via: 'ALERT',
    });
    expect(s.handle({ type: 'bytes', chunk: encodeFrame(FrameType.DATA, Buffer.from('x')) })).toEqual([]);
  });

  it('provider failure is sent as ALERT with its code', () => {
    const p = new Pair(new Session(verifier('client')), new Session(attester('server')));
    p.attest = 'hold';
    p.start();
    const { context } = p.pendingAttest[0]!;
    p.run(
      'b',
      p.b.handle({
        type: 'attest-failed',
        context,
        error: new AttestationError('ERR_PROVIDER_FAILED', 'tsm'),
      }),
    );
    expect(p.failure('b')?.code).toBe('ERR_PROVIDER_FAILED');
    expect(p.failure('a')?.details['peerCode']).toBe('ERR_PROVIDER_FAILED');
  });

  it('the handshake timer expiring fails with ERR_ATTESTATION_TIMEOUT; stale timers are ignored', () => {
    const p = new Pair(new Session(verifier('client')), new Session(attester('server')));
    p.verdict = 'hold';
    p.start();
    expect(p.a.handle({ type: 'timeout', key: 'challenge' })).toEqual([]);
    p.run('a', p.a.handle({ type: 'timeout', key: 'handshake' }));
    expect(p.failure('a')?.code).toBe('ERR_ATTESTATION_TIMEOUT');
    expect(p.failure('b')?.details['peerCode']).toBe('ERR_ATTESTATION_TIMEOUT');
    // Every timer is cleared on failure.
    for (const k of ['handshake', 'challenge', 'response'])
      expect(p.log.a).toContainEqual({ type: 'clear-timer', key: k });
    // An open session ignores the handshake timer.
    const q = oneWay();
    expect(q.a.handle({ type: 'timeout', key: 'handshake' })).toEqual([]);
  });

  it('the transport closing during attestation is ERR_CONNECTION_CLOSED; after open it is an orderly close', () => {
    const s = new Session(verifier('client'));
    s.handle({ type: 'start', handshakeMs: 5 });
    s.handle({ type: 'peer-end' });
    expect(s.error?.code).toBe('ERR_CONNECTION_CLOSED');
    const p = oneWay();
    expect(p.a.handle({ type: 'peer-end' })).toEqual([{ type: 'end' }]);
    expect(p.a.handle({ type: 'closed' })).toEqual([]);
    expect(p.a.error).toBeUndefined();
  });
});

describe('session: after open', () => {
  it('delivers DATA, including from the peer while a re-attestation is pending', () => {
    const p = oneWay();
    expect(p.a.handle({ type: 'bytes', chunk: encodeFrame(FrameType.DATA, Buffer.from('hi')) })).toEqual([
      { type: 'data', payload: Buffer.from('hi') },
    ]);
    p.verdict = 'hold';
    p.run('a', p.a.handle({ type: 'reattest' }));
    expect(p.a.challengePending).toBe(true);
    const out = p.a.handle({ type: 'bytes', chunk: encodeFrame(FrameType.DATA, Buffer.from('more')) });
    expect(out).toEqual([{ type: 'data', payload: Buffer.from('more') }]);
  });

  it('re-attestation: fresh context, new evidence, reattested action, timer armed then cleared', () => {
    const p = oneWay();
    const before = p.actions('b', 'attest').length;
    p.run('a', p.a.handle({ type: 'reattest' }));
    expect(p.actions('b', 'attest').length).toBe(before + 1);
    expect(p.actions('a', 'reattested')).toHaveLength(1);
    expect(p.log.a).toContainEqual({ type: 'arm-timer', key: 'challenge', ms: 1000 });
    expect(p.log.a).toContainEqual({ type: 'clear-timer', key: 'challenge' });
    expect(p.log.b).toContainEqual({ type: 'arm-timer', key: 'response', ms: 1000 });
    expect(p.log.b).toContainEqual({ type: 'clear-timer', key: 'response' });
    const ctxs = p
      .actions('b', 'attest')
      .map((x) => (x.type === 'attest' ? Buffer.from(x.context).toString('hex') : ''));
    expect(new Set(ctxs).size).toBe(ctxs.length);
    expect([p.a.state, p.b.state]).toEqual(['open', 'open']);
  });

  it('a second reattest while one is pending joins it (one REQUEST on the wire)', () => {
    const p = oneWay();
    p.verdict = 'hold';
    const n = p.sentTypes('a').length;
    p.run('a', p.a.handle({ type: 'reattest' }));
    p.run('a', p.a.handle({ type: 'reattest' }));
    expect(p.sentTypes('a').slice(n)).toEqual([FrameType.REQUEST]);
  });

  it('an unanswered re-attestation times out with ERR_ATTESTATION_TIMEOUT', () => {
    const p = oneWay();
    p.attest = 'hold';
    p.run('a', p.a.handle({ type: 'reattest' }));
    p.run('a', p.a.handle({ type: 'timeout', key: 'challenge' }));
    expect(p.failure('a')?.code).toBe('ERR_ATTESTATION_TIMEOUT');
  });

  it('the attester times out waiting for RESULT', () => {
    const p = oneWay();
    p.verdict = 'hold';
    p.run('a', p.a.handle({ type: 'reattest' }));
    p.run('b', p.b.handle({ type: 'timeout', key: 'response' }));
    expect(p.failure('b')?.code).toBe('ERR_ATTESTATION_TIMEOUT');
  });

  it("a failed re-attestation closes with the verifier's code", () => {
    const p = oneWay();
    p.verdict = new AttestationError('ERR_EVIDENCE_TCB', 'downgraded');
    p.run('a', p.a.handle({ type: 'reattest' }));
    expect(p.failure('a')?.code).toBe('ERR_EVIDENCE_TCB');
    expect(p.failure('b')?.details['peerCode']).toBe('ERR_EVIDENCE_TCB');
  });

  it('a REQUEST repeating an earlier context is refused', () => {
    const p = oneWay();
    // The context the client used for the initial exchange, replayed by a "client" as a new REQUEST.
    const first = p.actions('b', 'attest')[0];
    const ctx = first && first.type === 'attest' ? first.context : new Uint8Array(32);
    p.b.handle({ type: 'bytes', chunk: encodeRequest(ctx, REPORT_MEDIA_TYPES) });
    expect(p.b.error?.code).toBe('ERR_PROTOCOL');
  });

  it('a REQUEST while the previous one is still being answered is refused', () => {
    const p = oneWay();
    p.attest = 'hold';
    p.b.handle({ type: 'bytes', chunk: encodeRequest(new Uint8Array(32).fill(0xe1), REPORT_MEDIA_TYPES) });
    expect(p.b.state).toBe('open');
    p.b.handle({ type: 'bytes', chunk: encodeRequest(new Uint8Array(32).fill(0xe2), REPORT_MEDIA_TYPES) });
    expect(p.b.error?.code).toBe('ERR_PROTOCOL');
  });

  it('a re-attestation REQUEST with empty accept is refused', () => {
    const p = oneWay();
    p.b.handle({ type: 'bytes', chunk: encodeRequest(new Uint8Array(32).fill(0xe3), []) });
    expect(p.b.error?.code).toBe('ERR_PROTOCOL');
  });

  it('the peer ending its side during a re-attestation is ERR_CONNECTION_CLOSED', () => {
    const p = oneWay();
    p.verdict = 'hold';
    p.run('a', p.a.handle({ type: 'reattest' }));
    p.run('a', p.a.handle({ type: 'peer-end' }));
    expect(p.failure('a')?.code).toBe('ERR_CONNECTION_CLOSED');
  });

  it('garbage after open fails the session with ERR_PROTOCOL and an ALERT', () => {
    const p = oneWay();
    const out = p.a.handle({ type: 'bytes', chunk: Uint8Array.of(0x42, 0, 0, 0, 0) });
    expect(out.find((x) => x.type === 'fail')).toBeDefined();
    expect(p.a.error?.code).toBe('ERR_PROTOCOL');
    expect(out.some((x) => x.type === 'send' && x.bytes[0] === FrameType.ALERT)).toBe(true);
  });
});

describe('session: decoder limits', () => {
  it('honours maxControlPayload', () => {
    const s = new Session(config({ role: 'client', accept: REPORT_MEDIA_TYPES, maxControlPayload: 1024 }));
    s.handle({ type: 'start', handshakeMs: 5 });
    s.handle({ type: 'bytes', chunk: Buffer.from([FrameType.REQUEST, 0, 0, 4, 1]) });
    expect(s.error?.code).toBe('ERR_PROTOCOL');
    expect(new FrameDecoder({ maxControlPayload: 1024 }).maxControlPayload).toBe(1024);
  });
});

describe('session: the DATA fast path (dataPayload)', () => {
  it('gives nothing before open, for control frames, partial frames or more than one frame', () => {
    const fresh = new Session(verifier('client'));
    const frame = encodeFrame(FrameType.DATA, Buffer.from('hello'));
    expect(fresh.dataPayload(frame)).toBeUndefined();
    const p = oneWay();
    expect(p.a.dataPayload(frame)).toEqual(Buffer.from('hello'));
    expect(p.a.dataPayload(frame.subarray(0, 7))).toBeUndefined();
    expect(p.a.dataPayload(Buffer.concat([frame, frame]))).toBeUndefined();
    expect(p.a.dataPayload(encodeFrame(FrameType.DATA, new Uint8Array(0)))).toBeUndefined();
    expect(p.a.dataPayload(encodeAlert('ERR_PROTOCOL', 'x'))).toBeUndefined();
    // A partial frame held by the decoder: the next chunk must go through handle().
    p.a.handle({ type: 'bytes', chunk: frame.subarray(0, 3) });
    expect(p.a.dataPayload(frame)).toBeUndefined();
  });

  it('with the fast path tried first, any chunking of any frames yields what handle() alone yields', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 0, maxLength: 300 }), { maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 20 }),
        (payloads, cuts) => {
          const wire = Buffer.concat(payloads.map((x) => encodeFrame(FrameType.DATA, x)));
          const viaHandle = oneWay();
          const viaFast = oneWay();
          const slow: Buffer[] = [];
          const fast: Buffer[] = [];
          let at = 0;
          let k = 0;
          while (at < wire.length) {
            const chunk = wire.subarray(at, at + cuts[k++ % cuts.length]!);
            at += chunk.length;
            for (const a of viaHandle.a.handle({ type: 'bytes', chunk }))
              if (a.type === 'data') slow.push(Buffer.from(a.payload));
            const payload = viaFast.a.dataPayload(chunk);
            if (payload) fast.push(Buffer.from(payload));
            else
              for (const a of viaFast.a.handle({ type: 'bytes', chunk }))
                if (a.type === 'data') fast.push(Buffer.from(a.payload));
          }
          expect(Buffer.concat(fast).equals(Buffer.concat(payloads))).toBe(true);
          expect(Buffer.concat(slow).equals(Buffer.concat(payloads))).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});
