/**
 * The azure section of `npm run bench` (issue 12): warm verifications/s of Azure SEV-SNP evidence
 * (HCL report + SNP report + TPM quote) against what it cannot avoid, measured in the same run:
 * one raw P-384 verify of the SNP report plus one raw RSA-2048 verify of the quote (target
 * ≥ 0.8); and a one-way attested connect to a simulated Azure VM next to one to a simulated
 * SNP VM.
 * The verification rounds use distinct evidence (one simulated Azure report per round, each with
 * its own REPORT_DATA, hence its own HCL claims, SNP report and TPM quote, made before the clock
 * starts): the Verifier caches signature verdicts by content (src/evidence/verdicts.ts), so one
 * report verified 2000 times would skip the SNP signature after the first round. Each connect
 * brings a new report already (bound to its own TLS exchange).
 */
import { constants, verify } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { attestedConnect } from '../dist/channel/connect.js';
import { createAttestedServer } from '../dist/channel/server.js';
import { parseHclReport, parseRuntimeClaims } from '../dist/evidence/azure/hcl.js';
import { simulated } from '../dist/evidence/providers/simulated.js';
import { KdsClient } from '../dist/evidence/snp/kds.js';
import { parseSnpReport } from '../dist/evidence/snp/report.js';
import { parseTpmtSignature } from '../dist/evidence/tpm/attest.js';
import type { EvidenceInput } from '../dist/evidence/types.js';
import { verifierFor, verifyEvidence } from '../dist/evidence/verify.js';
import { parseCertificate } from '../dist/evidence/x509/cert.js';
import { distinctReportData, interleaved, record, signatureMisses } from './harness.js';

const SECTION = 'azure';
const ROUNDS = 2000;

async function verifications(): Promise<void> {
  const crl = simulated.amdCrl({ product: 'Milan' });
  const server = createServer((req, res) => {
    res.writeHead(req.url === '/vcek/v1/Milan/crl' ? 200 : 404);
    res.end(req.url === '/vcek/v1/Milan/crl' ? crl : '');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  try {
    const kds = new KdsClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
    const platform = simulated.azure({ tee: 'snp', snp: { product: 'Milan' } });
    // One report per round and one more to warm with; making them is not part of what is timed.
    const evidence: EvidenceInput[] = [];
    for (const reportData of distinctReportData(ROUNDS + 1))
      evidence.push(await platform.getEvidence(reportData));
    const options = {
      kds,
      trustAnchors: simulated.trustAnchors(),
      policy: { azure: { snp: { requireCrl: true } } },
    };
    await verifyEvidence(evidence[ROUNDS]!, options); // warms the chain cache and fetches the CRL once

    // The two signatures no verifier of this evidence can skip, with node:crypto alone. The VCEK
    // and the attestation key are the same in every report: prepared once, as the verifier keeps them.
    const first = evidence[0]!;
    const vek = parseCertificate(first.vek!).publicKey;
    const ak = parseRuntimeClaims(parseHclReport(first.report)).ak;
    const signed = evidence.slice(0, ROUNDS).map((e) => {
      const report = parseSnpReport(parseHclReport(e.report).hardwareReport);
      return {
        snp: report.raw.signed,
        snpSig: Buffer.concat([report.raw.r, report.raw.s]),
        quote: e.tpm!.quote,
        quoteSig: (parseTpmtSignature(e.tpm!.signature) as { sig: Uint8Array }).sig,
      };
    });
    let rawNext = 0;
    let fullNext = 0;
    const rawOnce = () => {
      const s = signed[rawNext++]!;
      if (!verify('sha384', s.snp, { key: vek, dsaEncoding: 'ieee-p1363' }, s.snpSig))
        throw new Error('bad SNP signature');
      if (!verify('sha256', s.quote, { key: ak, padding: constants.RSA_PKCS1_PADDING }, s.quoteSig))
        throw new Error('bad quote signature');
    };
    // Round i checks report i on both sides; signatureMisses() throws if any SNP signature verdict
    // came from the cache.
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
      section: SECTION,
      metric: 'verifyEvidence, Azure SEV-SNP (warm collateral, a new report each round)',
      value: full,
      unit: 'verifications/s',
      baseline: { metric: 'raw P-384 verify + raw RSA-2048 verify of the same report', value: raw },
      ratio,
      target: '≥ 0.8',
      pass: ratio >= 0.8,
    });
  } finally {
    server.closeAllConnections();
    await new Promise<void>((ok) => server.close(() => ok()));
  }
}

async function connects(): Promise<void> {
  const trustAnchors = simulated.trustAnchors();
  const start = async (evidence: ReturnType<typeof simulated.snp>) => {
    const s = createAttestedServer({ evidence }, (c) => {
      c.resume();
      c.on('end', () => c.end());
    });
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    return s;
  };
  const azure = await start(simulated.azure({ tee: 'snp' }));
  const snp = await start(simulated.snp());
  const connectTo = (server: typeof azure, policy: object) => async () => {
    const ch = await attestedConnect({
      host: '127.0.0.1',
      port: (server.address() as AddressInfo).port,
      verify: { policy, trustAnchors },
    });
    return async () => {
      ch.end();
      await once(ch, 'close');
    };
  };
  try {
    const t = await interleaved(
      {
        azure: connectTo(azure, { azure: {} }),
        snp: connectTo(snp, { snp: { measurements: [simulated.defaults.snpMeasurement] } }),
      },
      200,
    );
    record({
      section: SECTION,
      metric: 'one-way attested connect (simulated Azure SEV-SNP VM)',
      value: t.azure.median,
      unit: 'ms',
      baseline: { metric: 'one-way attested connect (simulated SNP)', value: t.snp.median },
      ratio: t.snp.median / t.azure.median,
    });
  } finally {
    await Promise.all([azure, snp].map((s) => new Promise<void>((ok) => s.close(() => ok()))));
  }
}

export async function run(): Promise<void> {
  await verifications();
  await connects();
}
