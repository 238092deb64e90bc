import { createPrivateKey, verify } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bytesToHex } from '../../src/evidence/bytes.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { SIMULATED_KEYS } from '../../src/evidence/providers/simulated-keys.js';
import { DEFAULT_SNP_MEASUREMENT, simulatedSnp } from '../../src/evidence/providers/simulated-snp.js';
import { SIMULATED_ORGANIZATION } from '../../src/evidence/simulated-marker.js';
import { isSignedBy, parseCertificate } from '../../src/evidence/x509/cert.js';
import { parseCrl } from '../../src/evidence/x509/crl.js';
import { readTlv } from '../../src/evidence/x509/der.js';
import { pemToDer } from '../../src/evidence/x509/pem.js';
import { thrownCode as code } from '../helpers/codes.js';

const RD = Uint8Array.from({ length: 64 }, (_, i) => i + 1);
const AMD = '1.3.6.1.4.1.3704.1';

function u32(b: Uint8Array, o: number): number {
  return new DataView(b.buffer, b.byteOffset).getUint32(o, true);
}
function u64(b: Uint8Array, o: number): bigint {
  return new DataView(b.buffer, b.byteOffset).getBigUint64(o, true);
}
function hex(b: Uint8Array, o: number, n: number): string {
  return bytesToHex(b.subarray(o, o + n));
}
function isZero(b: Uint8Array, from: number, to: number): boolean {
  return b.subarray(from, to).every((x) => x === 0);
}

/** r‖s big-endian from the report's 72-byte little-endian fields. */
function p1363Signature(report: Uint8Array): Buffer {
  const r = Buffer.from(report.subarray(0x2a0, 0x2a0 + 48)).reverse();
  const s = Buffer.from(report.subarray(0x2e8, 0x2e8 + 48)).reverse();
  return Buffer.concat([r, s]);
}

function verifiesWith(report: Uint8Array, vekDer: Uint8Array): boolean {
  const key = parseCertificate(vekDer).publicKey;
  return verify(
    'sha384',
    report.subarray(0, 0x2a0),
    { key, dsaEncoding: 'ieee-p1363' },
    p1363Signature(report),
  );
}

/** Integer value of an AMD SPL extension (DER INTEGER inside the extension's OCTET STRING). */
function extInt(der: Uint8Array, oid: string): number | undefined {
  const ext = parseCertificate(der).extensions.get(oid);
  if (!ext) return undefined;
  const t = readTlv(ext.value);
  expect(t.tag).toBe(0x02);
  return t.value.reduce((n, b) => n * 256 + b, 0);
}

describe('simulated SEV-SNP report', () => {
  it('lays out a v5 report byte for byte (Milan defaults)', async () => {
    const { report } = await simulatedSnp().getEvidence(RD);
    expect(report.length).toBe(0x4a0);
    expect(u32(report, 0x000)).toBe(5);
    expect(u32(report, 0x004)).toBe(0); // guest SVN
    expect(u64(report, 0x008)).toBe(0x30000n);
    expect((u64(report, 0x008) >> 17n) & 1n).toBe(1n);
    expect(u32(report, 0x030)).toBe(0); // VMPL
    expect(u32(report, 0x034)).toBe(1); // ECDSA P-384 SHA-384
    expect(u32(report, 0x048)).toBe(0); // VCEK, no author key, chip key not masked
    expect(isZero(report, 0x04c, 0x050)).toBe(true);
    expect(hex(report, 0x050, 64)).toBe(bytesToHex(RD));
    expect(hex(report, 0x090, 48)).toBe(DEFAULT_SNP_MEASUREMENT);
    expect(report.subarray(0x160, 0x180).every((b) => b === 0xff)).toBe(true);
    // Milan layout: bl, tee, 4 reserved, snp, ucode.
    expect(hex(report, 0x180, 8)).toBe('04000000000016d5');
    expect([...report.subarray(0x188, 0x18b)]).toEqual([0x19, 0x01, 0x01]);
    expect(isZero(report, 0x18b, 0x1a0)).toBe(true);
    expect(isZero(report, 0x1a0, 0x1e0)).toBe(false);
    for (const off of [0x038, 0x1e0, 0x1f0]) expect(hex(report, off, 8)).toBe(hex(report, 0x180, 8));
    expect([...report.subarray(0x1e8, 0x1eb)]).toEqual([29, 55, 1]);
    expect(report[0x1eb]).toBe(0);
    expect(report[0x1ef]).toBe(0);
    expect(isZero(report, 0x208, 0x2a0)).toBe(true);
    expect(isZero(report, 0x2a0 + 48, 0x2e8)).toBe(true);
    expect(isZero(report, 0x2e8 + 48, 0x330)).toBe(true);
    expect(isZero(report, 0x330, 0x4a0)).toBe(true);
  });

  it('signs bytes 0x000–0x29F with the VCEK, r and s little-endian', async () => {
    const { report, vek } = await simulatedSnp().getEvidence(RD);
    expect(verifiesWith(report, vek!)).toBe(true);
    const tampered = report.slice();
    tampered[0x90]! ^= 1;
    expect(verifiesWith(tampered, vek!)).toBe(false);
    // Big-endian r/s would not verify: the byte order is part of the format.
    const be = Buffer.concat([
      Buffer.from(report.subarray(0x2a0, 0x2d0)),
      Buffer.from(report.subarray(0x2e8, 0x318)),
    ]);
    expect(
      verify(
        'sha384',
        report.subarray(0, 0x2a0),
        { key: parseCertificate(vek!).publicKey, dsaEncoding: 'ieee-p1363' },
        be,
      ),
    ).toBe(false);
  });

  it('takes caller fields as given', async () => {
    const measurement = 'ab'.repeat(48);
    const hostData = new Uint8Array(32).fill(0x5a);
    const { report } = await simulatedSnp({
      measurement,
      hostData,
      vmpl: 2,
      guestSvn: 7,
      policy: 0xb0000n,
      reportedTcb: { snp: 30, microcode: 7 },
      idKeyDigest: 'cd'.repeat(48),
    }).getEvidence(RD);
    expect(hex(report, 0x090, 48)).toBe(measurement);
    expect(hex(report, 0x0c0, 32)).toBe(bytesToHex(hostData));
    expect(u32(report, 0x030)).toBe(2);
    expect(u32(report, 0x004)).toBe(7);
    expect(u64(report, 0x008)).toBe(0xb0000n);
    expect(hex(report, 0x180, 8)).toBe('040000000000' + '1e07');
    expect(hex(report, 0x0e0, 48)).toBe('cd'.repeat(48));
  });

  it.each([
    ['Milan', [0x19, 0x01, 0x01], 'Milan-B0', 64],
    ['Genoa', [0x19, 0x11, 0x01], 'Genoa', 64],
    ['Turin', [0x1a, 0x02, 0x01], 'Turin', 8],
  ] as const)(
    '%s: CPUID, TCB layout and VCEK extensions match the report',
    async (product, cpuid, name, hwIdLen) => {
      const { report, vek, chain } = await simulatedSnp({ product }).getEvidence(RD);
      expect([...report.subarray(0x188, 0x18b)]).toEqual([...cpuid]);
      const cert = parseCertificate(vek!);
      expect(cert.subject.CN).toBe('SEV-VCEK');
      expect(cert.subject.O).toBe(SIMULATED_ORGANIZATION);
      expect(cert.issuer.CN).toBe(`SEV-${product}`);
      expect(cert.serialHex).toBe('00');
      expect(cert.sigAlg.algorithm).toBe('1.2.840.113549.1.1.10');
      const ext = cert.extensions;
      const productName = readTlv(ext.get(`${AMD}.2`)!.value);
      expect(productName.tag).toBe(0x16);
      expect(Buffer.from(productName.value).toString()).toBe(name);
      const hwId = ext.get(`${AMD}.4`)!.value;
      expect(hwId.length).toBe(hwIdLen);
      expect(bytesToHex(hwId)).toBe(hex(report, 0x1a0, hwIdLen));
      const tcb = report.subarray(0x180, 0x188);
      if (product === 'Turin') {
        expect(extInt(vek!, `${AMD}.1`)).toBe(1);
        expect(isZero(report, 0x1a8, 0x1e0)).toBe(true);
        expect(extInt(vek!, `${AMD}.3.9`)).toBe(tcb[0]);
        expect(extInt(vek!, `${AMD}.3.1`)).toBe(tcb[1]);
        expect(extInt(vek!, `${AMD}.3.2`)).toBe(tcb[2]);
        expect(extInt(vek!, `${AMD}.3.3`)).toBe(tcb[3]);
        expect(ext.has(`${AMD}.3.4`)).toBe(false);
        expect(isZero(tcb, 4, 7)).toBe(true);
      } else {
        expect(extInt(vek!, `${AMD}.1`)).toBe(0);
        expect(extInt(vek!, `${AMD}.3.1`)).toBe(tcb[0]);
        expect(extInt(vek!, `${AMD}.3.2`)).toBe(tcb[1]);
        expect(extInt(vek!, `${AMD}.3.3`)).toBe(tcb[6]);
        expect(extInt(vek!, `${AMD}.3.4`)).toBe(0);
        expect(ext.has(`${AMD}.3.9`)).toBe(false);
        expect(isZero(tcb, 2, 6)).toBe(true);
      }
      expect(extInt(vek!, `${AMD}.3.8`)).toBe(tcb[7]);
      // Chain: ASK then ARK, RSA-PSS all the way, ARK self-signed.
      const [ask, ark] = pemToDer(chain as string).map((d) => parseCertificate(d));
      expect(ask!.subject.CN).toBe(`SEV-${product}`);
      expect(ark!.subject.CN).toBe(`ARK-${product}`);
      expect(isSignedBy(cert, ask!)).toBe(true);
      expect(isSignedBy(ask!, ark!)).toBe(true);
      expect(isSignedBy(ark!, ark!)).toBe(true);
      expect(ark!.publicKey.asymmetricKeyDetails?.modulusLength).toBe(4096);
      expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
      expect(verifiesWith(report, vek!)).toBe(true);
    },
  );

  it('encodes microcode SPLs of 128 and more with a leading zero byte, as KDS does', async () => {
    const { vek } = await simulatedSnp({ reportedTcb: { microcode: 219 } }).getEvidence(RD);
    expect(bytesToHex(parseCertificate(vek!).extensions.get(`${AMD}.3.8`)!.value)).toBe('020200db');
  });

  it.each(['Milan', 'Genoa', 'Turin'] as const)(
    '%s VLEK: signer bit, masked chip, ASVK chain, cspID',
    async (product) => {
      const { report, vek, chain } = await simulatedSnp({
        product,
        signer: 'vlek',
        cspId: 'CN=example',
      }).getEvidence(RD);
      expect((u32(report, 0x048) >> 2) & 7).toBe(1);
      expect(isZero(report, 0x1a0, 0x1e0)).toBe(true);
      const cert = parseCertificate(vek!);
      expect(cert.subject.CN).toBe('SEV-VLEK');
      expect(cert.issuer.CN).toBe(`SEV-VLEK-${product}`);
      expect(cert.extensions.has(`${AMD}.4`)).toBe(false);
      expect(Buffer.from(readTlv(cert.extensions.get(`${AMD}.5`)!.value).value).toString()).toBe(
        'CN=example',
      );
      const [asvk, ark] = pemToDer(chain as string).map((d) => parseCertificate(d));
      expect(asvk!.subject.CN).toBe(`SEV-VLEK-${product}`);
      expect(isSignedBy(cert, asvk!)).toBe(true);
      expect(isSignedBy(asvk!, ark!)).toBe(true);
      expect(verifiesWith(report, vek!)).toBe(true);
      // The VCEK key must not verify a VLEK report.
      const vcek = (await simulatedSnp({ product }).getEvidence(RD)).vek!;
      expect(verifiesWith(report, vcek)).toBe(false);
    },
  );

  it('refuses report data that is not exactly 64 bytes', async () => {
    const p = simulatedSnp();
    for (const bad of [new Uint8Array(63), new Uint8Array(65), 'x'.repeat(64)]) {
      await expect(p.getEvidence(bad as Uint8Array)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    }
  });

  it.each([
    ['unknown product', { product: 'Naples' }],
    ['short measurement', { measurement: new Uint8Array(47) }],
    ['non-hex measurement', { measurement: 'zz'.repeat(48) }],
    ['vmpl 4', { vmpl: 4 }],
    ['negative guest svn', { guestSvn: -1 }],
    ['tcb component 256', { reportedTcb: { snp: 256 } }],
    ['fmc on Milan', { reportedTcb: { fmc: 1 } }],
    ['Turin chip id with bytes past 8', { product: 'Turin', chipId: new Uint8Array(64).fill(1) }],
    ['unknown signer', { signer: 'vek' }],
    ['policy over 64 bits', { policy: 1n << 64n }],
  ])('refuses %s with ERR_INVALID_ARGUMENT', (_name, options) => {
    expect(code(() => simulatedSnp(options as never))).toBe('ERR_INVALID_ARGUMENT');
  });

  it('gives each provider its own REPORT_ID and keeps it across reports', async () => {
    const a = simulatedSnp();
    const [r1, r2] = [(await a.getEvidence(RD)).report, (await a.getEvidence(RD)).report];
    const other = (await simulatedSnp().getEvidence(RD)).report;
    expect(hex(r1, 0x140, 32)).toBe(hex(r2, 0x140, 32));
    expect(hex(r1, 0x140, 32)).not.toBe(hex(other, 0x140, 32));
  });
});

describe('simulated AMD roots and CRL', () => {
  it('trustAnchors() returns the three simulated ARKs and the Intel root, marked simulated', () => {
    const anchors = simulated.trustAnchors();
    expect(anchors.amdArks.map((d) => parseCertificate(d).subject.CN)).toEqual([
      'ARK-Milan',
      'ARK-Genoa',
      'ARK-Turin',
    ]);
    expect(anchors.intelRoots.map((d) => parseCertificate(d).subject.CN)).toEqual(['Intel SGX Root CA']);
    for (const d of [...anchors.amdArks, ...anchors.intelRoots])
      expect(parseCertificate(d).subject.O).toBe(SIMULATED_ORGANIZATION);
    // The caller gets copies: scribbling on them cannot poison the simulator.
    anchors.amdArks[0]!.fill(0);
    expect(simulated.trustAnchors().amdArks[0]![0]).toBe(0x30);
  });

  it('issues an ARK-signed CRL listing the chosen serials', () => {
    const chain = simulated.amdChain('Genoa');
    const ask = parseCertificate(chain.ask);
    const ark = parseCertificate(chain.ark);
    const crl = parseCrl(
      simulated.amdCrl({
        product: 'Genoa',
        revoked: [Buffer.from(ask.serialHex, 'hex')],
        thisUpdate: new Date('2026-01-01T00:00:00Z'),
        nextUpdate: new Date('2026-02-01T00:00:00Z'),
      }),
    );
    expect(crl.issuer.CN).toBe('ARK-Genoa');
    expect(crl.revoked.has(ask.serialHex)).toBe(true);
    expect(crl.thisUpdate.toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(
      verify(
        'sha384',
        crl.tbs,
        { key: ark.publicKey, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: 48 },
        crl.signature,
      ),
    ).toBe(true);
    expect(parseCrl(simulated.amdCrl()).revoked.size).toBe(0);
  });

  it('never generates keys at run time (they are embedded)', () => {
    const dir = new URL('../../src/evidence/providers/', import.meta.url);
    for (const f of readdirSync(dir).filter((n) => n.startsWith('simulated'))) {
      const src = readFileSync(new URL(f, dir), 'utf8');
      expect(src, f).not.toMatch(/generateKeyPair|generateKey\(/);
    }
    // Every embedded key loads and has the algorithm the vendor uses.
    for (const [name, pem] of Object.entries(SIMULATED_KEYS)) {
      const d = createPrivateKey(pem).asymmetricKeyDetails;
      if (/Ark|Ask|Asvk/.test(name)) expect(d?.modulusLength, name).toBe(4096);
      else if (name === 'vcek' || name === 'vlek') expect(d?.namedCurve, name).toBe('secp384r1');
      else if (name === 'azureAk') expect(d?.modulusLength, name).toBe(2048);
      else expect(d?.namedCurve, name).toBe('prime256v1');
    }
  });
});
