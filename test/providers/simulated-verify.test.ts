/**
 * End to end: evidence from the simulated platforms through verifyEvidence, exactly as real
 * evidence goes. Accepted only with simulated.trustAnchors(), and then marked simulated.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import { bytesToHex } from '../../src/evidence/bytes.js';
import { configfsTsm } from '../../src/evidence/providers/configfs-tsm.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import type { SnpClaims, TdxClaims, VerifyOptions } from '../../src/evidence/types.js';
import { TDX_LEVEL_STATUSES } from '../../src/evidence/types.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { parseCertificate } from '../../src/evidence/x509/cert.js';
import { createFakeTsm, withRoot } from './fake-tsm.js';

const RD = Uint8Array.from({ length: 64 }, (_, i) => (i * 7) & 0xff);
const NOW = new Date('2026-05-01T08:00:00Z');
const ALL_STATUSES = TDX_LEVEL_STATUSES;

const trusted = (extra: Partial<VerifyOptions> = {}): VerifyOptions => ({
  trustAnchors: simulated.trustAnchors(),
  offline: true,
  now: NOW,
  ...extra,
});

async function rejection(p: Promise<unknown>): Promise<AttestationError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AttestationError);
    return err as AttestationError;
  }
  throw new Error('expected the evidence to be refused');
}

describe('simulated SEV-SNP evidence through verifyEvidence', () => {
  it.each([
    ['Milan', 'vcek'],
    ['Milan', 'vlek'],
    ['Genoa', 'vcek'],
    ['Genoa', 'vlek'],
    ['Turin', 'vcek'],
    ['Turin', 'vlek'],
  ] as const)(
    '%s %s: accepted with the simulated anchors, marked simulated; refused without',
    async (product, signer) => {
      const ev = await simulated.snp({ product, signer }).getEvidence(RD);
      const claims = (await verifyEvidence(ev, trusted())) as SnpClaims;
      expect(claims).toMatchObject({
        format: 'sev-snp',
        simulated: true,
        version: 5,
        product,
        signer,
        reportData: bytesToHex(RD),
        measurement: simulated.defaults.snpMeasurement,
      });
      const err = await rejection(verifyEvidence(ev, { offline: true, now: NOW }));
      expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    },
  );

  it('the chosen fields reach the claims and the policy', async () => {
    const measurement = '11'.repeat(48);
    const ev = await simulated
      .snp({ product: 'Turin', measurement, vmpl: 1, reportedTcb: { snp: 9, fmc: 2 } })
      .getEvidence(RD);
    const claims = (await verifyEvidence(
      ev,
      trusted({ policy: { snp: { measurements: [measurement] } } }),
    )) as SnpClaims;
    expect(claims.vmpl).toBe(1);
    expect(claims.reportedTcb).toMatchObject({ snp: 9, fmc: 2 });
    const err = await rejection(
      verifyEvidence(ev, trusted({ policy: { snp: { measurements: [simulated.defaults.snpMeasurement] } } })),
    );
    expect(err.code).toBe('ERR_EVIDENCE_POLICY');
    const tcb = await rejection(verifyEvidence(ev, trusted({ policy: { snp: { minTcb: { snp: 10 } } } })));
    expect(tcb.code).toBe('ERR_EVIDENCE_TCB');
  });

  it('a VEK of another product does not pass', async () => {
    const milan = await simulated.snp({ product: 'Milan' }).getEvidence(RD);
    const genoa = await simulated.snp({ product: 'Genoa' }).getEvidence(RD);
    const err = await rejection(verifyEvidence({ ...milan, vek: genoa.vek, chain: genoa.chain }, trusted()));
    expect(['ERR_EVIDENCE_CHAIN', 'ERR_EVIDENCE_SIGNATURE']).toContain(err.code);
  });

  describe('with a KDS on 127.0.0.1 serving simulated CRLs', () => {
    let server: Server;
    let baseUrl: string;
    const crls = new Map<string, Uint8Array>();
    beforeAll(async () => {
      server = createServer((req, res) => {
        const body = crls.get(req.url ?? '');
        res.writeHead(body ? 200 : 404, { 'content-type': 'application/pkix-crl' });
        res.end(body ? Buffer.from(body) : undefined);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise((resolve) => server.close(resolve));
    });

    it('an ASK listed on the ARK-signed CRL is refused; a clean CRL passes', async () => {
      const ev = await simulated.snp({ product: 'Genoa' }).getEvidence(RD);
      const askSerial = Buffer.from(parseCertificate(simulated.amdChain('Genoa').ask).serialHex, 'hex');
      // KDS clients are shared by settings and cache what they fetch: a distinct timeout gives each case its own.
      const opts = (timeoutMs: number): VerifyOptions => ({
        trustAnchors: simulated.trustAnchors(),
        now: NOW,
        kds: { baseUrl, retries: 0, timeoutMs },
        policy: { snp: { requireCrl: true } },
      });
      crls.set('/vcek/v1/Genoa/crl', simulated.amdCrl({ product: 'Genoa' }));
      await expect(verifyEvidence(ev, opts(10001))).resolves.toMatchObject({ simulated: true });
      crls.set('/vcek/v1/Genoa/crl', simulated.amdCrl({ product: 'Genoa', revoked: [askSerial] }));
      const err = await rejection(verifyEvidence(ev, opts(10002)));
      expect(err.message).toMatch(/revoked/);
      expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    });
  });
});

describe('simulated TDX evidence through verifyEvidence', () => {
  it.each([4, 5] as const)(
    'v%i: accepted with the simulated anchors, marked simulated; refused without',
    async (version) => {
      const ev = await simulated.tdx({ version, now: NOW }).getEvidence(RD);
      const claims = (await verifyEvidence(ev, trusted())) as TdxClaims;
      expect(claims).toMatchObject({
        format: 'tdx',
        simulated: true,
        version,
        tcbStatus: 'UpToDate',
        reportData: bytesToHex(RD),
        mrTd: simulated.defaults.tdxMrTd,
        fmspc: simulated.defaults.tdxPlatform.fmspc,
      });
      const err = await rejection(verifyEvidence(ev, { offline: true, now: NOW }));
      expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    },
  );

  for (const version of [4, 5] as const) {
    it.each(ALL_STATUSES)(`v${version}: tcbStatus %s is what the verifier finds`, async (tcbStatus) => {
      const ev = await simulated.tdx({ version, tcbStatus, now: NOW }).getEvidence(RD);
      const claims = (await verifyEvidence(
        ev,
        trusted({ policy: { tdx: { acceptTcbStatus: [...ALL_STATUSES] } } }),
      )) as TdxClaims;
      expect(claims.tcbStatus).toBe(tcbStatus);
      expect(claims.advisoryIds.length > 0).toBe(tcbStatus !== 'UpToDate');
      if (tcbStatus !== 'UpToDate') {
        const err = await rejection(verifyEvidence(ev, trusted()));
        expect(err.code).toBe('ERR_EVIDENCE_TCB');
        expect(err.details.tcbStatus).toBe(tcbStatus);
      }
    });
  }

  it('no matching TCB level is ERR_EVIDENCE_TCB whatever the policy accepts', async () => {
    const ev = await simulated.tdx({ tcbStatus: 'NoMatchingTcbLevel', now: NOW }).getEvidence(RD);
    const err = await rejection(
      verifyEvidence(ev, trusted({ policy: { tdx: { acceptTcbStatus: [...ALL_STATUSES] } } })),
    );
    expect(err.code).toBe('ERR_EVIDENCE_TCB');
  });

  it.each(['pck', 'platform-ca'] as const)('a revoked %s is refused', async (which) => {
    const ev = await simulated.tdx({ revoked: [which], now: NOW }).getEvidence(RD);
    expect((await rejection(verifyEvidence(ev, trusted()))).code).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('collateral issued for `now` is refused one second after its nextUpdate', async () => {
    const ev = await simulated.tdx({ now: NOW }).getEvidence(RD);
    const late = new Date(NOW.getTime() + 30 * 86_400_000 + 1000);
    const err = await rejection(verifyEvidence(ev, trusted({ now: late })));
    expect(['ERR_COLLATERAL_UNAVAILABLE', 'ERR_EVIDENCE_CHAIN']).toContain(err.code);
  });

  it('debug TDs and MRTD policies apply to simulated quotes', async () => {
    const debug = await simulated.tdx({ tdAttributes: '0100001000000000', now: NOW }).getEvidence(RD);
    expect((await rejection(verifyEvidence(debug, trusted()))).code).toBe('ERR_EVIDENCE_POLICY');
    const ev = await simulated.tdx({ mrTd: '22'.repeat(48), now: NOW }).getEvidence(RD);
    expect(
      (
        await rejection(
          verifyEvidence(ev, trusted({ policy: { tdx: { mrTd: [simulated.defaults.tdxMrTd] } } })),
        )
      ).code,
    ).toBe('ERR_EVIDENCE_POLICY');
  });
});

describe('configfs-tsm evidence through verifyEvidence', () => {
  it.each(['sev-snp', 'tdx'] as const)('%s: what the fake kernel hands out verifies', async (format) => {
    const platform = format === 'tdx' ? simulated.tdx({ now: NOW, collateral: false }) : simulated.snp();
    const fake = await withRoot(createFakeTsm({ platform }));
    try {
      const provider = await configfsTsm({ root: fake.root, fs: fake.fs });
      const ev = await provider.getEvidence(RD);
      // A TDX guest gets no collateral from the kernel; the verifier's caller supplies it.
      const input = format === 'tdx' ? { ...ev, collateral: simulated.tdxCollateral({ now: NOW }) } : ev;
      const claims = await verifyEvidence(input, trusted());
      expect(claims).toMatchObject({ format, simulated: true, reportData: bytesToHex(RD) });
    } finally {
      fake.cleanup();
    }
  });
});
