import { createPublicKey } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { computeBinder, EXPORTER_LABEL_PREFIX, exportBinderSecret } from '../../src/channel/binder.js';
import { createTlsIdentity } from '../../src/channel/identity.js';
import { AttestationError } from '../../src/errors.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { reportDataOf } from '../../src/evidence/verify.js';
import { certificateSpki } from '../../src/evidence/x509/cert.js';
import { rawClient, rawServer } from './adversary.js';

const spki = Buffer.from(
  `3059301306072a8648ce3d020106082a8648ce3d03010703420004${'11'.repeat(32)}${'22'.repeat(32)}`,
  'hex',
);
const exporter = Uint8Array.from({ length: 32 }, (_, i) => i);

describe('binder', () => {
  it('matches the test vector of docs/protocol.md §5', () => {
    expect(Buffer.from(computeBinder('server', spki, exporter)).toString('hex')).toBe(
      'c2e4a25be9e3cef1ff2642b6ace7900803b768d227f709d90221ff35a566792a8ed88f60a379f40a08ddedb7e990934114fb4518ff9290dd81055cdf68f528ab',
    );
    expect(Buffer.from(computeBinder('client', spki, exporter)).toString('hex')).toBe(
      '34253298fb770044cc19ab680bcf3826f858e933c39786ad0fb7eee04edd5ad12375c2fc32fc5cb74285853b59c32bd06485be27c74fbcaf1ea07941d3edc77c',
    );
    expect(EXPORTER_LABEL_PREFIX.length + 'server'.length).toBe(35);
  });

  it('both ends of a real TLS 1.3 connection derive the same exporter; role and context change it', async () => {
    let serverSide: import('node:tls').TLSSocket | undefined;
    const srv = await rawServer((peer) => {
      serverSide = peer.socket;
    });
    const c = await rawClient(srv.port);
    while (!serverSide) await new Promise((r) => setTimeout(r, 5));
    const ctx = new Uint8Array(32).fill(1);
    const a = exportBinderSecret(c.socket, 'server', ctx);
    expect(Buffer.from(exportBinderSecret(serverSide, 'server', ctx)).equals(Buffer.from(a))).toBe(true);
    expect(Buffer.from(exportBinderSecret(c.socket, 'client', ctx)).equals(Buffer.from(a))).toBe(false);
    expect(
      Buffer.from(exportBinderSecret(c.socket, 'server', new Uint8Array(32))).equals(Buffer.from(a)),
    ).toBe(false);
    c.socket.destroy();
    await once(c.socket, 'close');
    await srv.close();
  });

  it('the SPKI hash makes the binder key-specific', () => {
    const other = createTlsIdentity().spki;
    expect(
      Buffer.from(computeBinder('server', other, exporter)).equals(
        Buffer.from(computeBinder('server', spki, exporter)),
      ),
    ).toBe(false);
  });

  it('reportDataOf reads REPORT_DATA of SNP reports and TDX quotes', async () => {
    const rd = new Uint8Array(64).fill(0x42);
    for (const provider of [simulated.snp(), simulated.tdx()]) {
      const { report } = await provider.getEvidence(rd);
      expect(Buffer.from(reportDataOf(report)!).equals(Buffer.from(rd))).toBe(true);
    }
    expect(reportDataOf(new Uint8Array(10))).toBeUndefined();
  });
});

describe('certificateSpki (what the binder hashes)', () => {
  const fixture = (name: string) =>
    new Uint8Array(readFileSync(new URL(`../fixtures/snp/ms-tav__genoa-v3/${name}`, import.meta.url)));
  const certs: Array<[string, Uint8Array]> = [
    ['a channel identity (P-256)', createTlsIdentity().cert],
    ['a real Genoa VCEK (P-384)', fixture('vek.der')],
    ['a real Genoa ARK (RSA-4096, PSS)', fixture('ark.der')],
    ['the simulated Milan ARK', simulated.trustAnchors().amdArks[0]!],
  ];

  it.each(certs)('is the SPKI node:crypto finds in %s, byte for byte', (_name, der) => {
    const viaNode = new Uint8Array(
      createPublicKey(
        `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64')}\n-----END CERTIFICATE-----`,
      ).export({
        type: 'spki',
        format: 'der',
      }),
    );
    expect(Buffer.from(certificateSpki(der)).equals(viaNode)).toBe(true);
  });

  it('gives a typed error, never a crash or a wrong slice, for arbitrary or truncated bytes', () => {
    const der = certs[0]![1];
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 600 }),
          fc.integer({ min: 0, max: der.length - 1 }).map((n) => der.subarray(0, n)),
        ),
        (bytes) => {
          try {
            const spki = certificateSpki(bytes, 'ERR_TLS');
            // Whatever it returns lies inside the input and is a whole DER SEQUENCE.
            expect(spki[0]).toBe(0x30);
            expect(spki.buffer).toBe(bytes.buffer);
          } catch (err) {
            expect(err).toBeInstanceOf(AttestationError);
            expect((err as AttestationError).code).toBe('ERR_TLS');
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
