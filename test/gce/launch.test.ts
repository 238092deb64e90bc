/**
 * Google launch endorsements carried in evidence: from the SNP certificate table (GUID
 * 9f4116cd-…) or a file through configfsTsm(), over the CMW collection, verified by the Verifier
 * under its endorsement root, compared with the report's MEASUREMENT (SEV-SNP, per vCPU count) or
 * MRTD (TDX), and required by the policy's `endorsement` section. The endorsements are minted by
 * a test root in Google's VMLaunchEndorsement format (test/gce/mint.ts): no real one can be shipped.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeCmw, encodeCmw, REPORT_MEDIA_TYPES } from '../../src/channel/cmw.js';
import { GCE_ENDORSEMENT_CERT_TABLE_GUID } from '../../src/evidence/gce/endorsement.js';
import { type Policy, parsePolicy } from '../../src/evidence/policy.js';
import { configfsTsm } from '../../src/evidence/providers/configfs-tsm.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { simulatedSnp } from '../../src/evidence/providers/simulated-snp.js';
import { simulatedTdx } from '../../src/evidence/providers/simulated-tdx.js';
import type { EvidenceInput, SnpClaims, TdxClaims } from '../../src/evidence/types.js';
import { createVerifier } from '../../src/evidence/verifier.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { explainClaims } from '../../src/explain/explain.js';
import { finishPolicy, policyFromClaims } from '../../src/explain/policy-builder.js';
import { tempDir } from '../helpers/cli.js';
import { thrownCode } from '../helpers/codes.js';
import { createFakeTsm, type FakeTsm, withRoot } from '../providers/fake-tsm.js';
import { errorOf } from '../tdx/fixtures.js';
import { endorsement, golden, makeRoot, makeSigner, pssSign } from './mint.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const RD = new Uint8Array(64).fill(0x42);
const M4 = new Uint8Array(48).fill(0x44);
const M8 = new Uint8Array(48).fill(0x88);
const MRTD = new Uint8Array(48).fill(0x16);
const FIRMWARE = new Uint8Array(48).fill(0xd1);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

const root = makeRoot();
const signer = makeSigner(root);
const endorsementRoot = {
  certificate: root.der,
  sha256: createHash('sha256').update(root.der).digest('hex'),
};
function mint(o: { snp?: Array<[number, Uint8Array]>; tdx?: Uint8Array; svn?: number } = {}): Uint8Array {
  const signed = golden({
    cert: signer.der,
    digest: FIRMWARE,
    snp: {
      svn: o.svn ?? 3,
      measurements: o.snp ?? [
        [4, M4],
        [8, M8],
      ],
    },
    tdx: { svn: o.svn ?? 3, measurements: [{ ramGib: 16, earlyAccept: false, mrtd: o.tdx ?? MRTD }] },
  });
  return endorsement(signed, pssSign(signed, signer.key));
}
const GOOD = mint();

const dir = tempDir('ac-launch-');
const fakes: FakeTsm[] = [];
afterEach(() => {
  for (const f of fakes.splice(0)) f.cleanup();
});

async function snpEvidence(bytes: Uint8Array | undefined = GOOD, measurement = M8): Promise<EvidenceInput> {
  const f = await withRoot(
    createFakeTsm({
      platform: simulatedSnp({ measurement }),
      ...(bytes ? { extraEntries: [{ guid: GCE_ENDORSEMENT_CERT_TABLE_GUID, data: bytes }] } : {}),
    }),
  );
  fakes.push(f);
  return (await configfsTsm({ root: f.root, fs: f.fs })).getEvidence(RD);
}

function verify(input: EvidenceInput, o: { policy?: Policy; root?: typeof endorsementRoot | null } = {}) {
  return verifyEvidence(input, {
    now: NOW,
    trustAnchors: simulated.trustAnchors(),
    offline: true,
    ...(o.root === null ? {} : { endorsementRoot: o.root ?? endorsementRoot }),
    ...(o.policy ? { policy: o.policy } : {}),
  });
}

describe('the endorsement from the SNP certificate table', () => {
  it('configfsTsm() carries it; the CMW collection carries it; the verifier matches the vCPU count', async () => {
    const ev = await snpEvidence();
    expect(ev.launchEndorsement).toEqual(GOOD);
    const cmw = encodeCmw(ev, 'sev-snp');
    expect(cmw['launch-endorsement']?.[0]).toBe('application/vnd.attested-channel.gce-launch-endorsement');
    const decoded = decodeCmw(JSON.parse(JSON.stringify(cmw)), REPORT_MEDIA_TYPES).input;
    expect(decoded.launchEndorsement).toEqual(GOOD);
    const c = (await verify(decoded)) as SnpClaims;
    expect(c.endorsement).toMatchObject({
      verified: true,
      matches: true,
      vcpus: 8,
      svsm: false,
      svn: 3,
      firmwareSha384: hex(FIRMWARE),
      clSpec: '123456',
      rootSha256: endorsementRoot.sha256,
    });
    expect(c.endorsement!.verified && c.endorsement!.signer.subject).toBe('GCE-uefi-signer (test)');
    // explain names the firmware from the endorsement the evidence carried.
    const image = explainClaims(c).measurement.knownImage;
    expect(image?.owner).toBe('Google');
    expect(image?.image).toMatch(/for 8 vCPUs/);
    expect(
      explainClaims({ ...c, endorsement: { ...c.endorsement!, matches: false } } as SnpClaims).measurement
        .knownImage,
    ).toBeNull();
  });

  it('without one there is no endorsement claim; without a root it is reported unverified', async () => {
    expect(((await verify(await snpEvidence(null as never))) as SnpClaims).endorsement).toBeUndefined();
    const c = (await verify(await snpEvidence(), { root: null })) as SnpClaims;
    expect(c.endorsement).toEqual({ verified: false, reason: expect.stringMatching(/no endorsement root/) });
  });

  it('another firmware’s endorsement (no vCPU count gives this MEASUREMENT) does not match', async () => {
    const c = (await verify(await snpEvidence(GOOD, new Uint8Array(48).fill(0x99)))) as SnpClaims;
    expect(c.endorsement).toMatchObject({ verified: true, matches: false, vcpus: null });
  });

  it('a changed signature, a changed golden measurement, an endorsement under another root: refused', async () => {
    const sig = new Uint8Array(GOOD);
    sig[sig.length - 1]! ^= 1;
    expect((await errorOf(async () => verify(await snpEvidence(sig)))).code).toBe('ERR_EVIDENCE_SIGNATURE');
    // A measurement byte inside the signed part.
    const at = Buffer.from(GOOD).indexOf(Buffer.from(M8));
    const body = new Uint8Array(GOOD);
    body[at]! ^= 1;
    expect((await errorOf(async () => verify(await snpEvidence(body)))).code).toBe('ERR_EVIDENCE_SIGNATURE');
    const other = makeRoot();
    const otherRoot = {
      certificate: other.der,
      sha256: createHash('sha256').update(other.der).digest('hex'),
    };
    expect((await errorOf(async () => verify(await snpEvidence(), { root: otherRoot }))).code).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
    // The root must be the pinned one: Google's fingerprint unless replaced.
    expect(
      (await errorOf(async () => verify(await snpEvidence(), { root: { certificate: root.der } as never })))
        .code,
    ).toBe('ERR_EVIDENCE_CHAIN');
    const garbage = new Uint8Array(Buffer.from('not a protobuf'));
    expect((await errorOf(async () => verify(await snpEvidence(garbage)))).code).toBe(
      'ERR_EVIDENCE_MALFORMED',
    );
  });

  it('the signer must be valid at now', async () => {
    const ev = await snpEvidence();
    const err = await errorOf(() =>
      verifyEvidence(ev, {
        now: new Date('2030-01-01T00:00:00Z'),
        trustAnchors: simulated.trustAnchors(),
        offline: true,
        endorsementRoot,
        check: () => true,
      }),
    );
    // The simulator's own chain may expire first; either way the evidence is refused on a chain.
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
  });
});

describe('policy endorsement', () => {
  it('{} requires a verified endorsement that matches: passes; none, unverified or not matching is refused', async () => {
    const policy = { snp: {}, endorsement: {} };
    await verify(await snpEvidence(), { policy });
    // Each refusal is its own check (details.reason, message): removing one lets the next refuse
    // instead, with another reason.
    for (const [ev, root, reason, message] of [
      [await snpEvidence(null as never), undefined, 'missing', /carries none/],
      [await snpEvidence(), null, 'unverified', /was not verified: no endorsement root/],
      [await snpEvidence(GOOD, new Uint8Array(48).fill(0x99)), undefined, 'not-listed', /does not list/],
    ] as const) {
      const err = await errorOf(() => verify(ev, { policy, ...(root === null ? { root: null } : {}) }));
      expect(err.code).toBe('ERR_EVIDENCE_POLICY');
      expect(err.details).toEqual({ field: 'endorsement', reason });
      expect(err.message).toMatch(message);
    }
  });

  it('firmwareSha384s and minSvn narrow it', async () => {
    const ev = await snpEvidence();
    await verify(ev, { policy: { endorsement: { firmwareSha384s: [hex(FIRMWARE)], minSvn: 3 } } });
    const fw = await errorOf(() =>
      verify(ev, { policy: { endorsement: { firmwareSha384s: ['ee'.repeat(48)] } } }),
    );
    expect(fw.details.field).toBe('endorsement.firmwareSha384s');
    const svn = await errorOf(() => verify(ev, { policy: { endorsement: { minSvn: 4 } } }));
    expect(svn.details.field).toBe('endorsement.minSvn');
  });

  it('policyFromClaims() requires the same endorsed firmware again; the policy accepts that evidence only', async () => {
    const ev = await snpEvidence();
    const claims = (await verify(ev)) as SnpClaims;
    const draft = policyFromClaims(claims, { origin: 'e' });
    expect(draft.endorsement).toMatchObject({ firmwareSha384s: [hex(FIRMWARE)] });
    const policy = finishPolicy(draft);
    await verify(ev, { policy });
    // The same report without its endorsement, or with another firmware's, is refused.
    const { launchEndorsement: _e, ...bare } = ev;
    expect((await errorOf(() => verify(bare, { policy }))).details.field).toBe('endorsement');
    const other = (() => {
      const signed = golden({
        cert: signer.der,
        digest: new Uint8Array(48).fill(0xd2),
        snp: { svn: 3, measurements: [[8, M8]] },
      });
      return endorsement(signed, pssSign(signed, signer.key));
    })();
    expect((await errorOf(() => verify({ ...ev, launchEndorsement: other }, { policy }))).details.field).toBe(
      'endorsement.firmwareSha384s',
    );
    // Without an endorsement in the claims no section is written.
    expect(policyFromClaims((await verify(bare)) as SnpClaims).endorsement).toBeUndefined();
  });

  it('parsePolicy checks the section', () => {
    expect(parsePolicy({ endorsement: { comments: { minSvn: 'x' }, minSvn: 1 } }).endorsement).toEqual({
      minSvn: 1,
    });
    for (const bad of [
      { endorsement: 1 },
      { endorsement: { require: true } },
      { endorsement: { firmwareSha384s: ['ab'] } },
      { endorsement: { firmwareSha384s: [] } },
      { endorsement: { minSvn: -1 } },
    ])
      expect(thrownCode(() => parsePolicy(bad))).toBe('ERR_POLICY_INVALID');
  });
});

describe('TDX: the endorsement from a file, matched by MRTD', () => {
  async function tdxEvidence(mrTd: Uint8Array): Promise<EvidenceInput> {
    const path = join(dir, 'endorsement.binarypb');
    writeFileSync(path, GOOD);
    const platform = simulatedTdx({ now: NOW, mrTd });
    const f = await withRoot(createFakeTsm({ platform }));
    fakes.push(f);
    const provider = await configfsTsm({ root: f.root, fs: f.fs, ccel: false, launchEndorsement: path });
    const ev = await provider.getEvidence(RD);
    // configfs gives the quote alone; the collateral is the simulated platform's.
    const { collateral } = await platform.getEvidence(RD);
    return { ...ev, ...(collateral ? { collateral } : {}) };
  }

  it('the MRTD listed for 16 GiB matches; another MRTD does not and the section refuses it', async () => {
    const ev = await tdxEvidence(MRTD);
    expect(ev.launchEndorsement).toEqual(GOOD);
    const c = (await verify(ev, { policy: { tdx: {}, endorsement: {} } })) as TdxClaims;
    expect(c.endorsement).toMatchObject({ verified: true, matches: true, ramGib: 16, earlyAccept: false });
    const other = await tdxEvidence(new Uint8Array(48).fill(0x17));
    const err = await errorOf(() => verify(other, { policy: { endorsement: {} } }));
    expect(err.details.field).toBe('endorsement');
  });

  it('a missing file is ERR_PROVIDER_FAILED', async () => {
    const f = await withRoot(createFakeTsm({ platform: simulatedTdx({ now: NOW }) }));
    fakes.push(f);
    const p = await configfsTsm({
      root: f.root,
      fs: f.fs,
      ccel: false,
      launchEndorsement: join(dir, 'none'),
    });
    await expect(p.getEvidence(RD)).rejects.toMatchObject({ code: 'ERR_PROVIDER_FAILED' });
  });
});

describe('endorsementRoot options', () => {
  it('a Verifier owns one; a call may replace it; malformed ones are ERR_INVALID_ARGUMENT', async () => {
    const ev = await snpEvidence();
    const v = createVerifier({ trustAnchors: simulated.trustAnchors(), offline: true, endorsementRoot });
    expect(((await v.verify(ev, { now: NOW })) as SnpClaims).endorsement?.verified).toBe(true);
    const plain = createVerifier({ trustAnchors: simulated.trustAnchors(), offline: true });
    expect(((await plain.verify(ev, { now: NOW })) as SnpClaims).endorsement?.verified).toBe(false);
    expect(((await plain.verify(ev, { now: NOW, endorsementRoot })) as SnpClaims).endorsement?.verified).toBe(
      true,
    );
    for (const bad of [1, {}, { certificate: 5 }, { certificate: root.der, sha256: 'xyz' }])
      expect(thrownCode(() => createVerifier({ endorsementRoot: bad as never }))).toBe(
        'ERR_INVALID_ARGUMENT',
      );
    expect(
      (await errorOf(() => plain.verify(ev, { now: NOW, endorsementRoot: { certificate: 1 } as never })))
        .code,
    ).toBe('ERR_INVALID_ARGUMENT');
    expect(
      (await errorOf(() => plain.verify({ ...ev, launchEndorsement: 'x' as never }, { now: NOW }))).code,
    ).toBe('ERR_INVALID_ARGUMENT');
  });
});

describe('over an attested channel', () => {
  it('the server’s configfsTsm() sends the endorsement; a client whose policy requires it connects, and without it is refused', async () => {
    const { attestedConnect } = await import('../../src/channel/connect.js');
    const { createAttestedServer } = await import('../../src/channel/server.js');
    const { closeServer, listen } = await import('../channel/helpers.js');
    const withIt = await withRoot(
      createFakeTsm({
        platform: simulatedSnp({ measurement: M8 }),
        extraEntries: [{ guid: GCE_ENDORSEMENT_CERT_TABLE_GUID, data: GOOD }],
      }),
    );
    const without = await withRoot(createFakeTsm({ platform: simulatedSnp({ measurement: M8 }) }));
    fakes.push(withIt, without);
    const verifier = createVerifier({ trustAnchors: simulated.trustAnchors(), endorsementRoot });
    const policy = { snp: { measurements: [hex(M8)] }, endorsement: { firmwareSha384s: [hex(FIRMWARE)] } };
    for (const [fake, ok] of [
      [withIt, true],
      [without, false],
    ] as const) {
      const server = createAttestedServer(
        { evidence: await configfsTsm({ root: fake.root, fs: fake.fs }) },
        (ch) => {
          ch.on('error', () => {});
          ch.end();
        },
      );
      server.on('error', () => {});
      const port = await listen(server);
      try {
        const connecting = attestedConnect({ host: '127.0.0.1', port, verify: { verifier, policy } });
        if (ok) {
          const ch = await connecting;
          const peer = ch.peer as SnpClaims;
          expect(peer.endorsement).toMatchObject({ verified: true, matches: true, vcpus: 8 });
          ch.destroy();
        } else {
          await expect(connecting).rejects.toMatchObject({ code: 'ERR_EVIDENCE_POLICY' });
        }
      } finally {
        await closeServer(server);
      }
    }
  });
});
