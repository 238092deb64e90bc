/** The "which code was thrown" helper tells every outcome apart (tests rely on it to fail). */
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import { rejectionCode, thrownCode } from './codes.js';

const boom = () => {
  throw new AttestationError('ERR_PROTOCOL', 'x');
};

describe('thrownCode / rejectionCode', () => {
  it('give the code, accepted, or a foreign marker', async () => {
    expect(thrownCode(boom)).toBe('ERR_PROTOCOL');
    expect(thrownCode(() => 1)).toBe('accepted');
    expect(thrownCode(() => JSON.parse('{'))).toMatch(/^not an AttestationError: SyntaxError/);
    expect(await rejectionCode(Promise.reject(new AttestationError('ERR_TLS', 'x')))).toBe('ERR_TLS');
    expect(await rejectionCode(async () => boom())).toBe('ERR_PROTOCOL');
    expect(await rejectionCode(boom)).toBe('ERR_PROTOCOL');
    expect(await rejectionCode(Promise.resolve(1))).toBe('accepted');
    expect(await rejectionCode(Promise.reject(new Error('e')))).toMatch(/^not an AttestationError/);
  });

  it('unwrapCause reads an AttestationError cause only when asked', async () => {
    const wrapped = () =>
      Promise.reject(new Error('socket hang up', { cause: new AttestationError('ERR_TLS', 'x') }));
    expect(await rejectionCode(wrapped, { unwrapCause: true })).toBe('ERR_TLS');
    expect(await rejectionCode(wrapped)).toMatch(/^not an AttestationError/);
  });
});
