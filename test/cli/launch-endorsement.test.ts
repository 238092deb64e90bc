/**
 * `verify`, `explain` and `policy --from-evidence` with `--launch-endorsement F --endorsement-root F
 * [--endorsement-root-sha256 HEX]`: Google's launch endorsement that came with the evidence, verified
 * by the run's Verifier (claims.endorsement) and pinned by the policy it writes. The evidence is
 * real (an SEV-SNP report and a TDX quote from the fixtures); the endorsements listing their
 * measurements are minted by a test root in Google's VMLaunchEndorsement format (test/gce/mint.ts):
 * no real one can be shipped.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { endorsement, golden, makeRoot, makeSigner, pssSign } from '../gce/mint.js';
import { cli, tempDir } from '../helpers/cli.js';
import { loadFixture } from '../snp/fixtures.js';

const FIX = fileURLToPath(new URL('../fixtures/', import.meta.url));
const SNP = join(FIX, 'snp', 'ms-tav__milan-v3');
const TDX = join(FIX, 'tdx', 'dcap-qvl__quote');
const SNP_OPTS = [
  ...['--vek', join(SNP, 'vek.der'), '--ask', join(SNP, 'ask.der'), '--ark', join(SNP, 'ark.der')],
  ...['--at', '2026-02-06T01:04:33Z', '--offline'],
];
const SNP_ARGS = [join(SNP, 'report.bin'), ...SNP_OPTS];
const TDX_ARGS = [
  join(TDX, 'quote.bin'),
  ...['--collateral', join(TDX, 'collateral.json'), '--at', '2025-07-19T10:00:34Z', '--offline'],
];
const AZURE = join(FIX, 'azure', 'trustee__snp-hcl-report');
const FIRMWARE = 'd1'.repeat(48);

const dir = tempDir('ac-launch-cli-');
mkdirSync(dir, { recursive: true });
const root = makeRoot();
const signer = makeSigner(root);
const ROOT = join(dir, 'root.der');
const SHA = createHash('sha256').update(root.der).digest('hex');
const OTHER_ROOT = join(dir, 'other-root.der');
writeFileSync(ROOT, root.der);
writeFileSync(OTHER_ROOT, makeRoot().der);

/** An endorsement by the test root listing `snp` (vCPU count → measurement) and `mrtd` (16 GiB). */
function mint(name: string, o: { snp?: Array<[number, string]>; mrtd?: string }): string {
  const signed = golden({
    cert: signer.der,
    snp: { svn: 3, measurements: (o.snp ?? []).map(([n, m]) => [n, Buffer.from(m, 'hex')]) },
    tdx: {
      svn: 3,
      measurements: o.mrtd ? [{ ramGib: 16, earlyAccept: false, mrtd: Buffer.from(o.mrtd, 'hex') }] : [],
    },
  });
  const path = join(dir, name);
  writeFileSync(path, endorsement(signed, pssSign(signed, signer.key)));
  return path;
}

const measurement = loadFixture('ms-tav__milan-v3').meta.fields.measurement as string;
const GOOD = mint('good.binarypb', { snp: [[4, measurement]] });
const OTHER = mint('other.binarypb', { snp: [[4, '99'.repeat(48)]] });
const withRoot = (e: string) => ['--launch-endorsement', e, '--endorsement-root', ROOT];
const pinned = (e: string) => [...withRoot(e), '--endorsement-root-sha256', SHA];

const json = (r: { out: string }) => JSON.parse(r.out.trim().split('\n').at(-1)!);

describe('verify --launch-endorsement', () => {
  it('an SEV-SNP report with its endorsement: exit 0, claims.endorsement in --json', async () => {
    const r = await cli('verify', ...SNP_ARGS, ...pinned(GOOD), '--json');
    expect(r.code, r.out).toBe(0);
    const out = json(r);
    expect(Object.keys(out)).toEqual(['ok', 'format', 'workloadPinned', 'revocation', 'claims']);
    expect(out.ok).toBe(true);
    expect(out.format).toBe('sev-snp');
    expect(out.claims.endorsement).toMatchObject({
      verified: true,
      matches: true,
      vcpus: 4,
      svsm: false,
      svn: 3,
      firmwareSha384: FIRMWARE,
      rootSha256: SHA,
      signer: { subject: 'GCE-uefi-signer (test)' },
    });
    // Without --json the claims print too.
    const text = await cli('verify', ...SNP_ARGS, ...pinned(GOOD));
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/"endorsement": \{\n\s+"verified": true,\n\s+"matches": true/);
  });

  it('an endorsement of another measurement verifies but does not match; a policy requiring it refuses', async () => {
    const r = await cli('verify', ...SNP_ARGS, ...pinned(OTHER), '--json');
    expect(r.code).toBe(0);
    expect(json(r).claims.endorsement).toMatchObject({ verified: true, matches: false, vcpus: null });
    const policy = join(dir, 'requires.json');
    writeFileSync(policy, JSON.stringify({ snp: { measurements: [measurement] }, endorsement: {} }));
    const refused = await cli('verify', ...SNP_ARGS, ...pinned(OTHER), '--policy', policy, '--json');
    expect(refused.code).toBe(1);
    const out = json(refused);
    expect(out.ok).toBe(false);
    expect(out.claims).toBeUndefined();
    expect(out.error).toMatchObject({
      code: 'ERR_EVIDENCE_POLICY',
      details: { field: 'endorsement', reason: 'not-listed' },
    });
    expect((await cli('verify', ...SNP_ARGS, ...pinned(GOOD), '--policy', policy)).code).toBe(0);
    // The same policy without the endorsement: refused, as the evidence carries none.
    const none = await cli('verify', ...SNP_ARGS, '--policy', policy, '--json');
    expect(none.code).toBe(1);
    expect(json(none).error.details).toMatchObject({ field: 'endorsement', reason: 'missing' });
  });

  it('under another root, or the test root without its fingerprint (Google’s is pinned): ERR_EVIDENCE_CHAIN, exit 1', async () => {
    for (const args of [
      ['--launch-endorsement', GOOD, '--endorsement-root', OTHER_ROOT, '--endorsement-root-sha256', SHA],
      ['--launch-endorsement', GOOD, '--endorsement-root', OTHER_ROOT],
      withRoot(GOOD),
    ]) {
      const r = await cli('verify', ...SNP_ARGS, ...args, '--json');
      expect(r.code).toBe(1);
      const out = json(r);
      expect(out).toMatchObject({ ok: false, format: 'sev-snp', error: { code: 'ERR_EVIDENCE_CHAIN' } });
      expect(out.claims).toBeUndefined();
      const text = await cli('verify', ...SNP_ARGS, ...args);
      expect(text.err).toMatch(/^REJECTED: ERR_EVIDENCE_CHAIN: /);
    }
    // A changed signature byte.
    const bytes = Buffer.from(await import('node:fs').then((fs) => fs.readFileSync(GOOD)));
    bytes[bytes.length - 1]! ^= 1;
    const forged = join(dir, 'forged.binarypb');
    writeFileSync(forged, bytes);
    const r = await cli('verify', ...SNP_ARGS, ...pinned(forged), '--json');
    expect(r.code).toBe(1);
    expect(json(r).error.code).toBe('ERR_EVIDENCE_SIGNATURE');
  });

  it('a TDX quote: matched by its MRTD', async () => {
    const plain = await cli('verify', ...TDX_ARGS, '--json');
    expect(plain.code, plain.out).toBe(0);
    const mrTd = json(plain).claims.mrTd as string;
    expect(json(plain).claims.endorsement).toBeUndefined();
    const e = mint('tdx.binarypb', { mrtd: mrTd });
    const r = await cli('verify', ...TDX_ARGS, ...pinned(e), '--json');
    expect(r.code, r.out).toBe(0);
    expect(json(r).claims.endorsement).toMatchObject({ verified: true, matches: true, ramGib: 16 });
    const other = await cli('verify', ...TDX_ARGS, ...pinned(GOOD), '--json');
    expect(json(other).claims.endorsement).toMatchObject({ verified: true, matches: false, ramGib: null });
  });

  it('usage errors (exit 2): no root, a root alone, a bad fingerprint, an unreadable file, Azure or vTPM evidence', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--launch-endorsement', GOOD], /--launch-endorsement needs --endorsement-root/],
      [['--endorsement-root', ROOT], /go with --launch-endorsement/],
      [['--endorsement-root-sha256', SHA], /go with --launch-endorsement/],
      [[...withRoot(GOOD), '--endorsement-root-sha256', 'xyz'], /not 64 hex digits/],
      [withRoot(join(dir, 'none')), /cannot read --launch-endorsement/],
      [
        ['--launch-endorsement', GOOD, '--endorsement-root', join(dir, 'none')],
        /cannot read --endorsement-root/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await cli('verify', ...SNP_ARGS, ...args, '--json');
      expect(r.code, args.join(' ')).toBe(2);
      expect(json(r).error).toMatchObject({
        code: 'ERR_INVALID_ARGUMENT',
        message: expect.stringMatching(message),
      });
    }
    // The table of options by format: an Azure HCL report has the paravisor's measurement, not
    // Google's firmware's; a vTPM quote has none.
    const azure = await cli('verify', join(AZURE, 'hcl-report.bin'), ...pinned(GOOD), '--json');
    expect(azure.code).toBe(2);
    expect(json(azure).error.message).toMatch(
      /--launch-endorsement: for SEV-SNP reports and TDX quotes only; .* is an Azure SEV-SNP HCL report/,
    );
    const vtpm = await cli('verify', '--tpm-quote', GOOD, ...pinned(GOOD), '--json');
    expect(vtpm.code).toBe(2);
    expect(json(vtpm).error.message).toMatch(/--launch-endorsement: for SEV-SNP reports and TDX quotes only/);
  });
});

describe('explain --launch-endorsement', () => {
  it('names Google’s firmware from the endorsement the evidence carried', async () => {
    const r = await cli('explain', ...SNP_ARGS, ...pinned(GOOD), '--json');
    expect(r.code, r.out).toBe(0);
    const image = json(r).report.measurement.knownImage;
    expect(image).toMatchObject({ owner: 'Google' });
    expect(image.image).toMatch(/for 4 vCPUs/);
    expect(image.source).toMatch(/carried in the evidence/);
    // Another firmware's endorsement names nothing; without one the image is unknown.
    const other = await cli('explain', ...SNP_ARGS, ...pinned(OTHER), '--json');
    expect(json(other).report.measurement.knownImage).toBeNull();
    const wrongRoot = await cli('explain', ...SNP_ARGS, ...withRoot(GOOD), '--json');
    expect(wrongRoot.code).toBe(1);
    expect(json(wrongRoot).error.code).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('the stand-alone --endorsement takes the same root options, also with --no-verify', async () => {
    const standalone = ['--endorsement', GOOD, '--endorsement-root', ROOT, '--endorsement-root-sha256', SHA];
    const r = await cli('explain', ...SNP_ARGS, ...standalone, '--json');
    expect(r.code, r.out).toBe(0);
    expect(json(r).report.measurement.knownImage.source).toMatch(/verified under GCE-cc-tcb-root/);
    const parsed = await cli(
      'explain',
      '--no-verify',
      join(SNP, 'report.bin'),
      ...standalone,
      '--at',
      '2026-02-06T01:04:33Z',
      '--json',
    );
    expect(parsed.code, parsed.out).toBe(0);
    expect(json(parsed).report.measurement.knownImage.image).toMatch(/for 4 vCPUs/);
  });

  it('usage errors: --launch-endorsement with --no-verify, a root alone, vTPM evidence', async () => {
    const noVerify = await cli('explain', '--no-verify', join(SNP, 'report.bin'), ...pinned(GOOD), '--json');
    expect(noVerify.code).toBe(2);
    expect(json(noVerify).error.message).toMatch(/--launch-endorsement.*--no-verify only parses/);
    const alone = await cli('explain', ...SNP_ARGS, '--endorsement-root', ROOT, '--json');
    expect(alone.code).toBe(2);
    expect(json(alone).error.message).toMatch(/go with --endorsement or --launch-endorsement/);
    const vtpm = await cli('explain', '--tpm-quote', GOOD, ...pinned(GOOD), '--json');
    expect(vtpm.code).toBe(2);
    expect(json(vtpm).error.message).toMatch(/--launch-endorsement: for SEV-SNP reports and TDX quotes only/);
  });
});

describe('policy --from-evidence --launch-endorsement', () => {
  let policyPath: string;
  beforeAll(async () => {
    const r = await cli('policy', '--from-evidence', join(SNP, 'report.bin'), ...SNP_OPTS, ...pinned(GOOD));
    expect(r.code, r.err).toBe(0);
    policyPath = join(dir, 'written.json');
    writeFileSync(policyPath, r.out);
  });

  it('pins the endorsed firmware build; the policy accepts the evidence with that endorsement only', async () => {
    const policy = JSON.parse(await import('node:fs').then((fs) => fs.readFileSync(policyPath, 'utf8')));
    expect(policy.endorsement.firmwareSha384s).toEqual([FIRMWARE]);
    expect(policy.endorsement.comments.firmwareSha384s).toEqual(expect.any(String));
    expect(policy.snp.measurements).toEqual([measurement]);
    expect((await cli('verify', ...SNP_ARGS, ...pinned(GOOD), '--policy', policyPath)).code).toBe(0);
    const without = await cli('verify', ...SNP_ARGS, '--policy', policyPath, '--json');
    expect(without.code).toBe(1);
    expect(json(without).error.details.field).toBe('endorsement');
    // Another firmware build's endorsement of the same measurement.
    const signed = golden({
      cert: signer.der,
      digest: new Uint8Array(48).fill(0xd2),
      snp: { svn: 3, measurements: [[4, Buffer.from(measurement, 'hex')]] },
    });
    const rebuilt = join(dir, 'rebuilt.binarypb');
    writeFileSync(rebuilt, endorsement(signed, pssSign(signed, signer.key)));
    const other = await cli('verify', ...SNP_ARGS, ...pinned(rebuilt), '--policy', policyPath, '--json');
    expect(other.code).toBe(1);
    expect(json(other).error.details.field).toBe('endorsement.firmwareSha384s');
  });

  it('without --from-evidence, or a root with nothing to verify, is a usage error; a wrong root exits 1', async () => {
    expect((await cli('policy', '--from-measure', join(dir, 'none'), ...pinned(GOOD))).err).toMatch(
      /--launch-endorsement goes with the evidence of --from-evidence/,
    );
    const alone = await cli(
      'policy',
      '--from-evidence',
      join(SNP, 'report.bin'),
      ...SNP_OPTS,
      '--endorsement-root',
      ROOT,
    );
    expect(alone.code).toBe(2);
    expect(alone.err).toMatch(/need --from-endorsement or --launch-endorsement/);
    const wrong = await cli(
      'policy',
      '--from-evidence',
      join(SNP, 'report.bin'),
      ...SNP_OPTS,
      ...withRoot(GOOD),
    );
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/ERR_EVIDENCE_CHAIN/);
    expect(wrong.out).toBe('');
  });
});
