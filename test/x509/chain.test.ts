/**
 * The chain engine (src/evidence/x509/chain.ts): every rule a vendor profile turns on refuses a
 * chain that breaks only that rule, and the same chain passes the same profile with that one rule
 * removed, so each test fails if the rule stops being enforced.
 */
import { createPublicKey } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, Certificate, CertificateList } from '@peculiar/asn1-x509';
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import {
  simulatedAmdChain,
  simulatedAmdCrl,
  simulatedKey,
} from '../../src/evidence/providers/simulated-snp.js';
import { SIMULATED_ORGANIZATION } from '../../src/evidence/simulated-marker.js';
import { AMD_CRL_PROFILE, amdChainProfile } from '../../src/evidence/snp/certs.js';
import {
  PCK_CRL_PROFILE,
  pckChainProfile,
  pckCrlIssuerProfile,
  ROOT_CRL_PROFILE,
  tcbSigningProfile,
} from '../../src/evidence/tdx/pck.js';
import {
  type BuildCertOptions,
  basicConstraints,
  buildCertificate,
  buildCrl,
  keyUsage,
  type NameSpec,
} from '../../src/evidence/x509/build.js';
import { OID, type ParsedCert, parseCertificate } from '../../src/evidence/x509/cert.js';
import {
  type ChainProfile,
  type CrlProfile,
  checkValidity,
  crlValidAt,
  verifyChain,
  verifyCrl,
} from '../../src/evidence/x509/chain.js';
import { readTlv } from '../../src/evidence/x509/der.js';

const NOW = new Date('2026-01-15T00:00:00Z');
const DAY = 86_400_000;
const intel = simulated.intelChain();
const intelRoot = parseCertificate(intel.root);

const intelName = (cn: string): NameSpec => [
  ['CN', cn],
  ['O', SIMULATED_ORGANIZATION],
  ['L', 'Santa Clara'],
  ['ST', 'CA'],
  ['C', 'US'],
];
const KU = (bits: number[]) => ({ oid: OID.keyUsage, value: keyUsage(bits), critical: true });
const BC = (ca: boolean) => ({ oid: OID.basicConstraints, value: basicConstraints(ca), critical: true });

/** A TCB-Signing-shaped leaf under the simulated Intel root; `o` changes one thing. */
function tcbLeaf(o: Partial<BuildCertOptions> = {}): Uint8Array {
  return buildCertificate({
    subject: intelName('Intel SGX TCB Signing'),
    issuer: intelName('Intel SGX Root CA'),
    serial: Uint8Array.of(0x51),
    notBefore: new Date(NOW.getTime() - DAY),
    notAfter: new Date(NOW.getTime() + 365 * DAY),
    publicKey: createPublicKey(simulatedKey('intelTcbSigning')),
    signingKey: simulatedKey('intelRoot'),
    algorithm: 'ecdsa-sha256',
    extensions: [KU([0, 1]), BC(false)],
    ...o,
  });
}

/** The outer signatureAlgorithm replaced (the signed TBS untouched). */
function withOuterAlgorithm(der: Uint8Array, alg: AlgorithmIdentifier, crl = false): Uint8Array {
  if (crl) {
    const c = AsnConvert.parse(der, CertificateList);
    c.signatureAlgorithm = alg;
    return new Uint8Array(AsnConvert.serialize(c));
  }
  const c = AsnConvert.parse(der, Certificate);
  c.signatureAlgorithm = alg;
  return new Uint8Array(AsnConvert.serialize(c));
}
/** ecdsa-with-SHA256 with an explicit NULL parameter: the same algorithm, other bytes. */
const ECDSA_SHA256_NULL = new AlgorithmIdentifier({
  algorithm: OID.ecdsaSha256,
  parameters: Uint8Array.of(0x05, 0x00).buffer,
});

/**
 * The outer signatureAlgorithm SEQUENCE's length in long form (30 81 0a for 30 0a), the outer
 * length grown by one: valid BER, not DER; the signed bytes are untouched.
 */
function longFormAlgorithmLength(der: Uint8Array): Uint8Array {
  const outer = readTlv(der, 0);
  const tbs = readTlv(der, outer.start);
  const alg = readTlv(der, tbs.end);
  const lenBytes = outer.start - 2;
  expect(lenBytes).toBe(2); // 30 82 hi lo
  const out = new Uint8Array(der.length + 1);
  out.set(der.subarray(0, tbs.end + 1), 0);
  out[tbs.end + 1] = 0x81;
  out.set(der.subarray(tbs.end + 1), tbs.end + 2);
  const len = outer.end - outer.start + 1;
  out[2] = len >> 8;
  out[3] = len & 0xff;
  expect(alg.value.length).toBeLessThan(0x80);
  return out;
}

function refusal(fn: () => unknown): AttestationError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AttestationError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

function without(p: ChainProfile, at: number, key: 'cn' | 'ca' | 'keyUsage'): ChainProfile {
  const path = p.path.map((r, i) => {
    if (i !== at) return r;
    const { [key]: _drop, ...rest } = r;
    return rest;
  });
  return { ...p, path };
}

const tcbProfile = tcbSigningProfile([intelRoot], 'test chain');
const pckProfile = pckChainProfile([intelRoot]);

/** A PCK CA under the simulated root with the given extensions, and a PCK leaf under it. */
function pckChainWith(caExtensions: BuildCertOptions['extensions']): Uint8Array[] {
  const base = {
    notBefore: new Date(NOW.getTime() - DAY),
    notAfter: new Date(NOW.getTime() + 365 * DAY),
    algorithm: 'ecdsa-sha256' as const,
  };
  const ca = buildCertificate({
    ...base,
    subject: intelName('Intel SGX PCK Platform CA'),
    issuer: intelName('Intel SGX Root CA'),
    serial: Uint8Array.of(0x61),
    publicKey: createPublicKey(simulatedKey('intelPlatformCa')),
    signingKey: simulatedKey('intelRoot'),
    extensions: caExtensions,
  });
  const leaf = buildCertificate({
    ...base,
    subject: intelName('Intel SGX PCK Certificate'),
    issuer: intelName('Intel SGX PCK Platform CA'),
    serial: Uint8Array.of(0x62),
    publicKey: createPublicKey(simulatedKey('intelPck')),
    signingKey: simulatedKey('intelPlatformCa'),
    extensions: [KU([0, 1]), BC(false)],
  });
  return [leaf, ca, intel.root];
}

describe('chain engine: each rule of a profile, on its own', () => {
  const cases: Array<[string, Uint8Array[], ChainProfile, ChainProfile, RegExp]> = [
    [
      'CN (TCB Signing leaf named otherwise)',
      [tcbLeaf({ subject: intelName('Intel SGX PCK Certificate') }), intel.root],
      tcbProfile,
      without(tcbProfile, 0, 'cn'),
      /is not named "Intel SGX TCB Signing"/,
    ],
    [
      'leaf must not be a CA',
      [tcbLeaf({ extensions: [KU([0, 1]), BC(true)] }), intel.root],
      tcbProfile,
      without(tcbProfile, 0, 'ca'),
      /is a CA, where a leaf is required/,
    ],
    [
      'leaf key usage digitalSignature',
      [tcbLeaf({ extensions: [KU([1]), BC(false)] }), intel.root],
      tcbProfile,
      without(tcbProfile, 0, 'keyUsage'),
      /lacks key usage digitalSignature/,
    ],
    [
      'leaf key usage: a leaf without the extension',
      [tcbLeaf({ extensions: [BC(false)] }), intel.root],
      tcbProfile,
      without(tcbProfile, 0, 'keyUsage'),
      /lacks key usage digitalSignature/,
    ],
    [
      'issuer must be a CA (PCK CA without basicConstraints)',
      pckChainWith([KU([5, 6])]),
      pckProfile,
      without(pckProfile, 1, 'ca'),
      /PCK CA "Intel SGX PCK Platform CA" is not a CA/,
    ],
    [
      'signature algorithm (ECDSA SHA-384 where Intel uses SHA-256)',
      [tcbLeaf({ algorithm: 'ecdsa-sha384' }), intel.root],
      tcbProfile,
      { ...tcbProfile, signatureAlgorithms: [OID.ecdsaSha256, OID.ecdsaSha384] },
      /signature algorithm 1\.2\.840\.10045\.4\.3\.3, which is not accepted/,
    ],
    [
      'outer signatureAlgorithm equal to the TBS one',
      [withOuterAlgorithm(tcbLeaf(), ECDSA_SHA256_NULL), intel.root],
      tcbProfile,
      { ...tcbProfile, matchingAlgorithms: false },
      /outer signatureAlgorithm that differs/,
    ],
    [
      'canonical DER (long-form length of the outer signatureAlgorithm)',
      [longFormAlgorithmLength(tcbLeaf()), intel.root],
      tcbProfile,
      { ...tcbProfile, canonicalDer: false },
      /is not canonical DER/,
    ],
    [
      'exact path length (TCB Signing issued directly by the root)',
      pckChainWith([KU([5, 6]), BC(true)]).map((d, i) =>
        i === 0
          ? tcbLeaf({
              issuer: intelName('Intel SGX PCK Platform CA'),
              signingKey: simulatedKey('intelPlatformCa'),
            })
          : d,
      ),
      tcbProfile,
      {
        ...tcbProfile,
        path: [tcbProfile.path[0]!, { what: 'CA', ca: true }, tcbProfile.path[1]!],
      },
      /a chain of 3 certificates, expected 2/,
    ],
    [
      'the root must be an anchor (by fingerprint)',
      [tcbLeaf(), intel.root],
      { ...tcbProfile, anchors: [parseCertificate(simulatedAmdChain('Milan').ark)] },
      tcbProfile,
      /which is not a trusted Intel root/,
    ],
    [
      'the root may be omitted only where the profile says so',
      [tcbLeaf()],
      tcbProfile,
      { ...tcbProfile, rootOptional: true },
      /a chain of 1 certificates, expected 2/,
    ],
  ];
  it.each(cases)('%s', (_what, certs, profile, relaxed, message) => {
    const err = refusal(() => verifyChain(certs, profile, NOW));
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    expect(err.message).toMatch(message);
    expect(verifyChain(certs, relaxed, NOW).root.fingerprint256).toBe(intelRoot.fingerprint256);
  });

  /** A self-signed root with the simulated Intel root's key, named and extended as given. */
  function otherRoot(cn: string, extensions: BuildCertOptions['extensions']): Uint8Array {
    return buildCertificate({
      subject: intelName(cn),
      issuer: intelName(cn),
      serial: Uint8Array.of(0x63),
      notBefore: new Date(NOW.getTime() - DAY),
      notAfter: new Date(NOW.getTime() + 365 * DAY),
      publicKey: createPublicKey(simulatedKey('intelRoot')),
      signingKey: simulatedKey('intelRoot'),
      algorithm: 'ecdsa-sha256',
      extensions,
    });
  }
  const rootCases: Array<[string, Uint8Array, Uint8Array, ChainProfile, RegExp]> = [
    [
      'root CN (an anchor named otherwise)',
      otherRoot('Some Other Root', [KU([5, 6]), BC(true)]),
      tcbLeaf({ issuer: intelName('Some Other Root') }),
      without(tcbProfile, 1, 'cn'),
      /root "Some Other Root" is not named "Intel SGX Root CA"/,
    ],
    [
      'root must be a CA',
      otherRoot('Intel SGX Root CA', [KU([5, 6])]),
      tcbLeaf(),
      without(tcbProfile, 1, 'ca'),
      /root "Intel SGX Root CA" is not a CA/,
    ],
  ];
  it.each(rootCases)('%s', (_what, rootDer, leafDer, relaxed, message) => {
    const root = parseCertificate(rootDer);
    const strict = { ...tcbProfile, anchors: [root] };
    const err = refusal(() => verifyChain([leafDer, rootDer], strict, NOW));
    expect(err.message).toMatch(message);
    expect(verifyChain([leafDer, rootDer], { ...relaxed, anchors: [root] }, NOW).root).toBe(root);
  });

  /** The PCK chain with its leaf or CA rebuilt with one change. */
  function pckWith(leaf: Partial<BuildCertOptions>, caCn = 'Intel SGX PCK Platform CA'): Uint8Array[] {
    const [, ca, root] = pckChainWith([KU([5, 6]), BC(true)]);
    const caDer =
      caCn === 'Intel SGX PCK Platform CA'
        ? ca!
        : buildCertificate({
            subject: intelName(caCn),
            issuer: intelName('Intel SGX Root CA'),
            serial: Uint8Array.of(0x64),
            notBefore: new Date(NOW.getTime() - DAY),
            notAfter: new Date(NOW.getTime() + 365 * DAY),
            publicKey: createPublicKey(simulatedKey('intelPlatformCa')),
            signingKey: simulatedKey('intelRoot'),
            algorithm: 'ecdsa-sha256',
            extensions: [KU([5, 6]), BC(true)],
          });
    const leafDer = buildCertificate({
      subject: intelName('Intel SGX PCK Certificate'),
      issuer: intelName(caCn),
      serial: Uint8Array.of(0x65),
      notBefore: new Date(NOW.getTime() - DAY),
      notAfter: new Date(NOW.getTime() + 365 * DAY),
      publicKey: createPublicKey(simulatedKey('intelPck')),
      signingKey: simulatedKey('intelPlatformCa'),
      algorithm: 'ecdsa-sha256',
      extensions: [KU([0, 1]), BC(false)],
      ...leaf,
    });
    return [leafDer, caDer, root!];
  }
  const pckCases: Array<[string, Uint8Array[], ChainProfile, RegExp]> = [
    [
      'PCK leaf CN',
      pckWith({ subject: intelName('Intel SGX PCK Processor CA') }),
      without(pckProfile, 0, 'cn'),
      /PCK leaf .* is not named "Intel SGX PCK Certificate"/,
    ],
    [
      'PCK leaf not a CA',
      pckWith({ extensions: [BC(true)] }),
      without(pckProfile, 0, 'ca'),
      /is a CA, where a leaf/,
    ],
    [
      'PCK CA CN',
      pckWith({}, 'Intel SGX TCB Signing'),
      without(pckProfile, 1, 'cn'),
      /PCK CA "Intel SGX TCB Signing" is not named/,
    ],
  ];
  it.each(pckCases)('%s', (_what, certs, relaxed, message) => {
    expect(refusal(() => verifyChain(certs, pckProfile, NOW)).message).toMatch(message);
    expect(verifyChain(certs, relaxed, NOW).certs).toHaveLength(3);
  });

  it('PCK CRL issuer: the PCK CA needs cRLSign', () => {
    const profile = pckCrlIssuerProfile([intelRoot]);
    const [, ca] = pckChainWith([KU([5]), BC(true)]);
    expect(refusal(() => verifyChain([ca!, intel.root], profile, NOW)).message).toMatch(
      /lacks key usage cRLSign/,
    );
    expect(verifyChain([ca!, intel.root], without(profile, 0, 'keyUsage'), NOW).certs).toHaveLength(2);
  });

  it('control: the simulated TCB Signing and PCK chains pass their profiles', () => {
    expect(verifyChain([intel.tcbSigning, intel.root], tcbProfile, NOW).certs).toHaveLength(2);
    expect(verifyChain([intel.pck, intel.platformCa, intel.root], pckProfile, NOW).certs).toHaveLength(3);
  });

  it('validity: one check, both ends inclusive', () => {
    const leaf = parseCertificate(tcbLeaf());
    checkValidity(leaf, leaf.notBefore, 'leaf');
    checkValidity(leaf, leaf.notAfter, 'leaf');
    expect(
      refusal(() => checkValidity(leaf, new Date(leaf.notBefore.getTime() - 1), 'leaf')).message,
    ).toMatch(/not valid before/);
    expect(refusal(() => checkValidity(leaf, new Date(leaf.notAfter.getTime() + 1), 'leaf')).message).toMatch(
      /expired/,
    );
    const chainNow = new Date(leaf.notAfter.getTime() + 1);
    expect(refusal(() => verifyChain([tcbLeaf(), intel.root], tcbProfile, chainNow)).message).toMatch(
      /expired/,
    );
  });
});

describe('chain engine: the AMD profile', () => {
  const amd = simulatedAmdChain('Milan');
  const ark = parseCertificate(amd.ark);
  const profile = amdChainProfile('Milan', 'vcek', [ark]);
  const amdName = (cn: string): NameSpec => [
    ['OU', 'Engineering'],
    ['C', 'US'],
    ['L', 'Santa Clara'],
    ['ST', 'CA'],
    ['O', SIMULATED_ORGANIZATION],
    ['CN', cn],
  ];
  const vek = (o: Partial<BuildCertOptions> = {}) =>
    buildCertificate({
      subject: amdName('SEV-VCEK'),
      issuer: amdName('SEV-Milan'),
      serial: Uint8Array.of(0x71),
      notBefore: new Date(NOW.getTime() - DAY),
      notAfter: new Date(NOW.getTime() + 365 * DAY),
      publicKey: createPublicKey(simulatedKey('vcek')),
      signingKey: simulatedKey('milanAsk'),
      algorithm: 'rsa-pss-sha384',
      ...o,
    });
  const ask = (extensions: BuildCertOptions['extensions'], cn = 'SEV-Milan') =>
    buildCertificate({
      subject: amdName(cn),
      issuer: amdName('ARK-Milan'),
      serial: Uint8Array.of(0x72),
      notBefore: new Date(NOW.getTime() - DAY),
      notAfter: new Date(NOW.getTime() + 365 * DAY),
      publicKey: createPublicKey(simulatedKey('milanAsk')),
      signingKey: simulatedKey('milanArk'),
      algorithm: 'rsa-pss-sha384',
      extensions,
    });
  const cases: Array<[string, Uint8Array[], ChainProfile, RegExp]> = [
    [
      'RSASSA-PSS only (a PKCS#1 v1.5 VEK)',
      [vek({ algorithm: 'rsa-pkcs1-sha384' }), amd.ask],
      { ...profile, signatureAlgorithms: [OID.rsaPss, OID.rsaSha384] },
      /which is not accepted/,
    ],
    [
      'ASK CN by product (a Genoa-named ASK under the Milan ARK)',
      [vek({ issuer: amdName('SEV-Genoa') }), ask([BC(true), KU([5])], 'SEV-Genoa')],
      without(profile, 1, 'cn'),
      /is not named "SEV-Milan"/,
    ],
    ['ASK must be a CA', [vek(), ask([KU([5])])], without(profile, 1, 'ca'), /ASK "SEV-Milan" is not a CA/],
    [
      'ASK key usage keyCertSign',
      [vek(), ask([BC(true), KU([6])])],
      without(profile, 1, 'keyUsage'),
      /lacks key usage keyCertSign/,
    ],
    [
      'VEK must not be a CA',
      [vek({ extensions: [BC(true)] }), amd.ask],
      without(profile, 0, 'ca'),
      /is a CA/,
    ],
    [
      'VEK CN',
      [vek({ subject: amdName('SEV-VLEK') }), amd.ask],
      without(profile, 0, 'cn'),
      /is not named "SEV-VCEK"/,
    ],
    [
      'canonical DER',
      [longFormAlgorithmLength(vek()), amd.ask],
      { ...profile, canonicalDer: false },
      /not canonical DER/,
    ],
  ];
  it.each(cases)('%s', (_what, certs, relaxed, message) => {
    const err = refusal(() => verifyChain(certs, profile, NOW));
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    expect(err.message).toMatch(message);
    expect(verifyChain(certs, relaxed, NOW).root.fingerprint256).toBe(ark.fingerprint256);
  });

  it('control: the simulated chain passes, with and without its ARK', () => {
    expect(verifyChain([vek(), amd.ask], profile, NOW).certs).toHaveLength(3);
    expect(verifyChain([vek(), amd.ask, amd.ark], profile, NOW).certs).toHaveLength(3);
  });

  it('outer signatureAlgorithm equal to the TBS one (PSS parameters re-encoded)', () => {
    // The same PSS parameters with the hash AlgorithmIdentifiers' NULL left out: verifies alike.
    const der = vek();
    const c = AsnConvert.parse(der, Certificate);
    const params = Uint8Array.from(
      Buffer.from(
        '302fa00d300b0609608648016503040202a11a301806092a864886f70d010108300b0609608648016503040202a203020130',
        'hex',
      ),
    );
    c.signatureAlgorithm = new AlgorithmIdentifier({ algorithm: OID.rsaPss, parameters: params.buffer });
    const edited = new Uint8Array(AsnConvert.serialize(c));
    expect(refusal(() => verifyChain([edited, amd.ask], profile, NOW)).message).toMatch(
      /differs from the signed one/,
    );
    expect(verifyChain([edited, amd.ask], { ...profile, matchingAlgorithms: false }, NOW).certs).toHaveLength(
      3,
    );
  });

  it('the AMD CRL must be signed by a CA with cRLSign (an ASK-signed CRL is refused)', () => {
    const crl = buildCrl({
      issuer: amdName('SEV-Milan'),
      thisUpdate: new Date(NOW.getTime() - DAY),
      nextUpdate: new Date(NOW.getTime() + 30 * DAY),
      signingKey: simulatedKey('milanAsk'),
      algorithm: 'rsa-pss-sha384',
    });
    const askCert = parseCertificate(amd.ask);
    expect(refusal(() => verifyCrl(crl, askCert, AMD_CRL_PROFILE)).message).toMatch(
      /lacks key usage cRLSign/,
    );
    const { issuer: _drop, ...relaxed } = AMD_CRL_PROFILE;
    expect(verifyCrl(crl, askCert, relaxed).issuer.CN).toBe('SEV-Milan');
    expect(verifyCrl(simulatedAmdCrl(), ark, AMD_CRL_PROFILE).issuer.CN).toBe('ARK-Milan');
  });

  it('ARK key usage (keyCertSign, cRLSign): an anchor without them accepts nothing', () => {
    // The anchor is the caller's choice, yet it must still look like an ARK.
    const arkWithout = buildCertificate({
      subject: amdName('ARK-Milan'),
      issuer: amdName('ARK-Milan'),
      serial: Uint8Array.of(0x74),
      notBefore: new Date(NOW.getTime() - DAY),
      notAfter: new Date(NOW.getTime() + 365 * DAY),
      publicKey: createPublicKey(simulatedKey('milanArk')),
      signingKey: simulatedKey('milanArk'),
      algorithm: 'rsa-pss-sha384',
      extensions: [BC(true), KU([5])],
    });
    const p = amdChainProfile('Milan', 'vcek', [parseCertificate(arkWithout)]);
    expect(refusal(() => verifyChain([vek(), amd.ask], p, NOW)).message).toMatch(/lacks key usage cRLSign/);
    expect(verifyChain([vek(), amd.ask], without(p, 2, 'keyUsage'), NOW).certs).toHaveLength(3);
  });
});

describe('CRL check: each rule of a CRL profile', () => {
  const crl = (o: { signer?: 'root' | 'tcb'; algorithm?: 'ecdsa-sha256' | 'ecdsa-sha384' } = {}) =>
    buildCrl({
      issuer: intelName(o.signer === 'tcb' ? 'Intel SGX TCB Signing' : 'Intel SGX Root CA'),
      thisUpdate: new Date(NOW.getTime() - DAY),
      nextUpdate: new Date(NOW.getTime() + 30 * DAY),
      signingKey: simulatedKey(o.signer === 'tcb' ? 'intelTcbSigning' : 'intelRoot'),
      algorithm: o.algorithm ?? 'ecdsa-sha256',
    });
  const tcbSigner = parseCertificate(intel.tcbSigning);
  const cases: Array<[string, Uint8Array, ParsedCert, CrlProfile, CrlProfile, RegExp]> = [
    [
      'issuer key usage cRLSign (a CRL signed by TCB Signing)',
      crl({ signer: 'tcb' }),
      tcbSigner,
      { ...ROOT_CRL_PROFILE, issuer: { what: 'root' } },
      ROOT_CRL_PROFILE,
      /lacks key usage cRLSign|is not named|is not a CA/,
    ],
    [
      'signature algorithm',
      crl({ algorithm: 'ecdsa-sha384' }),
      intelRoot,
      { ...ROOT_CRL_PROFILE, signatureAlgorithms: [OID.ecdsaSha256, OID.ecdsaSha384] },
      ROOT_CRL_PROFILE,
      /which is not accepted/,
    ],
    [
      'outer signatureAlgorithm equal to the TBS one',
      withOuterAlgorithm(crl(), ECDSA_SHA256_NULL, true),
      intelRoot,
      { ...ROOT_CRL_PROFILE, matchingAlgorithms: false },
      ROOT_CRL_PROFILE,
      /outer signatureAlgorithm that differs/,
    ],
    [
      'canonical DER',
      longFormAlgorithmLength(crl()),
      intelRoot,
      { ...ROOT_CRL_PROFILE, canonicalDer: false },
      ROOT_CRL_PROFILE,
      /not canonical DER/,
    ],
  ];
  it.each(cases)('%s', (_what, der, issuer, relaxed, strict, message) => {
    const err = refusal(() => verifyCrl(der, issuer, strict));
    expect(err.code).toBe('ERR_EVIDENCE_CHAIN');
    expect(err.message).toMatch(message);
    expect(verifyCrl(der, issuer, relaxed).issuer.CN).toBe(issuer.subject.CN);
  });

  it('the PCK CRL profile wants a PCK CA with cRLSign as issuer', () => {
    const ca = parseCertificate(intel.platformCa);
    const good = simulated.tdxCollateral({ now: NOW });
    expect(verifyCrl(Buffer.from(good.pck_crl, 'hex'), ca, PCK_CRL_PROFILE).issuer.CN).toBe(
      'Intel SGX PCK Platform CA',
    );
    expect(
      refusal(() => verifyCrl(Buffer.from(good.root_ca_crl, 'hex'), intelRoot, PCK_CRL_PROFILE)).message,
    ).toMatch(/is not named/);
  });

  it('the window: thisUpdate..nextUpdate inclusive', () => {
    const c = verifyCrl(crl(), intelRoot, ROOT_CRL_PROFILE);
    expect(crlValidAt(c, c.thisUpdate)).toBe(true);
    expect(crlValidAt(c, c.nextUpdate!)).toBe(true);
    expect(crlValidAt(c, new Date(c.thisUpdate.getTime() - 1))).toBe(false);
    expect(crlValidAt(c, new Date(c.nextUpdate!.getTime() + 1))).toBe(false);
  });
});
