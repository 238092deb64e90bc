/**
 * The policy's reuse section (docs/api.md, docs/protocol.md §4.7): maxEvidenceAge is whole seconds
 * from 0 to 3600, and anything above 0 is refused unless every format the policy admits pins the
 * platform (snp.chipIds, azure.snp.chipIds, tdx.ppids, azure.tdx.ppids).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parsePolicy, REUSE_MAX_EVIDENCE_AGE } from '../src/evidence/policy.js';
import { thrownCode as code } from './helpers/codes.js';

const CHIP = 'c1'.repeat(64);
const PPID = 'a1'.repeat(16);
const pinned = { snp: { chipIds: [CHIP] } };

function refusal(policy: unknown): { code: string | undefined; message: string } {
  try {
    parsePolicy(policy);
  } catch (err) {
    return { code: (err as { code?: string }).code, message: (err as Error).message };
  }
  return { code: undefined, message: '' };
}

describe('policy reuse', () => {
  it('accepts maxEvidenceAge up to 3600 with snp.chipIds, and 0 (off) without any pin', () => {
    expect(REUSE_MAX_EVIDENCE_AGE).toBe(3600);
    expect(parsePolicy({ ...pinned, reuse: { maxEvidenceAge: 3600 } }).reuse).toEqual({
      maxEvidenceAge: 3600,
    });
    expect(parsePolicy({ ...pinned, reuse: { maxEvidenceAge: 1 } }).reuse).toEqual({ maxEvidenceAge: 1 });
    expect(parsePolicy({ reuse: { maxEvidenceAge: 0 } }).reuse).toEqual({ maxEvidenceAge: 0 });
    expect(parsePolicy({ tdx: {}, reuse: {} }).reuse).toEqual({});
    expect(
      parsePolicy({ azure: { snp: { chipIds: [CHIP] } }, reuse: { maxEvidenceAge: 60 } }).reuse
        ?.maxEvidenceAge,
    ).toBe(60);
    expect(
      parsePolicy({ ...pinned, azure: { snp: { chipIds: [CHIP] } }, reuse: { maxEvidenceAge: 60 } }).reuse,
    ).toEqual({ maxEvidenceAge: 60 });
  });

  it('accepts reuse for TDX pinned by tdx.ppids, and for Azure TDX by azure.tdx.ppids', () => {
    const reuse = { maxEvidenceAge: 60 };
    expect(parsePolicy({ tdx: { ppids: [PPID] }, reuse }).reuse).toEqual(reuse);
    expect(parsePolicy({ ...pinned, tdx: { ppids: [PPID] }, reuse }).reuse).toEqual(reuse);
    expect(parsePolicy({ azure: { tdx: { ppids: [PPID] } }, reuse }).reuse).toEqual(reuse);
    expect(parsePolicy({ azure: { snp: { chipIds: [CHIP] }, tdx: { ppids: [PPID] } }, reuse }).reuse).toEqual(
      reuse,
    );
    expect(
      parsePolicy({ ...pinned, tdx: { ppids: [PPID] }, azure: { tdx: { ppids: [PPID] } }, reuse }).reuse,
    ).toEqual(reuse);
  });

  it('caps maxEvidenceAge at 3600 and takes only whole seconds', () => {
    for (const v of [3601, 86_400, -1, 1.5, '10', null, Number.NaN, Number.POSITIVE_INFINITY])
      expect(code(() => parsePolicy({ ...pinned, reuse: { maxEvidenceAge: v } }))).toBe('ERR_POLICY_INVALID');
    expect(refusal({ ...pinned, reuse: { maxEvidenceAge: 3601 } }).message).toMatch(/0 to 3600/);
  });

  it('refuses unknown reuse fields and a reuse that is not an object', () => {
    expect(code(() => parsePolicy({ ...pinned, reuse: { maxAge: 10 } }))).toBe('ERR_POLICY_INVALID');
    expect(code(() => parsePolicy({ ...pinned, reuse: 10 }))).toBe('ERR_POLICY_INVALID');
    expect(code(() => parsePolicy({ ...pinned, reuse: [] }))).toBe('ERR_POLICY_INVALID');
  });

  it.each([
    ['no format section (every format)', {}],
    ['snp without chipIds', { snp: { measurements: ['ab'.repeat(48)] } }],
    ['snp with an empty chipIds', { snp: { chipIds: [] } }],
    ['tdx without ppids', { tdx: { mrTd: ['ab'.repeat(48)] } }],
    ['tdx with an empty ppids', { tdx: { ppids: [] } }],
    ['snp pinned beside tdx', { ...pinned, tdx: {} }],
    ['tdx pinned beside snp without chipIds', { snp: {}, tdx: { ppids: [PPID] } }],
    ['tdx pinned beside an azure.tdx without ppids', { tdx: { ppids: [PPID] }, azure: { tdx: {} } }],
    ['azure.tdx with an empty ppids', { azure: { tdx: { ppids: [] } } }],
    [
      'tdx pinned beside an azure naming neither hardware',
      { azure: { pcrs: { sha256: { '0': ['00'.repeat(32)] } } }, tdx: { ppids: [PPID] } },
    ],
    ['azure naming neither hardware', { azure: { pcrs: { sha256: { '0': ['00'.repeat(32)] } } } }],
    ['azure.snp without chipIds', { azure: { snp: {} } }],
    ['azure.tdx', { azure: { tdx: {} } }],
    ['azure.snp pinned beside azure.tdx', { azure: { snp: { chipIds: [CHIP] }, tdx: {} } }],
    ['azure.tdx pinned beside azure.snp', { azure: { snp: {}, tdx: { ppids: [PPID] } } }],
    ['snp pinned beside an azure.snp without chipIds', { ...pinned, azure: { snp: {} } }],
  ])('refuses reuse for %s', (_what, sections) => {
    const r = refusal({ ...sections, reuse: { maxEvidenceAge: 60 } });
    expect(r.code).toBe('ERR_POLICY_INVALID');
    expect(r.message).toMatch(/platform pin/);
  });

  it('property: any maxEvidenceAge is accepted exactly when it is an integer in 0..3600', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ min: -10_000, max: 10_000 }),
          fc.double(),
          fc.string(),
          fc.boolean(),
          fc.constant(null),
        ),
        (v) => {
          const ok = Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 3600;
          const r = refusal({ ...pinned, reuse: { maxEvidenceAge: v } });
          expect(r.code).toBe(ok ? undefined : 'ERR_POLICY_INVALID');
          if (ok)
            expect(parsePolicy({ ...pinned, reuse: { maxEvidenceAge: v } }).reuse?.maxEvidenceAge).toBe(v);
        },
      ),
    );
  });
});
