/** verifyLaunchEndorsement on endorsements minted by a test root, and every way they can be wrong. */
import { constants, createHash, generateKeyPairSync, sign } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GCE_TCB_ROOT_SHA256, verifyLaunchEndorsement } from '../../src/evidence/gce/endorsement.js';
import { field, message } from '../../src/evidence/gce/protobuf.js';
import { derToPem } from '../../src/evidence/x509/pem.js';
import { thrownCode as code } from '../helpers/codes.js';
import { endorsement, golden, makeRoot, makeSigner, pssSign, rsaKey } from './mint.js';

const root = makeRoot();
const signer = makeSigner(root);
const rootSha256 = createHash('sha256').update(root.der).digest('hex');
const now = new Date('2026-06-01T00:00:00Z');
const m = (b: number) => new Uint8Array(48).fill(b);
const spec = {
  cert: signer.der,
  snp: {
    svn: 2,
    measurements: [
      [1, m(1)],
      [2, m(2)],
      [4, m(4)],
    ] as Array<[number, Uint8Array]>,
    policy: 0x70000n,
    familyId: new Uint8Array(16).fill(0xf7),
  },
  tdx: { svn: 1, measurements: [{ ramGib: 16, earlyAccept: true, mrtd: m(0x16) }] },
};
const signed = golden(spec);
const good = endorsement(signed, pssSign(signed, signer.key));
const opts = { root: root.der, rootSha256, now };

describe('verifyLaunchEndorsement', () => {
  it('accepts an endorsement signed under the pinned root and returns what it endorses', () => {
    const e = verifyLaunchEndorsement(good, opts);
    expect(e.timestamp.toISOString()).toBe('2026-01-01T00:00:00.005Z');
    expect(e.clSpec).toBe(123456n);
    expect(Buffer.from(e.uefiDigest).toString('hex')).toBe('d1'.repeat(48));
    expect(e.signer.subject.CN).toBe('GCE-uefi-signer (test)');
    expect(e.sevSnp?.svn).toBe(2);
    expect([...e.sevSnp!.measurements.keys()]).toEqual([1, 2, 4]);
    expect(e.sevSnp!.measurements.get(2)).toEqual(m(2));
    expect(e.sevSnp!.policy).toBe(0x70000n);
    expect(e.tdx).toEqual({ svn: 1, measurements: [{ ramGib: 16, earlyAccept: true, mrtd: m(0x16) }] });
  });

  it('takes the root as PEM too, and checks the firmware digest when asked', () => {
    expect(code(() => verifyLaunchEndorsement(good, { ...opts, root: derToPem(root.der) }))).toBe('accepted');
    expect(code(() => verifyLaunchEndorsement(good, { ...opts, uefiDigest: m(0xd1) }))).toBe('accepted');
    expect(code(() => verifyLaunchEndorsement(good, { ...opts, uefiDigest: m(0xd2) }))).toBe(
      'ERR_EVIDENCE_POLICY',
    );
  });

  it("pins the root by fingerprint: Google's by default, another only when named", () => {
    expect(GCE_TCB_ROOT_SHA256).toMatch(/^[0-9a-f]{64}$/);
    expect(code(() => verifyLaunchEndorsement(good, { root: root.der, now }))).toBe('ERR_EVIDENCE_CHAIN');
    const other = makeRoot();
    expect(code(() => verifyLaunchEndorsement(good, { ...opts, root: other.der }))).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
  });

  it('refuses a body or signature changed by one bit', () => {
    const flipped = signed.slice();
    flipped[flipped.length - 10]! ^= 1; // inside the TDX MRTD, the last field
    expect(code(() => verifyLaunchEndorsement(endorsement(flipped, pssSign(signed, signer.key)), opts))).toBe(
      'ERR_EVIDENCE_SIGNATURE',
    );
    const sig = pssSign(signed, signer.key);
    sig[10]! ^= 1;
    expect(code(() => verifyLaunchEndorsement(endorsement(signed, sig), opts))).toBe(
      'ERR_EVIDENCE_SIGNATURE',
    );
    expect(code(() => verifyLaunchEndorsement(endorsement(signed, new Uint8Array(0)), opts))).toBe(
      'ERR_EVIDENCE_SIGNATURE',
    );
  });

  it('accepts only RSA-PSS, SHA-256, salt 32', () => {
    const pkcs1 = new Uint8Array(
      sign('sha256', signed, { key: signer.key, padding: constants.RSA_PKCS1_PADDING }),
    );
    expect(code(() => verifyLaunchEndorsement(endorsement(signed, pkcs1), opts))).toBe(
      'ERR_EVIDENCE_SIGNATURE',
    );
    expect(
      code(() => verifyLaunchEndorsement(endorsement(signed, pssSign(signed, signer.key, 20)), opts)),
    ).toBe('ERR_EVIDENCE_SIGNATURE');
    const sha384 = new Uint8Array(
      sign('sha384', signed, { key: signer.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }),
    );
    expect(code(() => verifyLaunchEndorsement(endorsement(signed, sha384), opts))).toBe(
      'ERR_EVIDENCE_SIGNATURE',
    );
  });

  it('refuses a signer the root did not issue, or signed with another key under its name', () => {
    const other = makeRoot({ name: [['CN', 'someone else']] });
    const foreign = makeSigner(other);
    const g1 = golden({ ...spec, cert: foreign.der });
    expect(code(() => verifyLaunchEndorsement(endorsement(g1, pssSign(g1, foreign.key)), opts))).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
    const misnamed = makeSigner(root, { issuer: [['CN', 'another CA']] });
    const g3 = golden({ ...spec, cert: misnamed.der });
    expect(code(() => verifyLaunchEndorsement(endorsement(g3, pssSign(g3, misnamed.key)), opts))).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
    const forged = makeSigner(root, { signWith: rsaKey().privateKey });
    const g2 = golden({ ...spec, cert: forged.der });
    expect(code(() => verifyLaunchEndorsement(endorsement(g2, pssSign(g2, forged.key)), opts))).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
  });

  it("refuses an endorsement whose signature is by another key than the certificate's", () => {
    expect(
      code(() => verifyLaunchEndorsement(endorsement(signed, pssSign(signed, rsaKey().privateKey)), opts)),
    ).toBe('ERR_EVIDENCE_SIGNATURE');
  });

  it('checks validity at `now`: an expired signer or root, a time before either', () => {
    expect(
      code(() => verifyLaunchEndorsement(good, { ...opts, now: new Date('2030-01-01T00:00:00Z') })),
    ).toBe('ERR_EVIDENCE_CHAIN');
    expect(
      code(() => verifyLaunchEndorsement(good, { ...opts, now: new Date('2024-01-01T00:00:00Z') })),
    ).toBe('ERR_EVIDENCE_CHAIN');
    const shortRoot = makeRoot({ notAfter: new Date('2026-01-01T00:00:00Z') });
    const s = makeSigner(shortRoot);
    const g = golden({ ...spec, cert: s.der });
    const sha = createHash('sha256').update(shortRoot.der).digest('hex');
    expect(
      code(() =>
        verifyLaunchEndorsement(endorsement(g, pssSign(g, s.key)), {
          root: shortRoot.der,
          rootSha256: sha,
          now,
        }),
      ),
    ).toBe('ERR_EVIDENCE_CHAIN');
    expect(code(() => verifyLaunchEndorsement(good, { ...opts, now: new Date(Number.NaN) }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });

  it('refuses a root that is not a CA and a signer that is one', () => {
    const notCa = makeRoot({ ca: false });
    const s = makeSigner(notCa);
    const g = golden({ ...spec, cert: s.der });
    const sha = createHash('sha256').update(notCa.der).digest('hex');
    expect(
      code(() =>
        verifyLaunchEndorsement(endorsement(g, pssSign(g, s.key)), { root: notCa.der, rootSha256: sha, now }),
      ),
    ).toBe('ERR_EVIDENCE_CHAIN');
    const caSigner = makeSigner(root, { ca: true });
    const g2 = golden({ ...spec, cert: caSigner.der });
    expect(code(() => verifyLaunchEndorsement(endorsement(g2, pssSign(g2, caSigner.key)), opts))).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
  });

  it("requires provenance after 2024-08-02, as Google's verifier does", () => {
    const sig = (g: Uint8Array) => endorsement(g, pssSign(g, signer.key));
    const bare = golden({ ...spec, clSpec: 0n });
    expect(code(() => verifyLaunchEndorsement(sig(bare), opts))).toBe('ERR_EVIDENCE_MALFORMED');
    const withCommit = golden({ ...spec, clSpec: 0n, commit: Uint8Array.of(0xab, 0xcd) });
    expect(code(() => verifyLaunchEndorsement(sig(withCommit), opts))).toBe('accepted');
    const old = golden({ ...spec, clSpec: 0n, seconds: 1_700_000_000n });
    expect(code(() => verifyLaunchEndorsement(sig(old), opts))).toBe('accepted');
  });

  it('refuses malformed messages even when signed', () => {
    const sig = (g: Uint8Array) => endorsement(g, pssSign(g, signer.key));
    const cases: Uint8Array[] = [
      golden({ ...spec, extra: [field(5, m(9))] }), // digest twice
      golden({ ...spec, digest: new Uint8Array(47) }),
      golden({ ...spec, snp: { measurements: [[1, new Uint8Array(32)]] } }),
      golden({
        ...spec,
        snp: {
          measurements: [
            [1, m(1)],
            [1, m(2)],
          ],
        },
      }),
      golden({ ...spec, extra: [field(2, 1n)] }), // cl_spec twice
      golden({ ...spec, extra: [message(Uint8Array.of(0x3a), Uint8Array.of(0x05))] }), // sev_snp runs past the end
      golden({ ...spec, cert: new Uint8Array(0) }),
      golden({ ...spec, cert: Uint8Array.of(0x30, 0x03, 1, 2, 3) }),
    ];
    for (const [i, g] of cases.entries())
      expect(
        code(() => verifyLaunchEndorsement(sig(g), opts)),
        `case ${i}`,
      ).toBe('ERR_EVIDENCE_MALFORMED');
    expect(code(() => verifyLaunchEndorsement(field(2, Uint8Array.of(1)), opts))).toBe(
      'ERR_EVIDENCE_MALFORMED',
    );
    expect(code(() => verifyLaunchEndorsement(new Uint8Array((1 << 20) + 1), opts))).toBe(
      'ERR_EVIDENCE_MALFORMED',
    );
    expect(code(() => verifyLaunchEndorsement(good, { ...opts, rootSha256: 'xyz' }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
    expect(code(() => verifyLaunchEndorsement(good, { ...opts, root: new Uint8Array(10) }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });

  it('a non-RSA signer key fails the signature check, typed', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const s = makeSigner(root, { key: ec });
    const g = golden({ ...spec, cert: s.der });
    expect(
      code(() =>
        verifyLaunchEndorsement(endorsement(g, new Uint8Array(sign('sha256', g, ec.privateKey))), opts),
      ),
    ).toBe('ERR_EVIDENCE_SIGNATURE');
  });

  it('property: arbitrary bytes and mutations of a good endorsement never escape as other errors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        expect(['ERR_EVIDENCE_MALFORMED', 'ERR_EVIDENCE_SIGNATURE', 'ERR_EVIDENCE_CHAIN']).toContain(
          code(() => verifyLaunchEndorsement(bytes, opts)),
        );
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const b = good.slice();
        b[at]! ^= x;
        expect(['ERR_EVIDENCE_MALFORMED', 'ERR_EVIDENCE_SIGNATURE', 'ERR_EVIDENCE_CHAIN']).toContain(
          code(() => verifyLaunchEndorsement(b, opts)),
        );
      }),
      { numRuns: 300 },
    );
  });
});
