/** The DER/X.509 layer knows no vendor: nothing under src/evidence/x509/ imports a vendor or simulator module. */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const DIR = fileURLToPath(new URL('../../src/evidence/x509/', import.meta.url));

describe('src/evidence/x509 layering', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.ts'));
  it('holds the DER, PEM, certificate, CRL, chain and builder modules', () => {
    expect(files.sort()).toEqual(['build.ts', 'cert.ts', 'chain.ts', 'crl.ts', 'der.ts', 'pem.ts']);
  });
  it.each(files)('%s imports only node:, @peculiar/, ../../errors, ../bytes and its siblings', (f) => {
    const text = readFileSync(`${DIR}${f}`, 'utf8');
    const specifiers = [...text.matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
    expect(specifiers.length).toBeGreaterThan(0);
    for (const s of specifiers)
      expect(s, `${f} imports ${s}`).toMatch(
        /^(node:|@peculiar\/|\.\.\/\.\.\/errors\.js$|\.\.\/bytes\.js$|\.\/[a-z]+\.js$)/,
      );
  });
});
