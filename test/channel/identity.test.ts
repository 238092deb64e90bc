/**
 * Where the TLS contexts of an identity live: in the identity, made once per role; so does the
 * encoding of the chain last sent under it.
 */
import { createPublicKey, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { attestedConnect } from '../../src/channel/connect.js';
import { chainsOf, createTlsIdentity, identityFrom, secureContextFor } from '../../src/channel/identity.js';
import { createAttestedServer } from '../../src/channel/server.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import type { EvidenceProvider } from '../../src/evidence/types.js';
import { closeServer, listen } from './helpers.js';

describe('createTlsIdentity', () => {
  it('frames the key as KeyObject#export() does: SPKI in the certificate, PKCS #8 PEM', () => {
    // The SPKI and PKCS #8 bytes are put together from the key's JWK (identity.ts p256Encodings).
    // A coordinate or scalar with a leading zero byte is the case a framing slip would miss;
    // about one key in 85 has one, so 600 keys meet it almost surely.
    for (let i = 0; i < 600; i++) {
      const id = createTlsIdentity();
      const spki = createPublicKey(id.key).export({ format: 'der', type: 'spki' });
      expect(Buffer.from(id.spki).equals(spki)).toBe(true);
      expect(id.keyPem).toBe(id.key.export({ format: 'pem', type: 'pkcs8' }));
      const cert = new X509Certificate(id.cert);
      expect(cert.publicKey.export({ format: 'der', type: 'spki' }).equals(spki)).toBe(true);
      expect(cert.checkPrivateKey(id.key)).toBe(true);
    }
  });

  it('is what identityFrom() accepts for its key and certificate', () => {
    const id = createTlsIdentity({ commonName: 'ünïcode' });
    const again = identityFrom(id.key, id.cert);
    expect(Buffer.from(again.spki).equals(Buffer.from(id.spki))).toBe(true);
    expect(again.keyPem).toBe(id.keyPem);
    expect(new X509Certificate(id.cert).subject).toBe('CN=ünïcode');
  });
});

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

describe('the chain encoder an identity keeps (chainsOf)', () => {
  it('is one per identity, made once; another object of the shape has none', () => {
    const id = createTlsIdentity();
    expect(chainsOf(id)).toBeDefined();
    expect(chainsOf(id)).toBe(chainsOf(id));
    expect(chainsOf(createTlsIdentity())).not.toBe(chainsOf(id));
    expect(chainsOf({ ...id })).toBeUndefined();
  });

  it('a client that keeps its identity sends each connection the chain of its own report', async () => {
    // A provider that alternates between two platforms (Milan, Genoa: different chains): a chain
    // encoding kept from the last connection would put a Milan chain beside a Genoa report.
    const platforms = [simulated.snp({ product: 'Milan' }), simulated.snp({ product: 'Genoa' })];
    let calls = 0;
    const provider: EvidenceProvider = {
      format: 'sev-snp',
      getEvidence: (reportData, options) => platforms[calls++ % 2]!.getEvidence(reportData, options),
    };
    const verify = {
      policy: { snp: { measurements: [simulated.defaults.snpMeasurement] } },
      trustAnchors: simulated.trustAnchors(),
    };
    const seen: string[] = [];
    const server = createAttestedServer({ evidence: simulated.snp(), verify }, (c) => {
      seen.push(String((c.peer as { product?: string } | undefined)?.product));
      c.destroy();
    });
    const port = await listen(server);
    try {
      const identity = createTlsIdentity();
      for (let i = 0; i < 4; i++) {
        const c = await attestedConnect({ host: '127.0.0.1', port, verify, evidence: provider, identity });
        c.destroy();
      }
      await new Promise((r) => setTimeout(r, 50));
      expect(seen).toEqual(['Milan', 'Genoa', 'Milan', 'Genoa']);
    } finally {
      await closeServer(server);
    }
  });
});
