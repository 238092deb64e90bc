/**
 * Azure checks that the real fixtures cannot reach (their hash type is always SHA-256, their VMPL
 * always 0, their JSON always well formed): an HCL report built around a simulated SNP report.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { verifyAzure } from '../../src/evidence/verify.js';
import { codeOf } from './fixtures.js';
import { buildHcl, pcrBank, reportDataFor, runtimeClaimsJson, signQuote, tdreportOf } from './synthetic.js';

let ak: { publicKey: KeyObject; privateKey: KeyObject };
const now = new Date();
const options = { now, offline: true, trustAnchors: simulated.trustAnchors() };
const nonce = new Uint8Array(Buffer.from('challenge'));
const pcrs = pcrBank();

beforeAll(() => {
  ak = generateKeyPairSync('rsa', { modulusLength: 2048 });
});

async function evidence(
  opts: {
    claims?: Uint8Array;
    hashType?: 1 | 2 | 3;
    headerHashType?: number;
    vmpl?: number;
    reportData?: Uint8Array;
    quoteKey?: KeyObject;
  } = {},
) {
  const claims = opts.claims ?? runtimeClaimsJson(ak.publicKey);
  const snp = simulated.snp({ product: 'Milan', ...(opts.vmpl !== undefined ? { vmpl: opts.vmpl } : {}) });
  const ev = await snp.getEvidence(opts.reportData ?? reportDataFor(claims, opts.hashType ?? 1));
  const report = buildHcl({
    tee: 'sev-snp',
    hardwareReport: ev.report,
    claims,
    hashType: opts.headerHashType ?? opts.hashType ?? 1,
  });
  const quote = signQuote(opts.quoteKey ?? ak.privateKey, { extraData: nonce, pcrs });
  return {
    report,
    vek: ev.vek!,
    chain: ev.chain!,
    tpm: { quote: quote.message, signature: quote.signature, pcrs: { sha256: pcrs } },
  };
}

describe('Azure evidence around a simulated SNP report', () => {
  for (const hashType of [1, 2, 3] as const) {
    it(`report-data hash type ${hashType} binds the runtime claims`, async () => {
      const claims = await verifyAzure(await evidence({ hashType }), options);
      expect(claims.format).toBe('azure-sev-snp');
      expect(claims.tpm.extraData).toBe(Buffer.from(nonce).toString('hex'));
      expect(claims.tpm.pcrs.sha256).toEqual(pcrs);
      expect(claims.tpm.clock).toBe(123456);
      expect(claims.tpm.resetCount).toBe(3);
      expect(claims.userData).toBe('0'.repeat(128));
    });
  }

  it('a header hash type other than the one REPORT_DATA was made with is refused', async () => {
    expect(await codeOf(verifyAzure(await evidence({ hashType: 1, headerHashType: 2 }), options))).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
  });

  it('REPORT_DATA with the right hash but non-zero trailing bytes is refused', async () => {
    const claims = runtimeClaimsJson(ak.publicKey);
    const rd = reportDataFor(claims);
    rd[63] = 1;
    expect(await codeOf(verifyAzure(await evidence({ claims, reportData: rd }), options))).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
  });

  it('a report from VMPL 1 is refused (only the paravisor runs at VMPL 0)', async () => {
    expect(await codeOf(verifyAzure(await evidence({ vmpl: 1 }), options))).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('no HCLAkPub, two of them, or a non-RSA one: ERR_EVIDENCE_CHAIN', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    const cases = [
      runtimeClaimsJson(null, { keys: [{ kid: 'HCLEkPub', ...other.export({ format: 'jwk' }) }] }),
      runtimeClaimsJson(ak.publicKey, { keys: [{ kid: 'HCLAkPub', ...other.export({ format: 'jwk' }) }] }),
      runtimeClaimsJson(null, { keys: [{ kid: 'HCLAkPub', ...ec.export({ format: 'jwk' }) }] }),
      new Uint8Array(Buffer.from('{"vm-configuration":{}}')),
    ];
    for (const claims of cases)
      expect(await codeOf(verifyAzure(await evidence({ claims }), options))).toBe('ERR_EVIDENCE_CHAIN');
  });

  it('the AK is taken by kid, not by position', async () => {
    const ek = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    const claims = runtimeClaimsJson(null, {
      keys: [
        { kid: 'HCLEkPub', ...ek.export({ format: 'jwk' }) },
        { kid: 'HCLAkPub', ...ak.publicKey.export({ format: 'jwk' }) },
      ],
    });
    expect((await verifyAzure(await evidence({ claims }), options)).format).toBe('azure-sev-snp');
  });

  it('a quote by a key other than HCLAkPub is refused', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    expect(await codeOf(verifyAzure(await evidence({ quoteKey: other }), options))).toBe(
      'ERR_EVIDENCE_SIGNATURE',
    );
  });

  it('user-data: absent is null, upper case is lowered, anything but 128 hex digits is malformed', async () => {
    const absent = runtimeClaimsJson(ak.publicKey, { userData: null });
    expect((await verifyAzure(await evidence({ claims: absent }), options)).userData).toBeNull();
    const upper = runtimeClaimsJson(ak.publicKey, { userData: 'AB'.repeat(64) });
    expect((await verifyAzure(await evidence({ claims: upper }), options)).userData).toBe('ab'.repeat(64));
    const bad = runtimeClaimsJson(ak.publicKey, { userData: 'ab'.repeat(32) });
    expect(await codeOf(verifyAzure(await evidence({ claims: bad }), options))).toBe(
      'ERR_EVIDENCE_MALFORMED',
    );
  });

  it('runtime claims that are bound but not JSON are malformed', async () => {
    const claims = new Uint8Array(Buffer.from('{"keys":[}'));
    expect(await codeOf(verifyAzure(await evidence({ claims }), options))).toBe('ERR_EVIDENCE_MALFORMED');
  });

  it('a simulated report is not accepted without the simulated roots', async () => {
    const { trustAnchors: _t, ...real } = options;
    expect(['ERR_EVIDENCE_CHAIN', 'ERR_EVIDENCE_SIGNATURE']).toContain(
      await codeOf(verifyAzure(await evidence(), real)),
    );
  });
});

describe('Azure evidence around a simulated TDX quote', () => {
  it('verifies when the TD quote is a quote of the TDREPORT; any differing field is a broken chain', async () => {
    const { verifyEvidence } = await import('../../src/evidence/verify.js');
    const claims = runtimeClaimsJson(ak.publicKey);
    const ev = await simulated
      .tdx({ rtmrs: [Buffer.alloc(48, 1).toString('hex')] })
      .getEvidence(reportDataFor(claims));
    const tdClaims = await verifyEvidence(ev, { ...options, policy: {} });
    const tdreport = tdreportOf(tdClaims as unknown as Record<string, unknown>);
    const quote = signQuote(ak.privateKey, { extraData: nonce, pcrs });
    const input = (tdr: Uint8Array) => ({
      report: buildHcl({ tee: 'tdx', hardwareReport: tdr, claims }),
      tdQuote: ev.report,
      collateral: ev.collateral!,
      tpm: { quote: quote.message, signature: quote.signature, pcrs: { sha256: pcrs } },
    });
    const ok = await verifyAzure(input(tdreport), options);
    expect(ok.format).toBe('azure-tdx');
    expect(ok.format === 'azure-tdx' && ok.mrTd).toBe(tdClaims.format === 'tdx' && tdClaims.mrTd);
    for (const off of [128, 264, 280, 328, 376, 512, 520, 528, 576, 624, 672, 720, 768, 816, 864]) {
      const t = new Uint8Array(tdreport);
      t[off + 1]! ^= 0x01;
      expect(await codeOf(verifyAzure(input(t), options)), `offset ${off}`).toBe('ERR_EVIDENCE_CHAIN');
    }
  });
});
