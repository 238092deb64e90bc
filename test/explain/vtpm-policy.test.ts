import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appraiseBoot } from '../../src/evidence/boot.js';
import { appraiseGce, type GceVtpmClaims, verifyGceVtpm } from '../../src/evidence/gce/vtpm.js';
import { parsePolicy } from '../../src/evidence/policy.js';
import {
  finishPolicy,
  type PolicyDraft,
  policyFromClaims,
  policyFromVtpmClaims,
} from '../../src/explain/policy-builder.js';
import { fixture } from '../eventlog/fixtures.js';
import { AT, file, GCE, input, LOG } from '../gce/cos85.js';
import { cli, tempDir } from '../helpers/cli.js';
import { thrownCode } from '../helpers/codes.js';

const meta = fixture('go-tpm-tools__gce-cos-85-nonce9009').meta;
const dir = tempDir('ac-vtpm-policy-');

const vtpmArgs = (log = true) => [
  '--tpm-quote',
  join(GCE, 'quote-sha256.msg'),
  '--tpm-signature',
  join(GCE, 'quote-sha256.sig'),
  '--pcrs',
  join(GCE, 'pcrs.json'),
  '--ak-cert',
  join(GCE, 'ak-cert.der'),
  ...(log ? ['--event-log', LOG] : []),
  '--nonce',
  '9009',
  '--at',
  AT.toISOString(),
];

/** Every field of the gce and boot sections has a comment. */
function expectCommented(draft: PolicyDraft): void {
  for (const name of ['gce', 'boot']) {
    const s = draft[name] as Record<string, unknown>;
    const comments = s.comments as Record<string, string>;
    for (const k of Object.keys(s))
      if (k !== 'comments') expect(typeof comments[k], `${name}.${k}`).toBe('string');
  }
}

const flip = (v: string) => v.slice(0, -1) + (v.endsWith('0') ? '1' : '0');

describe('policy --tpm-quote (Google Cloud vTPM evidence)', () => {
  it('pins the instance and the boot; accepts that evidence, refuses each pinned field changed', async () => {
    const r = await cli('policy', ...vtpmArgs());
    expect(r.code, r.err).toBe(0);
    const draft = JSON.parse(r.out) as PolicyDraft;
    expectCommented(draft);
    const policy = parsePolicy(draft);
    expect(policy.gce).toEqual({
      projectIds: ['google.com:wuale-gcp-testing'],
      instanceIds: [expect.stringMatching(/^[0-9]+$/)],
      zones: ['us-central1-a'],
    });
    const pcrs = policy.boot!.pcrs!.sha256!;
    expect(Object.keys(pcrs).sort((a, b) => Number(a) - Number(b))).toEqual(
      Object.keys(meta.pcrs!.sha256!)
        .filter((i) => [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14].includes(Number(i)))
        .sort((a, b) => Number(a) - Number(b)),
    );
    for (const [i, v] of Object.entries(pcrs)) expect(v).toEqual([meta.pcrs!.sha256![i]]);
    expect(policy.boot!.secureBoot).toBe(true);
    expect(policy.boot!.kernelCmdlines).toHaveLength(1);

    // The same evidence passes it (through verify, as a user would run it).
    const ok = await cli(
      'verify',
      ...vtpmArgs(),
      '--policy',
      await (async () => {
        const p = join(dir, 'vtpm-policy.json');
        (await import('node:fs')).writeFileSync(p, r.out);
        return p;
      })(),
      '--json',
    );
    expect(ok.code, ok.out).toBe(0);
    expect(JSON.parse(ok.out).workloadPinned).toBe(true);

    // One field changed at a time: each pin refuses.
    const claims = verifyGceVtpm(input(), { now: AT, policy });
    const gceChanged: Array<[string, Partial<GceVtpmClaims['gce']>]> = [
      ['gce.projectIds', { projectId: 'another-project' }],
      ['gce.instanceIds', { instanceId: `${claims.gce.instanceId}1` }],
      ['gce.zones', { zone: 'europe-west4-a' }],
    ];
    for (const [field, change] of gceChanged) {
      expect(
        thrownCode(() => appraiseGce({ ...claims.gce, ...change }, policy.gce)),
        field,
      ).toBe('ERR_EVIDENCE_POLICY');
    }
    const boot = claims.boot!;
    for (const i of Object.keys(pcrs)) {
      const changed = {
        ...boot,
        pcrs: { sha256: { ...boot.pcrs!.sha256, [i]: flip(boot.pcrs!.sha256![i]!) } },
      };
      expect(
        thrownCode(() => appraiseBoot(changed, policy.boot)),
        `PCR${i}`,
      ).toBe('ERR_EVIDENCE_POLICY');
    }
    expect(thrownCode(() => appraiseBoot({ ...boot, secureBoot: false }, policy.boot))).toBe(
      'ERR_EVIDENCE_POLICY',
    );
    expect(
      thrownCode(() => appraiseBoot({ ...boot, kernelCmdline: `${boot.kernelCmdline} x` }, policy.boot)),
    ).toBe('ERR_EVIDENCE_POLICY');
    expect(thrownCode(() => appraiseBoot(boot, policy.boot))).toBe('accepted');
    expect(thrownCode(() => appraiseGce(claims.gce, policy.gce))).toBe('accepted');
  });

  it('--pin-pcrs chooses the PCRs', async () => {
    const r = await cli('policy', ...vtpmArgs(), '--pin-pcrs', '4,7');
    expect(r.code, r.err).toBe(0);
    expect(Object.keys(parsePolicy(r.out).boot!.pcrs!.sha256!)).toEqual(['4', '7']);
  });

  it('without --event-log only the instance is known: refused as pinning no workload', async () => {
    const r = await cli('policy', ...vtpmArgs(false));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/ERR_POLICY_INVALID/);
    expect(r.err).toMatch(/no --event-log/);
  });

  it('a tampered quote is refused before any policy is written', async () => {
    const bad = new Uint8Array(file('quote-sha256.sig'));
    bad[bad.length - 1]! ^= 1;
    const p = join(dir, 'bad.sig');
    (await import('node:fs')).writeFileSync(p, bad);
    const args = vtpmArgs();
    args[args.indexOf('--tpm-signature') + 1] = p;
    const r = await cli('policy', ...args);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/ERR_EVIDENCE_/);
  });
});

describe('policy builder on vTPM claims (library)', () => {
  it('policyFromVtpmClaims: gce and boot pins; without a log finishPolicy refuses', () => {
    const claims = verifyGceVtpm(input(), { now: AT });
    const draft = policyFromVtpmClaims(claims, { origin: 'q' });
    expect(Object.keys(draft).sort()).toEqual(['boot', 'gce']);
    finishPolicy(draft);
    const noLog = policyFromVtpmClaims(verifyGceVtpm(input(false), { now: AT }));
    expect(Object.keys(noLog)).toEqual(['gce']);
    expect(thrownCode(() => finishPolicy(noLog))).toBe('ERR_POLICY_INVALID');
    expect(thrownCode(() => policyFromVtpmClaims({} as never))).toBe('ERR_INVALID_ARGUMENT');
    expect(thrownCode(() => policyFromVtpmClaims(claims, { pcrs: [24] }))).toBe('ERR_INVALID_ARGUMENT');
  });

  it('policyFromClaims on hardware claims with claims.vtpm adds the instance and the vTPM log’s pins', () => {
    const vtpm = verifyGceVtpm(input(), { now: AT });
    const hw = {
      format: 'sev-snp',
      reportData: '00'.repeat(64),
      revocation: { checked: false, source: 'none', crls: [] },
      measurement: 'ab'.repeat(48),
      policy: { debug: false, migrateMa: false },
      reportedTcb: { bootloader: 1, tee: 1, snp: 1, microcode: 1, raw: '00'.repeat(8) },
      hostData: '00'.repeat(32),
      idKeyDigest: '00'.repeat(48),
      vmpl: 0,
      signer: 'vcek',
      guestSvn: 0,
      chipId: '00'.repeat(64),
      vtpm,
    };
    const draft = policyFromClaims(hw as never);
    expect((draft.gce as Record<string, unknown>).zones).toEqual(['us-central1-a']);
    const boot = draft.boot as Record<string, unknown>;
    expect(boot.pcrs).toBeDefined();
    expect(boot.secureBoot).toBe(true);
    expect(thrownCode(() => policyFromClaims({ ...hw, vtpm: { format: 'x' } } as never))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });
});
