/**
 * TDX verification throughput with warm collateral (verified collateral and PCK chain cached, as
 * on a server that sees the same platforms again and again), next to the two P-256 ECDSA
 * verifications a quote carries (QE report by the PCK, quote by the attestation key), measured
 * with node:crypto in the same run. Target: ratio ≥ 0.8. The verifier checks a QE report's
 * signature once (every quote of one QE carries the same), so the quote signature alone is shown
 * as a second baseline: that one is checked for every quote.
 * The rounds use distinct evidence: quotes of the simulated TDX platform
 * (src/evidence/providers/simulated-tdx.ts, its collateral and roots), one per round with its own
 * REPORT_DATA, made before the clock starts, each checked raw and by the verifier in its round.
 * The Verifier caches signature verdicts by content (src/evidence/verdicts.ts), so one quote
 * verified 2000 times would measure a cache hit, not what a server verifying a stream of quotes
 * pays.
 * Where @phala/dcap-qvl (pure-JS verifier, devDependency) loads, it is measured on the real quote
 * of test/fixtures/tdx/dcap-qvl__quote (it trusts Intel's root only), next to the raw checks of
 * that quote; our verifier has no row on that quote, because every round after its first would
 * be a cached verdict.
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { simulated } from '../dist/evidence/providers/simulated.js';
import { parseTdxQuote } from '../dist/evidence/tdx/quote.js';
import type { EvidenceInput, TdxCollateral } from '../dist/evidence/types.js';
import { verifierFor, verifyEvidence } from '../dist/evidence/verify.js';
import { parseCertificate } from '../dist/evidence/x509/cert.js';
import { distinctReportData, interleaved, record, signatureMisses } from './harness.js';

const DIR = new URL('../test/fixtures/tdx/dcap-qvl__quote/', import.meta.url);
const WARM_ROUNDS = 2000;
const ROUNDS = 2000;
const QVL_ROUNDS = 300;

/** What the raw checks of one quote need, parsed and with its keys prepared outside the clock. */
interface RawQuote {
  qeReport: Uint8Array;
  qeReportSignature: Uint8Array;
  signedData: Uint8Array;
  signature: Uint8Array;
  /** The PCK certificate (DER) and the raw attestation key the two keys below come from. */
  pck: Uint8Array;
  att: Uint8Array;
  pckKey: KeyObject;
  attKey: KeyObject;
}

/**
 * `keys` (the keys of a quote before) are taken when this quote has the same PCK certificate and
 * attestation key: a KeyObject's first verification costs more than later ones (measured: the
 * raw pair took 2.5× one quote verify with a new KeyObject per quote), and the verifier keeps its
 * keys too.
 */
function rawQuote(quote: Uint8Array, keys?: RawQuote): RawQuote {
  const q = parseTdxQuote(quote);
  const pck = q.pckChain[0]!;
  const same =
    keys && Buffer.compare(keys.pck, pck) === 0 && Buffer.compare(keys.att, q.attestationKey) === 0;
  const spki = Buffer.concat([
    Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'),
    Buffer.of(4),
    q.attestationKey,
  ]);
  return {
    qeReport: q.qeReport.raw,
    qeReportSignature: q.qeReportSignature,
    signedData: q.signedData,
    signature: q.signature,
    pck,
    att: q.attestationKey,
    pckKey: same ? keys.pckKey : parseCertificate(pck).publicKey,
    attKey: same ? keys.attKey : createPublicKey({ key: spki, format: 'der', type: 'spki' }),
  };
}

// The floor: exactly the two signature checks.
function twoVerifies(q: RawQuote): void {
  const a = cryptoVerify(
    'sha256',
    q.qeReport,
    { key: q.pckKey, dsaEncoding: 'ieee-p1363' },
    q.qeReportSignature,
  );
  const b = cryptoVerify('sha256', q.signedData, { key: q.attKey, dsaEncoding: 'ieee-p1363' }, q.signature);
  if (!a || !b) throw new Error('raw verification failed');
}

// The quote signature alone: what is left to check when the quote's QE report (the same in
// every quote of one QE) was verified before.
function quoteVerify(q: RawQuote): void {
  if (!cryptoVerify('sha256', q.signedData, { key: q.attKey, dsaEncoding: 'ieee-p1363' }, q.signature))
    throw new Error('raw verification failed');
}

export async function run(): Promise<void> {
  const now = new Date();
  const platform = simulated.tdx({ now });
  const options = { now, trustAnchors: simulated.trustAnchors() };
  // One quote per round (warm-up and timed rounds each their own) and one more to warm the caches.
  const evidence: EvidenceInput[] = [];
  for (const reportData of distinctReportData(WARM_ROUNDS + ROUNDS + 1))
    evidence.push(await platform.getEvidence(reportData));
  // Parsed here, off the clock: the raw checks time the two verifies only. Every quote shares the
  // PCK and attestation key, so one KeyObject of each serves them all, as in the verifier.
  const raws: RawQuote[] = [];
  for (const e of evidence) raws.push(rawQuote(e.report, raws.at(-1)));

  const ours = async (input: EvidenceInput) => {
    const c = await verifyEvidence(input, options);
    if (c.format !== 'tdx' || c.tcbStatus !== 'UpToDate') throw new Error('unexpected result');
  };
  await ours(evidence[WARM_ROUNDS + ROUNDS]!); // warms the collateral, chain and key caches

  // Round i of each contender checks quote `from + i`, none of them seen by the verifier before.
  const contenders = (from: number) => {
    let raw = from;
    let one = from;
    let lib = from;
    return {
      raw: async () => twoVerifies(raws[raw++]!),
      one: async () => quoteVerify(raws[one++]!),
      lib: () => ours(evidence[lib++]!),
    };
  };

  // One of each per round, each timed alone, for 2000 rounds; medians compared (see snp.ts). The
  // same kind of rounds (on other quotes) are run once before, untimed: a server verifying quotes
  // all day runs optimised code, and the library's ~60 small functions reach V8's optimising tier
  // later than the one node:crypto call of the baselines (measured: 0.76–0.78 without these
  // rounds, same code).
  await interleaved(contenders(0), WARM_ROUNDS);
  const t = await signatureMisses(verifierFor(options), 'tdx.signatures', ROUNDS, () =>
    interleaved(contenders(WARM_ROUNDS), ROUNDS),
  );
  const raw = 1000 / t.raw.median;
  const lib = 1000 / t.lib.median;
  record({
    section: 'tdx',
    metric: 'raw node:crypto: 2 × P-256 verify (simulated quotes)',
    value: raw,
    unit: 'ops/s',
  });
  const ratio = lib / raw;
  record({
    section: 'tdx',
    metric: 'verifyEvidence(TDX quote), warm collateral, a new simulated quote each round',
    value: lib,
    unit: 'verifications/s',
    baseline: { metric: '2 × P-256 verify of the same quote', value: raw },
    ratio,
    target: '≥ 0.8',
    pass: ratio >= 0.8,
  });
  const one = 1000 / t.one.median;
  record({
    section: 'tdx',
    metric: 'verifyEvidence(TDX quote), against the quote signature alone',
    value: lib,
    unit: 'verifications/s',
    baseline: { metric: '1 × P-256 verify of the same quote', value: one },
    ratio: lib / one,
  });

  // @phala/dcap-qvl (CommonJS, pure JavaScript crypto) on the real quote, its collateral and
  // time, next to the two raw checks of that quote. It keeps no cache, so the same quote each
  // round is a fair figure for it; its ratio to the raw checks compares with ours above (the raw
  // checks are the same two P-256 verifies on either quote).
  let qvl: { verify: (q: Uint8Array, c: unknown, nowSecs: number) => { status: string } } | undefined;
  try {
    qvl = createRequire(import.meta.url)('@phala/dcap-qvl');
  } catch (err) {
    console.log(`[tdx] @phala/dcap-qvl not measured: ${(err as Error).message}`);
  }
  if (qvl) {
    const quote = new Uint8Array(readFileSync(new URL('quote.bin', DIR)));
    const collateral = JSON.parse(readFileSync(new URL('collateral.json', DIR), 'utf8')) as TdxCollateral;
    const meta = JSON.parse(readFileSync(new URL('meta.json', DIR), 'utf8')) as { evaluate_at: string };
    const nowSecs = Math.floor(new Date(meta.evaluate_at).getTime() / 1000);
    const real = rawQuote(quote);
    const theirs = async () => {
      const r = qvl!.verify(Buffer.from(quote), collateral, nowSecs);
      if (r.status !== 'UpToDate') throw new Error(`dcap-qvl: ${r.status}`);
    };
    try {
      await theirs();
      const q = await interleaved({ raw: async () => twoVerifies(real), qvl: theirs }, QVL_ROUNDS);
      const rawReal = 1000 / q.raw.median;
      const ops = 1000 / q.qvl.median;
      record({
        section: 'tdx',
        metric: '@phala/dcap-qvl verify (real quote, no cache)',
        value: ops,
        unit: 'verifications/s',
        baseline: { metric: '2 × P-256 verify of the real quote', value: rawReal },
        ratio: ops / rawReal,
      });
    } catch (err) {
      console.log(`[tdx] @phala/dcap-qvl failed on this quote: ${(err as Error).message}`);
    }
  }
}
