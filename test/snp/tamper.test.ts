/**
 * Unhappy paths: each tamper case of test/fixtures/snp/README.md, structural violations, and
 * binding failures built by re-signing simulated reports (so that only the one property under
 * test is wrong).
 */
import { describe, expect, it } from 'vitest';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { signSnpReport, simulatedKey } from '../../src/evidence/providers/simulated-snp.js';
import { parseSnpReport } from '../../src/evidence/snp/report.js';
import type { EvidenceInput, SnpClaims } from '../../src/evidence/types.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { codeOf, errorOf, flipped, loadFixture, root } from './fixtures.js';

const milan = loadFixture('ms-tav__milan-v3');
const oakMilan = loadFixture('oak__milan-v3-oc-release');
const genoa = loadFixture('ms-tav__genoa-v3');
const turin = loadFixture('ms-tav__turin-v5');
const v2 = loadFixture('virtee-sev__milan-v2');
const vlek = loadFixture('trustee__milan-v3-vlek-aws');

const at = (f: { at: Date }) => ({ now: f.at, offline: true });

describe('tampered real reports', () => {
  for (const offset of [21, 100, 0x50, 0x90, 0x180, 0x1a0, 0x04, 0x1f8]) {
    it(`a flipped signed byte at 0x${offset.toString(16)} fails the report signature`, async () => {
      const report = flipped(milan.report, offset);
      expect(await codeOf(verifyEvidence({ report, vek: milan.vek }, at(milan)))).toBe(
        'ERR_EVIDENCE_SIGNATURE',
      );
    });
  }

  it('a flipped byte in r or s fails the signature', async () => {
    for (const offset of [0x2a0, 0x2a0 + 20, 0x2a0 + 47, 0x2e8, 0x2e8 + 47]) {
      const report = flipped(turin.report, offset);
      expect(await codeOf(verifyEvidence({ report, vek: turin.vek }, at(turin)))).toBe(
        'ERR_EVIDENCE_SIGNATURE',
      );
    }
  });

  it('a non-zero unused high byte of r or s is malformed', async () => {
    for (const offset of [0x2a0 + 48, 0x2a0 + 71, 0x2e8 + 48, 0x2e8 + 71]) {
      const report = flipped(turin.report, offset);
      expect(await codeOf(verifyEvidence({ report, vek: turin.vek }, at(turin)))).toBe(
        'ERR_EVIDENCE_MALFORMED',
      );
    }
  });

  it('a flipped VEK byte fails the chain', async () => {
    for (const offset of [milan.vek.length - 10, 200, 400]) {
      const vek = flipped(milan.vek, offset);
      expect(await codeOf(verifyEvidence({ report: milan.report, vek }, at(milan)))).toBe(
        'ERR_EVIDENCE_CHAIN',
      );
    }
  });

  it('the VEK of another chip fails', async () => {
    // Same product and TCB, different chip: the chain is fine but the key did not sign this report.
    const code = await codeOf(verifyEvidence({ report: milan.report, vek: oakMilan.vek }, at(milan)));
    expect(['ERR_EVIDENCE_SIGNATURE', 'ERR_EVIDENCE_CHAIN']).toContain(code);
    expect(code).not.toBe('accepted');
  });

  it('the VEK of another product fails the chain', async () => {
    const err = await errorOf(verifyEvidence({ report: milan.report, vek: genoa.vek }, at(milan)));
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    expect(err.message).toMatch(/Genoa/);
  });

  it('the Genoa ASK and ARK for a Milan VCEK fail the chain', async () => {
    const chain = [root('genoa_ask.der'), root('genoa_ark.der')];
    expect(await codeOf(verifyEvidence({ report: milan.report, vek: milan.vek, chain }, at(milan)))).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
    // A v2 report has no CPUID; the product comes from the VEK and must still agree with the chain.
    expect(await codeOf(verifyEvidence({ report: v2.report, vek: v2.vek, chain }, at(v2)))).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
  });

  it('the ASK supplied in place of the ARK is not a pinned root', async () => {
    const err = await errorOf(
      verifyEvidence({ report: milan.report, vek: milan.vek, chain: [milan.ask, milan.ask] }, at(milan)),
    );
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    expect(err.message).toMatch(/not a trusted ARK/);
  });

  it('the ASK as a trust anchor is refused', async () => {
    const opts = { ...at(milan), trustAnchors: { amdArks: [milan.ask] } };
    expect(await codeOf(verifyEvidence({ report: milan.report, vek: milan.vek }, opts))).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
  });

  it('the ASVK in place of the ASK fails the chain (VCEK)', async () => {
    const chain = [root('milan_asvk.der'), root('milan_ark.der')];
    expect(await codeOf(verifyEvidence({ report: milan.report, vek: milan.vek, chain }, at(milan)))).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
  });

  it('an AMD ARK passed as trust anchor replaces the pins and still verifies', async () => {
    const opts = { ...at(milan), trustAnchors: { amdArks: [root('milan_ark.der')] } };
    expect(await codeOf(verifyEvidence({ report: milan.report, vek: milan.vek }, opts))).toBe('accepted');
    // Anchors replace the built-in roots: with only Genoa's ARK, a Milan report has no anchor.
    const genoaOnly = { ...at(milan), trustAnchors: { amdArks: [root('genoa_ark.der')] } };
    expect(await codeOf(verifyEvidence({ report: milan.report, vek: milan.vek }, genoaOnly))).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
  });

  it('a VCEK presented for a VLEK-signed report fails', async () => {
    const code = await codeOf(verifyEvidence({ report: vlek.report, vek: milan.vek }, at(vlek)));
    expect(code).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('a short, long or unknown-version report is malformed', async () => {
    expect(
      await codeOf(verifyEvidence({ report: milan.report.subarray(0, 1183), vek: milan.vek }, at(milan))),
    ).toBe('ERR_EVIDENCE_MALFORMED');
    for (const version of [0, 1, 6, 0x100]) {
      const report = Uint8Array.from(milan.report);
      new DataView(report.buffer).setUint32(0, version, true);
      expect(await codeOf(verifyEvidence({ report, vek: milan.vek }, at(milan)))).toBe(
        'ERR_EVIDENCE_MALFORMED',
      );
    }
  });

  it('missing VLEK or VCEK offline is ERR_COLLATERAL_UNAVAILABLE', async () => {
    expect(await codeOf(verifyEvidence({ report: vlek.report }, at(vlek)))).toBe(
      'ERR_COLLATERAL_UNAVAILABLE',
    );
    expect(await codeOf(verifyEvidence({ report: milan.report }, at(milan)))).toBe(
      'ERR_COLLATERAL_UNAVAILABLE',
    );
    expect(await codeOf(verifyEvidence({ report: v2.report }, at(v2)))).toBe('ERR_COLLATERAL_UNAVAILABLE');
  });

  it('a VEK that is not a certificate fails the chain', async () => {
    for (const vek of [new Uint8Array(0), new Uint8Array([0x30, 0x03, 1, 2, 3]), new Uint8Array(100)]) {
      expect(await codeOf(verifyEvidence({ report: milan.report, vek }, at(milan)))).toBe(
        'ERR_EVIDENCE_CHAIN',
      );
    }
  });
});

describe('parser structure checks', () => {
  const mutate = (f: (b: Uint8Array, v: DataView) => void, base = milan.report) => {
    const b = Uint8Array.from(base);
    f(b, new DataView(b.buffer));
    return b;
  };
  const cases: Array<[string, Uint8Array]> = [
    ['signature algorithm 2', mutate((_b, v) => v.setUint32(0x34, 2, true))],
    ['SIGNING_KEY none', mutate((_b, v) => v.setUint32(0x48, 7 << 2, true))],
    ['SIGNING_KEY reserved', mutate((_b, v) => v.setUint32(0x48, 2 << 2, true))],
    ['signer info reserved bits', mutate((_b, v) => v.setUint32(0x48, 1 << 5, true))],
    ['reserved 0x04C', mutate((b) => (b[0x4c] = 1))],
    ['reserved 0x18B', mutate((b) => (b[0x18b] = 1))],
    ['reserved 0x19F', mutate((b) => (b[0x19f] = 1))],
    ['reserved 0x1EB', mutate((b) => (b[0x1eb] = 1))],
    ['reserved 0x1EF', mutate((b) => (b[0x1ef] = 1))],
    ['reserved 0x208', mutate((b) => (b[0x208] = 1))],
    ['reserved 0x29F', mutate((b) => (b[0x29f] = 1))],
    ['reserved 0x330', mutate((b) => (b[0x330] = 1))],
    ['reserved 0x49F', mutate((b) => (b[0x49f] = 1))],
    ['v2 CPUID bytes', mutate((b) => (b[0x188] = 0x19), v2.report)],
    ['policy bit 17 clear', mutate((b) => (b[0x0a] = b[0x0a]! & ~0x02))],
    ['policy bit 26 set', mutate((b) => (b[0x0b] = b[0x0b]! | 0x04))],
    ['policy bit 63 set', mutate((b) => (b[0x0f] = 0x80))],
  ];
  for (const [name, report] of cases) {
    it(`${name} → ERR_EVIDENCE_MALFORMED`, async () => {
      expect(await codeOf(() => parseSnpReport(report))).toBe('ERR_EVIDENCE_MALFORMED');
      expect(await codeOf(verifyEvidence({ report, vek: milan.vek }, at(milan)))).toBe(
        'ERR_EVIDENCE_MALFORMED',
      );
    });
  }

  it('the unmodified reports parse', () => {
    expect(parseSnpReport(milan.report).version).toBe(3);
    expect(parseSnpReport(v2.report).version).toBe(2);
  });

  it('an unknown CPUID family is refused by the verifier but parses', async () => {
    const report = mutate((b) => (b[0x188] = 0x1b));
    expect(parseSnpReport(report).product).toBeUndefined();
    expect(await codeOf(verifyEvidence({ report, vek: milan.vek }, at(milan)))).toBe(
      'ERR_EVIDENCE_MALFORMED',
    );
  });
});

describe('binding of the VEK to the report (re-signed simulated reports)', () => {
  const anchors = simulated.trustAnchors();
  const vcekKey = simulatedKey('vcek');
  async function sim(options: Parameters<typeof simulated.snp>[0] = {}): Promise<EvidenceInput> {
    return simulated.snp(options).getEvidence(new Uint8Array(64).fill(7));
  }
  function resign(ev: EvidenceInput, edit: (b: Uint8Array) => void): EvidenceInput {
    const report = Uint8Array.from(ev.report);
    edit(report);
    signSnpReport(report, vcekKey);
    return { ...ev, report };
  }
  const opts = { offline: true, trustAnchors: anchors };

  it('simulated evidence is accepted with its anchors and marked simulated', async () => {
    const claims = (await verifyEvidence(await sim(), opts)) as SnpClaims;
    expect(claims.simulated).toBe(true);
    expect(claims.reportData).toBe('07'.repeat(64));
    // A re-signed but unchanged report still verifies, so the failures below are the edits'.
    expect(
      await codeOf(
        verifyEvidence(
          resign(await sim(), () => {}),
          opts,
        ),
      ),
    ).toBe('accepted');
  });

  it('simulated evidence is refused by default, with or without its chain', async () => {
    const ev = await sim();
    expect(await codeOf(verifyEvidence(ev, { offline: true }))).toBe('ERR_EVIDENCE_CHAIN');
    expect(await codeOf(verifyEvidence({ report: ev.report, vek: ev.vek! }, { offline: true }))).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
  });

  it('REPORTED_TCB different from the VEK TCB fails the chain', async () => {
    for (const offset of [0x180, 0x181, 0x186, 0x187]) {
      const ev = resign(await sim(), (b) => (b[offset] = b[offset]! + 1));
      const err = await errorOf(verifyEvidence(ev, opts));
      expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
      expect(err.message).toMatch(/REPORTED_TCB/);
    }
  });

  it('Turin compares the FMC SPL too', async () => {
    const ev = resign(await sim({ product: 'Turin' }), (b) => (b[0x180] = b[0x180]! + 1));
    const err = await errorOf(verifyEvidence(ev, opts));
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    expect(err.details.component).toBe('fmc');
  });

  it('CURRENT_TCB may differ from REPORTED_TCB', async () => {
    const ev = resign(await sim(), (b) => (b[0x3f] = b[0x3f]! + 1));
    expect(await codeOf(verifyEvidence(ev, opts))).toBe('accepted');
  });

  it('CHIP_ID different from the VCEK hwID fails the chain', async () => {
    const ev = resign(await sim(), (b) => (b[0x1a0 + 63] = b[0x1a0 + 63]! ^ 1));
    const err = await errorOf(verifyEvidence(ev, opts));
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    expect(err.message).toMatch(/hwID/);
  });

  it('Turin: hwID is CHIP_ID[0..8] and the rest must be zero', async () => {
    const ok = await sim({ product: 'Turin' });
    expect(await codeOf(verifyEvidence(ok, opts))).toBe('accepted');
    expect(
      await codeOf(
        verifyEvidence(
          resign(ok, (b) => {
            b[0x1a0 + 3]! ^= 1;
          }),
          opts,
        ),
      ),
    ).toBe('ERR_EVIDENCE_CHAIN');
    expect(
      await codeOf(
        verifyEvidence(
          resign(ok, (b) => (b[0x1a0 + 8] = 1)),
          opts,
        ),
      ),
    ).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('a masked (all-zero) CHIP_ID skips the hwID comparison', async () => {
    const ev = resign(await sim(), (b) => b.fill(0, 0x1a0, 0x1e0));
    expect(await codeOf(verifyEvidence(ev, opts))).toBe('accepted');
  });

  it('CPUID naming another product than the VEK fails the chain', async () => {
    const ev = resign(await sim({ product: 'Milan' }), (b) => (b[0x189] = 0x11));
    const err = await errorOf(verifyEvidence(ev, opts));
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('a VLEK-signed simulated report verifies with its VLEK and ASVK', async () => {
    const claims = (await verifyEvidence(await sim({ signer: 'vlek', product: 'Genoa' }), opts)) as SnpClaims;
    expect(claims.signer).toBe('vlek');
    expect(claims.product).toBe('Genoa');
  });

  it('unknown platform-info bits are reported, never rejected', async () => {
    const claims = (await verifyEvidence(
      await sim({ platformInfo: 0x25n | (1n << 40n) | (1n << 6n) }),
      opts,
    )) as SnpClaims;
    expect(claims.platformInfo.unknownBits).toBe(`0x${((1n << 40n) | (1n << 6n)).toString(16)}`);
    expect(claims.platformInfo.smtEnabled).toBe(true);
    expect(claims.platformInfo.aliasCheckComplete).toBe(true);
  });
});
