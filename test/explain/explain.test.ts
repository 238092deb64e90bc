/**
 * explainClaims() and `attested-channel explain` on real evidence: each report states the facts
 * its fixture README gives (signer, VMPL, debug, simulated false, OS not covered without a log).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseEventLog } from '../../src/evidence/eventlog/parse.js';
import { verifyLaunchEndorsement } from '../../src/evidence/gce/endorsement.js';
import { parseSnpReport } from '../../src/evidence/snp/report.js';
import { parseTdxQuote } from '../../src/evidence/tdx/quote.js';
import { verifyAzure, verifyEvidence } from '../../src/evidence/verify.js';
import { explainClaims } from '../../src/explain/explain.js';
import { KNOWN_IMAGES } from '../../src/explain/known-images.js';
import { parsedClaims } from '../../src/explain/unverified.js';
import { inputOf, loadFixture as loadAzure, optionsOf } from '../azure/fixtures.js';
import { endorsement, golden, makeRoot, makeSigner, pssSign } from '../gce/mint.js';
import { cli } from '../helpers/cli.js';
import { loadFixture, snpCliArgs } from '../snp/fixtures.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');

async function verifiedSnp(name: string, policy?: object) {
  const fx = loadFixture(name);
  return verifyEvidence(
    { report: fx.report, vek: fx.vek, chain: [fx.ask, fx.ark] },
    { now: fx.at, offline: true, ...(policy ? { policy } : {}) },
  );
}

describe('explainClaims on real SEV-SNP reports', () => {
  it('ms-tav__milan-v3: VCEK pins a chip, VMPL 0, debug off, not simulated, unknown image, OS not covered', async () => {
    const r = explainClaims(await verifiedSnp('ms-tav__milan-v3'));
    expect(r.verified).toBe(true);
    expect(r.tee).toMatchObject({
      format: 'sev-snp',
      technology: 'AMD SEV-SNP',
      product: 'Milan',
      via: 'direct',
    });
    expect(r.signer).toMatchObject({ key: 'vcek', pinsChip: true });
    expect(r.vmpl?.value).toBe(0);
    expect(r.debug.value).toBe(false);
    expect(r.migrationAgent?.value).toBe(false);
    expect(r.simulated).toBe(false);
    expect(r.measurement.knownImage).toBeNull();
    expect(r.measurement.text).toMatch(
      /unknown image: compare with `attested-channel measure`|unknown image — compare with `attested-channel measure`/,
    );
    expect(r.os).toMatchObject({ covered: false, measuredIn: null });
    expect(r.revocation.checked).toBe(false);
    expect(r.revocation.text).toMatch(/NOT checked/);
    expect(r.reportData).toMatchObject({ allZero: true, binder: false });
    expect(r.workloadPinned).toBe(false);
    expect(r.tcb.reported).toMatchObject({ bootloader: 4, snp: 24, microcode: 219 });
    expect(r.summary).toContain(r.signer.text);
  });

  it('trustee__milan-v3-vlek-aws: VLEK is a fleet key, it pins no chip', async () => {
    const r = explainClaims(await verifiedSnp('trustee__milan-v3-vlek-aws'));
    expect(r.signer).toMatchObject({ key: 'vlek', pinsChip: false });
    expect(r.signer.text).toMatch(/fleet/);
    // Its meta.json: VMPL 1 — the report was asked for below VMPL 0.
    expect(r.vmpl?.value).toBe(1);
    expect(r.vmpl?.text).toMatch(/below VMPL 0/);
  });

  it('go-sev-guest__milan-v2: debug allowed (under a policy that lets it through); REPORT_DATA carries bytes', async () => {
    const r = explainClaims(
      await verifiedSnp('go-sev-guest__milan-v2', {
        snp: {
          allowDebug: true,
          measurements: [loadFixture('go-sev-guest__milan-v2').meta.fields.measurement],
        },
      }),
    );
    expect(r.debug.value).toBe(true);
    expect(r.debug.text).toMatch(/ALLOWED/);
    expect(r.reportData).toMatchObject({ allZero: false, binder: true });
    expect(r.workloadPinned).toBe(true);
    // A v2 report has no CPUID: the product comes from the VCEK.
    expect(r.tee.product).toBe('Milan');
  });

  it('trustee__azure-genoa-v3 (a raw SNP report from Azure): the measurement is Microsoft’s paravisor', async () => {
    const r = explainClaims(await verifiedSnp('trustee__azure-genoa-v3'));
    expect(r.measurement.knownImage?.owner).toBe('Microsoft');
    expect(r.measurement.text).toMatch(/not your workload/);
  });
});

describe('explainClaims on real TDX quotes', () => {
  it('dcap-qvl__quote: PCK signer, TCB UpToDate per collateral, revocation checked, debug off', async () => {
    const d = join(FIX, 'tdx', 'dcap-qvl__quote');
    const claims = await verifyEvidence(
      {
        report: new Uint8Array(readFileSync(join(d, 'quote.bin'))),
        collateral: readFileSync(join(d, 'collateral.json'), 'utf8'),
      },
      { now: new Date('2025-07-19T10:00:34Z'), offline: true },
    );
    const r = explainClaims(claims);
    expect(r.tee).toMatchObject({ format: 'tdx', technology: 'Intel TDX', via: 'direct' });
    // The PCK certificate names the platform by PPID, which tdx.ppids pins.
    expect(r.signer).toMatchObject({ key: 'pck', pinsChip: true });
    expect(r.signer.text).toContain('PPID 811dca2a26b952e85bb6448b097ba4fd');
    expect(explainClaims({ ...claims, ppid: '' } as typeof claims).signer.pinsChip).toBe(false);
    expect(r.vmpl).toBeNull();
    expect(r.migrationAgent).toBeNull();
    expect(r.debug.value).toBe(false);
    expect(r.tcb).toMatchObject({ status: 'UpToDate', reported: null });
    expect(r.revocation).toMatchObject({ checked: true, source: 'collateral' });
    expect(r.simulated).toBe(false);
    expect(r.os).toMatchObject({ covered: false, measuredIn: 'rtmrs' });
    expect(r.reportData.binder).toBe(true);
  });

  it('go-tdx-guest__quote_cos113_ccel --no-verify with its CCEL log: Google’s firmware, the log replays to RTMR0-2', () => {
    const quote = new Uint8Array(
      readFileSync(join(FIX, 'tdx', 'go-tdx-guest__quote_cos113_ccel', 'quote.bin')),
    );
    const log = parseEventLog(
      new Uint8Array(readFileSync(join(FIX, 'eventlog', 'go-eventlog__cos-113-intel-tdx', 'ccel.bin'))),
      {
        ccel: true,
      },
    );
    const r = explainClaims(parsedClaims(quote), { verified: false, eventLog: log });
    expect(r.verified).toBe(false);
    expect(r.simulated).toBeNull();
    expect(r.tcb.status).toBeNull();
    expect(r.measurement.knownImage?.owner).toBe('Google');
    expect(r.os.matched).toEqual(['RTMR0', 'RTMR1', 'RTMR2']);
    // Not verified, so not covered, however well the log replays.
    expect(r.os.covered).toBe(false);
    expect(r.os.kernelCmdline).toMatch(/console=/);
    expect(r.tee.text).toMatch(/NOT VERIFIED/);
    expect(r.reportData).toMatchObject({ allZero: true, binder: false });
  });

  it('a log that does not replay to the quote’s RTMRs leaves the OS not covered', async () => {
    const d = join(FIX, 'tdx', 'dcap-qvl__quote');
    const claims = await verifyEvidence(
      {
        report: new Uint8Array(readFileSync(join(d, 'quote.bin'))),
        collateral: readFileSync(join(d, 'collateral.json'), 'utf8'),
      },
      { now: new Date('2025-07-19T10:00:34Z'), offline: true },
    );
    const log = parseEventLog(
      new Uint8Array(readFileSync(join(FIX, 'eventlog', 'go-eventlog__cos-113-intel-tdx', 'ccel.bin'))),
      {
        ccel: true,
      },
    );
    const r = explainClaims(claims, { eventLog: log });
    expect(r.os.covered).toBe(false);
    expect(r.os.text).toMatch(/does not replay/);
    expect(r.os.matched).toEqual([]);
  });
});

describe('explainClaims on real Azure evidence', () => {
  for (const id of [
    'trustee__snp-hcl-report',
    'trustee__snp-evidence-v0',
    'trustee__snp-evidence-v2',
    'trustee__tdx-hcl-report',
  ]) {
    it(`${id}: Microsoft's paravisor, OS in PCRs but not covered without a log`, async () => {
      const fx = loadAzure(id);
      const claims = await verifyAzure(inputOf(fx), optionsOf(fx));
      const r = explainClaims(claims);
      expect(r.tee.via).toBe('azure');
      expect(r.measurement.knownImage?.owner).toBe('Microsoft');
      expect(r.os).toMatchObject({ covered: false, measuredIn: 'pcrs' });
      expect(r.simulated).toBe(false);
      expect(r.debug.value).toBe(false);
      if (claims.format === 'azure-sev-snp') {
        expect(r.vmpl?.value).toBe(0);
        expect(r.vmpl?.text).toMatch(/paravisor/);
        expect(r.signer.key).toBe('vcek');
      } else expect(r.signer.key).toBe('pck');
      // evidence-v2 puts the binder in user-data (README: "the same 48 bytes + 16 zero bytes").
      expect(r.reportData.binder).toBe(id === 'trustee__snp-evidence-v2');
    });
  }
});

describe('the known-images table', () => {
  it('each value is the one in the fixture it names, and each cites a source', () => {
    for (const k of KNOWN_IMAGES) {
      const d = join(FIX, k.fixture);
      let value: string;
      if (k.fixture.startsWith('azure/')) {
        const hcl = new Uint8Array(readFileSync(join(d, 'hcl-report.bin')));
        value =
          k.register === 'measurement'
            ? parseSnpReport(hcl.subarray(0x20, 0x20 + 0x4a0)).measurement
            : Buffer.from(
                parseTdxQuote(new Uint8Array(readFileSync(join(d, 'td-quote.bin')))).body.mrTd,
              ).toString('hex');
      } else if (k.fixture.startsWith('snp/'))
        value = parseSnpReport(new Uint8Array(readFileSync(join(d, 'report.bin')))).measurement;
      else
        value = Buffer.from(
          parseTdxQuote(new Uint8Array(readFileSync(join(d, 'quote.bin')))).body.mrTd,
        ).toString('hex');
      expect(value, k.fixture).toBe(k.value);
      expect(k.source).toMatch(/\//);
    }
  });
});

describe('a verified Google launch endorsement names the firmware', () => {
  it('recognises the report’s measurement as Google’s for that vCPU count', async () => {
    const claims = await verifiedSnp('ms-tav__milan-v3');
    if (claims.format !== 'sev-snp') throw new Error('not SNP');
    const root = makeRoot();
    const signer = makeSigner(root);
    const signed = golden({
      cert: signer.der,
      snp: { measurements: [[4, Buffer.from(claims.measurement, 'hex')]] },
    });
    const e = verifyLaunchEndorsement(endorsement(signed, pssSign(signed, signer.key)), {
      root: root.der,
      rootSha256: createHash('sha256').update(root.der).digest('hex'),
      now: new Date('2026-01-01T00:00:00Z'),
    });
    const r = explainClaims(claims, { endorsement: e });
    expect(r.measurement.knownImage?.owner).toBe('Google');
    expect(r.measurement.knownImage?.image).toMatch(/4 vCPUs/);
    const other = explainClaims(await verifiedSnp('oak__milan-v3-oc-release'), { endorsement: e });
    expect(other.measurement.knownImage).toBeNull();
  });
});

describe('attested-channel explain', () => {
  beforeAll(async () => {
    await import('../../src/cli/explain.js');
  }, 120_000);

  it('prints one sentence per fact; --json gives the same report', async () => {
    const t = await cli('explain', ...snpCliArgs('trustee__milan-v3-vlek-aws'));
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/^TEE: AMD SEV-SNP \(Milan\)/);
    expect(t.out).toMatch(/Signer: VLEK/);
    expect(t.out).toMatch(/Your OS: NOT covered/);
    const j = await cli('explain', ...snpCliArgs('trustee__milan-v3-vlek-aws'), '--json');
    expect(j.code).toBe(0);
    const o = JSON.parse(j.out);
    expect(o).toMatchObject({
      ok: true,
      report: { verified: true, signer: { key: 'vlek' }, simulated: false, vmpl: { value: 1 } },
    });
    expect(o.report.summary.join('\n')).toBe(t.out.trimEnd());
  });

  it('--no-verify explains a report it cannot verify, and says nothing is established', async () => {
    const r = await cli(
      'explain',
      '--no-verify',
      '--json',
      join(FIX, 'tdx', 'go-tdx-guest__quote_cos113_ccel', 'quote.bin'),
    );
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out);
    expect(o.report).toMatchObject({ verified: false, simulated: null, workloadPinned: null });
    expect(o.report.measurement.knownImage.owner).toBe('Google');
  });

  it('evidence that fails verification is refused (exit 1), with the code', async () => {
    const args = snpCliArgs('ms-tav__milan-v3');
    const vlek = snpCliArgs('trustee__milan-v3-vlek-aws');
    args[2] = vlek[2]!; // another key's certificate
    const r = await cli('explain', ...args, '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out)).toMatchObject({
      ok: false,
      error: { code: expect.stringMatching(/^ERR_EVIDENCE_/) },
    });
    expect((await cli('explain')).code).toBe(2);
    const twice = await cli(
      'explain',
      ...snpCliArgs('ms-tav__milan-v3'),
      '--at',
      '2026-02-06T01:04:33Z',
      '--json',
    );
    expect(twice.code).toBe(2);
    expect(JSON.parse(twice.out)).toMatchObject({ ok: false, error: { code: 'ERR_INVALID_ARGUMENT' } });
    expect((await cli('policy', '--from-measure', 'a', '--out', 'x', '--out', 'y')).code).toBe(2);
    expect((await cli('explain', '--ccel', 'x')).code).toBe(2);
  });
});

describe('simulated evidence', () => {
  it('is explained as simulated, with the binder it carries', async () => {
    const { simulated } = await import('../../src/evidence/providers/simulated.js');
    const reportData = new Uint8Array(64).fill(7);
    for (const provider of [simulated.snp(), simulated.tdx()]) {
      const input = await provider.getEvidence(reportData);
      const claims = await verifyEvidence(input, { trustAnchors: simulated.trustAnchors(), offline: true });
      const r = explainClaims(claims);
      expect(r.simulated).toBe(true);
      expect(r.summary.join('\n')).toMatch(/Simulated: YES/);
      expect(r.reportData).toMatchObject({ binder: true, allZero: false, value: '07'.repeat(64) });
    }
  });
});

describe('a verified boot log covers the OS', () => {
  it('a (simulated) TD whose RTMRs the CCEL log replays to: covered, with Secure Boot and the command line', async () => {
    const { simulated } = await import('../../src/evidence/providers/simulated.js');
    const bytes = new Uint8Array(
      readFileSync(join(FIX, 'eventlog', 'go-eventlog__cos-113-intel-tdx', 'ccel.bin')),
    );
    const log = parseEventLog(bytes, { ccel: true });
    const cos = parsedClaims(
      new Uint8Array(readFileSync(join(FIX, 'tdx', 'go-tdx-guest__quote_cos113_ccel', 'quote.bin'))),
    );
    if (cos.format !== 'tdx') throw new Error('not TDX');
    const td = simulated.tdx({ rtmrs: [cos.rtmr0, cos.rtmr1, cos.rtmr2] });
    const claims = await verifyEvidence(await td.getEvidence(new Uint8Array(64)), {
      trustAnchors: simulated.trustAnchors(),
      offline: true,
    });
    const r = explainClaims(claims, { eventLog: log });
    expect(r.os).toMatchObject({
      covered: true,
      measuredIn: 'rtmrs',
      secureBoot: false,
      matched: ['RTMR0', 'RTMR1', 'RTMR2'],
    });
    expect(r.os.kernelCmdline).toMatch(/dm_verity/);
    expect(r.os.text).toMatch(/^Your OS: covered/);
    // The same log against a TD whose RTMR2 differs (another kernel command line) covers nothing.
    const other = simulated.tdx({ rtmrs: [cos.rtmr0, cos.rtmr1, cos.rtmr0] });
    const c2 = await verifyEvidence(await other.getEvidence(new Uint8Array(64)), {
      trustAnchors: simulated.trustAnchors(),
      offline: true,
    });
    expect(explainClaims(c2, { eventLog: log }).os).toMatchObject({ covered: false, matched: [] });
  });
});

describe('a boot log the verifier replayed (claims.boot)', () => {
  it('explain says the OS is covered; the policy written from it pins the boot and refuses the evidence without its log', async () => {
    const { simulated } = await import('../../src/evidence/providers/simulated.js');
    const { policyFromClaims, finishPolicy } = await import('../../src/explain/policy-builder.js');
    const log = new Uint8Array(
      readFileSync(join(FIX, 'eventlog', 'go-eventlog__cos-113-intel-tdx', 'ccel.bin')),
    );
    const cos = parsedClaims(
      new Uint8Array(readFileSync(join(FIX, 'tdx', 'go-tdx-guest__quote_cos113_ccel', 'quote.bin'))),
    );
    if (cos.format !== 'tdx') throw new Error('not TDX');
    const td = simulated.tdx({ rtmrs: [cos.rtmr0, cos.rtmr1, cos.rtmr2] });
    const input = { ...(await td.getEvidence(new Uint8Array(64))), eventLog: { log, ccel: true } };
    const opts = { trustAnchors: simulated.trustAnchors(), offline: true };
    const claims = await verifyEvidence(input, opts);
    const r = explainClaims(claims);
    expect(r.os).toMatchObject({ covered: true, measuredIn: 'rtmrs', matched: ['RTMR0', 'RTMR1', 'RTMR2'] });
    expect(r.os.kernelCmdline).toMatch(/dm_verity/);
    const draft = policyFromClaims(claims);
    const boot = draft.boot as { kernelCmdlines: string[]; comments: Record<string, string> };
    expect(boot.kernelCmdlines).toEqual([r.os.kernelCmdline]);
    expect(boot.comments.kernelCmdlines).toMatch(/GRUB/);
    const policy = finishPolicy(draft);
    expect((await verifyEvidence(input, { ...opts, policy })).workloadPinned).toBe(true);
    // The same evidence without its log is refused by the boot section.
    const { eventLog: _l, ...noLog } = input;
    await expect(verifyEvidence(noLog, { ...opts, policy })).rejects.toMatchObject({
      code: expect.stringMatching(/^ERR_/),
    });
  });
});

describe('the commands on real Azure evidence (the verify options for an HCL report)', () => {
  it('explain --json states the README facts; policy --from-evidence pins the PCRs and the policy verifies it', async () => {
    const d = join(FIX, 'azure', 'trustee__snp-evidence-v0');
    const args = [
      join(d, 'hcl-report.bin'),
      '--tpm-quote',
      join(d, 'tpm-quote.msg'),
      '--tpm-signature',
      join(d, 'tpm-quote.sig'),
      '--pcrs',
      join(d, 'pcrs.json'),
      '--vek',
      join(d, 'vek.pem'),
      '--at',
      '2025-01-29T16:26:55Z',
      '--offline',
    ];
    const e = await cli('explain', ...args, '--json');
    expect(e.code).toBe(0);
    const r = JSON.parse(e.out).report;
    expect(r).toMatchObject({
      verified: true,
      simulated: false,
      tee: { format: 'azure-sev-snp', via: 'azure' },
      signer: { key: 'vcek' },
      vmpl: { value: 0 },
      debug: { value: false },
      os: { covered: false, measuredIn: 'pcrs' },
      measurement: { knownImage: { owner: 'Microsoft' } },
    });
    const p = await cli('policy', '--from-evidence', ...args, '--pin-pcrs', '4,7');
    expect(p.code).toBe(0);
    const draft = JSON.parse(p.out);
    expect(Object.keys(draft.azure.pcrs.sha256)).toEqual(['4', '7']);
    const { writeFileSync: write, mkdtempSync: mk, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const tmp = mk(join(tmpdir(), 'ac-explain-'));
    try {
      write(join(tmp, 'policy.json'), p.out);
      const v = await cli('verify', ...args, '--policy', join(tmp, 'policy.json'), '--json');
      expect(JSON.parse(v.out)).toMatchObject({ ok: true, workloadPinned: true });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
