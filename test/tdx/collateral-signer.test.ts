/**
 * Issue 10 item 2: TCB info and QE identity must be signed by Intel SGX TCB Signing, issued
 * directly by the root, and the PCK CRL by a PCK CA. A platform owns its PCK key (the QE signs
 * with it), so collateral re-signed with that key under the quote's own PCK chain would turn an
 * OutOfDate or Revoked platform into UpToDate; it must be refused.
 */
import { createPublicKey, type KeyObject, sign } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { attestedConnect } from '../../src/channel/connect.js';
import { type AttestedServer, createAttestedServer } from '../../src/channel/server.js';
import { bytesToHex } from '../../src/evidence/bytes.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { simulatedKey } from '../../src/evidence/providers/simulated-snp.js';
import { SIMULATED_ORGANIZATION } from '../../src/evidence/simulated-marker.js';
import type { EvidenceInput, TdxClaims, TdxCollateral, VerifyOptions } from '../../src/evidence/types.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { buildCertificate, buildCrl, keyUsage, type NameSpec } from '../../src/evidence/x509/build.js';
import { OID } from '../../src/evidence/x509/cert.js';
import { derToPem } from '../../src/evidence/x509/pem.js';
import { closeServer, listen, rejectionOf } from '../channel/helpers.js';
import { errorOf } from './fixtures.js';

const NOW = new Date('2026-01-15T00:00:00Z');
const DAY = 86_400_000;
const anchors = simulated.trustAnchors();
const chain = simulated.intelChain();

function verify(input: EvidenceInput, o: Partial<VerifyOptions> = {}) {
  return verifyEvidence(input, {
    now: NOW,
    trustAnchors: anchors,
    offline: true,
    ...o,
  }) as Promise<TdxClaims>;
}

const p1363 = (text: string, key: KeyObject) =>
  bytesToHex(new Uint8Array(sign('sha256', Buffer.from(text, 'utf8'), { key, dsaEncoding: 'ieee-p1363' })));

/** UpToDate collateral whose TCB info and QE identity are signed by `key` under `issuerChain`. */
function resigned(key: KeyObject, issuerChain: string, now = NOW): TdxCollateral {
  const c = simulated.tdxCollateral({ now, tcbStatus: 'UpToDate' });
  return {
    ...c,
    tcb_info_issuer_chain: issuerChain,
    tcb_info_signature: p1363(c.tcb_info, key),
    qe_identity_issuer_chain: issuerChain,
    qe_identity_signature: p1363(c.qe_identity, key),
  };
}

const PCK_CHAIN_PEM = derToPem(chain.pck) + derToPem(chain.platformCa) + derToPem(chain.root);
const intelName = (cn: string): NameSpec => [
  ['CN', cn],
  ['O', SIMULATED_ORGANIZATION],
  ['L', 'Santa Clara'],
  ['ST', 'CA'],
  ['C', 'US'],
];

describe('TDX collateral signed by a platform key (issue 10 item 2)', () => {
  it('control: an OutOfDate platform is refused with its genuine collateral', async () => {
    const ev = await simulated.tdx({ now: NOW, tcbStatus: 'OutOfDate' }).getEvidence(new Uint8Array(64));
    const err = await errorOf(() => verify(ev));
    expect(err.code).toBe('ERR_EVIDENCE_TCB');
    expect(err.details.tcbStatus).toBe('OutOfDate');
  });

  it('control: collateral re-signed by the genuine TCB Signing key under its own chain is accepted', async () => {
    const ev = await simulated.tdx({ now: NOW, tcbStatus: 'OutOfDate' }).getEvidence(new Uint8Array(64));
    const c = resigned(simulatedKey('intelTcbSigning'), derToPem(chain.tcbSigning) + derToPem(chain.root));
    // The TCB info says UpToDate for the platform's TCB; only its signer decides whether to believe it.
    await expect(verify({ ...ev, collateral: c })).resolves.toMatchObject({ tcbStatus: 'UpToDate' });
  });

  it("UpToDate collateral re-signed with the platform's PCK key, issuer chain = its PCK chain, is refused", async () => {
    const ev = await simulated.tdx({ now: NOW, tcbStatus: 'OutOfDate' }).getEvidence(new Uint8Array(64));
    const err = await errorOf(() =>
      verify({ ...ev, collateral: resigned(simulatedKey('intelPck'), PCK_CHAIN_PEM) }),
    );
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    expect(err.message).toMatch(/TCB info issuer chain: a chain of 3 certificates, expected 2/);
  });

  it('QE identity alone re-signed with the PCK key is refused', async () => {
    const ev = await simulated.tdx({ now: NOW }).getEvidence(new Uint8Array(64));
    const good = simulated.tdxCollateral({ now: NOW });
    const bad = resigned(simulatedKey('intelPck'), PCK_CHAIN_PEM);
    const err = await errorOf(() =>
      verify({
        ...ev,
        collateral: {
          ...good,
          qe_identity_issuer_chain: bad.qe_identity_issuer_chain,
          qe_identity_signature: bad.qe_identity_signature,
        },
      }),
    );
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    expect(err.message).toMatch(/QE identity issuer chain/);
  });

  it('a leaf under the root that is not named Intel SGX TCB Signing is refused (CN rule)', async () => {
    // Signed by the root, not a CA, digitalSignature: only its name is wrong.
    const key = simulatedKey('intelPck');
    const signer = buildCertificate({
      subject: intelName('Intel SGX PCK Certificate'),
      issuer: intelName('Intel SGX Root CA'),
      serial: Uint8Array.of(0x42),
      notBefore: new Date(NOW.getTime() - DAY),
      notAfter: new Date(NOW.getTime() + 365 * DAY),
      publicKey: createPublicKey(key),
      signingKey: simulatedKey('intelRoot'),
      algorithm: 'ecdsa-sha256',
      extensions: [{ oid: OID.keyUsage, value: keyUsage([0, 1]), critical: true }],
    });
    const ev = await simulated.tdx({ now: NOW }).getEvidence(new Uint8Array(64));
    const err = await errorOf(() =>
      verify({ ...ev, collateral: resigned(key, derToPem(signer) + derToPem(chain.root)) }),
    );
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    expect(err.message).toMatch(/is not named "Intel SGX TCB Signing"/);
  });

  it('a PCK CRL signed by the PCK key under the PCK chain is refused', async () => {
    const ev = await simulated.tdx({ now: NOW }).getEvidence(new Uint8Array(64));
    const good = simulated.tdxCollateral({ now: NOW });
    const crl = buildCrl({
      issuer: intelName('Intel SGX PCK Certificate'),
      thisUpdate: new Date(NOW.getTime() - DAY),
      nextUpdate: new Date(NOW.getTime() + 30 * DAY),
      signingKey: simulatedKey('intelPck'),
      algorithm: 'ecdsa-sha256',
    });
    const err = await errorOf(() =>
      verify({
        ...ev,
        collateral: { ...good, pck_crl: bytesToHex(crl), pck_crl_issuer_chain: PCK_CHAIN_PEM },
      }),
    );
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    expect(err.message).toMatch(/PCK CRL issuer chain: a chain of 3 certificates, expected 2/);
  });

  it('a PCK CRL issuer chain headed by the TCB Signing certificate is refused', async () => {
    const ev = await simulated.tdx({ now: NOW }).getEvidence(new Uint8Array(64));
    const good = simulated.tdxCollateral({ now: NOW });
    const err = await errorOf(() =>
      verify({
        ...ev,
        collateral: { ...good, pck_crl_issuer_chain: derToPem(chain.tcbSigning) + derToPem(chain.root) },
      }),
    );
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    expect(err.message).toMatch(/PCK CRL issuer chain: PCK CA "Intel SGX TCB Signing" is not named/);
  });
});

describe('the same attack over a channel', () => {
  let server: AttestedServer | undefined;
  afterEach(async () => {
    if (server?.listening) await closeServer(server);
    server = undefined;
  });

  /** A server on an OutOfDate simulated TDX platform that ships `collateral` with its quote. */
  async function serverWith(collateral: TdxCollateral): Promise<number> {
    const platform = simulated.tdx({ tcbStatus: 'OutOfDate' });
    server = createAttestedServer(
      {
        evidence: {
          format: platform.format,
          getEvidence: async (rd, o) => ({ ...(await platform.getEvidence(rd, o)), collateral }),
        },
      },
      (ch) => {
        ch.on('error', () => {});
        ch.end();
      },
    );
    return listen(server);
  }
  const connect = (port: number) =>
    attestedConnect({ host: '127.0.0.1', port, verify: { trustAnchors: anchors, policy: { tdx: {} } } });

  it('control: genuinely signed UpToDate collateral opens the channel', async () => {
    const now = new Date();
    const port = await serverWith(
      resigned(simulatedKey('intelTcbSigning'), derToPem(chain.tcbSigning) + derToPem(chain.root), now),
    );
    const ch = await connect(port);
    expect(ch.peer).toMatchObject({ format: 'tdx', tcbStatus: 'UpToDate' });
    ch.destroy();
  });

  it('collateral re-signed with the PCK key is refused by the client', async () => {
    const port = await serverWith(resigned(simulatedKey('intelPck'), PCK_CHAIN_PEM, new Date()));
    const err = await rejectionOf(connect(port));
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    expect(err.message).toMatch(/issuer chain/);
  });
});
