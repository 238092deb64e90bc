/**
 * The azure section of `npm run bench` (issue 12): warm verifications/s of Azure SEV-SNP evidence
 * (HCL report + SNP report + TPM quote) against what it cannot avoid, measured in the same run:
 * one raw P-384 verify of the SNP report plus one raw RSA-2048 verify of the quote (target
 * ≥ 0.8); and a one-way attested connect to a simulated Azure VM next to one to a simulated
 * SNP VM.
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
import { verifyEvidence } from '../dist/evidence/verify.js';
import { parseCertificate } from '../dist/evidence/x509/cert.js';
import { interleaved, record } from './harness.js';

const SECTION = 'azure';

async function verifications(): Promise<void> {
  const crl = simulated.amdCrl({ product: 'Milan' });
  const server = createServer((req, res) => {
    res.writeHead(req.url === '/vcek/v1/Milan/crl' ? 200 : 404);
    res.end(req.url === '/vcek/v1/Milan/crl' ? crl : '');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  try {
    const kds = new KdsClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
    const evidence = await simulated
      .azure({ tee: 'snp', snp: { product: 'Milan' } })
      .getEvidence(new Uint8Array(64).fill(1));
    const options = {
      kds,
      trustAnchors: simulated.trustAnchors(),
      policy: { azure: { snp: { requireCrl: true } } },
    };
    await verifyEvidence(evidence, options); // warms the chain cache and fetches the CRL once

    // The two signatures no verifier of this evidence can skip, with node:crypto alone.
    const hcl = parseHclReport(evidence.report);
    const report = parseSnpReport(hcl.hardwareReport);
    const vek = parseCertificate(evidence.vek!).publicKey;
    const snpSig = Buffer.concat([report.raw.r, report.raw.s]);
    const ak = parseRuntimeClaims(hcl).ak;
    const quoteSig = parseTpmtSignature(evidence.tpm!.signature) as { sig: Uint8Array };
    const rawOnce = () => {
      if (!verify('sha384', report.raw.signed, { key: vek, dsaEncoding: 'ieee-p1363' }, snpSig))
        throw new Error('bad SNP signature');
      if (
        !verify(
          'sha256',
          evidence.tpm!.quote,
          { key: ak, padding: constants.RSA_PKCS1_PADDING },
          quoteSig.sig,
        )
      )
        throw new Error('bad quote signature');
    };
    const t = await interleaved(
      { raw: async () => rawOnce(), full: () => verifyEvidence(evidence, options) },
      2000,
    );
    const raw = 1000 / t.raw.median;
    const full = 1000 / t.full.median;
    const ratio = full / raw;
    record({
      section: SECTION,
      metric: 'verifyEvidence, Azure SEV-SNP (warm collateral)',
      value: full,
      unit: 'verifications/s',
      baseline: { metric: 'raw P-384 verify + raw RSA-2048 verify', value: raw },
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
