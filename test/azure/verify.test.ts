/**
 * Every real Azure CVM fixture verifies at its verify_at with the claims its meta.json names, and
 * every tamper case of its meta.json fails with one of the codes it names.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseHclReport } from '../../src/evidence/azure/hcl.js';
import { akFromJwk } from '../../src/evidence/tpm/quote.js';
import { verifyAzure } from '../../src/evidence/verify.js';
import { akOfReport, azureFixtures, codeOf, inputOf, loadFixture, mutate, optionsOf } from './fixtures.js';

const fixtures = azureFixtures();

describe('real Azure evidence', () => {
  it('has the four shared fixtures and the Genoa CVM added here', () => {
    expect(fixtures.map((f) => f.id).sort()).toEqual([
      'trustee__snp-evidence-genoa',
      'trustee__snp-evidence-v0',
      'trustee__snp-evidence-v2',
      'trustee__snp-hcl-report',
      'trustee__tdx-hcl-report',
    ]);
  });

  for (const fx of fixtures) {
    describe(fx.id, () => {
      it('verifies with the expected claims', async () => {
        const claims = await verifyAzure(inputOf(fx), optionsOf(fx));
        expect(claims).toMatchObject(fx.meta.expected_claims);
        expect(claims.format).toBe(fx.meta.format);
        expect(claims.tpm.akSha256).toBe(fx.meta.values.ak_modulus_sha256);
        expect(claims.tpm.firmwareVersion).toBe('2020031200120003');
        expect(Object.keys(claims.tpm.pcrs.sha256 ?? {})).toHaveLength(24);
        const json = JSON.parse(Buffer.from(parseHclReport(inputOf(fx).report).claimsBytes).toString('utf8'));
        expect(claims.runtimeClaims).toEqual(json);
        expect(claims.vmConfiguration).toEqual(json['vm-configuration']);
        expect(claims.vmConfiguration?.['secure-boot']).toBe(true);
      });

      for (const t of fx.meta.tamper) {
        it(`tamper ${t.id}`, async () => {
          const files = mutate(fx, t.mutations ?? []);
          const input = inputOf(fx, files);
          const options = optionsOf(fx);
          if (t.extra_args?.some(([opt, v]) => opt === '--ak' && v.derive === 'ak-from-report'))
            options.expectedAk = akOfReport(input.report);
          if (t.check) {
            // The wrong nonce a caller would pass: the quote's extraData is not it.
            options.expectedExtraData = new Uint8Array(Buffer.from(t.check.must_differ_from, 'hex'));
            expect(await codeOf(verifyAzure(input, options))).toBe('ERR_BINDING_MISMATCH');
            return;
          }
          const code = await codeOf(verifyAzure(input, options));
          if (t.expect?.ok) expect(code).toBe('accepted');
          else expect(t.expect?.codes).toContain(code);
        });
      }
    });
  }

  it('TDX: the default policy refuses the OutOfDate platform, and no collateral offline is unavailable', async () => {
    const fx = loadFixture('trustee__tdx-hcl-report');
    const { policy: _unused, ...defaults } = optionsOf(fx);
    expect(fx.meta.expected_without_policy?.codes).toContain(
      await codeOf(verifyAzure(inputOf(fx), defaults)),
    );
    const { collateral: _c, ...noCollateral } = inputOf(fx);
    expect(await codeOf(verifyAzure(noCollateral, optionsOf(fx)))).toBe('ERR_COLLATERAL_UNAVAILABLE');
    const { tdQuote: _q, ...noQuote } = inputOf(fx);
    expect(await codeOf(verifyAzure(noQuote, optionsOf(fx)))).toBe('ERR_EVIDENCE_MALFORMED');
  });

  it('the right nonce is accepted, and an AK other than HCLAkPub is refused before the quote', async () => {
    const fx = loadFixture('trustee__snp-evidence-v2');
    const extra = new Uint8Array(
      Buffer.from((fx.meta.expected_claims.tpm as { extraData: string }).extraData, 'hex'),
    );
    const claims = await verifyAzure(inputOf(fx), { ...optionsOf(fx), expectedExtraData: extra });
    expect(claims.userData?.startsWith(Buffer.from(extra).toString('hex'))).toBe(true);
    const other = loadFixture('trustee__snp-evidence-v0');
    const code = await codeOf(
      verifyAzure(inputOf(fx), {
        ...optionsOf(fx),
        expectedAk: akOfReport(other.files.get('hcl-report.bin')!),
      }),
    );
    expect(code).toBe('ERR_EVIDENCE_CHAIN');
  });

  it("a quote signed by another report's AK is refused", async () => {
    const fx = loadFixture('trustee__snp-evidence-v0');
    const other = loadFixture('trustee__snp-hcl-report');
    const input = inputOf(fx);
    input.tpm = inputOf(other).tpm;
    expect(await codeOf(verifyAzure(input, optionsOf(fx)))).toBe('ERR_EVIDENCE_SIGNATURE');
  });

  it('SNP: a report from a VMPL other than 0 is refused as a broken chain', async () => {
    // The VMPL byte is signed, so this shows up as a signature failure first; the check itself is
    // exercised by the swtpm-free unit below through a report whose VMPL is 1 (simulated).
    const fx = loadFixture('trustee__snp-hcl-report');
    const files = mutate(fx, [{ file: 'hcl-report.bin', op: 'set', offset: 0x20 + 0x30, value: 1 }]);
    expect(await codeOf(verifyAzure(inputOf(fx, files), optionsOf(fx)))).toBe('ERR_EVIDENCE_SIGNATURE');
  });

  it('the AK in the claims is the RSA JWK of kid HCLAkPub', () => {
    const fx = loadFixture('trustee__snp-hcl-report');
    const json = JSON.parse(
      Buffer.from(parseHclReport(fx.files.get('hcl-report.bin')!).claimsBytes).toString(),
    );
    const jwk = json.keys.find((k: { kid: string }) => k.kid === 'HCLAkPub');
    const n = Buffer.from(jwk.n, 'base64url');
    expect(createHash('sha256').update(n).digest('hex')).toBe(fx.meta.values.ak_modulus_sha256);
    expect(akFromJwk(jwk).export({ format: 'jwk' }).n).toBe(jwk.n);
  });
});

describe('the hardware policy (azure.snp / azure.tdx)', () => {
  const fx = loadFixture('trustee__snp-hcl-report');
  const measurement = fx.meta.expected_claims.measurement as string;

  it('applies to the report inside the HCL report; pinning the paravisor does not pin the workload', async () => {
    const ok = await verifyAzure(inputOf(fx), {
      ...optionsOf(fx),
      policy: { azure: { snp: { measurements: [measurement] } } },
    });
    expect(ok.workloadPinned).toBe(false);
    const other = `${'00'.repeat(47)}01`;
    const refused = verifyAzure(inputOf(fx), {
      ...optionsOf(fx),
      policy: { azure: { snp: { measurements: [other] } } },
    });
    expect(await codeOf(refused)).toBe('ERR_EVIDENCE_POLICY');
  });

  it('a policy naming only tdx refuses SNP evidence', async () => {
    expect(await codeOf(verifyAzure(inputOf(fx), { ...optionsOf(fx), policy: { azure: { tdx: {} } } }))).toBe(
      'ERR_EVIDENCE_POLICY',
    );
  });
});

describe('properties of verifyAzure on real evidence', () => {
  it('a flip in the signed SNP report or in the runtime claims is never accepted', async () => {
    const fx = loadFixture('trustee__snp-evidence-v0');
    const base = inputOf(fx);
    const claimSize = 1110;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.integer({ min: 0x20, max: 0x20 + 0x29f }),
          fc.integer({ min: 0x4d4, max: 0x4d4 + claimSize - 1 }),
        ),
        fc.integer({ min: 1, max: 255 }),
        async (offset, x) => {
          const report = new Uint8Array(base.report);
          report[offset]! ^= x;
          const code = await codeOf(verifyAzure({ ...base, report }, optionsOf(fx)));
          expect([
            'ERR_EVIDENCE_SIGNATURE',
            'ERR_EVIDENCE_CHAIN',
            'ERR_EVIDENCE_MALFORMED',
            'ERR_EVIDENCE_POLICY',
          ]).toContain(code);
        },
      ),
      { numRuns: 150 },
    );
  });
});
