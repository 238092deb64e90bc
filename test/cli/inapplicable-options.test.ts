/**
 * `verify` (and `explain`, which takes its options): an option that does not apply to the
 * evidence given is a usage error (exit 2, ERR_INVALID_ARGUMENT, one JSON object with --json),
 * never silently ignored. Each case starts from a command line that verifies (exit 0) and adds
 * one option that does not apply to that format: before this check several were ignored and the
 * verdict stayed 0.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadFixture } from '../azure/fixtures.js';
import { cli, tempDir } from '../helpers/cli.js';

const FIX = fileURLToPath(new URL('../fixtures/', import.meta.url));
const dir = tempDir('ac-inapplicable-');

/** An Azure fixture's command line (files written to a folder of their own). */
function azureArgs(id: string): string[] {
  const fx = loadFixture(id);
  const d = join(dir, id);
  mkdirSync(d, { recursive: true });
  for (const [file, bytes] of fx.files) writeFileSync(join(d, file), bytes);
  const args = [join(d, fx.meta.cli.inputs['evidence']!)];
  for (const [opt, file] of Object.entries(fx.meta.cli.inputs))
    if (opt !== 'evidence') args.push(opt, join(d, file));
  if (fx.meta.cli.policy) {
    writeFileSync(join(d, 'policy.json'), JSON.stringify(fx.meta.cli.policy));
    args.push('--policy', join(d, 'policy.json'));
  }
  return [...args, '--at', fx.meta.cli.at, '--offline'];
}

const SNP = join(FIX, 'snp', 'ms-tav__milan-v3');
const TDX = join(FIX, 'tdx', 'dcap-qvl__quote');
const GCE = join(FIX, 'gce-vtpm', 'go-tpm-tools__gce-cos-85-nonce9009');
const ANY_FILE = join(SNP, 'vek.der');

const BASES: Record<string, () => string[]> = {
  'sev-snp': () => [
    join(SNP, 'report.bin'),
    ...['--vek', join(SNP, 'vek.der'), '--ask', join(SNP, 'ask.der'), '--ark', join(SNP, 'ark.der')],
    ...['--at', '2026-02-06T01:04:33Z', '--offline'],
  ],
  tdx: () => [
    join(TDX, 'quote.bin'),
    ...['--collateral', join(TDX, 'collateral.json'), '--at', '2025-07-19T10:00:34Z', '--offline'],
  ],
  'azure-sev-snp': () => azureArgs('trustee__snp-hcl-report'),
  'azure-tdx': () => azureArgs('trustee__tdx-hcl-report'),
  'vtpm alone': () => [
    ...['--tpm-quote', join(GCE, 'quote-sha256.msg'), '--tpm-signature', join(GCE, 'quote-sha256.sig')],
    ...['--pcrs', join(GCE, 'pcrs.json'), '--ak-cert', join(GCE, 'ak-cert.der')],
    ...['--at', '2021-12-22T00:00:00Z', '--offline'],
  ],
};

/** Each option that does not apply to the format, with a value it could take. */
const INAPPLICABLE: Record<string, Array<[string, string]>> = {
  'sev-snp': [
    ['--event-log', ANY_FILE],
    ['--collateral', ANY_FILE],
    ['--pcs-url', 'http://127.0.0.1:9'],
    ['--tpm-quote', ANY_FILE],
    ['--tpm-signature', ANY_FILE],
    ['--pcrs', ANY_FILE],
    ['--td-quote', ANY_FILE],
    ['--ak', ANY_FILE],
    ['--ak-cert', ANY_FILE],
    ['--tpm-roots', ANY_FILE],
    ['--nonce', '00'],
  ],
  tdx: [
    ['--vek', ANY_FILE],
    ['--ask', ANY_FILE],
    ['--ark', ANY_FILE],
    ['--kds-url', 'http://127.0.0.1:9'],
    ['--tpm-quote', ANY_FILE],
    ['--td-quote', ANY_FILE],
    ['--ak', ANY_FILE],
    ['--ak-cert', ANY_FILE],
    ['--tpm-roots', ANY_FILE],
    ['--nonce', '00'],
  ],
  'azure-sev-snp': [
    ['--collateral', ANY_FILE],
    ['--pcs-url', 'http://127.0.0.1:9'],
    ['--td-quote', ANY_FILE],
    ['--ccel-table', ANY_FILE],
    ['--ak-cert', ANY_FILE],
    ['--tpm-roots', ANY_FILE],
  ],
  'azure-tdx': [
    ['--vek', ANY_FILE],
    ['--ask', ANY_FILE],
    ['--ark', ANY_FILE],
    ['--kds-url', 'http://127.0.0.1:9'],
    ['--ccel-table', ANY_FILE],
    ['--ak-cert', ANY_FILE],
    ['--tpm-roots', ANY_FILE],
  ],
  'vtpm alone': [
    ['--vek', ANY_FILE],
    ['--ask', ANY_FILE],
    ['--ark', ANY_FILE],
    ['--kds-url', 'http://127.0.0.1:9'],
    ['--collateral', ANY_FILE],
    ['--pcs-url', 'http://127.0.0.1:9'],
    ['--td-quote', ANY_FILE],
    ['--ak', ANY_FILE],
    ['--ccel-table', ANY_FILE],
  ],
};

describe.each(Object.keys(BASES))('verify, %s evidence', (format) => {
  it('the base command line verifies', async () => {
    const r = await cli('verify', ...BASES[format]!(), '--json');
    expect(r.code, r.out + r.err).toBe(0);
  });

  it.each(INAPPLICABLE[format]!)('%s is a usage error', async (option, value) => {
    const r = await cli('verify', ...BASES[format]!(), option, value, '--json');
    expect(r.code, r.out + r.err).toBe(2);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ ok: false, format: null, error: { code: 'ERR_INVALID_ARGUMENT' } });
    expect(j.error.message).toContain(`${option}: for `);
    const plain = await cli('verify', ...BASES[format]!(), option, value);
    expect(plain.code).toBe(2);
    expect(plain.err).toContain(`${option}: for `);
  });
});

describe('explain takes the same rule', () => {
  it('--ak-cert with an Azure HCL report is a usage error', async () => {
    const r = await cli('explain', ...BASES['azure-sev-snp']!(), '--ak-cert', ANY_FILE, '--json');
    expect(r.code).toBe(2);
    expect(JSON.parse(r.out).error.message).toMatch(
      /--ak-cert: for a vTPM quote .* Azure SEV-SNP HCL report/,
    );
  });
});
