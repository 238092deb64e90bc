/**
 * A Verifier's parsed policies (src/evidence/policy-memo.ts): kept by their exact JSON text, so a
 * hit is the parse of exactly the same content, and anything JSON would drop or rewrite is parsed
 * as given and never kept.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../src/evidence/policy.js';
import { POLICY_CACHE_SIZE, PolicyMemo, policyMemoOf, policyText } from '../src/evidence/policy-memo.js';
import { simulated } from '../src/evidence/providers/simulated.js';
import { createVerifier } from '../src/evidence/verifier.js';
import { thrownCode as codeOf } from './helpers/codes.js';

const m = (c: string) => c.repeat(96);

describe('PolicyMemo', () => {
  it('answers equal content given as new objects from the cache, and other content by parsing it', () => {
    const memo = new PolicyMemo();
    const one = memo.parse({ snp: { measurements: [m('a')] } });
    expect(memo.parse({ snp: { measurements: [m('a')] } })).toBe(one);
    expect(memo.parse(JSON.stringify({ snp: { measurements: [m('a')] } }))).toBe(one);
    // One character apart, same length: its own parse.
    const other = memo.parse({ snp: { measurements: [`${m('a').slice(0, -1)}b`] } });
    expect(other).not.toBe(one);
    expect(other.snp!.measurements).toEqual([`${m('a').slice(0, -1)}b`]);
    expect(one.snp!.measurements).toEqual([m('a')]);
    expect(memo.lru.stats()).toMatchObject({ size: 2, hits: 2, misses: 2 });
    expect(Object.isFrozen(one)).toBe(true);
  });

  it('never keeps what JSON would drop or rewrite: each is parsed as given', () => {
    const memo = new PolicyMemo();
    const lossy: unknown[] = [
      { snp: { measurements: undefined } },
      { snp: { measurements: [m('a')], minTcb: Number.NaN } },
      { snp: { measurements: [m('a')], minTcb: new Date(0) } },
      { snp: { measurements: [m('a')], minTcb: { toJSON: () => ({}) } } },
      { snp: { measurements: [m('a')], policy: () => 1 } },
      // biome-ignore lint/suspicious/noSparseArray: a sparse array is what is tested
      { snp: { measurements: [m('a'), , m('b')] } },
      { snp: { measurements: [m('a')] }, tdx: { minTeeTcbSvn: -0 } },
      { snp: { measurements: [m('a')] }, extra: Symbol('x') },
    ];
    for (const policy of lossy) {
      expect(policyText(policy)).toBeUndefined();
      expect(codeOf(() => memo.parse(policy))).toBe(codeOf(() => parsePolicy(policy)));
    }
    expect(memo.lru.stats().size).toBe(0);
    // Had undefined been dropped, the policy would have been read as { snp: {} } and kept.
    expect(codeOf(() => memo.parse({ snp: { measurements: undefined } }))).toBe('ERR_POLICY_INVALID');
  });

  it('policyText is the JSON text of plain data (property)', () => {
    const json = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.string(),
        fc.boolean(),
        fc.constant(null),
        fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)),
        fc.array(tie('value'), { maxLength: 3 }),
        fc.dictionary(fc.string(), tie('value'), { maxKeys: 3 }),
      ),
    })).value;
    fc.assert(
      fc.property(json, (v) => {
        const text = policyText(v);
        expect(text).toBe(JSON.stringify(v));
        expect(JSON.parse(text!)).toEqual(v);
      }),
    );
  });

  it('keeps at most POLICY_CACHE_SIZE policies, and none it could not parse', () => {
    const memo = new PolicyMemo();
    for (let i = 0; i < POLICY_CACHE_SIZE + 4; i++)
      memo.parse({ snp: { measurements: [i.toString(16).padStart(96, '0')] } });
    expect(memo.lru.stats()).toMatchObject({ size: POLICY_CACHE_SIZE, evictions: 4 });
    expect(codeOf(() => memo.parse({ snp: { measurements: ['xyz'] } }))).toBe('ERR_POLICY_INVALID');
    expect(codeOf(() => memo.parse({ snp: { measurements: ['xyz'] } }))).toBe('ERR_POLICY_INVALID');
    expect(memo.lru.stats().size).toBe(POLICY_CACHE_SIZE);
  });

  it('belongs to its Verifier: listed in stats(), used by verify(), not shared with another', async () => {
    const a = createVerifier({ trustAnchors: simulated.trustAnchors() });
    const b = createVerifier({ trustAnchors: simulated.trustAnchors() });
    expect(policyMemoOf(a)).not.toBe(policyMemoOf(b));
    const input = await simulated.snp().getEvidence(new Uint8Array(64));
    const policy = () => ({ snp: { measurements: [simulated.defaults.snpMeasurement] } });
    await a.verify(input, { policy: policy() });
    await a.verify(input, { policy: policy() });
    expect(a.stats().policies).toMatchObject({ size: 1, hits: 1, misses: 1 });
    expect(b.stats().policies).toMatchObject({ size: 0, hits: 0, misses: 0 });
    // A policy the measurement does not match is its own entry, and refuses.
    const wrong = { snp: { measurements: [m('0')] } };
    await expect(a.verify(input, { policy: wrong })).rejects.toMatchObject({ code: 'ERR_EVIDENCE_POLICY' });
  });
});
