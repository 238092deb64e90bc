/**
 * `attested-channel policy` and the policy builder: policies written from real evidence pass
 * parsePolicy(), accept the evidence they came from, and refuse the same claims with any one
 * pinned field changed; every pin carries a comment; nothing that pins no workload is written.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import { appraiseClaims } from '../../src/evidence/appraise.js';
import { parseEventLog } from '../../src/evidence/eventlog/parse.js';
import { bootSummary } from '../../src/evidence/eventlog/summary.js';
import { parsePolicy } from '../../src/evidence/policy.js';
import type { Claims } from '../../src/evidence/types.js';
import { verifyAzure, verifyEvidence } from '../../src/evidence/verify.js';
import {
  bootSectionSupported,
  finishPolicy,
  mergePolicyDrafts,
  type PolicyDraft,
  policyFromBootSummary,
  policyFromClaims,
} from '../../src/explain/policy-builder.js';
import { parsedClaims } from '../../src/explain/unverified.js';
import { inputOf, loadFixture as loadAzure, optionsOf } from '../azure/fixtures.js';
import { endorsement, golden, makeRoot, makeSigner, pssSign } from '../gce/mint.js';
import { cli, tempDir } from '../helpers/cli.js';
import { thrownCode } from '../helpers/codes.js';
import { file, VECTORS } from '../measure/vectors.js';
import { loadFixture, snpCliArgs } from '../snp/fixtures.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');
const dir = tempDir('ac-policy-');

/** Every field of every section (nested sections too) has a comment. */
function expectEveryPinCommented(draft: PolicyDraft): void {
  for (const [name, s] of Object.entries(draft)) {
    if (name === 'comment' || typeof s !== 'object' || s === null) continue;
    const sec = s as Record<string, unknown>;
    const comments = (sec.comments ?? {}) as Record<string, string>;
    for (const [k, v] of Object.entries(sec)) {
      if (k === 'comments') continue;
      if (typeof v === 'object' && v !== null && !Array.isArray(v) && (k === 'snp' || k === 'tdx')) {
        expectEveryPinCommented({ [k]: v });
        continue;
      }
      expect(typeof comments[k], `${name}.${k} has a comment`).toBe('string');
      expect(comments[k]!.length).toBeGreaterThan(10);
    }
  }
}

/** Flips the last hex digit of a claim value (a list of values: its first). */
function changed(v: string): string {
  return v.slice(0, -1) + (v.endsWith('0') ? '1' : '0');
}

describe('policy --from-evidence (SEV-SNP, real reports)', () => {
  beforeAll(async () => {
    await import('../../src/cli/policy.js');
  }, 120_000);

  for (const name of [
    'ms-tav__milan-v3',
    'ms-tav__turin-v5',
    'trustee__milan-v3-vlek-aws',
    'ms-tav__genoa-v3',
  ]) {
    it(`${name}: parses, accepts the report, refuses each pinned field changed`, async () => {
      const fx = loadFixture(name);
      const r = await cli('policy', '--from-evidence', ...snpCliArgs(name));
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      const draft = JSON.parse(r.out) as PolicyDraft;
      expectEveryPinCommented(draft);
      const policy = parsePolicy(draft);
      expect(Object.keys(policy)).toEqual(['snp']);
      const input = { report: fx.report, vek: fx.vek, chain: [fx.ask, fx.ark] };
      const claims = await verifyEvidence(input, { policy, now: fx.at, offline: true });
      expect(claims.workloadPinned).toBe(true);
      if (claims.format !== 'sev-snp') throw new Error('not SNP');
      expect(policy.snp?.measurements).toEqual([fx.meta.fields.measurement]);
      expect(policy.snp?.hostData).toEqual([fx.meta.fields.host_data]);
      // One field changed at a time: each pin refuses on its own.
      const variants: Array<[string, Partial<typeof claims>]> = [
        ['measurements', { measurement: changed(claims.measurement) }],
        ['hostData', { hostData: changed(claims.hostData) }],
        ['idKeyDigests', { idKeyDigest: changed(claims.idKeyDigest) }],
        ['vmpls', { vmpl: claims.vmpl + 1 }],
        ['signers', { signer: claims.signer === 'vcek' ? 'vlek' : 'vcek' }],
        ['minGuestSvn', { guestSvn: claims.guestSvn - 1 }],
        ['minTcb', { reportedTcb: { ...claims.reportedTcb, snp: claims.reportedTcb.snp - 1 } }],
      ];
      for (const [field, change] of variants) {
        if (field === 'minGuestSvn' && claims.guestSvn === 0) continue;
        const err = (() => {
          try {
            appraiseClaims({ ...claims, ...change } as Claims, policy);
          } catch (e) {
            return e as AttestationError;
          }
          return undefined;
        })();
        expect(err?.code, field).toMatch(/^ERR_EVIDENCE_(POLICY|TCB)$/);
      }
      // The TDX guests the policy does not name are refused as a format.
      expect(
        thrownCode(() => appraiseClaims({ ...claims, format: 'tdx' } as unknown as Claims, policy)),
      ).toBe('ERR_EVIDENCE_POLICY');
    });
  }

  it('--pin-chip pins the VCEK chip and refuses another chip; a VLEK report has none to pin', async () => {
    const fx = loadFixture('ms-tav__milan-v3');
    const r = await cli('policy', '--from-evidence', ...snpCliArgs('ms-tav__milan-v3'), '--pin-chip');
    expect(r.code).toBe(0);
    const policy = parsePolicy(r.out);
    expect(policy.snp?.chipIds).toEqual([fx.meta.fields.chip_id]);
    const claims = await verifyEvidence(
      { report: fx.report, vek: fx.vek, chain: [fx.ask, fx.ark] },
      { policy, now: fx.at, offline: true },
    );
    if (claims.format !== 'sev-snp') throw new Error('not SNP');
    expect(thrownCode(() => appraiseClaims({ ...claims, chipId: changed(claims.chipId) }, policy))).toBe(
      'ERR_EVIDENCE_POLICY',
    );
    const vlek = await cli(
      'policy',
      '--from-evidence',
      ...snpCliArgs('trustee__milan-v3-vlek-aws'),
      '--pin-chip',
    );
    expect(vlek.code).toBe(1);
    expect(vlek.err).toMatch(/ERR_INVALID_ARGUMENT: cannot pin the chip: CHIP_ID is zero/);
  });

  it('evidence the default policy refuses (debug) is refused, and passes with a base policy carried over', async () => {
    const refused = await cli('policy', '--from-evidence', ...snpCliArgs('go-sev-guest__milan-v2'));
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/ERR_EVIDENCE_POLICY/);
    const base = join(dir, 'base.json');
    writeFileSync(base, JSON.stringify({ snp: { allowDebug: true } }));
    const r = await cli(
      'policy',
      '--from-evidence',
      ...snpCliArgs('go-sev-guest__milan-v2'),
      '--policy',
      base,
    );
    expect(r.code).toBe(0);
    const draft = JSON.parse(r.out);
    expect(draft.snp.allowDebug).toBe(true);
    expect(draft.snp.comments.allowDebug).toMatch(/carried over/);
    expectEveryPinCommented(draft);
  });

  it('a tampered report is refused before any policy is written', async () => {
    const fx = loadFixture('ms-tav__milan-v3');
    const bad = Uint8Array.from(fx.report);
    bad[0x90] = bad[0x90]! ^ 1;
    const path = join(dir, 'tampered.bin');
    writeFileSync(path, bad);
    const args = snpCliArgs('ms-tav__milan-v3');
    args[0] = path;
    const r = await cli('policy', '--from-evidence', ...args);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/ERR_EVIDENCE_SIGNATURE/);
  });
});

describe('policy --from-evidence (TDX, real quote)', () => {
  it('dcap-qvl__quote: pins MRTD, RTMR0-3, MRCONFIGID, MROWNER, MROWNERCONFIG; each refuses changed', async () => {
    const d = join(FIX, 'tdx', 'dcap-qvl__quote');
    const at = '2025-07-19T10:00:34Z';
    const r = await cli(
      'policy',
      '--from-evidence',
      join(d, 'quote.bin'),
      '--collateral',
      join(d, 'collateral.json'),
      '--at',
      at,
      '--offline',
    );
    expect(r.code).toBe(0);
    const draft = JSON.parse(r.out);
    expectEveryPinCommented(draft);
    const policy = parsePolicy(draft);
    const claims = await verifyEvidence(
      {
        report: new Uint8Array(readFileSync(join(d, 'quote.bin'))),
        collateral: readFileSync(join(d, 'collateral.json'), 'utf8'),
      },
      { policy, now: new Date(at), offline: true },
    );
    expect(claims.workloadPinned).toBe(true);
    if (claims.format !== 'tdx') throw new Error('not TDX');
    for (const f of [
      'mrTd',
      'rtmr0',
      'rtmr1',
      'rtmr2',
      'rtmr3',
      'mrConfigId',
      'mrOwner',
      'mrOwnerConfig',
    ] as const) {
      expect(
        thrownCode(() => appraiseClaims({ ...claims, [f]: changed(claims[f]) }, policy)),
        f,
      ).toBe('ERR_EVIDENCE_POLICY');
    }
    expect(policy.tdx?.ppids).toBeUndefined();
  });

  it("--pin-chip on a TDX quote pins the PCK certificate's PPID: it refuses another, and allows reuse", async () => {
    const d = join(FIX, 'tdx', 'dcap-qvl__quote');
    const at = '2025-07-19T10:00:34Z';
    const args = ['--collateral', join(d, 'collateral.json'), '--at', at, '--offline'];
    const r = await cli('policy', '--from-evidence', join(d, 'quote.bin'), ...args, '--pin-chip');
    expect(r.code).toBe(0);
    const draft = JSON.parse(r.out);
    expectEveryPinCommented(draft);
    expect(draft.tdx.ppids).toEqual(['811dca2a26b952e85bb6448b097ba4fd']);
    const policy = parsePolicy(draft);
    const claims = await verifyEvidence(
      {
        report: new Uint8Array(readFileSync(join(d, 'quote.bin'))),
        collateral: readFileSync(join(d, 'collateral.json'), 'utf8'),
      },
      { policy, now: new Date(at), offline: true },
    );
    if (claims.format !== 'tdx') throw new Error('not TDX');
    expect(thrownCode(() => appraiseClaims({ ...claims, ppid: changed(claims.ppid) }, policy))).toBe(
      'ERR_EVIDENCE_POLICY',
    );
    expect(parsePolicy({ ...draft, reuse: { maxEvidenceAge: 300 } }).reuse?.maxEvidenceAge).toBe(300);
  });
});

describe('policy --from-evidence carries the base policy it verified under', () => {
  it('an OutOfDate TDX quote: refused alone, written under a base that accepts OutOfDate, the status carried', async () => {
    const d = join(FIX, 'tdx', 'automata__quote_v4_gcp_8000');
    const args = ['--from-evidence', join(d, 'quote.bin'), '--collateral', join(d, 'collateral.json')];
    const at = ['--at', '2025-06-05T03:45:00Z', '--offline'];
    const refused = await cli('policy', ...args, ...at);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/ERR_EVIDENCE_TCB/);
    const base = join(dir, 'base-tdx.json');
    writeFileSync(base, JSON.stringify({ tdx: { acceptTcbStatus: ['UpToDate', 'OutOfDate'] } }));
    const r = await cli('policy', ...args, ...at, '--policy', base);
    expect(r.code).toBe(0);
    const draft = JSON.parse(r.out);
    expect(draft.tdx.acceptTcbStatus).toEqual(['UpToDate', 'OutOfDate']);
    expect(draft.tdx.comments.acceptTcbStatus).toMatch(/carried over/);
    const policy = parsePolicy(draft);
    const claims = await verifyEvidence(
      {
        report: new Uint8Array(readFileSync(join(d, 'quote.bin'))),
        collateral: readFileSync(join(d, 'collateral.json'), 'utf8'),
      },
      { policy, now: new Date('2025-06-05T03:45:00Z'), offline: true },
    );
    expect(claims.workloadPinned).toBe(true);
  });
});

describe('policy --from-measure', () => {
  it('pins the computed measurement with its inputs in the comment; two outputs give both', async () => {
    const vs = VECTORS.vectors
      .filter((x) => x.mode === 'snp' && x.expect === 'ok' && x.vcpu_type)
      .slice(0, 2);
    const paths: string[] = [];
    for (const [i, v] of vs.entries()) {
      const m = await cli(
        'measure',
        'snp',
        '--ovmf',
        file(v.ovmf),
        '--vcpus',
        String(v.vcpus),
        '--vcpu-type',
        v.vcpu_type!,
        '--vmm-type',
        v.vmm_type,
        '--guest-features',
        v.guest_features,
        ...(v.kernel ? ['--kernel', file(v.kernel)] : []),
        ...(v.initrd ? ['--initrd', file(v.initrd)] : []),
        ...(v.append !== null ? ['--append', v.append] : []),
        '--json',
      );
      expect(m.code).toBe(0);
      paths.push(join(dir, `m${i}.json`));
      writeFileSync(paths[i]!, m.out);
    }
    const r = await cli('policy', ...paths.flatMap((p) => ['--from-measure', p]), '--comment', 'my image');
    expect(r.code).toBe(0);
    const draft = JSON.parse(r.out);
    expect(draft.comment).toBe('my image');
    expect(parsePolicy(draft).snp?.measurements).toEqual([...new Set(vs.map((v) => v.measurement))]);
    expect(draft.snp.comments.measurements).toMatch(/computed by `measure`/);
    expect(draft.snp.comments.measurements).toMatch(new RegExp(`${vs[0]!.vcpus} vCPUs`));
    expectEveryPinCommented(draft);
  });

  it('a file that is not measure output is refused', async () => {
    const p = join(dir, 'not-measure.json');
    writeFileSync(p, JSON.stringify({ ok: false, error: { code: 'ERR_INVALID_ARGUMENT' } }));
    const r = await cli('policy', '--from-measure', p);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/ERR_INVALID_ARGUMENT/);
  });
});

describe('policy --from-eventlog', () => {
  const ccel = join(FIX, 'eventlog', 'go-eventlog__cos-113-intel-tdx');
  const quote = new Uint8Array(
    readFileSync(join(FIX, 'tdx', 'go-tdx-guest__quote_cos113_ccel', 'quote.bin')),
  );

  it('a CCEL log pins the RTMRs it extends, equal to those the quote of the same boot carries', async () => {
    const r = await cli('policy', '--from-eventlog', join(ccel, 'ccel.bin'), '--ccel');
    expect(r.code).toBe(0);
    const draft = JSON.parse(r.out);
    expectEveryPinCommented(draft);
    const claims = parsedClaims(quote);
    if (claims.format !== 'tdx') throw new Error('not TDX');
    expect(draft.tdx.rtmr0).toEqual([claims.rtmr0]);
    expect(draft.tdx.rtmr1).toEqual([claims.rtmr1]);
    expect(draft.tdx.rtmr2).toEqual([claims.rtmr2]);
    expect(draft.tdx.rtmr3).toBeUndefined();
    if (bootSectionSupported()) expect(draft.boot.kernelCmdlines).toHaveLength(1);
    else {
      expect(draft.boot).toBeUndefined();
      expect(r.err).toMatch(/RTMR pins only/);
    }
    // The pinned RTMRs refuse the same quote with one of them changed (appraisal of the TDX section's RTMRs).
    const policy = parsePolicy({
      tdx: { ...draft.tdx, acceptTcbStatus: ['UpToDate'], requireSeptVeDisable: false },
    });
    expect(thrownCode(() => appraiseClaims({ ...claims, rtmr1: changed(claims.rtmr1) }, policy))).toBe(
      'ERR_EVIDENCE_POLICY',
    );
  });

  it('the builder takes only digest-verified content and skips a zero RTMR', () => {
    const log = parseEventLog(new Uint8Array(readFileSync(join(ccel, 'ccel.bin'))), { ccel: true });
    const draft = policyFromBootSummary(bootSummary(log), { boot: true });
    const boot = draft.boot as Record<string, unknown>;
    expect(boot.kernelCmdlines).toEqual([bootSummary(log).kernelCmdline]);
    expect((boot.efiAppDigests as string[]).length).toBeGreaterThan(0);
    expect((draft.tdx as Record<string, unknown>).rtmr3).toBeUndefined();
  });

  it('a TPM log pins its PCRs in the boot section (refused while the library has none)', async () => {
    const log = join(FIX, 'eventlog', 'go-tpm-tools__ubuntu-2404-amd-sevsnp', 'eventlog.bin');
    const r = await cli('policy', '--from-eventlog', log);
    if (bootSectionSupported()) {
      expect(r.code).toBe(0);
      expect(Object.keys(JSON.parse(r.out).boot.pcrs.sha256)).toContain('4');
    } else {
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/ERR_POLICY_INVALID: .*boot section/);
    }
  });
});

describe('policy --from-endorsement (an endorsement minted by a test root, in Google’s format)', () => {
  it('pins the golden measurement for the vCPU count; the policy accepts a report with it', async () => {
    const fx = loadFixture('ms-tav__milan-v3');
    const root = makeRoot();
    const signer = makeSigner(root);
    const signed = golden({
      cert: signer.der,
      snp: {
        measurements: [
          [2, new Uint8Array(48).fill(9)],
          [4, Buffer.from(fx.meta.fields.measurement, 'hex')],
        ],
      },
    });
    const e = join(dir, 'endorsement.binarypb');
    const rootPath = join(dir, 'gce-root.der');
    writeFileSync(e, endorsement(signed, pssSign(signed, signer.key)));
    writeFileSync(rootPath, root.der);
    const sha = createHash('sha256').update(root.der).digest('hex');
    const base = [
      'policy',
      '--from-endorsement',
      e,
      '--endorsement-root',
      rootPath,
      '--at',
      '2026-01-01T00:00:00Z',
    ];
    const r = await cli(...base, '--endorsement-root-sha256', sha, '--vcpus', '4');
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/pins Google's firmware/);
    const draft = JSON.parse(r.out);
    expect(draft.snp.measurements).toEqual([fx.meta.fields.measurement]);
    expect(draft.snp.comments.measurements).toMatch(/4 vCPUs/);
    const claims = await verifyEvidence(
      { report: fx.report, vek: fx.vek, chain: [fx.ask, fx.ark] },
      { policy: parsePolicy(draft), now: fx.at, offline: true },
    );
    expect(claims.workloadPinned).toBe(true);
    // No measurement for 8 vCPUs; the root not the pinned one (Google's fingerprint by default).
    expect((await cli(...base, '--endorsement-root-sha256', sha, '--vcpus', '8')).err).toMatch(
      /ERR_INVALID_ARGUMENT: .*8 vCPUs/,
    );
    const unpinned = await cli(...base, '--vcpus', '4');
    expect(unpinned.code).toBe(1);
    expect(unpinned.err).toMatch(/ERR_EVIDENCE_CHAIN/);
    expect((await cli(...base, '--endorsement-root-sha256', sha)).code).toBe(2);
  });
});

describe('policies that pin no workload are never written', () => {
  it('finishPolicy refuses an empty draft and one of hardware fields alone', () => {
    expect(thrownCode(() => finishPolicy({}))).toBe('ERR_POLICY_INVALID');
    expect(thrownCode(() => finishPolicy({ snp: { minTcb: { snp: 8 } } }))).toBe('ERR_POLICY_INVALID');
    expect(thrownCode(() => finishPolicy({ snp: { measurements: ['00'.repeat(48)] } }))).toBe('accepted');
    // A policy pinning SEV-SNP but also admitting TDX guests unpinned.
    expect(thrownCode(() => finishPolicy({ snp: { measurements: ['00'.repeat(48)] }, tdx: {} }))).toBe(
      'ERR_POLICY_INVALID',
    );
  });

  it('the command without a source is a usage error', async () => {
    expect((await cli('policy')).code).toBe(2);
    expect((await cli('policy', '--pin-chip', '--from-measure', 'x')).code).toBe(2);
  });

  it('merging keeps every source admitted: lists united, floors lowered', () => {
    const m = mergePolicyDrafts([
      { snp: { measurements: ['aa'], minTcb: { snp: 8, tee: 1 }, comments: { measurements: 'a' } } },
      { snp: { measurements: ['bb'], minTcb: { snp: 5, tee: 2 }, comments: { measurements: 'b' } } },
    ]);
    expect(m).toEqual({
      snp: { measurements: ['aa', 'bb'], minTcb: { snp: 5, tee: 1 }, comments: { measurements: 'a; b' } },
    });
    expect(
      thrownCode(() => mergePolicyDrafts([{ snp: { allowDebug: true } }, { snp: { allowDebug: false } }])),
    ).toBe('ERR_INVALID_ARGUMENT');
  });
});

describe('policy from Azure evidence (library)', () => {
  it('pinChip on Azure TDX pins azure.tdx.ppids; claims without a verified PCK have nothing to pin', async () => {
    const fx = loadAzure('trustee__tdx-hcl-report');
    const claims = await verifyAzure(inputOf(fx), optionsOf(fx));
    if (claims.format !== 'azure-tdx') throw new Error('not Azure TDX');
    const draft = policyFromClaims(claims, { pinChip: true });
    const tdx = (draft.azure as Record<string, Record<string, unknown>>).tdx!;
    expect(tdx.ppids).toEqual([claims.ppid]);
    expect(claims.ppid).toMatch(/^[0-9a-f]{32}$/);
    expect(policyFromClaims(claims).azure).not.toHaveProperty('tdx.ppids');
    const hclOnly = parsedClaims(fx.files.get('hcl-report.bin')!);
    expect(thrownCode(() => policyFromClaims(hclOnly as Claims, { pinChip: true }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
    expect(() => policyFromClaims(hclOnly as Claims, { pinChip: true })).toThrow(/no PPID/);
    expect(() => policyFromClaims({ ...claims, ppid: '' }, { pinChip: true })).toThrow(/no PPID/);
  });

  it('pins the vTPM PCRs as the workload and the paravisor measurement as Microsoft’s', async () => {
    const fx = loadAzure('trustee__snp-evidence-v0');
    const claims = await verifyAzure(inputOf(fx), optionsOf(fx));
    if (claims.format !== 'azure-sev-snp') throw new Error('not Azure SNP');
    const draft = policyFromClaims(claims, { origin: 'hcl-report.bin' });
    const azure = draft.azure as Record<string, Record<string, unknown>>;
    expect(azure.snp!.measurements).toEqual([claims.measurement]);
    expect(String((azure.snp!.comments as Record<string, string>).measurements)).toMatch(/Microsoft/);
    const pcrs = azure.pcrs as unknown as Record<string, Record<string, string[]>>;
    expect(Object.keys(pcrs.sha256!).map(Number)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14]);
    expect(pcrs.sha256!['7']).toEqual([claims.tpm.pcrs.sha256!['7']]);
    expect(pcrs.sha256!['10']).toBeUndefined();
    expectEveryPinCommented(draft);
    // The policy parses, accepts the evidence it came from, and refuses it with one PCR value changed.
    const policy = finishPolicy(draft);
    expect((await verifyAzure(inputOf(fx), { ...optionsOf(fx), policy })).workloadPinned).toBe(true);
    const input = inputOf(fx);
    const pcr7 = input.tpm.pcrs.sha256!['7'] as string;
    const other = {
      ...input,
      tpm: { ...input.tpm, pcrs: { sha256: { ...input.tpm.pcrs.sha256, '7': changed(pcr7) } } },
    };
    expect(
      thrownCode(() =>
        appraiseClaims(
          {
            ...claims,
            tpm: { ...claims.tpm, pcrs: { sha256: { ...claims.tpm.pcrs.sha256, '7': changed(pcr7) } } },
          } as never,
          policy,
        ),
      ),
    ).toBe('ERR_EVIDENCE_POLICY');
    await expect(verifyAzure(other, { ...optionsOf(fx), policy })).rejects.toMatchObject({
      code: expect.stringMatching(/^ERR_EVIDENCE_(SIGNATURE|POLICY)$/),
    });
    // Another Azure VM (another paravisor build, other PCRs) is refused by the same policy.
    const v2 = loadAzure('trustee__snp-evidence-v2');
    await expect(verifyAzure(inputOf(v2), { ...optionsOf(v2), policy })).rejects.toMatchObject({
      code: 'ERR_EVIDENCE_POLICY',
    });
    const only = policyFromClaims(claims, { pcrs: [4, 7] });
    expect(Object.keys((only.azure as { pcrs: { sha256: object } }).pcrs.sha256)).toEqual(['4', '7']);
  });
});

describe('parsePolicy: section comments', () => {
  const m = '00'.repeat(48);
  it('accepts a comment for a field the section has, and drops it from the parsed policy', () => {
    const p = parsePolicy({
      snp: {
        measurements: [m],
        comments: { measurements: 'my build', 'minTcb.snp': 'x' },
        minTcb: { snp: 1 },
      },
    });
    expect(p).toEqual({ snp: { measurements: [m], minTcb: { snp: 1 } } });
  });
  it('refuses a comment naming a field the section lacks, or an unknown field, or not a string', () => {
    const bad = [
      { snp: { measurements: [m], comments: { hostData: 'no such pin here' } } },
      { snp: { measurements: [m], comments: { measurment: 'misspelt' } } },
      { snp: { measurements: [m], comments: { measurements: 1 } } },
      { snp: { measurements: [m], comments: ['measurements'] } },
      { snp: { measurements: [m], comments: { comments: 'x' } } },
    ];
    for (const b of bad)
      expect(
        thrownCode(() => parsePolicy(b)),
        JSON.stringify(b),
      ).toBe('ERR_POLICY_INVALID');
  });
  it('the boot and gce sections take comments the same way', () => {
    const boot = { secureBoot: true, kernelCmdlines: ['ro'] };
    expect(
      parsePolicy({ boot: { ...boot, comments: { secureBoot: 'on', 'kernelCmdlines.0': 'x' } } }).boot,
    ).toEqual(boot);
    expect(thrownCode(() => parsePolicy({ boot: { ...boot, comments: { efiAppDigests: 'absent' } } }))).toBe(
      'ERR_POLICY_INVALID',
    );
    expect(thrownCode(() => parsePolicy({ boot: { ...boot, comments: { secureBoot: false } } }))).toBe(
      'ERR_POLICY_INVALID',
    );
    expect(parsePolicy({ gce: { zones: ['z'], comments: { zones: 'where' } } }).gce).toEqual({
      zones: ['z'],
    });
    expect(thrownCode(() => parsePolicy({ gce: { zones: ['z'], comments: { projectIds: 'absent' } } }))).toBe(
      'ERR_POLICY_INVALID',
    );
  });
});

describe('parsePolicy: comments, property', () => {
  it('any comments object is accepted exactly when each key names a present field and each value is a string', () => {
    const m = '00'.repeat(48);
    const key = fc.oneof(
      fc.constantFrom(
        'measurements',
        'minTcb',
        'minTcb.snp',
        'hostData',
        'comments',
        '__proto__',
        'constructor',
        '',
      ),
      fc.string({ maxLength: 12 }),
    );
    const value = fc.oneof(
      fc.string({ maxLength: 8 }),
      fc.integer(),
      fc.constant(null),
      fc.array(fc.string(), { maxLength: 2 }),
    );
    fc.assert(
      fc.property(fc.dictionary(key, value, { maxKeys: 5 }), (comments) => {
        const input = JSON.parse(
          JSON.stringify({ snp: { measurements: [m], minTcb: { snp: 1 }, comments } }),
        );
        const entries = Object.entries(input.snp.comments as Record<string, unknown>);
        const ok = entries.every(
          ([k, v]) => typeof v === 'string' && ['measurements', 'minTcb'].includes(k.split('.')[0]!),
        );
        let got: unknown;
        try {
          got = parsePolicy(input);
        } catch (err) {
          expect(err).toBeInstanceOf(AttestationError);
          expect((err as AttestationError).code).toBe('ERR_POLICY_INVALID');
          expect(ok).toBe(false);
          return;
        }
        expect(ok).toBe(true);
        expect(got).toEqual({ snp: { measurements: [m], minTcb: { snp: 1 } } });
      }),
      { numRuns: 300 },
    );
  });
});
