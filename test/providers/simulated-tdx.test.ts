import { createHash, createPublicKey, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bytesToHex } from '../../src/evidence/bytes.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import {
  DEFAULT_TDX_MRTD,
  SIMULATED_TDX_PLATFORM,
  simulatedTdx,
  simulatedTdxCollateral,
} from '../../src/evidence/providers/simulated-tdx.js';
import { SIMULATED_ORGANIZATION } from '../../src/evidence/simulated-marker.js';
import type { TdxCollateral } from '../../src/evidence/types.js';
import { TDX_LEVEL_STATUSES } from '../../src/evidence/types.js';
import { isSignedBy, parseCertificate } from '../../src/evidence/x509/cert.js';
import { parseCrl } from '../../src/evidence/x509/crl.js';
import { decodeOid, readChildren, readTlv } from '../../src/evidence/x509/der.js';
import { pemToDer } from '../../src/evidence/x509/pem.js';
import { thrownCode as code } from '../helpers/codes.js';

const RD = Uint8Array.from({ length: 64 }, (_, i) => 0xff - i);
const NOW = new Date('2026-03-01T12:00:00Z');

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const hex = (b: Uint8Array, o: number, n: number) => bytesToHex(b.subarray(o, o + n));

/** A P-256 public key from raw X‖Y. */
function rawKey(xy: Uint8Array) {
  const spkiPrefix = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
  return createPublicKey({
    key: Buffer.concat([spkiPrefix, Buffer.from([4]), xy]),
    format: 'der',
    type: 'spki',
  });
}

/** Walks the quote by its length fields (docs/reference/tdx-format.md §1) and returns every part. */
function split(quote: Uint8Array) {
  const v = view(quote);
  const version = v.getUint16(0, true);
  const bodyStart = version === 5 ? 54 : 48;
  const bodySize = version === 5 ? v.getUint32(50, true) : 584;
  const signedEnd = bodyStart + bodySize;
  const sigLen = v.getUint32(signedEnd, true);
  const sd = signedEnd + 4;
  const certType = v.getUint16(sd + 128, true);
  const certSize = v.getUint32(sd + 130, true);
  const cd = sd + 134;
  const qe = quote.subarray(cd, cd + 384);
  const authLen = v.getUint16(cd + 448, true);
  const auth = quote.subarray(cd + 450, cd + 450 + authLen);
  const inner = cd + 450 + authLen;
  const innerType = v.getUint16(inner, true);
  const innerSize = v.getUint32(inner + 2, true);
  return {
    version,
    bodyStart,
    bodySize,
    signed: quote.subarray(0, signedEnd),
    sigLen,
    end: sd + sigLen,
    quoteSig: quote.subarray(sd, sd + 64),
    attKey: quote.subarray(sd + 64, sd + 128),
    certType,
    certSize,
    certEnd: cd + certSize,
    qe,
    qeSig: quote.subarray(cd + 384, cd + 448),
    auth,
    innerType,
    innerSize,
    pem: Buffer.from(quote.subarray(inner + 6, inner + 6 + innerSize)).toString('latin1'),
  };
}

function p256(data: Uint8Array, sig: Uint8Array, key: ReturnType<typeof createPublicKey>): boolean {
  return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig);
}

describe('simulated TDX quote', () => {
  it('v4: header, TD report 1.0 body and signature data at the real offsets', async () => {
    const rtmr1 = new Uint8Array(48).fill(0x11);
    const { report: q } = await simulatedTdx({ rtmrs: [undefined as never, rtmr1], now: NOW }).getEvidence(
      RD,
    );
    const v = view(q);
    expect(v.getUint16(0, true)).toBe(4);
    expect(v.getUint16(2, true)).toBe(2);
    expect(v.getUint32(4, true)).toBe(0x81);
    expect(v.getUint32(8, true)).toBe(0);
    expect(hex(q, 12, 16)).toBe('939a7233f79c4ca9940a0db3957f0607');
    expect(hex(q, 48, 16)).toBe('06010300000000000000000000000000');
    expect(hex(q, 112, 48)).toBe('00'.repeat(48)); // MRSIGNERSEAM
    expect(hex(q, 160, 8)).toBe('0000000000000000'); // SEAMATTRIBUTES
    expect(hex(q, 168, 8)).toBe('0000001000000000'); // TDATTRIBUTES: SEPT_VE_DISABLE
    expect(hex(q, 176, 8)).toBe('e702060000000000');
    expect(hex(q, 184, 48)).toBe(DEFAULT_TDX_MRTD);
    expect(hex(q, 376, 48)).toBe('00'.repeat(48)); // RTMR0
    expect(hex(q, 424, 48)).toBe(bytesToHex(rtmr1));
    expect(hex(q, 568, 64)).toBe(bytesToHex(RD));
    const p = split(q);
    expect(p.signed.length).toBe(632);
    expect(p.end).toBe(q.length);
    expect(p.certType).toBe(6);
    expect(p.certEnd).toBe(q.length);
    expect(p.innerType).toBe(5);
    expect(p.pem.endsWith('\0')).toBe(true);
    expect(p.auth.length).toBe(32);
  });

  it('v5: body descriptor type 3, TD report 1.5 with TEE_TCB_SVN2 and MRSERVICETD', async () => {
    const mrServiceTd = new Uint8Array(48).fill(0x42);
    const { report: q } = await simulatedTdx({ version: 5, mrServiceTd, now: NOW }).getEvidence(RD);
    const v = view(q);
    expect(v.getUint16(0, true)).toBe(5);
    expect(v.getUint16(48, true)).toBe(3);
    expect(v.getUint32(50, true)).toBe(648);
    expect(hex(q, 190, 48)).toBe(DEFAULT_TDX_MRTD);
    expect(hex(q, 574, 64)).toBe(bytesToHex(RD));
    expect(hex(q, 638, 16)).toBe(hex(q, 54, 16));
    expect(hex(q, 654, 48)).toBe(bytesToHex(mrServiceTd));
    const p = split(q);
    expect(p.signed.length).toBe(702);
    expect(p.end).toBe(q.length);
  });

  it.each([4, 5] as const)(
    'v%i: quote signed by the attestation key, QE report by the PCK, QE REPORTDATA bound',
    async (version) => {
      const { report: q } = await simulatedTdx({ version, now: NOW }).getEvidence(RD);
      const p = split(q);
      const att = rawKey(p.attKey);
      expect(p256(p.signed, p.quoteSig, att)).toBe(true);
      const tampered = p.signed.slice();
      tampered[0x3c]! ^= 1;
      expect(p256(tampered, p.quoteSig, att)).toBe(false);
      const [pck, ca, root] = pemToDer(p.pem).map((d) => parseCertificate(d));
      expect(p256(p.qe, p.qeSig, pck!.publicKey)).toBe(true);
      expect(p256(p.qe, p.qeSig, ca!.publicKey)).toBe(false);
      const digest = createHash('sha256').update(p.attKey).update(p.auth).digest('hex');
      expect(hex(p.qe, 320, 64)).toBe(digest + '00'.repeat(32));
      // QE identity fields the collateral describes.
      expect(hex(p.qe, 128, 32)).toBe('dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5');
      expect(view(p.qe).getUint16(256, true)).toBe(2);
      expect(view(p.qe).getUint16(258, true)).toBe(SIMULATED_TDX_PLATFORM.qeIsvSvn);
      // Chain: PCK ← Platform CA ← Root, all ECDSA-SHA256 P-256, all marked simulated.
      expect([pck, ca, root].map((c) => c!.subject.CN)).toEqual([
        'Intel SGX PCK Certificate',
        'Intel SGX PCK Platform CA',
        'Intel SGX Root CA',
      ]);
      for (const c of [pck, ca, root]) {
        expect(c!.subject.O).toBe(SIMULATED_ORGANIZATION);
        expect(c!.sigAlg.algorithm).toBe('1.2.840.10045.4.3.2');
        expect(c!.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
      }
      expect(isSignedBy(pck!, ca!)).toBe(true);
      expect(isSignedBy(ca!, root!)).toBe(true);
      expect(isSignedBy(root!, root!)).toBe(true);
    },
  );

  it('carries an SGX extension in the PCK with PPID, TCB, PCE-ID, FMSPC, type, instance ID and configuration', async () => {
    const pck = parseCertificate(simulated.intelChain().pck);
    const ext = pck.extensions.get('1.2.840.113741.1.13.1')!.value;
    const fields = new Map<string, Uint8Array>();
    for (const pair of readChildren(readTlv(ext).value)) {
      const [oid, value] = readChildren(pair.value);
      fields.set(decodeOid(oid!.value), value!.value);
      fields.set(`${decodeOid(oid!.value)}#tag`, Uint8Array.of(value!.tag));
    }
    const base = '1.2.840.113741.1.13.1';
    expect(fields.get(`${base}.1`)!.length).toBe(16);
    expect(bytesToHex(fields.get(`${base}.3`)!)).toBe(SIMULATED_TDX_PLATFORM.pceId);
    expect(bytesToHex(fields.get(`${base}.4`)!)).toBe(SIMULATED_TDX_PLATFORM.fmspc);
    expect(fields.get(`${base}.5#tag`)![0]).toBe(0x0a);
    expect([...fields.get(`${base}.5`)!]).toEqual([1]);
    expect(fields.get(`${base}.6`)!.length).toBe(16);
    expect(readChildren(fields.get(`${base}.7`)!).length).toBe(3);
    const tcb = readChildren(fields.get(`${base}.2`)!).map((pair) => {
      const [oid, value] = readChildren(pair.value);
      return [decodeOid(oid!.value), value!] as const;
    });
    expect(tcb.map(([oid]) => oid)).toEqual(Array.from({ length: 18 }, (_, i) => `${base}.2.${i + 1}`));
    expect(tcb.slice(0, 16).map(([, v]) => v.value.reduce((n, b) => n * 256 + b, 0))).toEqual([
      ...SIMULATED_TDX_PLATFORM.sgxTcbComponents,
    ]);
    expect(tcb[16]![1].value.reduce((n, b) => n * 256 + b, 0)).toBe(SIMULATED_TDX_PLATFORM.pceSvn);
    expect(tcb[17]![1].tag).toBe(0x04);
    expect(tcb[17]![1].value.length).toBe(16);
  });

  it('refuses bad options and bad report data with ERR_INVALID_ARGUMENT', async () => {
    for (const bad of [
      { version: 3 },
      { mrTd: new Uint8Array(47) },
      { rtmrs: [1, 2, 3, 4, 5] },
      { tdAttributes: '00' },
      { mrServiceTd: new Uint8Array(48) }, // v4 has no MRSERVICETD
      { tcbStatus: 'Fine' },
      { revoked: ['root'] },
      { now: new Date(Number.NaN) },
    ])
      expect(
        code(() => simulatedTdx(bad as never)),
        JSON.stringify(bad),
      ).toBe('ERR_INVALID_ARGUMENT');
    await expect(simulatedTdx({ now: NOW }).getEvidence(new Uint8Array(32))).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
  });

  it('omits collateral on request', async () => {
    const ev = await simulatedTdx({ collateral: false }).getEvidence(RD);
    expect(ev.collateral).toBeUndefined();
  });
});

describe('simulated TDX collateral', () => {
  async function collateral(options: Parameters<typeof simulatedTdx>[0] = {}): Promise<TdxCollateral> {
    return (await simulatedTdx({ now: NOW, ...options }).getEvidence(RD)).collateral as TdxCollateral;
  }

  it('has the nine members; TCB info and QE identity are signed over their exact text', async () => {
    const c = await collateral();
    expect(Object.keys(c).sort()).toEqual(
      [
        'pck_crl',
        'pck_crl_issuer_chain',
        'qe_identity',
        'qe_identity_issuer_chain',
        'qe_identity_signature',
        'root_ca_crl',
        'tcb_info',
        'tcb_info_issuer_chain',
        'tcb_info_signature',
      ].sort(),
    );
    const [signer, root] = pemToDer(c.tcb_info_issuer_chain).map((d) => parseCertificate(d));
    expect(signer!.subject.CN).toBe('Intel SGX TCB Signing');
    expect(isSignedBy(signer!, root!)).toBe(true);
    const sig = (h: string) => Buffer.from(h, 'hex');
    expect(p256(Buffer.from(c.tcb_info), sig(c.tcb_info_signature), signer!.publicKey)).toBe(true);
    expect(p256(Buffer.from(c.qe_identity), sig(c.qe_identity_signature), signer!.publicKey)).toBe(true);
    expect(p256(Buffer.from(`${c.tcb_info} `), sig(c.tcb_info_signature), signer!.publicKey)).toBe(false);
    const info = JSON.parse(c.tcb_info);
    expect(info).toMatchObject({ id: 'TDX', version: 3, tcbType: 0, pceId: SIMULATED_TDX_PLATFORM.pceId });
    expect(info.fmspc.toLowerCase()).toBe(SIMULATED_TDX_PLATFORM.fmspc);
    expect(info.issueDate).toBe('2026-02-28T12:00:00Z');
    expect(info.nextUpdate).toBe('2026-03-31T12:00:00Z');
    expect(info.tdxModuleIdentities.map((m: { id: string }) => m.id)).toEqual(['TDX_01']);
    const qe = JSON.parse(c.qe_identity);
    expect(qe).toMatchObject({ id: 'TD_QE', version: 2, isvprodid: 2 });
    expect(qe.issueDate).toBe('2026-02-28T12:00:00Z');
  });

  it('CRLs are signed by their issuers, valid from now − 1 day to now + 30 days, and list what `revoked` asks', async () => {
    const chain = simulated.intelChain();
    const [ca, root, pck, signing] = [chain.platformCa, chain.root, chain.pck, chain.tcbSigning].map((d) =>
      parseCertificate(d),
    );
    const clean = await collateral();
    const pckCrl = parseCrl(Buffer.from(clean.pck_crl, 'hex'));
    const rootCrl = parseCrl(Buffer.from(clean.root_ca_crl, 'hex'));
    expect(p256(pckCrl.tbs, pckCrl.signature, ca!.publicKey)).toBe(false); // DER-encoded, not raw
    expect(verify('sha256', pckCrl.tbs, ca!.publicKey, pckCrl.signature)).toBe(true);
    expect(verify('sha256', rootCrl.tbs, root!.publicKey, rootCrl.signature)).toBe(true);
    expect(pckCrl.issuer.CN).toBe('Intel SGX PCK Platform CA');
    expect(pckCrl.thisUpdate.toISOString()).toBe('2026-02-28T12:00:00.000Z');
    expect(pckCrl.nextUpdate?.toISOString()).toBe('2026-03-31T12:00:00.000Z');
    expect(pckCrl.revoked.size + rootCrl.revoked.size).toBe(0);
    const bad = await collateral({ revoked: ['pck', 'platform-ca', 'tcb-signing'] });
    expect(parseCrl(Buffer.from(bad.pck_crl, 'hex')).revoked).toEqual(new Set([pck!.serialHex]));
    expect(parseCrl(Buffer.from(bad.root_ca_crl, 'hex')).revoked).toEqual(
      new Set([ca!.serialHex, signing!.serialHex]),
    );
  });

  /** The level Intel QVL's rules pick for the simulated platform (docs/reference/tdx-format.md §4 step 10). */
  function matchedLevel(c: TdxCollateral, teeTcbSvn: number[]) {
    const p = SIMULATED_TDX_PLATFORM;
    const info = JSON.parse(c.tcb_info) as {
      tcbLevels: Array<{
        tcb: { sgxtcbcomponents: { svn: number }[]; pcesvn: number; tdxtcbcomponents: { svn: number }[] };
        tcbStatus: string;
        advisoryIDs?: string[];
      }>;
    };
    const from = teeTcbSvn[1]! > 0 ? 2 : 0;
    return info.tcbLevels.find(
      (l) =>
        l.tcb.sgxtcbcomponents.every((s, i) => s.svn <= p.sgxTcbComponents[i]!) &&
        l.tcb.pcesvn <= p.pceSvn &&
        l.tcb.tdxtcbcomponents.every((s, i) => i < from || s.svn <= teeTcbSvn[i]!),
    );
  }

  it.each(TDX_LEVEL_STATUSES)('tcbStatus %s: the first matching TCB level carries it', (tcbStatus) => {
    const c = simulatedTdxCollateral({ tcbStatus, now: NOW });
    const level = matchedLevel(c, [6, 1, 3, ...new Array(13).fill(0)]);
    expect(level?.tcbStatus).toBe(tcbStatus);
    expect((level?.advisoryIDs ?? []).length > 0).toBe(tcbStatus !== 'UpToDate');
  });

  it('NoMatchingTcbLevel: no level matches the platform', () => {
    const c = simulatedTdxCollateral({ tcbStatus: 'NoMatchingTcbLevel', now: NOW });
    expect(matchedLevel(c, [6, 1, 3, ...new Array(13).fill(0)])).toBeUndefined();
  });

  it('a TDX 1.0 module (TEE_TCB_SVN[1] = 0) gets no module identity and matches on all 16 bytes', () => {
    const tee = [2, 0, 3, ...new Array(13).fill(0)];
    const c = simulatedTdxCollateral({ teeTcbSvn: Uint8Array.from(tee), now: NOW });
    expect(JSON.parse(c.tcb_info).tdxModuleIdentities).toEqual([]);
    expect(matchedLevel(c, tee)?.tcbStatus).toBe('UpToDate');
  });

  it('re-issues collateral for each fixed `now`, and keeps it for the same one', async () => {
    const p = simulatedTdx({ now: NOW });
    const a = (await p.getEvidence(RD)).collateral;
    expect((await p.getEvidence(RD)).collateral).toBe(a);
    const later = (await simulatedTdx({ now: new Date('2027-01-01T00:00:00Z') }).getEvidence(RD))
      .collateral as TdxCollateral;
    expect(JSON.parse(later.tcb_info).issueDate).toBe('2026-12-31T00:00:00Z');
  });
});
