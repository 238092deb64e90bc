/**
 * Measured boot on Azure: the vTPM's event log checked against the quoted PCRs of Azure evidence
 * (an HCL report around a simulated SNP report, a quote over the PCR values the real GCE log
 * replays to), and the policy's boot section pinning what booted.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { verifyAzure } from '../../src/evidence/verify.js';
import { codeOf } from '../azure/fixtures.js';
import { buildHcl, pcrBank, reportDataFor, runtimeClaimsJson, signQuote } from '../azure/synthetic.js';
import { fixture } from '../eventlog/fixtures.js';

const now = new Date();
const gce = fixture('go-tpm-tools__gce-cos-85-nonce9009');
const nonce = new Uint8Array(Buffer.from('challenge'));
// PCR0-9 as the log replays them, the rest arbitrary (the log does not extend them).
const pcrs = { ...pcrBank(), ...gce.meta.pcrs!.sha256! };
const ak = generateKeyPairSync('rsa', { modulusLength: 2048 });

async function evidence(log?: Uint8Array) {
  const claims = runtimeClaimsJson(ak.publicKey);
  const ev = await simulated.snp({ product: 'Milan' }).getEvidence(reportDataFor(claims));
  const report = buildHcl({ tee: 'sev-snp', hardwareReport: ev.report, claims });
  const quote = signQuote(ak.privateKey, { extraData: nonce, pcrs });
  return {
    report,
    vek: ev.vek!,
    chain: ev.chain!,
    tpm: { quote: quote.message, signature: quote.signature, pcrs: { sha256: pcrs } },
    ...(log ? { eventLog: { log } } : {}),
  };
}
const options = { now, offline: true, trustAnchors: simulated.trustAnchors() };

describe('Azure evidence with the vTPM event log', () => {
  it('the log replays to the quoted PCRs: claims.boot; boot pins set workloadPinned', async () => {
    const c = await verifyAzure(await evidence(gce.log), options);
    expect(c.boot?.pcrs?.sha256).toEqual(gce.meta.pcrs!.sha256);
    expect(c.workloadPinned).toBe(false);
    const pinned = await verifyAzure(await evidence(gce.log), {
      ...options,
      policy: { boot: { pcrs: { sha256: { '4': [gce.meta.pcrs!.sha256!['4']!] } } } },
    });
    expect(pinned.workloadPinned).toBe(true);
  });

  it('another boot’s log is refused; a boot policy without a log is refused', async () => {
    const other = fixture('go-tpm-tools__rhel8-uefi');
    expect(await codeOf(verifyAzure(await evidence(other.log), options))).toBe('ERR_EVENTLOG_MISMATCH');
    expect(
      await codeOf(verifyAzure(await evidence(), { ...options, policy: { boot: { secureBoot: true } } })),
    ).toBe('ERR_EVIDENCE_POLICY');
  });

  it('a CCEL on azure-sev-snp has no RTMRs to be checked against', async () => {
    const cos = fixture('go-eventlog__cos-113-intel-tdx');
    const ev = { ...(await evidence()), eventLog: { log: cos.log, ccel: true } };
    expect(await codeOf(verifyAzure(ev, options))).toBe('ERR_EVIDENCE_MALFORMED');
  });
});
