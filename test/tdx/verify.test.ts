import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Policy } from '../../src/evidence/policy.js';
import { INTEL_SGX_ROOT_CA_DER } from '../../src/evidence/tdx/roots.js';
import type { TdxClaims, TdxCollateral, VerifyOptions } from '../../src/evidence/types.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { codeOf, errorOf, INTEL_DIR, loadVector, VECTOR_IDS, type Vector } from './fixtures.js';

const ALL_STATUSES = [
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'OutOfDate',
  'OutOfDateConfigurationNeeded',
];
/** Everything a TCB/policy verdict could refuse is allowed: only signatures, chains and collateral remain. */
const LENIENT: Policy = {
  tdx: { acceptTcbStatus: ALL_STATUSES, allowDebug: true, requireSeptVeDisable: false, allowServiceTd: true },
};

/** Verifies a vector offline at its evaluate_at; `collateral` null = none, undefined = the vector's own. */
function run(v: Vector, extra: Partial<VerifyOptions> = {}, collateral?: TdxCollateral | string | null) {
  const c = collateral === undefined ? v.collateral : collateral;
  return verifyEvidence(
    { report: v.quote, ...(c !== undefined && c !== null ? { collateral: c } : {}) },
    { now: v.now, offline: true, ...extra },
  );
}

const REASON_CODE: Record<string, string> = {
  'no collateral': 'ERR_COLLATERAL_UNAVAILABLE',
  'no matching tcb level': 'ERR_EVIDENCE_TCB',
  'tcb status OutOfDate': 'ERR_EVIDENCE_TCB',
  'td debug bit set': 'ERR_EVIDENCE_POLICY',
};

describe('TDX conformance: every real vector gives its meta.json outcome at evaluate_at', () => {
  it.each(VECTOR_IDS)('%s', async (id) => {
    const v = loadVector(id);
    if (v.meta.expect === 'ok') {
      const claims = (await run(v)) as TdxClaims;
      expect(claims.format).toBe('tdx');
      expect(claims.tcbStatus).toBe(v.meta.expected_tcb_status);
      expect(claims.advisoryIds).toEqual(v.meta.tcb_advisory_ids);
      return;
    }
    const err = await errorOf(() => run(v));
    const firstReason = (v.meta.expected_reason ?? '').split('; ')[0]!;
    expect(err.code).toBe(REASON_CODE[firstReason]);
    if (err.code === 'ERR_EVIDENCE_TCB') {
      expect(err.details.tcbStatus).toBe(v.meta.expected_tcb_status);
      expect(err.details.advisoryIds).toEqual(v.meta.tcb_advisory_ids);
    }
    if (err.code === 'ERR_EVIDENCE_POLICY') expect(err.details.field).toBe('tdx.allowDebug');
    // With a lenient policy, the status the vector states is what verification reports.
    if (v.meta.expected_tcb_status && v.meta.expected_tcb_status !== 'NoMatchingTcbLevel') {
      const claims = (await run(v, { policy: LENIENT })) as TdxClaims;
      expect(claims.tcbStatus).toBe(v.meta.expected_tcb_status);
      expect(claims.advisoryIds).toEqual(v.meta.tcb_advisory_ids);
    }
  });

  it('collateral as JSON text gives the same claims as the object', async () => {
    const v = loadVector('dcap-qvl__quote');
    expect(await run(v, {}, v.collateralText)).toEqual(await run(v));
  });

  it('claims carry every TD report field of the quote (hex lowercase)', async () => {
    const v = loadVector('dcap-qvl__quote');
    const c = (await run(v)) as TdxClaims;
    const m = v.meta;
    expect(c).toMatchObject({
      format: 'tdx',
      simulated: false,
      version: 4,
      teeTcbSvn: m.tee_tcb_svn,
      mrSeam: m.mr_seam,
      mrSignerSeam: m.mr_signer_seam,
      seamAttributes: m.seam_attributes,
      xfam: m.xfam,
      mrTd: m.mr_td,
      mrConfigId: m.mr_config_id,
      mrOwner: m.mr_owner,
      mrOwnerConfig: m.mr_owner_config,
      rtmr0: m.rtmr0,
      rtmr1: m.rtmr1,
      rtmr2: m.rtmr2,
      rtmr3: m.rtmr3,
      reportData: m.report_data,
      fmspc: m.fmspc,
      tcbStatus: 'UpToDate',
      advisoryIds: [],
    });
    expect(c.tdAttributes).toEqual({
      raw: m.td_attributes,
      debug: false,
      septVeDisable: true,
      pks: false,
      kl: false,
      perfmon: false,
    });
    expect(c.mrServiceTd).toBeUndefined();
  });
});

describe('TDX TCB status and policy on real vectors', () => {
  const gcp = loadVector('automata__quote_v4_gcp_8000');
  const good = loadVector('dcap-qvl__quote');
  const debug = loadVector('trustee__quote_v4_debug');

  it('OutOfDate is refused by default and accepted when the policy accepts OutOfDate', async () => {
    const err = await errorOf(() => run(gcp));
    expect(err.code).toBe('ERR_EVIDENCE_TCB');
    expect(err.details).toEqual({
      tcbStatus: 'OutOfDate',
      advisoryIds: ['INTEL-SA-00960', 'INTEL-SA-00982', 'INTEL-SA-00986'],
    });
    const claims = (await run(gcp, {
      policy: { tdx: { acceptTcbStatus: ['UpToDate', 'OutOfDate'] } },
    })) as TdxClaims;
    expect(claims.tcbStatus).toBe('OutOfDate');
    expect(claims.advisoryIds).toEqual(['INTEL-SA-00960', 'INTEL-SA-00982', 'INTEL-SA-00986']);
  });

  it('an UpToDate quote is refused when the policy accepts only OutOfDate', async () => {
    const err = await errorOf(() => run(good, { policy: { tdx: { acceptTcbStatus: ['OutOfDate'] } } }));
    expect(err.code).toBe('ERR_EVIDENCE_TCB');
    expect(err.details.tcbStatus).toBe('UpToDate');
  });

  it('the debug quote is refused by default and accepted with tdx.allowDebug', async () => {
    const err = await errorOf(() => run(debug));
    expect(err.code).toBe('ERR_EVIDENCE_POLICY');
    expect(err.details.field).toBe('tdx.allowDebug');
    const claims = (await run(debug, { policy: { tdx: { allowDebug: true } } })) as TdxClaims;
    expect(claims.tdAttributes.debug).toBe(true);
    expect(claims.tcbStatus).toBe('UpToDate');
  });

  const fields = [
    'mrTd',
    'rtmr0',
    'rtmr1',
    'rtmr2',
    'rtmr3',
    'mrConfigId',
    'mrOwner',
    'mrOwnerConfig',
    'mrSeam',
  ] as const;
  const metaOf = {
    mrTd: 'mr_td',
    rtmr0: 'rtmr0',
    rtmr1: 'rtmr1',
    rtmr2: 'rtmr2',
    rtmr3: 'rtmr3',
    mrConfigId: 'mr_config_id',
    mrOwner: 'mr_owner',
    mrOwnerConfig: 'mr_owner_config',
    mrSeam: 'mr_seam',
  } as const;
  it.each(fields)('tdx.%s: the quote value passes (any case), another value is refused', async (field) => {
    const actual = good.meta[metaOf[field]];
    const other = `${actual.slice(0, -2)}${actual.endsWith('00') ? '01' : '00'}`;
    await expect(
      run(good, { policy: { tdx: { [field]: [other, actual.toUpperCase()] } } }),
    ).resolves.toBeTruthy();
    const err = await errorOf(() => run(good, { policy: { tdx: { [field]: [other] } } }));
    expect(err.code).toBe('ERR_EVIDENCE_POLICY');
    expect(err.details.field).toBe(`tdx.${field}`);
  });
});

describe('TDX collateral windows (real vectors)', () => {
  const withWindow = VECTOR_IDS.map(loadVector).filter((v) => v.meta.collateral_valid_window);
  it.each(withWindow.map((v) => [v.id, v] as const))(
    '%s: accepted at both window edges, refused one second outside',
    async (_id, v) => {
      const [from, to] = v.meta.collateral_valid_window!.map((s) => new Date(s).getTime()) as [
        number,
        number,
      ];
      const inside = await codeOf(() => run(v, { now: new Date(v.now.getTime()), policy: LENIENT }));
      for (const t of [from, to])
        expect(await codeOf(() => run(v, { now: new Date(t), policy: LENIENT }))).toBe(inside);
      for (const t of [from - 1000, to + 1000]) {
        const code = await codeOf(() => run(v, { now: new Date(t), policy: LENIENT }));
        expect(['ERR_COLLATERAL_UNAVAILABLE', 'ERR_EVIDENCE_CHAIN']).toContain(code);
      }
    },
  );

  it('in 2053 the PCK certificate has expired', async () => {
    const err = await errorOf(() =>
      run(loadVector('go-tdx-guest__quote'), { now: new Date('2053-01-01T00:00:00Z') }),
    );
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    expect(err.message).toMatch(/PCK Certificate.*expired/);
  });
});

describe('TDX tampering (offsets of the fixtures README, go-tdx-guest__quote)', () => {
  const v = loadVector('go-tdx-guest__quote');
  const flip = (off: number) => {
    const b = v.quote.slice();
    b[off]! ^= 0x01;
    return b;
  };
  it('untampered: all signatures pass and the TCB verdict is reached', async () => {
    expect((await errorOf(() => run(v))).code).toBe('ERR_EVIDENCE_TCB');
  });
  it.each([
    [0x1e, 'ERR_EVIDENCE_SIGNATURE', /quote signature/],
    [0x3c, 'ERR_EVIDENCE_SIGNATURE', /quote signature/],
    [0xb77, 'ERR_EVIDENCE_CHAIN', /PCK Certificate" is not signed/],
    [0xf5f, 'ERR_EVIDENCE_CHAIN', /PCK Platform CA" is not signed/],
    [0x1329, 'ERR_EVIDENCE_CHAIN', /not a trusted Intel root/],
  ])('flip byte 0x%s', async (off, code, message) => {
    const err = await errorOf(() =>
      verifyEvidence({ report: flip(off), collateral: v.collateral! }, { now: v.now }),
    );
    expect(err.code).toBe(code);
    expect(err.message).toMatch(message);
  });
  it('0x278 = 0x10 (signature data length) and byte 0 = 3 (version) are malformed', async () => {
    for (const [off, val] of [
      [0x278, 0x10],
      [0, 3],
    ] as const) {
      const b = v.quote.slice();
      b[off] = val;
      expect(
        await codeOf(() => verifyEvidence({ report: b, collateral: v.collateral! }, { now: v.now })),
      ).toBe('ERR_EVIDENCE_MALFORMED');
    }
  });

  const sigData = 636;
  it('a flipped QE report byte breaks the QE report signature', async () => {
    const err = await errorOf(() => run({ ...v, quote: flip(sigData + 134 + 10) }));
    expect(err.code).toBe('ERR_EVIDENCE_SIGNATURE');
    expect(err.message).toMatch(/QE report signature/);
  });
  it('a flipped attestation key byte breaks the QE REPORTDATA binding', async () => {
    const err = await errorOf(() => run({ ...v, quote: flip(sigData + 64 + 5) }));
    expect(err.code).toBe('ERR_EVIDENCE_SIGNATURE');
    expect(err.message).toMatch(/bind the attestation key|not a P-256 point/);
  });
  it('a flipped QE auth data byte breaks the QE REPORTDATA binding', async () => {
    const err = await errorOf(() => run({ ...v, quote: flip(sigData + 134 + 450 + 3) }));
    expect(err.code).toBe('ERR_EVIDENCE_SIGNATURE');
    expect(err.message).toMatch(/bind the attestation key/);
  });
  it('a flipped quote signature byte', async () => {
    const err = await errorOf(() => run({ ...v, quote: flip(sigData + 10) }));
    expect(err.code).toBe('ERR_EVIDENCE_SIGNATURE');
  });
});

// Collateral that is present but tampered with is a refusal, ERR_EVIDENCE_CHAIN (issue 15 item 2).
describe('TDX collateral tampering (real vectors)', () => {
  const v = loadVector('dcap-qvl__quote');
  const c = v.collateral!;
  const mutate = (patch: Partial<TdxCollateral>) => run(v, {}, { ...c, ...patch });
  const flipHex = (hex: string, at: number) =>
    hex.slice(0, at) + (Number.parseInt(hex[at]!, 16) ^ 1).toString(16) + hex.slice(at + 1);

  it('a flipped byte in tcb_info_signature / qe_identity_signature', async () => {
    for (const m of ['tcb_info_signature', 'qe_identity_signature'] as const) {
      const err = await errorOf(() => mutate({ [m]: flipHex(c[m], 7) }));
      expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
      expect(err.message).toMatch(/signature .*does not verify/);
    }
  });
  it('one character changed inside the signed tcb_info / qe_identity text', async () => {
    const tcb = c.tcb_info.replace('"UpToDate"', '"UpToDatf"');
    expect(tcb).not.toBe(c.tcb_info);
    expect((await errorOf(() => mutate({ tcb_info: tcb }))).code).toBe('ERR_EVIDENCE_CHAIN');
    const qe = c.qe_identity.replace('"TD_QE"', '"TD_QF"');
    expect(qe).not.toBe(c.qe_identity);
    expect((await errorOf(() => mutate({ qe_identity: qe }))).code).toBe('ERR_EVIDENCE_CHAIN');
  });
  it('re-serialised tcb_info (same JSON value, other bytes) is refused: signatures cover the text', async () => {
    const reser = JSON.stringify(JSON.parse(c.tcb_info), null, 1);
    expect((await errorOf(() => mutate({ tcb_info: reser }))).code).toBe('ERR_EVIDENCE_CHAIN');
  });
  it('a CRL that is not signed by its issuer: the root CRL given as PCK CRL and the reverse', async () => {
    const e1 = await errorOf(() => mutate({ pck_crl: c.root_ca_crl }));
    expect(e1.code).toBe('ERR_EVIDENCE_CHAIN');
    const e2 = await errorOf(() => mutate({ root_ca_crl: c.pck_crl }));
    expect(e2.code).toBe('ERR_EVIDENCE_CHAIN');
  });
  it('a CRL with a flipped signature byte', async () => {
    for (const m of ['pck_crl', 'root_ca_crl'] as const) {
      const der = c[m];
      const err = await errorOf(() => mutate({ [m]: flipHex(der, der.length - 5) }));
      expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    }
  });
  it('an issuer chain that does not end at the pinned root', async () => {
    const onlySigner =
      c.tcb_info_issuer_chain.split('-----END CERTIFICATE-----')[0]! + '-----END CERTIFICATE-----\n';
    const swapped = onlySigner + onlySigner;
    expect((await errorOf(() => mutate({ tcb_info_issuer_chain: swapped }))).code).toBe('ERR_EVIDENCE_CHAIN');
  });
  it('collateral of another platform (the gcp TCB info, FMSPC 00806f050000)', async () => {
    const other = loadVector('automata__quote_v4_gcp_8000').collateral!;
    const err = await errorOf(() =>
      mutate({
        tcb_info: other.tcb_info,
        tcb_info_signature: other.tcb_info_signature,
        tcb_info_issuer_chain: other.tcb_info_issuer_chain,
      }),
    );
    // Its window (June 2025) does not contain July 19: out of date, a refusal.
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    expect(err.message).toMatch(/expired/);
    // Inside both windows (June 20 to July 4) it is genuine collateral, but for another platform:
    // fetching this platform's collateral cures that.
    const inBoth = await errorOf(() =>
      run(
        v,
        { now: new Date('2025-06-25T00:00:00Z') },
        {
          ...c,
          tcb_info: other.tcb_info,
          tcb_info_signature: other.tcb_info_signature,
          tcb_info_issuer_chain: other.tcb_info_issuer_chain,
        },
      ),
    );
    expect(inBoth.code).toBe('ERR_COLLATERAL_UNAVAILABLE');
    expect(inBoth.message).toMatch(/another platform/);
  });
  it('missing or non-string members, non-JSON text, bad hex', async () => {
    const { pck_crl: _drop, ...missing } = c;
    expect(await codeOf(() => run(v, {}, missing as TdxCollateral))).toBe('ERR_COLLATERAL_UNAVAILABLE');
    expect(await codeOf(() => run(v, {}, { ...c, pck_crl: 5 } as unknown as TdxCollateral))).toBe(
      'ERR_COLLATERAL_UNAVAILABLE',
    );
    expect(await codeOf(() => run(v, {}, '{not json'))).toBe('ERR_COLLATERAL_UNAVAILABLE');
    expect(await codeOf(() => mutate({ pck_crl: 'zz' }))).toBe('ERR_COLLATERAL_UNAVAILABLE');
  });
  it('offline without collateral', async () => {
    const err = await errorOf(() => run(v, {}, null));
    expect(err.code).toBe('ERR_COLLATERAL_UNAVAILABLE');
  });
  it('the warm cache does not outlive the collateral window', async () => {
    await run(v); // warm
    const to = new Date(v.meta.collateral_valid_window![1]).getTime();
    expect(await codeOf(() => run(v, { now: new Date(to + 1000) }))).not.toBe('accepted');
    await expect(run(v)).resolves.toBeTruthy();
  });
});

describe('TDX trust anchors', () => {
  const v = loadVector('dcap-qvl__quote');
  it('intelRoots replaces the built-in root: a real quote is refused under another root', async () => {
    // Any other certificate as the only anchor: the real chain no longer ends at a trusted root.
    const other = new Uint8Array(readFileSync(`${INTEL_DIR}Intel_SGX_TCB_Signing_2025-2032.der`));
    const err = await errorOf(() => run(v, { trustAnchors: { intelRoots: [other] } }));
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
  });
  it('an explicit list holding the real root behaves like the default', async () => {
    await expect(run(v, { trustAnchors: { intelRoots: [INTEL_SGX_ROOT_CA_DER] } })).resolves.toMatchObject({
      tcbStatus: 'UpToDate',
      simulated: false,
    });
  });
});
