/**
 * explainVtpm() and `attested-channel explain --tpm-quote …` on the real Google Cloud vTPM
 * attestation of test/fixtures/gce-vtpm (COS 85, nonce 9009): the AK certificate and its root,
 * the GCE instance identity, what booted (the log the verifier replayed), the quote's freshness,
 * and that the vTPM is outside the TEE; and explainClaims() on a report with `claims.vtpm`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { verifyGceVtpm } from '../../src/evidence/gce/vtpm.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { explainClaims } from '../../src/explain/explain.js';
import { explainVtpm } from '../../src/explain/vtpm.js';
import { fixture } from '../eventlog/fixtures.js';
import { AT, file, GCE, input, LOG } from '../gce/cos85.js';
import { cli, tempDir } from '../helpers/cli.js';
import { loadFixture } from '../snp/fixtures.js';

const ROOTS = fileURLToPath(new URL('../fixtures/gce-vtpm/roots/', import.meta.url));
const meta = fixture('go-tpm-tools__gce-cos-85-nonce9009').meta;
const dir = tempDir('ac-vtpm-explain-');

function args(o: { log?: boolean; nonce?: boolean; sig?: string } = {}): string[] {
  return [
    'explain',
    '--tpm-quote',
    join(GCE, 'quote-sha256.msg'),
    '--tpm-signature',
    o.sig ?? join(GCE, 'quote-sha256.sig'),
    '--pcrs',
    join(GCE, 'pcrs.json'),
    '--ak-cert',
    join(GCE, 'ak-cert.der'),
    ...(o.log === false ? [] : ['--event-log', LOG]),
    ...(o.nonce === false ? [] : ['--nonce', '9009']),
    '--at',
    AT.toISOString(),
  ];
}

describe('attested-channel explain --tpm-quote (Google Cloud vTPM evidence)', () => {
  it('--json: the AK certificate under the pinned root, the instance, what booted, a fresh quote', async () => {
    const r = await cli(...args(), '--json');
    expect(r.code, r.out + r.err).toBe(0);
    const { ok, report } = JSON.parse(r.out);
    expect(ok).toBe(true);
    expect(report.format).toBe('gce-vtpm');
    expect(report.akCertificate).toMatchObject({ pinnedRoot: true });
    expect(report.akCertificate.issuer).toMatch(/^tpm_ek_v1_cloud_host-signer/);
    expect(report.instance).toMatchObject({
      projectId: 'google.com:wuale-gcp-testing',
      zone: 'us-central1-a',
      instanceName: 'cos-test',
    });
    expect(report.os.covered).toBe(true);
    // What the verifier's own summary of the log says (test/boot/tpm-log.test.ts: SecureBoot is 01).
    const boot = verifyGceVtpm(input(), { now: AT }).boot!;
    expect(report.os.secureBoot).toBe(true);
    expect(report.os.kernelCmdline).toBe(boot.kernelCmdline);
    expect(report.os.kernelCmdline).toMatch(/^\/syslinux\/vmlinuz/);
    expect(report.os.matched).toContain('sha256:PCR4');
    expect(report.quote).toMatchObject({ extraData: '9009', banks: ['sha256'] });
    expect(report.quote.text).toMatch(/fresh/);
    expect(report.vtpm.text).toMatch(/outside the TEE/);
    expect(report.workloadPinned).toBe(false);
    expect(report.summary).toHaveLength(6);
  });

  it('text: one sentence per fact', async () => {
    const r = await cli(...args());
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines).toHaveLength(6);
    expect(lines[0]).toMatch(/outside the TEE/);
    expect(lines[2]).toMatch(/"cos-test".*us-central1-a/);
    expect(lines[3]).toMatch(/^Your OS: measured by the vTPM/);
  });

  it('without the log the OS is not covered; without --nonce the quote is not known to be fresh', async () => {
    const r = await cli(...args({ log: false, nonce: false }), '--json');
    expect(r.code).toBe(0);
    const { report } = JSON.parse(r.out);
    expect(report.os.covered).toBe(false);
    expect(report.os.text).toMatch(/NOT covered/);
    expect(report.quote.text).toMatch(/not known to be fresh/);
  });

  it('a changed signature is refused (exit 1) and nothing is explained', async () => {
    const sig = new Uint8Array(file('quote-sha256.sig'));
    sig[sig.length - 1]! ^= 1;
    const p = join(dir, 'bad.sig');
    writeFileSync(p, sig);
    const r = await cli(...args({ sig: p }), '--json');
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out);
    expect(j.ok).toBe(false);
    expect(j.error.code).toMatch(/^ERR_EVIDENCE_/);
  });

  it('--no-verify is a usage error; --tpm-roots is taken', async () => {
    expect((await cli(...args(), '--no-verify')).code).toBe(2);
    const r = await cli(...args(), '--tpm-roots', ROOTS, '--json');
    expect(r.code, r.out).toBe(0);
    expect(JSON.parse(r.out).report.akCertificate.pinnedRoot).toBe(true);
  });
});

describe('explainVtpm()', () => {
  it('a root that is not one of Google’s pinned ones is said to be the caller’s', () => {
    const claims = verifyGceVtpm(input(), { now: AT });
    const other = explainVtpm({
      ...claims,
      akCertificate: { ...claims.akCertificate, rootSha256: 'ab'.repeat(32) },
    });
    expect(other.akCertificate.pinnedRoot).toBe(false);
    expect(other.akCertificate.text).toMatch(/given by the caller/);
    expect(explainVtpm(claims).akCertificate.pinnedRoot).toBe(true);
  });

  it('a boot pin in the policy shows as pinned', () => {
    const p4 = meta.pcrs!.sha256!['4']!;
    const claims = verifyGceVtpm(input(), { now: AT, policy: { boot: { pcrs: { sha256: { '4': [p4] } } } } });
    const report = explainVtpm(claims);
    expect(report.workloadPinned).toBe(true);
    expect(report.summary.at(-1)).toMatch(/was pinned/);
  });

  it('refuses what is not vTPM claims', () => {
    for (const bad of [null, {}, { format: 'gce-vtpm' }, 'x'])
      expect(() => explainVtpm(bad as never)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
      );
  });
});

describe('explainClaims() on a report with claims.vtpm', () => {
  it('the report says its own facts, then the vTPM’s; the OS is covered by the vTPM', async () => {
    const fx = loadFixture('ms-tav__milan-v3');
    const hw = await verifyEvidence(
      { report: fx.report, vek: fx.vek, chain: [fx.ask, fx.ark] },
      { now: fx.at, offline: true },
    );
    const alone = explainClaims(hw);
    expect(alone.os.covered).toBe(false);
    expect(alone.vtpm).toBeUndefined();
    // A vTPM of another VM set beside it: explainClaims() explains, it does not appraise.
    const vtpm = verifyGceVtpm(input(), { now: AT });
    const report = explainClaims({ ...hw, vtpm });
    expect(report.vtpm?.instance.instanceName).toBe('cos-test');
    expect(report.os).toMatchObject({ covered: true, measuredIn: 'pcrs' });
    expect(report.os.text).toMatch(/Google's vTPM \(outside the TEE/);
    expect(report.summary.slice(-6)).toEqual(report.vtpm!.summary);
    expect(report.summary.length).toBe(alone.summary.length + 6);
    // Unverified claims carry no vTPM report.
    expect(explainClaims({ ...hw, vtpm }, { verified: false }).vtpm).toBeUndefined();
  });
});
