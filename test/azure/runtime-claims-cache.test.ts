/**
 * A Verifier keeps the runtime claims it parsed (JSON, HCLAkPub, its akSha256) by the SHA-256 of
 * their bytes. Each case verifies good evidence first (so the entry is there), then evidence whose
 * runtime claims differ from it in one thing: it must get its own claims, or be refused as if the
 * first had never been seen.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { AZURE_CACHE_SIZES } from '../../src/evidence/azure/format.js';
import { MAX_KEPT_CLAIMS_BYTES } from '../../src/evidence/azure/verify.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import type { AzureClaims } from '../../src/evidence/types.js';
import { createVerifier } from '../../src/evidence/verifier.js';
import { codeOf } from './fixtures.js';
import { buildHcl, pcrBank, reportDataFor, runtimeClaimsJson, signQuote } from './synthetic.js';

type Pair = { publicKey: KeyObject; privateKey: KeyObject };
let ak1: Pair;
let ak2: Pair;
const now = new Date();
const nonce = new Uint8Array(Buffer.from('challenge'));
const pcrs = pcrBank();

beforeAll(() => {
  ak1 = generateKeyPairSync('rsa', { modulusLength: 2048 });
  ak2 = generateKeyPairSync('rsa', { modulusLength: 2048 });
});

/** Azure evidence whose runtime claims are `claims`, bound by REPORT_DATA, quoted by `quoteKey`. */
async function evidence(claims: Uint8Array, quoteKey: KeyObject, bind = claims) {
  const ev = await simulated.snp({ product: 'Milan' }).getEvidence(reportDataFor(bind));
  const quote = signQuote(quoteKey, { extraData: nonce, pcrs });
  return {
    report: buildHcl({ tee: 'sev-snp', hardwareReport: ev.report, claims }),
    vek: ev.vek!,
    chain: ev.chain!,
    tpm: { quote: quote.message, signature: quote.signature, pcrs: { sha256: pcrs } },
  };
}

function fresh(): ReturnType<typeof createVerifier> {
  return createVerifier({ trustAnchors: simulated.trustAnchors(), offline: true });
}

const userData = (c: string) => c.repeat(128);

describe('runtime claims kept by a Verifier', () => {
  it('the same claims again are a hit, with the same (frozen) claims', async () => {
    const verifier = fresh();
    const ev = await evidence(runtimeClaimsJson(ak1.publicKey), ak1.privateKey);
    const first = (await verifier.verify(ev, { now })) as AzureClaims;
    expect(verifier.stats()['azure-sev-snp.runtimeClaims']).toMatchObject({ size: 1, hits: 0, misses: 1 });
    const second = (await verifier.verify(ev, { now })) as AzureClaims;
    expect(verifier.stats()['azure-sev-snp.runtimeClaims']).toMatchObject({ size: 1, hits: 1, misses: 1 });
    expect(second.runtimeClaims).toEqual(first.runtimeClaims);
    expect(second.tpm.akSha256).toBe(first.tpm.akSha256);
    expect(Object.isFrozen(second.runtimeClaims)).toBe(true);
    expect(Object.isFrozen((second.runtimeClaims.keys as object[])[0])).toBe(true);
    expect(verifier.stats()['azure-sev-snp.runtimeClaims']!.max).toBe(AZURE_CACHE_SIZES.runtimeClaims);
  });

  it('claims of the same length differing in one user-data byte get their own user-data', async () => {
    const verifier = fresh();
    await verifier.verify(
      await evidence(runtimeClaimsJson(ak1.publicKey, { userData: userData('a') }), ak1.privateKey),
      { now },
    );
    const other = userData('a').slice(0, 127) + 'b';
    const claims = (await verifier.verify(
      await evidence(runtimeClaimsJson(ak1.publicKey, { userData: other }), ak1.privateKey),
      { now },
    )) as AzureClaims;
    expect(claims.userData).toBe(other);
    expect(verifier.stats()['azure-sev-snp.runtimeClaims']).toMatchObject({ size: 2, misses: 2 });
  });

  it('a quote by the AK of earlier claims, with claims naming another AK, is refused', async () => {
    const verifier = fresh();
    await verifier.verify(await evidence(runtimeClaimsJson(ak1.publicKey), ak1.privateKey), { now });
    const ev = await evidence(runtimeClaimsJson(ak2.publicKey), ak1.privateKey);
    expect(await codeOf(verifier.verify(ev, { now }))).toBe('ERR_EVIDENCE_SIGNATURE');
  });

  it('expectedAk is compared with the AK of these claims, not of earlier ones', async () => {
    const verifier = fresh();
    await verifier.verify(await evidence(runtimeClaimsJson(ak1.publicKey), ak1.privateKey), {
      now,
      expectedAk: ak1.publicKey,
    });
    const ev = await evidence(runtimeClaimsJson(ak2.publicKey), ak2.privateKey);
    expect(await codeOf(verifier.verify(ev, { now, expectedAk: ak1.publicKey }))).toBe('ERR_EVIDENCE_CHAIN');
    await expect(verifier.verify(ev, { now, expectedAk: ak2.publicKey })).resolves.toMatchObject({
      format: 'azure-sev-snp',
    });
  });

  it('kept claims with one byte changed (REPORT_DATA still of the original) are refused', async () => {
    const verifier = fresh();
    const claims = runtimeClaimsJson(ak1.publicKey);
    await verifier.verify(await evidence(claims, ak1.privateKey), { now });
    const changed = new Uint8Array(claims);
    const at = Buffer.from(changed).indexOf('"user-data":"') + 13;
    changed[at] = 0x31; // '0' → '1'
    const ev = await evidence(changed, ak1.privateKey, claims);
    expect(await codeOf(verifier.verify(ev, { now }))).toBe('ERR_EVIDENCE_CHAIN');
  });

  it(`claims over ${MAX_KEPT_CLAIMS_BYTES} bytes are verified but not kept`, async () => {
    const verifier = fresh();
    const big = runtimeClaimsJson(ak1.publicKey, {
      vmConfiguration: { padding: 'x'.repeat(MAX_KEPT_CLAIMS_BYTES) },
    });
    const ev = await evidence(big, ak1.privateKey);
    await verifier.verify(ev, { now });
    await verifier.verify(ev, { now });
    expect(verifier.stats()['azure-sev-snp.runtimeClaims']).toMatchObject({ size: 0, hits: 0 });
  });
});

/**
 * The imported AKs a Verifier keeps by the HCLAkPub JWK's n and e (`azure-sev-snp.aks`): a new
 * report of the same VM (new claims, same AK) reuses the key; a JWK that differs in n or e, or
 * whose n and e only run together into the same text, is imported (or refused) as by a Verifier
 * that never saw the first.
 */
describe('AKs kept by a Verifier', () => {
  const jwkOf = (key: KeyObject) => key.export({ format: 'jwk' }) as { n: string; e: string };
  const claimsWith = (n: string, e: string) =>
    runtimeClaimsJson(null, { keys: [{ kid: 'HCLAkPub', kty: 'RSA', n, e }] });
  /** The code of `ev` on a Verifier that verified ak1's claims first, and on a new one. */
  async function warmCold(ev: Awaited<ReturnType<typeof evidence>>) {
    const verifier = fresh();
    await verifier.verify(await evidence(runtimeClaimsJson(ak1.publicKey), ak1.privateKey), { now });
    expect(verifier.stats()['azure-sev-snp.aks']).toMatchObject({ size: 1, hits: 0, misses: 1 });
    return {
      warm: await codeOf(verifier.verify(ev, { now })),
      cold: await codeOf(fresh().verify(ev, { now })),
    };
  }

  it('new claims naming the same AK reuse the imported key', async () => {
    const verifier = fresh();
    const first = (await verifier.verify(
      await evidence(runtimeClaimsJson(ak1.publicKey, { userData: userData('a') }), ak1.privateKey),
      { now },
    )) as AzureClaims;
    const second = (await verifier.verify(
      await evidence(runtimeClaimsJson(ak1.publicKey, { userData: userData('b') }), ak1.privateKey),
      { now, expectedAk: ak1.publicKey },
    )) as AzureClaims;
    expect(second.userData).toBe(userData('b'));
    expect(second.tpm.akSha256).toBe(first.tpm.akSha256);
    expect(verifier.stats()['azure-sev-snp.runtimeClaims']).toMatchObject({ size: 2, hits: 0, misses: 2 });
    expect(verifier.stats()['azure-sev-snp.aks']).toMatchObject({
      size: 1,
      hits: 1,
      misses: 1,
      max: AZURE_CACHE_SIZES.aks,
    });
  });

  it("claims with the first AK's modulus but another exponent are refused as without the cache", async () => {
    // e = 3: the quote by ak1 (e = 65537) does not verify under (n, 3).
    const ev = await evidence(claimsWith(jwkOf(ak1.publicKey).n, 'Aw'), ak1.privateKey);
    expect(await warmCold(ev)).toEqual({ warm: 'ERR_EVIDENCE_SIGNATURE', cold: 'ERR_EVIDENCE_SIGNATURE' });
  });

  it("claims whose n and e run together into the first AK's n ‖ e are refused as without the cache", async () => {
    // n ‖ "A" is base64url still, "QAB" is not (its last digit has low bits set): ak1's text
    // n ‖ "AQAB" split elsewhere.
    const { n, e } = jwkOf(ak1.publicKey);
    expect(e).toBe('AQAB');
    const ev = await evidence(claimsWith(`${n}A`, 'QAB'), ak1.privateKey);
    expect(await warmCold(ev)).toEqual({ warm: 'ERR_EVIDENCE_CHAIN', cold: 'ERR_EVIDENCE_CHAIN' });
  });
});
