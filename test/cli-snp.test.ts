/** The inspect and verify subcommands on SNP evidence, run in-process with captured output. */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { derToPem } from '../src/evidence/x509/pem.js';
import { cli, tempDir } from './helpers/cli.js';
import { loadFixture, SNP_DIR } from './snp/fixtures.js';

const dir = tempDir('ac-cli-');

const milan = loadFixture('ms-tav__milan-v3');
const turin = loadFixture('ms-tav__turin-v5');
const debug = loadFixture('go-sev-guest__milan-v2');
const f = (fx: { dir: string }, name: string) => `${fx.dir}${name}`;

describe('attested-channel inspect', () => {
  it('prints every field in a table', async () => {
    const r = await cli('inspect', f(turin, 'report.bin'));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/format\s+sev-snp \(not verified/);
    expect(r.out).toMatch(/product\s+Turin/);
    expect(r.out).toContain(turin.meta.fields.measurement);
    expect(r.out).toMatch(/reportedTcb\.fmc\s+1/);
    expect(r.out).toMatch(/platformInfo\.unknownBits\s+0x40/);
    expect(r.out).toMatch(/currentMitVector\s+0x3f/);
  });

  it('--json prints the fields as JSON', async () => {
    const r = await cli('inspect', f(milan, 'report.bin'), '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.format).toBe('sev-snp');
    expect(j.verified).toBe(false);
    expect(j.fields.measurement).toBe(milan.meta.fields.measurement);
    expect(j.fields.chipId).toBe(milan.meta.fields.chip_id);
    expect(j.fields.reportedTcb).toMatchObject({ bootloader: 4, snp: 24, microcode: 219 });
  });

  it('v2: says the product is unknown', async () => {
    const r = await cli('inspect', f(debug, 'report.bin'));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/product\s+unknown/);
    expect(r.out).toMatch(/policy\.debug\s+true/);
  });

  it('malformed input exits 1, usage errors exit 2', async () => {
    const junk = join(dir, 'junk.bin');
    writeFileSync(junk, new Uint8Array(100));
    const bad = await cli('inspect', junk, '--json');
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.out).error.code).toBe('ERR_EVIDENCE_MALFORMED');
    expect((await cli('inspect')).code).toBe(2);
    expect((await cli('inspect', junk, '--nope')).code).toBe(2);
    expect((await cli('inspect', join(dir, 'missing.bin'))).code).toBe(2);
  });
});

describe('attested-channel verify', () => {
  const at = (fx: { meta: { suggested_verify_at: string } }) => ['--at', fx.meta.suggested_verify_at];

  it('accepts a real report with --vek at its time (embedded chain), exit 0 and JSON claims', async () => {
    const r = await cli(
      'verify',
      f(milan, 'report.bin'),
      '--vek',
      f(milan, 'vek.der'),
      ...at(milan),
      '--offline',
      '--json',
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ ok: true, format: 'sev-snp' });
    expect(j.claims.measurement).toBe(milan.meta.fields.measurement);
    expect(j.claims.product).toBe('Milan');
    expect(j.error).toBeUndefined();
  });

  it('says when revocation was not checked because KDS answered 503 for the CRL', async () => {
    const kds = createServer((_req, res) => {
      res.writeHead(503);
      res.end();
    });
    await new Promise<void>((done) => kds.listen(0, '127.0.0.1', done));
    try {
      const url = `http://127.0.0.1:${(kds.address() as AddressInfo).port}`;
      const args = [
        'verify',
        f(milan, 'report.bin'),
        '--vek',
        f(milan, 'vek.der'),
        ...at(milan),
        '--kds-url',
        url,
      ];
      const j = JSON.parse((await cli(...args, '--json')).out);
      expect(j.ok).toBe(true);
      expect(j.revocation).toMatchObject({ checked: false, source: 'none', crls: [] });
      expect(j.revocation.reason).toMatch(/no CRL is available: .*HTTP 503/);
      const text = await cli(...args);
      expect(text.out.split('\n')[0]).toMatch(
        /^OK: sev-snp evidence verified; revocation NOT checked: .*HTTP 503/,
      );
    } finally {
      await new Promise<void>((done) => kds.close(() => done()));
    }
  });

  it('says when revocation was not checked (--offline, nothing cached): text and --json', async () => {
    const args = ['verify', f(milan, 'report.bin'), '--vek', f(milan, 'vek.der'), ...at(milan), '--offline'];
    const j = JSON.parse((await cli(...args, '--json')).out);
    expect(j.revocation).toEqual({
      checked: false,
      source: 'none',
      crls: [],
      reason: 'offline, and no CRL is cached',
    });
    expect(j.claims.revocation).toEqual(j.revocation);
    const text = await cli(...args);
    expect(text.code).toBe(0);
    expect(text.out.split('\n')[0]).toBe(
      'OK: sev-snp evidence verified; revocation NOT checked: offline, and no CRL is cached',
    );
  });

  it('says whether the policy pinned the workload: a JSON member, a line on stderr', async () => {
    const base = ['verify', f(milan, 'report.bin'), '--vek', f(milan, 'vek.der'), ...at(milan), '--offline'];
    const none = await cli(...base, '--json');
    expect(JSON.parse(none.out)).toMatchObject({
      ok: true,
      workloadPinned: false,
      claims: { workloadPinned: false },
    });
    const noneText = await cli(...base);
    expect(noneText.code).toBe(0);
    expect(noneText.err).toMatch(/workload NOT pinned/);
    const pinned = join(dir, 'pinned.json');
    writeFileSync(pinned, JSON.stringify({ snp: { measurements: [milan.meta.fields.measurement] } }));
    const yes = await cli(...base, '--policy', pinned, '--json');
    expect(JSON.parse(yes.out)).toMatchObject({
      ok: true,
      workloadPinned: true,
      claims: { workloadPinned: true },
    });
    const yesText = await cli(...base, '--policy', pinned);
    expect(yesText.err).toBe('workload pinned by snp.measurements\n');
  });

  it('a TDX-only policy refuses a genuine SNP report (exit 1, ERR_EVIDENCE_POLICY, field "format")', async () => {
    const tdxOnly = join(dir, 'tdx-only.json');
    writeFileSync(tdxOnly, JSON.stringify({ tdx: { mrTd: ['00'.repeat(48)] } }));
    const r = await cli(
      'verify',
      f(milan, 'report.bin'),
      '--vek',
      f(milan, 'vek.der'),
      ...at(milan),
      '--offline',
      '--policy',
      tdxOnly,
      '--json',
    );
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out);
    expect(j.error).toMatchObject({ code: 'ERR_EVIDENCE_POLICY', details: { field: 'format' } });
    expect(j.workloadPinned).toBeUndefined();
    expect(j.claims).toBeUndefined();
    expect(j.unverified.workloadPinned).toBeUndefined();
  });

  it('accepts --ask/--ark files (DER or PEM)', async () => {
    const askPem = join(dir, 'ask.pem');
    writeFileSync(askPem, derToPem(turin.ask));
    const r = await cli(
      'verify',
      f(turin, 'report.bin'),
      '--vek',
      f(turin, 'vek.der'),
      '--ask',
      askPem,
      '--ark',
      f(turin, 'ark.der'),
      ...at(turin),
      '--offline',
    );
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^OK: sev-snp/);
  });

  it('--ask takes the ASK+ARK bundle KDS serves (PEM, ASK first), and its ARK is the one used', async () => {
    const base = ['verify', f(turin, 'report.bin'), '--vek', f(turin, 'vek.der'), ...at(turin), '--offline'];
    const bundle = join(dir, 'cert_chain.pem');
    writeFileSync(bundle, derToPem(turin.ask) + derToPem(turin.ark));
    const ok = await cli(...base, '--ask', bundle, '--json');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out).ok).toBe(true);
    const reversed = join(dir, 'cert_chain-ark-first.pem');
    writeFileSync(reversed, derToPem(turin.ark) + derToPem(turin.ask));
    expect((await cli(...base, '--ask', reversed)).code).toBe(0);
    // The bundle's ARK is used, not dropped: another product's ARK in it is refused.
    const wrongArk = join(dir, 'cert_chain-wrong-ark.pem');
    writeFileSync(wrongArk, derToPem(turin.ask) + derToPem(milan.ark));
    const bad = await cli(...base, '--ask', wrongArk, '--json');
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.out).error.code).toBe('ERR_EVIDENCE_CHAIN');
    // A bundle and --ark, or two ASKs, or three certificates: usage errors.
    expect((await cli(...base, '--ask', bundle, '--ark', f(turin, 'ark.der'))).code).toBe(2);
    const twoAsks = join(dir, 'two-asks.pem');
    writeFileSync(twoAsks, derToPem(turin.ask) + derToPem(milan.ask));
    const two = await cli(...base, '--ask', twoAsks);
    expect(two.code).toBe(2);
    expect(two.err).toMatch(/not an ASK and its ARK/);
    const three = join(dir, 'three.pem');
    writeFileSync(three, derToPem(turin.ask) + derToPem(turin.ark) + derToPem(turin.ark));
    expect((await cli(...base, '--ask', three)).code).toBe(2);
  });

  it('--ark given the ASK is refused (exit 1, ERR_EVIDENCE_CHAIN)', async () => {
    const r = await cli(
      'verify',
      f(milan, 'report.bin'),
      '--vek',
      f(milan, 'vek.der'),
      '--ark',
      f(milan, 'ask.der'),
      ...at(milan),
      '--offline',
      '--json',
    );
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out).error.code).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('the wrong product chain is refused', async () => {
    const r = await cli(
      'verify',
      f(milan, 'report.bin'),
      '--vek',
      f(milan, 'vek.der'),
      '--ask',
      `${SNP_DIR}roots/genoa_ask.der`,
      '--ark',
      `${SNP_DIR}roots/genoa_ark.der`,
      ...at(milan),
      '--offline',
      '--json',
    );
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out).error.code).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('a tampered report exits 1 with ERR_EVIDENCE_SIGNATURE; its fields are "unverified", never "claims"', async () => {
    const tampered = join(dir, 'tampered.bin');
    const b = Uint8Array.from(milan.report);
    b[0x90] = b[0x90]! ^ 1;
    writeFileSync(tampered, b);
    const r = await cli(
      'verify',
      tampered,
      '--vek',
      f(milan, 'vek.der'),
      ...at(milan),
      '--offline',
      '--json',
    );
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out);
    expect(j.ok).toBe(false);
    expect(j.format).toBe('sev-snp');
    expect(j.error.code).toBe('ERR_EVIDENCE_SIGNATURE');
    expect(j.claims).toBeUndefined();
    expect(j.unverified.measurement).not.toBe(milan.meta.fields.measurement);
    expect(j.unverified.reportData).toBe(milan.meta.fields.report_data);
    // Whether evidence is simulated is a verdict on its chain, which did not verify.
    expect(j.unverified.simulated).toBeUndefined();
    const text = await cli('verify', tampered, '--vek', f(milan, 'vek.der'), ...at(milan), '--offline');
    expect(text.err).toBe(
      `REJECTED: ERR_EVIDENCE_SIGNATURE: ${j.error.message}\nNothing in ${tampered} is verified; 'attested-channel inspect ${tampered}' shows its fields.\n`,
    );
    expect(text.out).toBe('');
  });

  it('the DEBUG report: refused by default, accepted with a policy file', async () => {
    const refused = await cli(
      'verify',
      f(debug, 'report.bin'),
      '--vek',
      f(debug, 'vek.der'),
      ...at(debug),
      '--offline',
      '--json',
    );
    expect(refused.code).toBe(1);
    const j = JSON.parse(refused.out);
    expect(j.error.code).toBe('ERR_EVIDENCE_POLICY');
    expect(j.error.details.field).toBe('snp.allowDebug');
    const policy = join(dir, 'policy.json');
    writeFileSync(
      policy,
      JSON.stringify({ snp: { allowDebug: true, measurements: [debug.meta.fields.measurement] } }),
    );
    const ok = await cli(
      'verify',
      f(debug, 'report.bin'),
      '--vek',
      f(debug, 'vek.der'),
      '--policy',
      policy,
      ...at(debug),
      '--offline',
    );
    expect(ok.code).toBe(0);
  });

  it('expired certificates at the wall clock, or a missing VEK offline, exit 1', async () => {
    const vlek = loadFixture('trustee__milan-v3-vlek-aws');
    const expired = await cli(
      'verify',
      f(vlek, 'report.bin'),
      '--vek',
      f(vlek, 'vek.der'),
      '--offline',
      '--json',
    );
    expect(expired.code).toBe(1);
    expect(JSON.parse(expired.out).error.code).toBe('ERR_EVIDENCE_CHAIN');
    const noVek = await cli('verify', f(milan, 'report.bin'), ...at(milan), '--offline', '--json');
    expect(noVek.code).toBe(1);
    expect(JSON.parse(noVek.out).error.code).toBe('ERR_COLLATERAL_UNAVAILABLE');
  });

  it('usage errors exit 2', async () => {
    const report = f(milan, 'report.bin');
    expect((await cli('verify')).code).toBe(2);
    expect((await cli('verify', report, '--bogus')).code).toBe(2);
    expect((await cli('verify', report, '--at', 'yesterday')).code).toBe(2);
    expect((await cli('verify', report, '--vek', join(dir, 'missing.der'))).code).toBe(2);
    expect((await cli('verify', report, '--kds-url', 'ftp://x', '--offline')).code).toBe(2);
    const badPolicy = join(dir, 'bad-policy.json');
    writeFileSync(badPolicy, '{"snp":{"allowDebugg":true}}');
    expect((await cli('verify', report, '--policy', badPolicy)).code).toBe(2);
    expect((await cli('verify', '--help')).code).toBe(0);
  });

  it('a repeated single-value option is a usage error (not the last one silently winning)', async () => {
    const pinned = join(dir, 'pinned-twice.json');
    writeFileSync(pinned, JSON.stringify({ snp: { measurements: [milan.meta.fields.measurement] } }));
    const r = await cli(
      'verify',
      f(milan, 'report.bin'),
      '--vek',
      f(milan, 'vek.der'),
      ...at(milan),
      '--offline',
      '--policy',
      pinned,
      '--policy',
      pinned,
    );
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--policy given more than once/);
    expect((await cli('inspect', f(milan, 'report.bin'), '--json', '--json')).code).toBe(2);
  });

  it('--collateral or --pcs-url with an SEV-SNP report is a usage error', async () => {
    const r = await cli('verify', f(milan, 'report.bin'), '--pcs-url', 'http://127.0.0.1:9', '--json');
    expect(r.code).toBe(2);
    expect(JSON.parse(r.out).error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    expect(JSON.parse(r.out).error.message).toMatch(/--pcs-url: for TDX quotes only/);
  });

  it('with --json every usage and policy error is one JSON object on stdout, exit 2', async () => {
    const report = f(milan, 'report.bin');
    const badPolicy = join(dir, 'bad-policy-json.json');
    writeFileSync(badPolicy, '{"snp":{"allowDebugg":true}}');
    const cases: Array<[string[], string]> = [
      [['--json'], 'ERR_INVALID_ARGUMENT'],
      [[report, '--json', '--bogus'], 'ERR_INVALID_ARGUMENT'],
      [[report, '--json', '--at', 'yesterday'], 'ERR_INVALID_ARGUMENT'],
      [[report, '--json', '--vek', join(dir, 'missing.der')], 'ERR_INVALID_ARGUMENT'],
      [[report, '--json', '--policy', badPolicy], 'ERR_POLICY_INVALID'],
      [[report, '--json', '--offline', '--offline'], 'ERR_INVALID_ARGUMENT'],
    ];
    for (const [args, code] of cases) {
      const r = await cli('verify', ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toBe('');
      expect(r.out.trim().split('\n')).toHaveLength(1);
      expect(JSON.parse(r.out)).toMatchObject({ ok: false, error: { code } });
    }
  });

  it('--at needs Z or an offset: a bare local time is a usage error, whatever TZ is', async () => {
    const saved = process.env.TZ;
    const when = milan.meta.suggested_verify_at; // e.g. 2026-02-06T01:04:33Z
    expect(when).toMatch(/Z$/);
    const base = ['verify', f(milan, 'report.bin'), '--vek', f(milan, 'vek.der'), '--offline', '--json'];
    try {
      for (const tz of ['UTC', 'Pacific/Kiritimati', 'America/Los_Angeles']) {
        process.env.TZ = tz;
        const bare = await cli(...base, '--at', when.slice(0, -1));
        expect(bare.code, tz).toBe(2);
        expect(JSON.parse(bare.out).error.message).toMatch(/with Z or an offset/);
        expect((await cli(...base, '--at', when.slice(0, 10))).code, tz).toBe(2);
        // The same instant written with Z and with an offset: the same verdict in every zone.
        const z = await cli(...base, '--at', when);
        expect(z.code, tz).toBe(0);
        const shifted = new Date(Date.parse(when) + 3_600_000).toISOString().replace(/\.\d+Z$/, '+01:00');
        const offset = await cli(...base, '--at', shifted);
        expect(offset.code, tz).toBe(0);
        expect(JSON.parse(offset.out).claims).toEqual(JSON.parse(z.out).claims);
      }
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });
});
