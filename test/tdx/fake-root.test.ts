/**
 * A chain ending at a root that has every name of the Intel SGX Root CA (like the synthetic root
 * of Intel's QVL sample data, SHA-256 bf85a53f…) but is not the pinned certificate must be refused.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { parseTdxQuote } from '../../src/evidence/tdx/quote.js';
import { INTEL_SGX_ROOT_CA_DER, INTEL_SGX_ROOT_CA_SHA256 } from '../../src/evidence/tdx/roots.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { buildCertificate, type NameSpec } from '../../src/evidence/x509/build.js';
import { parseCertificate } from '../../src/evidence/x509/cert.js';
import { derToPem } from '../../src/evidence/x509/pem.js';
import { errorOf } from './fixtures.js';

const NOW = new Date('2026-01-15T00:00:00Z');
const INTEL_NAME = (cn: string): NameSpec => [
  ['CN', cn],
  ['O', 'Intel Corporation'],
  ['L', 'Santa Clara'],
  ['ST', 'CA'],
  ['C', 'US'],
];
const CA = { oid: '2.5.29.19', value: Uint8Array.from([0x30, 0x03, 0x01, 0x01, 0xff]), critical: true };

function p256(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}
function u16(n: number): Uint8Array {
  return Uint8Array.of(n & 0xff, n >> 8);
}
function u32(n: number): Uint8Array {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return new Uint8Array(b);
}

/** A quote of the simulated platform whose QE report is certified by a PCK under a fake "Intel SGX Root CA". */
async function quoteUnderFakeRoot(): Promise<{ quote: Uint8Array; root: Uint8Array }> {
  const root = p256();
  const ca = p256();
  const pck = p256();
  const base = { notBefore: new Date('2021-08-06T00:00:00Z'), notAfter: new Date('2049-12-31T23:59:59Z') };
  const rootDer = buildCertificate({
    ...base,
    subject: INTEL_NAME('Intel SGX Root CA'),
    issuer: INTEL_NAME('Intel SGX Root CA'),
    serial: Uint8Array.of(0x22, 0x65, 0x0c),
    publicKey: root.publicKey,
    signingKey: root.privateKey,
    algorithm: 'ecdsa-sha256',
    extensions: [CA],
  });
  const caDer = buildCertificate({
    ...base,
    subject: INTEL_NAME('Intel SGX PCK Platform CA'),
    issuer: INTEL_NAME('Intel SGX Root CA'),
    serial: Uint8Array.of(0x01),
    publicKey: ca.publicKey,
    signingKey: root.privateKey,
    algorithm: 'ecdsa-sha256',
    extensions: [CA],
  });
  const sgx = parseCertificate(simulated.intelChain().pck).extensions.get('1.2.840.113741.1.13.1')!;
  const pckDer = buildCertificate({
    ...base,
    subject: INTEL_NAME('Intel SGX PCK Certificate'),
    issuer: INTEL_NAME('Intel SGX PCK Platform CA'),
    serial: Uint8Array.of(0x02),
    publicKey: createPublicKey(pck.privateKey),
    signingKey: ca.privateKey,
    algorithm: 'ecdsa-sha256',
    extensions: [{ oid: '1.2.840.113741.1.13.1', value: sgx.value }],
  });
  const ev = await simulated.tdx({ now: NOW, collateral: false }).getEvidence(new Uint8Array(64));
  const q = parseTdxQuote(ev.report);
  const pem = Buffer.from(`${derToPem(pckDer)}${derToPem(caDer)}${derToPem(rootDer)}\0`, 'latin1');
  const qeSig = sign('sha256', q.qeReport.raw, { key: pck.privateKey, dsaEncoding: 'ieee-p1363' });
  const cert = Buffer.concat([
    q.qeReport.raw,
    qeSig,
    u16(q.qeAuthData.length),
    q.qeAuthData,
    u16(5),
    u32(pem.length),
    pem,
  ]);
  const sigData = Buffer.concat([q.signature, q.attestationKey, u16(6), u32(cert.length), cert]);
  return {
    quote: new Uint8Array(Buffer.concat([q.signedData, u32(sigData.length), sigData])),
    root: rootDer,
  };
}

describe('TDX root pinning', () => {
  it('the built-in root is the pinned Intel SGX Root CA', () => {
    expect(parseCertificate(INTEL_SGX_ROOT_CA_DER).fingerprint256).toBe(INTEL_SGX_ROOT_CA_SHA256);
    expect(INTEL_SGX_ROOT_CA_SHA256).toBe('44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3');
  });

  it('a same-named fake root is refused by default', async () => {
    const { quote, root } = await quoteUnderFakeRoot();
    expect(parseCertificate(root).subject).toEqual(parseCertificate(INTEL_SGX_ROOT_CA_DER).subject);
    const err = await errorOf(() => verifyEvidence({ report: quote }, { now: NOW, offline: true }));
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    expect(err.message).toMatch(/not a trusted Intel root/);
  });

  it('control: trusting the fake root explicitly gets past the chain and the signatures', async () => {
    const { quote, root } = await quoteUnderFakeRoot();
    const err = await errorOf(() =>
      verifyEvidence({ report: quote }, { now: NOW, offline: true, trustAnchors: { intelRoots: [root] } }),
    );
    expect(err.code).toBe('ERR_COLLATERAL_UNAVAILABLE');
  });
});
