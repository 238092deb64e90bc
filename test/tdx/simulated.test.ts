/** The whole TDX path through the simulated platform: every TCB status, revocation, windows, policy bits. */
import { describe, expect, it } from 'vitest';
import type { Policy } from '../../src/evidence/policy.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import type { EvidenceInput, TdxClaims, TdxCollateral, VerifyOptions } from '../../src/evidence/types.js';
import { TDX_LEVEL_STATUSES } from '../../src/evidence/types.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { errorOf } from './fixtures.js';

const NOW = new Date('2026-01-15T00:00:00Z');
const DAY = 86_400_000;
const RD = new Uint8Array(64).fill(7);
const anchors = simulated.trustAnchors();
const STATUSES = TDX_LEVEL_STATUSES;

type SimOptions = Parameters<typeof simulated.tdx>[0];
async function evidence(o: SimOptions = {}): Promise<EvidenceInput> {
  return simulated.tdx({ now: NOW, ...o }).getEvidence(RD);
}
function verify(input: EvidenceInput, o: Partial<VerifyOptions> = {}) {
  return verifyEvidence(input, {
    now: NOW,
    trustAnchors: anchors,
    offline: true,
    ...o,
  }) as Promise<TdxClaims>;
}

describe('simulated TDX: every TCB status, v4 and v5', () => {
  it.each([4, 5] as const)('v%s UpToDate passes the default policy, simulated: true', async (version) => {
    const c = await verify(await evidence({ version }));
    expect(c).toMatchObject({
      format: 'tdx',
      simulated: true,
      version,
      tcbStatus: 'UpToDate',
      advisoryIds: [],
    });
    expect(c.reportData).toBe('07'.repeat(64));
    expect(c.mrTd).toBe(simulated.defaults.tdxMrTd);
    expect(c.fmspc).toBe(simulated.defaults.tdxPlatform.fmspc);
    if (version === 5) {
      expect(c.teeTcbSvn2).toBe(c.teeTcbSvn);
      expect(c.mrServiceTd).toBe('00'.repeat(48));
    } else expect(c.teeTcbSvn2).toBeUndefined();
  });

  const cases = STATUSES.filter((s) => s !== 'UpToDate').flatMap((s) => [
    [s, 4],
    [s, 5],
  ]) as Array<[(typeof STATUSES)[number], 4 | 5]>;
  it.each(cases)(
    '%s (v%s): refused by default with status and advisories, accepted when listed',
    async (status, version) => {
      const ev = await evidence({ tcbStatus: status, version });
      const err = await errorOf(() => verify(ev));
      expect(err.code).toBe('ERR_EVIDENCE_TCB');
      expect(err.details.tcbStatus).toBe(status);
      expect((err.details.advisoryIds as string[]).length).toBeGreaterThan(0);
      const c = await verify(ev, { policy: { tdx: { acceptTcbStatus: [status] } } });
      expect(c.tcbStatus).toBe(status);
      expect(c.advisoryIds).toEqual(err.details.advisoryIds);
    },
  );

  it('NoMatchingTcbLevel is refused whatever the policy accepts', async () => {
    const ev = await evidence({ tcbStatus: 'NoMatchingTcbLevel' });
    const err = await errorOf(() => verify(ev, { policy: { tdx: { acceptTcbStatus: [...STATUSES] } } }));
    expect(err.code).toBe('ERR_EVIDENCE_TCB');
    expect(err.details).toEqual({ tcbStatus: 'NoMatchingTcbLevel', advisoryIds: [] });
  });

  it('the TDX components are compared from index 2 when TEE_TCB_SVN[1] > 0 and from 0 otherwise', async () => {
    // Platform SVN 06 01 03…: the collateral's levels carry the same TDX components. A quote whose
    // module SVN (byte 0) is lower than the level's still matches when byte 1 > 0 (the module
    // identity judges byte 0), but not with a TDX 1.0 module (byte 1 = 0).
    const collateral = simulated.tdxCollateral({ now: NOW, teeTcbSvn: '06010300000000000000000000000000' });
    const lowModule = await evidence({ teeTcbSvn: '06010300000000000000000000000000', collateral: false });
    await expect(verify({ ...lowModule, collateral })).resolves.toMatchObject({ tcbStatus: 'UpToDate' });
    const v10 = simulated.tdxCollateral({ now: NOW, teeTcbSvn: '06000300000000000000000000000000' });
    const below = await evidence({ teeTcbSvn: '05000300000000000000000000000000', collateral: false });
    const err = await errorOf(() => verify({ ...below, collateral: v10 }));
    expect(err.details.tcbStatus).toBe('NoMatchingTcbLevel');
    const microBelow = await evidence({ teeTcbSvn: '06010200000000000000000000000000', collateral: false });
    expect((await errorOf(() => verify({ ...microBelow, collateral }))).details.tcbStatus).toBe(
      'NoMatchingTcbLevel',
    );
  });

  it('a module version without a module identity in the TCB info is a TDX module mismatch', async () => {
    const collateral = simulated.tdxCollateral({ now: NOW, teeTcbSvn: '06010300000000000000000000000000' });
    const other = await evidence({ teeTcbSvn: '06020300000000000000000000000000', collateral: false });
    const err = await errorOf(() => verify({ ...other, collateral }));
    expect(err.code).toBe('ERR_EVIDENCE_TCB');
    expect(err.details.tcbStatus).toBe('TdxModuleMismatch');
  });

  it('the module identity level is matched on TEE_TCB_SVN[0]', async () => {
    const collateral = simulated.tdxCollateral({ now: NOW, teeTcbSvn: '06010300000000000000000000000000' });
    const older = await evidence({ teeTcbSvn: '05010300000000000000000000000000', collateral: false });
    const err = await errorOf(() => verify({ ...older, collateral }));
    expect(err.details.tcbStatus).toBe('NoMatchingTcbLevel');
  });
});

describe('simulated TDX: trust and revocation', () => {
  it('refused under the built-in Intel root', async () => {
    const ev = await evidence();
    const err = await errorOf(() => verifyEvidence(ev, { now: NOW }));
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    expect(err.message).toMatch(/not a trusted Intel root/);
  });
  it.each([
    ['pck', /PCK certificate .*revoked/],
    ['platform-ca', /PCK Platform CA.*revoked/],
    ['tcb-signing', /TCB Signing.*revoked/],
  ] as const)('a revoked %s is refused', async (which, message) => {
    const err = await errorOf(async () => verify(await evidence({ revoked: [which] })));
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    expect(err.message).toMatch(message);
  });
  it('the same quote with unrevoked collateral passes (control)', async () => {
    await expect(verify(await evidence())).resolves.toMatchObject({ tcbStatus: 'UpToDate' });
  });
});

describe('simulated TDX: each collateral window on its own', () => {
  // Collateral issued at T1 is valid [T1 − 1 day, T1 + 30 days]; at T2 = T1 + 20 days, [T2 − 1 day, T2 + 30 days].
  const T1 = NOW;
  const T2 = new Date(NOW.getTime() + 20 * DAY);
  const c1 = simulated.tdxCollateral({ now: T1 });
  const c2 = simulated.tdxCollateral({ now: T2 });
  const items: Array<[string, Array<keyof TdxCollateral>]> = [
    ['TCB info', ['tcb_info', 'tcb_info_signature']],
    ['QE identity', ['qe_identity', 'qe_identity_signature']],
    ['PCK CRL', ['pck_crl']],
    ['root CA CRL', ['root_ca_crl']],
  ];
  const mix = (base: TdxCollateral, from: TdxCollateral, keys: Array<keyof TdxCollateral>): TdxCollateral => {
    const out = { ...base };
    for (const k of keys) out[k] = from[k];
    return out;
  };
  it.each(items)(
    '%s: one second after its nextUpdate is refused, at nextUpdate accepted',
    async (what, keys) => {
      const ev = await evidence({ collateral: false });
      const collateral = mix(c2, c1, keys);
      const end = new Date(T1.getTime() + 30 * DAY);
      await expect(verify({ ...ev, collateral }, { now: end })).resolves.toBeTruthy();
      const err = await errorOf(() => verify({ ...ev, collateral }, { now: new Date(end.getTime() + 1000) }));
      // Present but out of date: a refusal (issue 15 item 2), not unavailability.
      expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
      expect(err.message).toMatch(/expired/);
      expect(err.message.toLowerCase()).toContain(what.split(' ')[0]!.toLowerCase());
    },
  );
  it.each(items)(
    '%s: one second before its issueDate/thisUpdate is refused, at it accepted',
    async (what, keys) => {
      const ev = await evidence({ collateral: false });
      const collateral = mix(c1, c2, keys);
      const start = new Date(T2.getTime() - DAY);
      await expect(verify({ ...ev, collateral }, { now: start })).resolves.toBeTruthy();
      const err = await errorOf(() =>
        verify({ ...ev, collateral }, { now: new Date(start.getTime() - 1000) }),
      );
      expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
      expect(err.message).toMatch(/not valid before/);
      expect(err.message.toLowerCase()).toContain(what.split(' ')[0]!.toLowerCase());
    },
  );
});

describe('simulated TDX: policy bits', () => {
  const expectPolicy = async (ev: EvidenceInput, field: string, policy: Policy = {}) => {
    const err = await errorOf(() => verify(ev, { policy }));
    expect(err.code).toBe('ERR_EVIDENCE_POLICY');
    expect(err.details.field).toBe(field);
  };
  it('tdx.allowDebug (default false)', async () => {
    const ev = await evidence({ tdAttributes: '0100001000000000' });
    await expectPolicy(ev, 'tdx.allowDebug');
    await expectPolicy(ev, 'tdx.allowDebug', { tdx: { allowDebug: false } });
    const c = await verify(ev, { policy: { tdx: { allowDebug: true } } });
    expect(c.tdAttributes.debug).toBe(true);
  });
  it('tdx.requireSeptVeDisable (default true)', async () => {
    const ev = await evidence({ tdAttributes: '0000000000000000' });
    await expectPolicy(ev, 'tdx.requireSeptVeDisable');
    const c = await verify(ev, { policy: { tdx: { requireSeptVeDisable: false } } });
    expect(c.tdAttributes.septVeDisable).toBe(false);
  });
  it('tdx.allowServiceTd (default false): a bound service TD in a v5 quote', async () => {
    const ev = await evidence({ version: 5, mrServiceTd: 'ab'.repeat(48) });
    await expectPolicy(ev, 'tdx.allowServiceTd');
    const c = await verify(ev, { policy: { tdx: { allowServiceTd: true } } });
    expect(c.mrServiceTd).toBe('ab'.repeat(48));
  });
  it('measurement lists: mrTd and the RTMRs of the simulated TD', async () => {
    const rtmrs = ['11', '22', '33', '44'].map((b) => b.repeat(48));
    const ev = await evidence({ rtmrs });
    const c = await verify(ev, { policy: { tdx: { rtmr0: [rtmrs[0]!], rtmr3: [rtmrs[3]!] } } });
    expect([c.rtmr0, c.rtmr1, c.rtmr2, c.rtmr3]).toEqual(rtmrs);
    await expectPolicy(ev, 'tdx.rtmr2', { tdx: { rtmr2: [rtmrs[1]!] } });
  });
  it('TDATTRIBUTES decoding: PKS, KL, PERFMON', async () => {
    const c = await verify(await evidence({ tdAttributes: '00000050000000' + '80' }), {});
    expect(c.tdAttributes).toEqual({
      raw: '0000005000000080',
      debug: false,
      septVeDisable: true,
      pks: true,
      kl: false,
      perfmon: true,
    });
    const kl = await verify(await evidence({ tdAttributes: '0000009000000000' }));
    expect(kl.tdAttributes.kl).toBe(true);
  });
});
