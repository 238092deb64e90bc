/**
 * A policy means "only what I listed", formats included: a policy that names one format accepts
 * only that format (in verifyEvidence and on a channel, both directions), and a policy that names
 * none accepts any genuine evidence and says so in `claims.workloadPinned`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { AttestedChannel } from '../src/channel/channel.js';
import { attestedConnect } from '../src/channel/connect.js';
import { type AttestedServer, createAttestedServer } from '../src/channel/server.js';
import { AttestationError } from '../src/errors.js';
import { policyFormats, workloadPins } from '../src/evidence/appraise.js';
import { simulated } from '../src/evidence/providers/simulated.js';
import type { EvidenceInput, VerifyOptions } from '../src/evidence/types.js';
import { verifyEvidence } from '../src/evidence/verify.js';
import { closeServer, listen, nextServerError, rejectionOf } from './channel/helpers.js';

const RD = new Uint8Array(64).fill(7);
const NOW = new Date('2026-05-01T08:00:00Z');
const anchors = simulated.trustAnchors();
const M = simulated.defaults.snpMeasurement;
const MRTD = simulated.defaults.tdxMrTd;

const opts = (policy: unknown): VerifyOptions => ({
  trustAnchors: anchors,
  offline: true,
  now: NOW,
  policy: policy as VerifyOptions['policy'],
});

let snpEvidence: EvidenceInput | undefined;
let tdxEvidence: EvidenceInput | undefined;
async function evidence(format: 'snp' | 'tdx'): Promise<EvidenceInput> {
  if (format === 'snp') snpEvidence ??= await simulated.snp().getEvidence(RD);
  else tdxEvidence ??= await simulated.tdx({ now: NOW }).getEvidence(RD);
  return format === 'snp' ? snpEvidence! : tdxEvidence!;
}

async function refusal(p: Promise<unknown>): Promise<AttestationError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AttestationError);
    return err as AttestationError;
  }
  throw new Error('expected a refusal');
}

describe('verifyEvidence: the formats a policy names', () => {
  it('an SNP-only policy refuses genuine TDX evidence (ERR_EVIDENCE_POLICY, field "format")', async () => {
    const err = await refusal(verifyEvidence(await evidence('tdx'), opts({ snp: { measurements: [M] } })));
    expect(err.code).toBe('ERR_EVIDENCE_POLICY');
    expect(err.details.field).toBe('format');
    expect(err.details.format).toBe('tdx');
  });

  it('a TDX-only policy refuses genuine SNP evidence, even a section with no field in it', async () => {
    for (const policy of [{ tdx: { mrTd: [MRTD] } }, { tdx: {} }]) {
      const err = await refusal(verifyEvidence(await evidence('snp'), opts(policy)));
      expect(err.code).toBe('ERR_EVIDENCE_POLICY');
      expect(err.details.field).toBe('format');
    }
  });

  it('the format is refused before any collateral is looked for (no PCS fetch for a TDX quote)', async () => {
    const ev = await evidence('tdx');
    const { collateral: _c, ...bare } = ev;
    // Offline without collateral would be ERR_COLLATERAL_UNAVAILABLE if the pipeline ran.
    const err = await refusal(verifyEvidence(bare, opts({ snp: {} })));
    expect(err.details.field).toBe('format');
  });

  it('a policy naming both formats accepts both', async () => {
    const policy = { snp: { measurements: [M] }, tdx: { mrTd: [MRTD] } };
    expect((await verifyEvidence(await evidence('snp'), opts(policy))).workloadPinned).toBe(true);
    expect((await verifyEvidence(await evidence('tdx'), opts(policy))).workloadPinned).toBe(true);
  });

  it('a policy naming no format accepts any genuine evidence, with workloadPinned false', async () => {
    for (const policy of [undefined, {}, { comment: 'defaults only' }]) {
      expect((await verifyEvidence(await evidence('snp'), opts(policy))).workloadPinned).toBe(false);
      expect((await verifyEvidence(await evidence('tdx'), opts(policy))).workloadPinned).toBe(false);
    }
  });

  it.each([
    ['measurements', true],
    ['hostData', true],
    ['idKeyDigests', true],
    // The chip is hardware, not the workload.
    ['chipIds', false],
  ])('SNP %s pins the workload: %s', async (field, pinned) => {
    const ev = await evidence('snp');
    const free = await verifyEvidence(ev, opts({ snp: {} }));
    const claim = {
      measurements: 'measurement',
      hostData: 'hostData',
      idKeyDigests: 'idKeyDigest',
      chipIds: 'chipId',
    }[field]!;
    const value = (free as unknown as Record<string, string>)[claim]!;
    const policy = { snp: { [field]: [value] } };
    expect((await verifyEvidence(ev, opts(policy))).workloadPinned).toBe(pinned);
    expect(workloadPins('sev-snp', policy).length > 0).toBe(pinned);
    expect(free.workloadPinned).toBe(false);
  });

  it('SNP fields that tighten the platform but not the workload leave it unpinned', async () => {
    const policy = {
      snp: { allowDebug: false, vmpls: [0, 1, 2, 3], minGuestSvn: 0, signers: ['vcek', 'vlek'] },
    };
    expect((await verifyEvidence(await evidence('snp'), opts(policy))).workloadPinned).toBe(false);
  });

  it.each([
    ['mrTd', true],
    ['rtmr0', true],
    ['rtmr1', true],
    ['rtmr2', true],
    ['rtmr3', true],
    ['mrConfigId', true],
    ['mrOwner', true],
    ['mrOwnerConfig', true],
    // The TDX module is not the workload.
    ['mrSeam', false],
  ])('TDX %s pins the workload: %s', async (field, pinned) => {
    const ev = await evidence('tdx');
    const free = await verifyEvidence(ev, opts({ tdx: {} }));
    const value = (free as unknown as Record<string, string>)[field]!;
    const claims = await verifyEvidence(ev, opts({ tdx: { [field]: [value] } }));
    expect(claims.workloadPinned).toBe(pinned);
    expect(free.workloadPinned).toBe(false);
  });

  it('policyFormats(): the named formats, or every format', () => {
    expect(policyFormats({})).toEqual(['sev-snp', 'tdx', 'azure-sev-snp', 'azure-tdx']);
    expect(policyFormats({ snp: {} })).toEqual(['sev-snp']);
    expect(policyFormats({ tdx: {} })).toEqual(['tdx']);
    expect(policyFormats({ snp: {}, tdx: {} })).toEqual(['sev-snp', 'tdx']);
    // Azure evidence needs an azure section once any section is named; inside it, snp / tdx list the hardware.
    expect(policyFormats({ azure: {} })).toEqual(['azure-sev-snp', 'azure-tdx']);
    expect(policyFormats({ azure: { snp: {} } })).toEqual(['azure-sev-snp']);
    expect(policyFormats({ azure: { tdx: {} } })).toEqual(['azure-tdx']);
    expect(policyFormats({ snp: {}, azure: { requireReportBinding: true } })).toEqual([
      'sev-snp',
      'azure-sev-snp',
      'azure-tdx',
    ]);
  });
});

describe('channels: REQUEST.accept lists only the formats the policy names', () => {
  let server: AttestedServer | undefined;
  afterEach(async () => {
    if (server?.listening) await closeServer(server);
    server = undefined;
  });

  it('a client with an SNP policy never opens a channel to a genuine TDX server', async () => {
    server = createAttestedServer({ evidence: simulated.tdx({ now: NOW }) }, (ch: AttestedChannel) =>
      ch.destroy(),
    );
    const port = await listen(server);
    const serverError = nextServerError(server);
    const err = await rejectionOf(
      attestedConnect({
        host: '127.0.0.1',
        port,
        verify: { policy: { snp: { measurements: [M] } }, trustAnchors: anchors, now: NOW },
      }),
    );
    // The client learns it from the server's ALERT: no channel, no data sent.
    expect(err.code).toBe('ERR_PEER_REJECTED');
    const s = await serverError;
    // The server was offered only the SNP report type.
    expect(s.code).toBe('ERR_UNSUPPORTED_EVIDENCE');
    expect(s.message).toContain('accepts application/vnd.amd.sev-snp.report;');
    expect(s.message).not.toContain('application/vnd.intel.tdx.quote,');
  });

  it('mutual: a server with a TDX policy refuses an SNP client', async () => {
    server = createAttestedServer({
      evidence: simulated.tdx({ now: NOW }),
      verify: { policy: { tdx: { mrTd: [MRTD] } }, trustAnchors: anchors, now: NOW },
    });
    const port = await listen(server);
    const serverError = nextServerError(server);
    const err = await rejectionOf(
      attestedConnect({
        host: '127.0.0.1',
        port,
        evidence: simulated.snp(),
        verify: { policy: { tdx: { mrTd: [MRTD] } }, trustAnchors: anchors, now: NOW },
      }),
    );
    expect(err.code).toBe('ERR_UNSUPPORTED_EVIDENCE');
    expect(err.message).toContain('the peer accepts application/vnd.intel.tdx.quote;');
    // The server hears the client's ALERT: it gets no evidence, and says why.
    const s = await serverError;
    expect(s.code).toBe('ERR_PEER_REJECTED');
    expect(s.message).toContain('ERR_UNSUPPORTED_EVIDENCE');
  });

  it('re-attestation is appraised under the policy of that moment: a format it no longer names is refused', async () => {
    const policy: { snp?: object; tdx?: object } = { snp: { measurements: [M] } };
    let serverSide: AttestedChannel | undefined;
    server = createAttestedServer(
      { evidence: simulated.snp(), verify: { policy: policy as never, trustAnchors: anchors, now: NOW } },
      (ch: AttestedChannel) => {
        serverSide = ch;
        ch.on('error', () => {});
      },
    );
    const port = await listen(server);
    const ch = await attestedConnect({
      host: '127.0.0.1',
      port,
      evidence: simulated.snp(),
      verify: { policy: { snp: { measurements: [M] } }, trustAnchors: anchors, now: NOW },
    });
    ch.on('error', () => {});
    try {
      while (!serverSide) await new Promise((r) => setTimeout(r, 5));
      expect((await serverSide.reattest()).workloadPinned).toBe(true);
      delete policy.snp;
      policy.tdx = { mrTd: [MRTD] };
      const err = await rejectionOf(serverSide.reattest());
      expect(err.code).toBe('ERR_EVIDENCE_POLICY');
      expect(err.details.field).toBe('format');
    } finally {
      ch.destroy();
      serverSide?.destroy();
    }
  });

  it('a client whose policy names no format accepts either, and its claims say the workload is not pinned', async () => {
    for (const evidence of [simulated.snp(), simulated.tdx({ now: NOW })]) {
      server = createAttestedServer({ evidence }, (ch: AttestedChannel) => ch.end());
      const port = await listen(server);
      const ch = await attestedConnect({
        host: '127.0.0.1',
        port,
        verify: { policy: {}, trustAnchors: anchors, now: NOW },
      });
      expect(ch.peer?.workloadPinned).toBe(false);
      ch.destroy();
      await closeServer(server);
    }
  });
});
