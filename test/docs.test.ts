/**
 * The hand-written API reference must keep up with the code: every runtime export of the package
 * entry and every error code has a place in docs/api.md, and the README links every document.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../src/errors.js';
import * as api from '../src/index.js';
import * as simulatedApi from '../src/simulated.js';

const root = new URL('../', import.meta.url);
const read = (p: string) => readFileSync(new URL(p, root), 'utf8');

describe('docs', () => {
  const apiMd = read('docs/api.md');

  it('documents every runtime export of src/index.ts', () => {
    const missing = Object.keys(api).filter((name) => !apiMd.includes(name));
    expect(missing).toEqual([]);
  });

  it('documents the attested-channel/simulated subpath and every runtime export of src/simulated.ts', () => {
    expect(apiMd).toContain('### attested-channel/simulated');
    expect(Object.keys(simulatedApi)).toEqual(['simulated']);
    const section = apiMd.slice(apiMd.indexOf('### attested-channel/simulated'));
    for (const member of Object.keys(simulatedApi.simulated))
      expect(section, `simulated.${member}`).toContain(`simulated.${member}`);
  });

  it('lists every error code in the error table', () => {
    const missing = ERROR_CODES.filter((code) => !new RegExp(`\\|\\s*\`${code}\`\\s*\\|`).test(apiMd));
    expect(missing).toEqual([]);
  });

  it('has no error code in docs that the code does not define', () => {
    const documented = new Set(read('docs/api.md').match(/\bERR_[A-Z_]+\b/g) ?? []);
    const unknown = [...documented].filter((c) => !(ERROR_CODES as readonly string[]).includes(c));
    expect(unknown).toEqual([]);
  });

  it('every docs/reference/… a source comment cites is in the repository, with the section it names', () => {
    const sources = (dir: string): string[] =>
      readdirSync(new URL(dir, root), { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? sources(`${dir}${e.name}/`) : e.name.endsWith('.ts') ? [`${dir}${e.name}`] : [],
      );
    let cited = 0;
    for (const file of [...sources('src/'), ...sources('test/')]) {
      const text = read(file);
      // A bare name would point outside the repository (it once did).
      expect(text.match(/(?<!docs\/reference\/)\b(?:snp|tdx)-format\.md/g) ?? [], file).toEqual([]);
      for (const m of text.matchAll(/docs\/reference\/([\w-]+\.md)(?:,?\s*§(\d+)(?:\.(\d+))?)?/g)) {
        cited++;
        const doc = read(`docs/reference/${m[1]}`);
        if (m[2] === undefined) continue;
        const heading = m[3] === undefined ? `${m[2]}.` : `${m[2]}.${m[3]}`;
        expect(doc, `${file} cites ${m[0]}`).toMatch(
          new RegExp(`^#{2,3} ${heading.replace('.', '\\.')}\\s`, 'm'),
        );
      }
    }
    expect(cited).toBeGreaterThan(20);
  });

  it('README links every document in docs/', () => {
    const readme = read('README.md');
    for (const doc of [
      'api.md',
      'protocol.md',
      'threat-model.md',
      'trust-model.md',
      'benchmarks.md',
      'architecture.md',
    ])
      expect(readme).toContain(`docs/${doc}`);
    expect(readme).toContain('(CHANGELOG.md)');
  });
});
