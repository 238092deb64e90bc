/**
 * `attested-channel verify` and `inspect` on the real Azure fixtures (issue 12): each verifies at
 * its `verify_at` with the claims its meta.json gives, each CLI tamper case is refused with one of
 * its codes, and `--ak` must name the report's own HCLAkPub.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, tempDir } from '../helpers/cli.js';
import { AZURE_DIR, type AzureFixture, akOfReport, azureFixtures, loadFixture, mutate } from './fixtures.js';

const dir = tempDir('ac-azure-cli-');

/** The fixture's CLI arguments, its files (possibly mutated) written to a folder of their own. */
function argsOf(fx: AzureFixture, files = fx.files, name = 'base'): string[] {
  const d = join(dir, `${fx.id}-${name}`);
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d, { recursive: true });
  for (const [file, bytes] of files) writeFileSync(join(d, file), bytes);
  const inputs = fx.meta.cli.inputs;
  const args = [join(d, inputs['evidence']!)];
  for (const [opt, file] of Object.entries(inputs)) if (opt !== 'evidence') args.push(opt, join(d, file));
  if (fx.meta.cli.policy) {
    writeFileSync(join(d, 'policy.json'), JSON.stringify(fx.meta.cli.policy));
    args.push('--policy', join(d, 'policy.json'));
  }
  return [...args, '--at', fx.meta.cli.at, '--offline', '--json'];
}

describe.each(azureFixtures().map((fx) => [fx.id, fx] as const))('verify %s', (_id, fx) => {
  it('is accepted with the expected claims', async () => {
    const r = await cli('verify', ...argsOf(fx));
    const out = JSON.parse(r.out);
    expect(out.error).toBeUndefined();
    expect(r.code).toBe(0);
    expect(out.ok).toBe(true);
    expect(out.format).toBe(fx.meta.format);
    expect(out.claims).toMatchObject(fx.meta.expected_claims);
    expect(out.workloadPinned).toBe(false);
  });

  for (const t of fx.meta.tamper.filter((t) => t.cli !== false && t.mutations && t.expect?.ok === false))
    it(`tamper ${t.id}: refused with ${t.expect?.codes?.join(' or ')}`, async () => {
      const r = await cli('verify', ...argsOf(fx, mutate(fx, t.mutations!), t.id));
      expect(r.code).toBe(1);
      expect(t.expect?.codes).toContain(JSON.parse(r.out).error.code);
    });

  it('--nonce: the quote’s own extraData is accepted; the wrong nonce of each tamper case is ERR_BINDING_MISMATCH', async () => {
    const extraData = (fx.meta.expected_claims.tpm as { extraData: string }).extraData;
    const ok = await cli('verify', ...argsOf(fx), '--nonce', extraData.toUpperCase());
    expect(ok.code, ok.out).toBe(0);
    const wrongs = fx.meta.tamper.filter((t) => t.check?.claim === 'tpm.extraData');
    expect(wrongs.length).toBeGreaterThan(0);
    for (const t of wrongs) {
      const r = await cli('verify', ...argsOf(fx), '--nonce', t.check!.must_differ_from);
      expect(r.code).toBe(1);
      expect(JSON.parse(r.out).error).toMatchObject({ code: 'ERR_BINDING_MISMATCH', details: { extraData } });
    }
    expect((await cli('verify', ...argsOf(fx), '--nonce', 'xyz')).code).toBe(2);
  });

  it("--ak: the report's own HCLAkPub is accepted; another AK is ERR_EVIDENCE_CHAIN", async () => {
    const own = join(dir, `${fx.id}-ak.pem`);
    writeFileSync(own, akOfReport(fx.files.get('hcl-report.bin')!).export({ format: 'pem', type: 'spki' }));
    expect((await cli('verify', ...argsOf(fx), '--ak', own)).code).toBe(0);
    const otherId =
      fx.id === 'trustee__tdx-hcl-report' ? 'trustee__snp-hcl-report' : 'trustee__tdx-hcl-report';
    const other = join(dir, `${fx.id}-other-ak.pem`);
    writeFileSync(
      other,
      akOfReport(loadFixture(otherId).files.get('hcl-report.bin')!).export({ format: 'pem', type: 'spki' }),
    );
    const r = await cli('verify', ...argsOf(fx), '--ak', other);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out).error.code).toBe('ERR_EVIDENCE_CHAIN');
  });
});

describe('Azure CLI options', () => {
  const fx = loadFixture('trustee__snp-hcl-report');

  it('--tpm-quote without --tpm-signature and --pcrs is a usage error', async () => {
    const r = await cli(
      'verify',
      `${AZURE_DIR}${fx.id}/hcl-report.bin`,
      '--tpm-quote',
      `${AZURE_DIR}${fx.id}/tpm-quote.msg`,
    );
    expect(r.code).toBe(2);
  });

  it('an HCL report without its quote is ERR_EVIDENCE_MALFORMED', async () => {
    const r = await cli(
      'verify',
      `${AZURE_DIR}${fx.id}/hcl-report.bin`,
      '--offline',
      '--json',
      '--at',
      fx.meta.cli.at,
    );
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out).error.code).toBe('ERR_EVIDENCE_MALFORMED');
  });

  it('inspect shows the HCL header, runtime claims and hardware report; and a TPMS_ATTEST', async () => {
    const r = await cli('inspect', `${AZURE_DIR}${fx.id}/hcl-report.bin`, '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out);
    expect(out.format).toBe('azure-sev-snp');
    expect(out.fields.header.signature).toBe('HCLA');
    expect(out.fields.runtimeClaims.keys[0].kid).toBe('HCLAkPub');
    expect(out.fields.runtimeClaimsSha256).toBe(fx.meta.expected_claims.runtimeClaimsSha256);
    expect(out.fields.hardwareReport.vmpl).toBe(0);
    const q = await cli('inspect', `${AZURE_DIR}${fx.id}/tpm-quote.msg`, '--json');
    expect(q.code).toBe(0);
    const quote = JSON.parse(q.out);
    expect(quote.format).toBe('tpm-quote');
    expect(quote.fields.extraData).toBe(Buffer.from('challenge').toString('hex'));
    expect(quote.fields.pcrSelect).toEqual([{ bank: 'sha256', pcrs: [...Array(24).keys()] }]);
  });
});
