/**
 * What a Verifier keeps for the channels that verify with it (src/evidence/challenger.ts): the
 * contexts of their REQUESTs, never repeated across its channels and never shared with another
 * Verifier, and the decoded chain texts of their peers' evidence, kept by the exact base64url text.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { decodeCmw, MediaType, REPORT_MEDIA_TYPES } from '../../src/channel/cmw.js';
import { attestedConnect } from '../../src/channel/connect.js';
import { createAttestedServer } from '../../src/channel/server.js';
import { CHAIN_TEXT_CACHE_SIZE, challengerStateOf, RecentTexts } from '../../src/evidence/challenger.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { createVerifier } from '../../src/evidence/verifier.js';
import { verifierFor } from '../../src/evidence/verify.js';
import { thrownCode as codeOf } from '../helpers/codes.js';
import { json, rawServer } from './adversary.js';
import { closeServer, fakeReport, listen } from './helpers.js';

const b64 = (b: Uint8Array | string) => Buffer.from(b).toString('base64url');
const policy = { snp: { measurements: [simulated.defaults.snpMeasurement] } };

describe('a Verifier’s REQUEST contexts', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('differ across the channels of one Verifier, and two Verifiers draw from sources of their own', async () => {
    const contexts: string[] = [];
    const peer = await rawServer(async ({ socket, reader }) => {
      contexts.push(String(json(await reader.next())['context']));
      socket.destroy();
    });
    cleanups.push(peer.close);
    const one = createVerifier({ trustAnchors: simulated.trustAnchors() });
    const two = createVerifier({ trustAnchors: simulated.trustAnchors() });
    const connect = async (verifier: typeof one) =>
      attestedConnect({ host: '127.0.0.1', port: peer.port, verify: { policy, verifier } }).then(
        (c) => c.destroy(),
        () => undefined, // the raw server hangs up after reading the REQUEST
      );
    for (let i = 0; i < 40; i++) await connect(one); // more than one CSPRNG block (32 contexts)
    for (let i = 0; i < 5; i++) await connect(two);
    expect(contexts).toHaveLength(45);
    expect(contexts.every((c) => c.length === 43)).toBe(true);
    expect(new Set(contexts).size).toBe(45);
    // Each channel drew its context from its own Verifier's source, and from no other.
    const a = challengerStateOf(one)!;
    const b = challengerStateOf(two)!;
    expect(a).not.toBe(b);
    expect(a.nonces).not.toBe(b.nonces);
    expect(a.chains).not.toBe(b.chains);
    expect(a.nonces.issued).toBe(40);
    expect(b.nonces.issued).toBe(5);
  });

  it('a channel draws its context from its Verifier (given, or the default one of its options) and keeps the peer’s chain there', async () => {
    const server = createAttestedServer({ evidence: simulated.snp() }, (c) => c.end());
    const port = await listen(server);
    cleanups.push(() => closeServer(server));
    const verifier = createVerifier({ trustAnchors: simulated.trustAnchors() });
    const channel = await attestedConnect({ host: '127.0.0.1', port, verify: { policy, verifier } });
    channel.destroy();
    expect(challengerStateOf(verifier)!.nonces.issued).toBe(1);
    // The peer's chain was decoded once and kept, listed in the Verifier's stats.
    expect(verifier.stats()['channel.chains']).toMatchObject({ size: 1, misses: 1, hits: 0 });
    const again = await attestedConnect({ host: '127.0.0.1', port, verify: { policy, verifier } });
    again.destroy();
    expect(verifier.stats()['channel.chains']).toMatchObject({ size: 1, misses: 1, hits: 1 });
    // attestedConnect parsed each connect's policy (a new object each time) through its memo.
    expect(verifier.stats().policies).toMatchObject({ size: 1, misses: 1, hits: 1 });
    // Without verify.verifier: the default Verifier of these options (verifierFor) is the owner.
    const verify = { policy, trustAnchors: simulated.trustAnchors() };
    const owner = challengerStateOf(verifierFor(verify))!;
    const before = owner.nonces.issued;
    const bare = await attestedConnect({ host: '127.0.0.1', port, verify });
    bare.destroy();
    expect(owner.nonces.issued).toBe(before + 1);
    expect(challengerStateOf(verifier)!.nonces.issued).toBe(2);
  });
});

describe('decoded chains (channel.chains)', () => {
  const report = [MediaType.SNP_REPORT, b64(fakeReport(new Uint8Array(64).fill(1)))];
  const chainOf = (text: string) => ({ report, chain: [MediaType.PEM_CHAIN, b64(text)] });
  const pem = (body: string) => `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;

  it('a hit is the decoding of exactly the same base64url text; other bytes of the same length and prefix are decoded', () => {
    const chains = new RecentTexts(CHAIN_TEXT_CACHE_SIZE);
    // Same length, same first 4 KiB, a different last certificate character.
    const body = 'A'.repeat(4096);
    const a = pem(`${body}B`);
    const b = pem(`${body}C`);
    expect(b64(a).length).toBe(b64(b).length);
    expect(decodeCmw(chainOf(a), REPORT_MEDIA_TYPES, { chains }).input.chain).toBe(a);
    expect(decodeCmw(chainOf(a), REPORT_MEDIA_TYPES, { chains }).input.chain).toBe(a);
    expect(chains.stats()).toMatchObject({ size: 1, hits: 1, misses: 1 });
    expect(decodeCmw(chainOf(b), REPORT_MEDIA_TYPES, { chains }).input.chain).toBe(b);
    expect(decodeCmw(chainOf(a), REPORT_MEDIA_TYPES, { chains }).input.chain).toBe(a);
    expect(chains.stats()).toMatchObject({ size: 2, hits: 2, misses: 2 });
  });

  it('a non-canonical spelling of kept bytes is refused, not answered from the cache', () => {
    const chains = new RecentTexts(CHAIN_TEXT_CACHE_SIZE);
    const text = pem('AAAA'); // its base64url ends in a group of 2 or 3 characters
    const good = b64(text);
    expect(good.length % 4).not.toBe(0);
    expect(decodeCmw(chainOf(text), REPORT_MEDIA_TYPES, { chains }).input.chain).toBe(text);
    // The same bytes with stray low bits in the final group: Node's decoder gives the same bytes.
    const last = good.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const stray = `${good.slice(0, -1)}${alphabet[alphabet.indexOf(last) + 1]}`;
    expect(Buffer.from(stray, 'base64url').toString()).toBe(text);
    const bad = { report, chain: [MediaType.PEM_CHAIN, stray] };
    expect(codeOf(() => decodeCmw(bad, REPORT_MEDIA_TYPES, { chains }))).toBe('ERR_EVIDENCE_MALFORMED');
    expect(chains.stats().size).toBe(1);
  });

  it('keeps at most its size, least recently used dropped first, and no text over MAX_KEPT_CHAIN_BASE64', () => {
    const chains = new RecentTexts(CHAIN_TEXT_CACHE_SIZE);
    const texts = Array.from({ length: CHAIN_TEXT_CACHE_SIZE + 3 }, (_, i) => pem(`A${i}`));
    for (const t of texts) expect(decodeCmw(chainOf(t), REPORT_MEDIA_TYPES, { chains }).input.chain).toBe(t);
    expect(chains.stats()).toMatchObject({ size: CHAIN_TEXT_CACHE_SIZE, evictions: 3, hits: 0 });
    decodeCmw(chainOf(texts.at(-1)!), REPORT_MEDIA_TYPES, { chains });
    decodeCmw(chainOf(texts[0]!), REPORT_MEDIA_TYPES, { chains });
    expect(chains.stats()).toMatchObject({ hits: 1, evictions: 4 });
    const big = pem('A'.repeat(13 * 1024));
    expect(decodeCmw(chainOf(big), REPORT_MEDIA_TYPES, { chains }).input.chain).toBe(big);
    expect(chains.get(b64(big))).toBeUndefined();
  });
});
