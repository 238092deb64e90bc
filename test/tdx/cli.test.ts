import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { TDX_DIR } from './fixtures.js';

const q = (id: string) => `${TDX_DIR}${id}/quote.bin`;
const col = (id: string) => `${TDX_DIR}${id}/collateral.json`;

describe('CLI with TDX quotes', () => {
  // The subcommands load lazily; loading them under a busy CI machine must not eat a test's time budget.
  beforeAll(async () => {
    await import('../../src/cli/verify.js');
    await import('../../src/cli/inspect.js');
  }, 120_000);

  it('verify --collateral --json accepts the UpToDate vector with "format":"tdx"', async () => {
    const r = await cli(
      'verify',
      q('dcap-qvl__quote'),
      '--collateral',
      col('dcap-qvl__quote'),
      '--at',
      '2025-07-19T10:00:34Z',
      '--json',
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({
      ok: true,
      format: 'tdx',
      claims: { format: 'tdx', tcbStatus: 'UpToDate', fmspc: 'b0c06f000000' },
    });
  });

  it('verify refuses the OutOfDate vector with the status and advisories, and accepts it under a policy', async () => {
    const args = [
      q('automata__quote_v4_gcp_8000'),
      '--collateral',
      col('automata__quote_v4_gcp_8000'),
      '--at',
      '2025-06-05T03:45:00Z',
      '--json',
    ];
    const r = await cli('verify', ...args);
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out);
    expect(j.ok).toBe(false);
    expect(j.format).toBe('tdx');
    expect(j.error.code).toBe('ERR_EVIDENCE_TCB');
    expect(j.error.details.tcbStatus).toBe('OutOfDate');
    expect(j.error.details.advisoryIds).toEqual(['INTEL-SA-00960', 'INTEL-SA-00982', 'INTEL-SA-00986']);
    expect(j.claims).toBeUndefined();
    expect(j.unverified.mrTd).toBe(
      '935be7742dd89c6a4df6dba8353d89041ae0f052beef993b1e7f4524d3bc57650df20e5582158352e1240b3f1fed55d8',
    );
    const dir = mkdtempSync(join(tmpdir(), 'tdx-cli-'));
    const policy = join(dir, 'policy.json');
    writeFileSync(policy, JSON.stringify({ tdx: { acceptTcbStatus: ['UpToDate', 'OutOfDate'] } }));
    const ok = await cli('verify', ...args, '--policy', policy);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out).claims.tcbStatus).toBe('OutOfDate');
    // Intel's CRLs come with the collateral: revocation is checked, and the output names both.
    const { revocation } = JSON.parse(ok.out);
    expect(revocation).toMatchObject({ checked: true, source: 'collateral' });
    expect(revocation.crls.map((c: { issuer: string }) => c.issuer)).toEqual([
      expect.stringMatching(/^Intel SGX PCK (Platform|Processor) CA$/),
      'Intel SGX Root CA',
    ]);
    const text = await cli('verify', ...args.filter((a) => a !== '--json'), '--policy', policy);
    expect(text.out.split('\n')[0]).toMatch(
      /^OK: tdx evidence verified; revocation checked against the Intel SGX PCK (Platform|Processor) CA CRL \(thisUpdate \S+, nextUpdate \S+\) and Intel SGX Root CA CRL \(thisUpdate \S+, nextUpdate \S+\), from the collateral$/,
    );
  });

  it('verify --offline without collateral fails with ERR_COLLATERAL_UNAVAILABLE', async () => {
    const r = await cli(
      'verify',
      q('go-tdx-guest__quote_v5'),
      '--offline',
      '--at',
      '2026-02-03T01:00:00Z',
      '--json',
    );
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out);
    expect(j.error.code).toBe('ERR_COLLATERAL_UNAVAILABLE');
    expect(j.claims).toBeUndefined();
    expect(j.unverified).toMatchObject({ format: 'tdx', version: 5, mrServiceTd: '00'.repeat(48) });
    expect(j.unverified.tcbStatus).toBeUndefined();
    expect(j.unverified.simulated).toBeUndefined();
    const text = await cli(
      'verify',
      q('go-tdx-guest__quote_v5'),
      '--offline',
      '--at',
      '2026-02-03T01:00:00Z',
    );
    expect(text.code).toBe(1);
    expect(text.err).toMatch(/REJECTED: ERR_COLLATERAL_UNAVAILABLE/);
  });

  it('verify: the debug quote is refused (policy) in text mode', async () => {
    const r = await cli(
      'verify',
      q('trustee__quote_v4_debug'),
      '--collateral',
      col('trustee__quote_v4_debug'),
      '--at',
      '2023-07-01T01:00:00Z',
    );
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/ERR_EVIDENCE_POLICY/);
  });

  it('verify: --vek, --ask, --ark or --kds-url with a TDX quote is a usage error (text and --json)', async () => {
    const vek = `${TDX_DIR}../snp/ms-tav__milan-v3/vek.der`;
    const r = await cli('verify', q('dcap-qvl__quote'), '--collateral', col('dcap-qvl__quote'), '--vek', vek);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--vek: for SEV-SNP reports only; .* is a TDX quote/);
    for (const opt of [
      ['--ask', vek],
      ['--ark', vek],
      ['--kds-url', 'http://127.0.0.1:9'],
    ]) {
      const j = await cli('verify', q('dcap-qvl__quote'), ...opt, '--json');
      expect(j.code, opt[0]).toBe(2);
      expect(JSON.parse(j.out).error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    }
  });

  it('verify: a missing --collateral file or a bad --pcs-url is a usage error', async () => {
    expect((await cli('verify', q('dcap-qvl__quote'), '--collateral', '/nonexistent/c.json')).code).toBe(2);
    expect((await cli('verify', q('dcap-qvl__quote'), '--pcs-url', 'ftp://x')).code).toBe(2);
  });

  it('inspect prints a quote (text and JSON) with the PCK chain summarised', async () => {
    const t = await cli('inspect', q('go-tdx-guest__quote_v5'));
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/format\s+tdx/);
    expect(t.out).toMatch(/bodyType\s+3 \(TD report 1\.5\)/);
    expect(t.out).toMatch(/pckSgxExtension\.fmspc\s+90c06f000000/);
    const j = await cli('inspect', q('automata__quote_v4_gcp_8000'), '--json');
    const parsed = JSON.parse(j.out);
    expect(parsed.format).toBe('tdx');
    expect(parsed.verified).toBe(false);
    expect(parsed.fields.trailingBytes).toBe(3065);
    expect(parsed.fields.pckChain.map((c: { subject: string }) => c.subject)).toEqual([
      'Intel SGX PCK Certificate',
      'Intel SGX PCK Platform CA',
      'Intel SGX Root CA',
    ]);
  });
});
