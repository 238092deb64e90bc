/**
 * Launch endorsements minted by a test root, in Google's VMLaunchEndorsement format, with the
 * project's own protobuf writer. No real endorsement can be shipped (docs/api.md says why).
 */
import { constants, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { field, message } from '../../src/evidence/gce/protobuf.js';
import { buildCertificate, type NameSpec } from '../../src/evidence/x509/build.js';

const CA = Uint8Array.from([0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00]); // cA TRUE, pathlen 0
const NOT_CA = Uint8Array.from([0x30, 0x00]);
const KU_CERT_SIGN = Uint8Array.from([0x03, 0x02, 0x01, 0x06]); // keyCertSign | cRLSign
const KU_DIGITAL_SIGNATURE = Uint8Array.from([0x03, 0x02, 0x07, 0x80]);

export const ROOT_NAME: NameSpec = [
  ['C', 'US'],
  ['O', 'Test'],
  ['CN', 'GCE-cc-tcb-root (test)'],
];

export function rsaKey(): { publicKey: KeyObject; privateKey: KeyObject } {
  return generateKeyPairSync('rsa', { modulusLength: 2048 });
}

export interface Ca {
  der: Uint8Array;
  key: KeyObject;
  name: NameSpec;
}

export function makeRoot(o: { ca?: boolean; name?: NameSpec; notAfter?: Date } = {}): Ca {
  const { publicKey, privateKey } = rsaKey();
  const name = o.name ?? ROOT_NAME;
  const der = buildCertificate({
    subject: name,
    issuer: name,
    serial: Uint8Array.of(1),
    notBefore: new Date('2024-09-01T00:00:00Z'),
    notAfter: o.notAfter ?? new Date('2049-09-01T00:00:00Z'),
    publicKey,
    signingKey: privateKey,
    algorithm: 'rsa-pss-sha256',
    extensions: [
      { oid: '2.5.29.15', value: KU_CERT_SIGN, critical: true },
      { oid: '2.5.29.19', value: o.ca === false ? NOT_CA : CA, critical: true },
    ],
  });
  return { der, key: privateKey, name };
}

export function makeSigner(
  root: Ca,
  o: {
    ca?: boolean;
    notAfter?: Date;
    signWith?: KeyObject;
    issuer?: NameSpec;
    key?: { publicKey: KeyObject; privateKey: KeyObject };
  } = {},
): { der: Uint8Array; key: KeyObject } {
  const { publicKey, privateKey } = o.key ?? rsaKey();
  const der = buildCertificate({
    subject: [
      ['C', 'US'],
      ['O', 'Test'],
      ['CN', 'GCE-uefi-signer (test)'],
    ],
    issuer: o.issuer ?? root.name,
    serial: Uint8Array.of(2),
    notBefore: new Date('2024-09-01T00:00:00Z'),
    notAfter: o.notAfter ?? new Date('2029-09-01T00:00:00Z'),
    publicKey,
    signingKey: o.signWith ?? root.key,
    algorithm: 'rsa-pss-sha256',
    extensions: [
      { oid: '2.5.29.15', value: KU_DIGITAL_SIGNATURE, critical: true },
      { oid: '2.5.29.19', value: o.ca ? CA : NOT_CA, critical: true },
    ],
  });
  return { der, key: privateKey };
}

export interface GoldenSpec {
  seconds?: bigint;
  clSpec?: bigint;
  commit?: Uint8Array;
  cert: Uint8Array;
  digest?: Uint8Array;
  snp?: { svn?: number; measurements?: Array<[number, Uint8Array]>; policy?: bigint; familyId?: Uint8Array };
  tdx?: { svn?: number; measurements?: Array<{ ramGib: number; earlyAccept: boolean; mrtd: Uint8Array }> };
  extra?: Uint8Array[];
}

export function golden(g: GoldenSpec): Uint8Array {
  const snp = g.snp
    ? message(
        g.snp.svn !== undefined ? field(1, g.snp.svn) : undefined,
        ...(g.snp.measurements ?? []).map(([k, v]) => field(2, message(field(1, k), field(2, v)))),
        g.snp.familyId ? field(3, g.snp.familyId) : undefined,
        g.snp.policy !== undefined ? field(5, g.snp.policy) : undefined,
      )
    : undefined;
  const tdx = g.tdx
    ? message(
        g.tdx.svn !== undefined ? field(1, g.tdx.svn) : undefined,
        ...(g.tdx.measurements ?? []).map((m) =>
          field(2, message(field(1, m.ramGib), m.earlyAccept ? field(2, true) : undefined, field(3, m.mrtd))),
        ),
      )
    : undefined;
  return message(
    field(1, message(field(1, g.seconds ?? 1_767_225_600n), field(2, 5_000_000))),
    g.clSpec !== undefined ? field(2, g.clSpec) : field(2, 123456n),
    g.commit ? field(3, g.commit) : undefined,
    field(4, g.cert),
    field(5, g.digest ?? new Uint8Array(48).fill(0xd1)),
    snp ? field(7, snp) : undefined,
    tdx ? field(8, tdx) : undefined,
    ...(g.extra ?? []),
  );
}

export function pssSign(data: Uint8Array, key: KeyObject, saltLength = 32): Uint8Array {
  return new Uint8Array(sign('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }));
}

export function endorsement(signed: Uint8Array, signature: Uint8Array): Uint8Array {
  return message(field(1, signed), field(2, signature));
}
