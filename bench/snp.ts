/**
 * SEV-SNP verifications per second with warm collateral (chain verified and cached, CRL in the
 * KDS client's cache) against raw node:crypto P-384 verifications of the same report in the same
 * run. The ratio shows what the pipeline costs beyond the one signature it cannot avoid.
 * The rounds use distinct evidence (one simulated report per round, each with its own REPORT_DATA,
 * all under the same VCEK, made before the clock starts): the Verifier caches signature verdicts
 * by content (src/evidence/verdicts.ts), so one report verified 2000 times would measure a cache
 * hit, not what a server verifying a stream of reports pays.
 */
import { verify } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { simulated } from '../dist/evidence/providers/simulated.js';
import { KdsClient } from '../dist/evidence/snp/kds.js';
import { parseSnpReport } from '../dist/evidence/snp/report.js';
import type { EvidenceInput } from '../dist/evidence/types.js';
import { verifierFor, verifyEvidence } from '../dist/evidence/verify.js';
import { parseCertificate } from '../dist/evidence/x509/cert.js';
import { distinctReportData, interleaved, record, signatureMisses } from './harness.js';

const ROUNDS = 2000;

export async function run(): Promise<void> {
  const crl = simulated.amdCrl({ product: 'Milan' });
  const server = createServer((req, res) => {
    res.writeHead(req.url === '/vcek/v1/Milan/crl' ? 200 : 404);
    res.end(req.url === '/vcek/v1/Milan/crl' ? crl : '');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  try {
    const kds = new KdsClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
    const platform = simulated.snp({ product: 'Milan' });
    // One report per round and one more to warm with; signing them is not part of what is timed.
    const evidence: EvidenceInput[] = [];
    for (const reportData of distinctReportData(ROUNDS + 1))
      evidence.push(await platform.getEvidence(reportData));
    const options = {
      kds,
      trustAnchors: simulated.trustAnchors(),
      policy: { snp: { requireCrl: true } },
    };
    await verifyEvidence(evidence[ROUNDS]!, options); // warms the chain cache and fetches the CRL once

    // Every report is signed by the same VCEK: its key is prepared once, as the verifier keeps it.
    const key = parseCertificate(evidence[0]!.vek!).publicKey;
    const signed = evidence.slice(0, ROUNDS).map((e) => {
      const report = parseSnpReport(e.report);
      return { data: report.raw.signed, sig: Buffer.concat([report.raw.r, report.raw.s]) };
    });
    let rawNext = 0;
    let fullNext = 0;
    const rawOnce = () => {
      const { data, sig } = signed[rawNext++]!;
      if (!verify('sha384', data, { key, dsaEncoding: 'ieee-p1363' }, sig)) throw new Error('bad');
    };
    // One of each per round, each timed alone, for 2000 rounds; medians compared. The machine
    // changes speed (by 3-5×) for seconds at a time, so even short alternating windows can catch a
    // fast stretch for one side only; single operations side by side meet the same speed.
    // Round i verifies report i on both sides; none of them was seen before, so every round of
    // the verifier checks the signature (signatureMisses() throws otherwise).
    const t = await signatureMisses(verifierFor(options), 'sev-snp.signatures', ROUNDS, () =>
      interleaved(
        { raw: async () => rawOnce(), full: () => verifyEvidence(evidence[fullNext++]!, options) },
        ROUNDS,
      ),
    );
    const raw = 1000 / t.raw.median;
    const full = 1000 / t.full.median;
    const ratio = full / raw;
    record({
      section: 'snp',
      metric: 'verifyEvidence (warm collateral, a new report each round)',
      value: full,
      unit: 'verifications/s',
      baseline: { metric: 'raw node:crypto P-384 verify of the same report', value: raw },
      ratio,
      target: '≥ 0.85',
      pass: ratio >= 0.85,
    });
  } finally {
    server.closeAllConnections();
    await new Promise<void>((ok) => server.close(() => ok()));
  }
}
