/** Where the TLS contexts of an identity live: in the identity, made once per role. */
import { describe, expect, it } from 'vitest';
import { createTlsIdentity, identityFrom, secureContextFor } from '../../src/channel/identity.js';

describe('secureContextFor', () => {
  it('an identity keeps one context per role, made on first use', () => {
    const id = createTlsIdentity();
    const server = secureContextFor(id, 'server');
    expect(secureContextFor(id, 'server')).toBe(server);
    const client = secureContextFor(id, 'client');
    expect(client).not.toBe(server);
    expect(secureContextFor(id, 'client')).toBe(client);
    const wrapped = identityFrom(id.key, id.cert);
    expect(secureContextFor(wrapped, 'server')).toBe(secureContextFor(wrapped, 'server'));
    expect(secureContextFor(wrapped, 'server')).not.toBe(server);
  });

  it('keeps nothing in sight: the identity has the same own properties as a plain object', () => {
    const id = createTlsIdentity();
    secureContextFor(id, 'server');
    expect(Object.keys(id)).toEqual(['key', 'cert', 'spki', 'keyPem', 'certPem']);
    expect(JSON.stringify(Object.keys({ ...id }))).toBe(JSON.stringify(Object.keys(id)));
  });

  it('a TlsIdentity-shaped copy has nowhere to keep one: a new context per call, still usable', () => {
    const copy = { ...createTlsIdentity() };
    const a = secureContextFor(copy, 'server');
    expect(secureContextFor(copy, 'server')).not.toBe(a);
  });

  it('a client without identity shares one context; a server without one is refused', () => {
    expect(secureContextFor(undefined, 'client')).toBe(secureContextFor(undefined, 'client'));
    expect(() => secureContextFor(undefined, 'server')).toThrow(/a server needs a TLS identity/);
  });
});
