import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../src/evidence/policy.js';
import { TDX_LEVEL_STATUSES, TDX_RELAUNCH_STATUSES } from '../src/evidence/types.js';
import { thrownCode as code } from './helpers/codes.js';

describe('parsePolicy', () => {
  it('accepts an empty policy and JSON text', () => {
    expect(parsePolicy(undefined)).toEqual({});
    expect(parsePolicy('{"snp":{"allowDebug":true}}')).toEqual({ snp: { allowDebug: true } });
  });

  it('accepts every TCB status name, the computed TD relaunch ones included', () => {
    const names = [...TDX_LEVEL_STATUSES, ...TDX_RELAUNCH_STATUSES];
    expect(parsePolicy({ tdx: { acceptTcbStatus: names } }).tdx?.acceptTcbStatus).toEqual(names);
  });

  it('lower-cases hex values', () => {
    const m = 'AB'.repeat(48);
    expect(parsePolicy({ snp: { measurements: [m] } }).snp?.measurements).toEqual([m.toLowerCase()]);
  });

  it('returns a deeply frozen copy, and takes its own output back as it is', () => {
    const input = { snp: { measurements: ['AB'.repeat(48)], minTcb: { snp: 1 } } };
    const parsed = parsePolicy(input);
    expect(Object.isFrozen(parsed)).toBe(true);
    expect(Object.isFrozen(parsed.snp)).toBe(true);
    expect(Object.isFrozen(parsed.snp?.measurements)).toBe(true);
    expect(Object.isFrozen(parsed.snp?.minTcb)).toBe(true);
    expect(() => (parsed.snp!.measurements as string[]).push('00'.repeat(48))).toThrow(TypeError);
    expect(Object.isFrozen(input.snp.measurements)).toBe(false); // the caller's object is left alone
    expect(parsePolicy(parsed)).toBe(parsed);
    // A look-alike that parsePolicy did not make is checked again.
    const lookalike = { snp: { measurements: ['zz'] } };
    expect(code(() => parsePolicy(lookalike))).toBe('ERR_POLICY_INVALID');
    expect(Object.isFrozen(parsePolicy(undefined))).toBe(true);
  });

  it.each([
    ['unknown section', { sgx: {} }],
    ['unknown snp field', { snp: { allowDbug: true } }],
    ['unknown tdx field', { tdx: { mrtd: [] } }],
    ['measurement of the wrong length', { snp: { measurements: ['00'] } }],
    ['non-hex measurement', { snp: { measurements: ['zz'.repeat(48)] } }],
    ['boolean as string', { snp: { allowDebug: 'true' } }],
    ['unknown tcb component', { snp: { minTcb: { ucode: 1 } } }],
    ['tcb component out of range', { snp: { minTcb: { snp: 256 } } }],
    ['vmpl out of range', { snp: { vmpls: [4] } }],
    ['unknown signer', { snp: { signers: ['ask'] } }],
    ['unknown tcb status', { tdx: { acceptTcbStatus: ['Fine'] } }],
    ['not an object', [1, 2]],
    ['bad JSON', '{'],
  ])('refuses %s with ERR_POLICY_INVALID', (_name, policy) => {
    expect(code(() => parsePolicy(policy))).toBe('ERR_POLICY_INVALID');
  });
});
