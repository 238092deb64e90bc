/**
 * `explain --no-verify` (parsedClaims() + explainClaims(…, { verified: false })) on the real Azure
 * HCL reports of test/fixtures/azure: the hardware fields, runtime claims and AK it reads are the
 * ones verification establishes for the same report, and the sentences say that nothing is
 * established and that no quote was read.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import { parseEventLog } from '../../src/evidence/eventlog/parse.js';
import type { AzureClaims } from '../../src/evidence/types.js';
import { verifyAzure } from '../../src/evidence/verify.js';
import { explainClaims } from '../../src/explain/explain.js';
import { parsedClaims } from '../../src/explain/unverified.js';
import { AZURE_DIR, azureFixtures, FIXTURES_DIR, inputOf, optionsOf } from '../azure/fixtures.js';
import { cli } from '../helpers/cli.js';

const SNP_FIELDS = [
  'measurement',
  'reportData',
  'vmpl',
  'policy',
  'reportedTcb',
  'chipId',
  'hostData',
  'version',
];
const TDX_FIELDS = [
  'mrTd',
  'rtmr0',
  'rtmr1',
  'rtmr2',
  'rtmr3',
  'reportData',
  'tdAttributes',
  'xfam',
  'mrSeam',
  'mrSignerSeam',
  'seamAttributes',
  'teeTcbSvn',
  'mrConfigId',
  'mrOwner',
  'mrOwnerConfig',
];
const COMMON_FIELDS = ['runtimeClaims', 'runtimeClaimsSha256', 'userData', 'vmConfiguration'];

describe.each(azureFixtures().map((fx) => [fx.id, fx] as const))('%s --no-verify', (_id, fx) => {
  const hcl = fx.files.get('hcl-report.bin')!;

  it('reads the fields verification establishes for the same report', async () => {
    const parsed = parsedClaims(hcl) as AzureClaims;
    const verified = await verifyAzure(inputOf(fx), optionsOf(fx));
    expect(parsed.format).toBe(fx.meta.format);
    const fields = [...(parsed.format === 'azure-sev-snp' ? SNP_FIELDS : TDX_FIELDS), ...COMMON_FIELDS];
    for (const f of fields)
      expect((parsed as unknown as Record<string, unknown>)[f], f).toEqual(
        (verified as unknown as Record<string, unknown>)[f],
      );
    expect(parsed).toMatchObject({
      runtimeClaimsSha256: fx.meta.values.runtime_claims_sha256,
      userData: fx.meta.values.user_data,
      reportData: fx.meta.values.report_data,
      tpm: { akSha256: fx.meta.values.ak_modulus_sha256, extraData: '', pcrs: {} },
    });
  });

  it('explain --no-verify --json: the Azure report, not verified, no quote read', async () => {
    const r = await cli('explain', '--no-verify', '--json', join(AZURE_DIR, fx.id, 'hcl-report.bin'));
    expect(r.code, r.out + r.err).toBe(0);
    const { report } = JSON.parse(r.out);
    expect(report).toMatchObject({
      verified: false,
      tee: { format: fx.meta.format, via: 'azure' },
      simulated: null,
      workloadPinned: null,
      tcb: { status: null },
      revocation: { checked: false },
      os: { covered: false, measuredIn: 'pcrs' },
    });
    expect(report.measurement.value).toBe(fx.meta.values.measurement ?? fx.meta.values.mr_td);
    expect(report.measurement.knownImage.owner).toBe('Microsoft');
    expect(report.tee.text).toMatch(/NOT VERIFIED/);
    const userData = fx.meta.values.user_data as string;
    expect(report.reportData.binder).toBe(/[^0]/.test(userData));
    expect(report.reportData.text).toMatch(/no TPM quote was given|no quote was given/);
    if (fx.meta.format === 'azure-tdx') expect(report.signer.text).toMatch(/MACed .* not signed/);
    else expect(report.signer.key).toBe('vcek');
  });
});

describe('explain --no-verify on HCL reports: refusals and usage', () => {
  const fx = azureFixtures().find((f) => f.id === 'trustee__snp-hcl-report')!;
  const file = join(AZURE_DIR, fx.id, 'hcl-report.bin');

  it('a broken HCLA magic or a truncated report is ERR_EVIDENCE_MALFORMED', () => {
    const hcl = fx.files.get('hcl-report.bin')!;
    const bad = hcl.slice();
    bad[0]! ^= 1;
    for (const b of [bad, hcl.subarray(0, 0x4d0), hcl.subarray(0, 0x4d4 + 100)])
      expect(() => parsedClaims(b)).toThrowError(
        expect.objectContaining({ code: 'ERR_EVIDENCE_MALFORMED' }) as unknown as Error,
      );
  });

  it('options of verification beside --no-verify are usage errors (they would be ignored)', async () => {
    for (const extra of [
      ['--vek', file],
      ['--tpm-quote', file],
      ['--offline'],
      ['--at', '2025-01-01T00:00:00Z'],
      ['--policy', file],
    ]) {
      const r = await cli('explain', '--no-verify', '--json', file, ...extra);
      expect(r.code, extra.join(' ')).toBe(2);
      expect(JSON.parse(r.out).error.message).toContain(`${extra[0]}: for verification`);
    }
  });

  it('with a boot log: an HCL report alone has no PCR values to replay it to', async () => {
    const log = join(FIXTURES_DIR, 'eventlog', 'go-tpm-tools__gce-cos-85-nonce9009', 'eventlog.bin');
    const r = await cli('explain', '--no-verify', '--json', file, '--event-log', log);
    expect(r.code, r.out + r.err).toBe(0);
    const { report } = JSON.parse(r.out);
    expect(report.os.covered).toBe(false);
    expect(report.os.text).toMatch(/HCL report alone has no PCR values/);
    const direct = explainClaims(parsedClaims(fx.files.get('hcl-report.bin')!), {
      verified: false,
      eventLog: parseEventLog(new Uint8Array(readFileSync(log))),
    });
    expect(direct.os).toEqual(report.os);
  });

  it('property: bytes after an HCLA header give an AttestationError or claims, never a crash', () => {
    const hcl = fx.files.get('hcl-report.bin')!;
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3000 }),
        fc.nat({ max: hcl.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (tail, at, x) => {
          for (const bytes of [
            new Uint8Array([0x48, 0x43, 0x4c, 0x41, ...tail]),
            (() => {
              const b = hcl.slice();
              b[at]! ^= x;
              return b;
            })(),
          ]) {
            try {
              const c = parsedClaims(bytes);
              expect(c.format.startsWith('azure-') || c.format === 'sev-snp' || c.format === 'tdx').toBe(
                true,
              );
            } catch (err) {
              expect(err).toBeInstanceOf(AttestationError);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
