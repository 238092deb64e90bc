/**
 * Verifier memory: one Verifier sees 100 000 distinct simulated reports and must stay within its
 * documented bound (docs/api.md, "Verifier caches"). The reports are chosen to make every cache
 * grow, one kind each in turn:
 *
 *   - SNP reports whose REPORT_DATA differs (the VEK verdict is kept; each signature then fails);
 *   - SNP evidence whose VEK is a certificate of the largest size kept (MAX_KEPT_CERT_BYTES), a
 *     different one each time (parsed and kept in `certificates`, then refused);
 *   - TDX quotes with a fresh attestation key each (kept in `tdx.keys`, then refused at the QE
 *     binding);
 *   - TDX quotes whose PCK chain text differs (trailing NULs, up to the largest size kept) with
 *     collateral JSON text that differs (whitespace, up to the largest size kept): `tdx.chains`
 *     and `tdx.collateral` fill with entries of their largest size;
 *   - first, Azure SEV-SNP and TDX evidence whose runtime claims differ (user-data, an HCLAkPub
 *     with a 4096-bit modulus of its own, and a filler up to the largest size kept,
 *     MAX_KEPT_CLAIMS_BYTES), each bound by its own hardware report: `azure-*.runtimeClaims` and
 *     `azure-*.aks` fill four times over (each
 *     costs a hardware signature, so they are not spread over the whole run; an LRU that is full
 *     stays full);
 *   - first too, the chains of channel peers' evidence (`channel.chains`, decoded as a channel
 *     verifying with this Verifier decodes them): distinct texts of the longest base64url kept,
 *     four times the cache's size, and parsed policies (`policies`) whose JSON text is just under
 *     the longest kept, four times that cache's size;
 *   - then SEV-SNP reports and TDX quotes that verify, each with its own REPORT_DATA (signed
 *     afresh by the simulated platforms): `sev-snp.signatures` and `tdx.signatures` fill twice
 *     over.
 *
 * Measured: the heap plus ArrayBuffer memory after a full GC, before the Verifier saw anything,
 * after 10 000 reports (every cache full) and after 100 000; the row is what the Verifier retains
 * at the end (dropped and collected: the difference), next to the documented bound.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { decodeCmw, MediaType, REPORT_MEDIA_TYPES } from '../dist/channel/cmw.js';
import { AZURE_CACHE_SIZES } from '../dist/evidence/azure/format.js';
import {
  HCL_CLAIMS_OFFSET,
  HCL_HEADER_SIZE,
  HCL_RUNTIME_HEADER_OFFSET,
  parseHclReport,
} from '../dist/evidence/azure/hcl.js';
import { MAX_KEPT_CLAIMS_BYTES } from '../dist/evidence/azure/verify.js';
import {
  CHAIN_TEXT_CACHE_SIZE,
  challengerStateOf,
  MAX_KEPT_CHAIN_BASE64,
} from '../dist/evidence/challenger.js';
import { MAX_KEPT_POLICY_TEXT, POLICY_CACHE_SIZE, policyMemoOf } from '../dist/evidence/policy-memo.js';
import { simulated } from '../dist/evidence/providers/simulated.js';
import { SNP_CACHE_SIZES } from '../dist/evidence/snp/format.js';
import { TDX_CACHE_SIZES } from '../dist/evidence/tdx/format.js';
import { parseTdxQuote } from '../dist/evidence/tdx/quote.js';
import { MAX_KEPT_PEM_BYTES } from '../dist/evidence/tdx/verify.js';
import type { EvidenceInput, Verifier } from '../dist/evidence/types.js';
import { createVerifier, VERIFIER_MEMORY_BOUND_BYTES } from '../dist/evidence/verifier.js';
import { buildCertificate } from '../dist/evidence/x509/build.js';
import { MAX_KEPT_CERT_BYTES } from '../dist/evidence/x509/cert.js';
import { record } from './harness.js';

// VERIFIER_REPORTS: a shorter run while editing this file; the row is the 100 000 one.
const REPORTS = Number(process.env.VERIFIER_REPORTS ?? 100_000);

/** REPORTDATA in a v4 quote: the 48-byte header, then the TD report body up to it (520 bytes). */
const REPORT_DATA_AT = 48 + 520;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function memory(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** The quote with `pem` as its PCK chain: the three length fields that enclose it follow. */
function withPem(quote: Uint8Array, pem: Uint8Array): Uint8Array {
  const q = parseTdxQuote(quote);
  const view = new DataView(quote.buffer, quote.byteOffset, quote.byteLength);
  const sigLenAt = q.signedData.length;
  const sigEnd = sigLenAt + 4 + view.getUint32(sigLenAt, true);
  const innerAt = q.qeAuthData.byteOffset - quote.byteOffset + q.qeAuthData.length + 2;
  const innerSize = view.getUint32(innerAt, true);
  const pemAt = sigEnd - innerSize;
  const out = new Uint8Array(pemAt + pem.length);
  out.set(quote.subarray(0, pemAt), 0);
  out.set(pem, pemAt);
  const w = new DataView(out.buffer);
  const delta = pem.length - innerSize;
  for (const at of [sigLenAt, sigLenAt + 4 + 64 + 64 + 2, pemAt - 4])
    w.setUint32(at, w.getUint32(at, true) + delta, true);
  return out;
}

export async function run(): Promise<void> {
  const reportData = new Uint8Array(64).fill(9);
  const snp = await simulated.snp({ product: 'Milan' }).getEvidence(reportData);
  const tdx = await simulated.tdx().getEvidence(reportData);
  const quote = tdx.report;
  const q = parseTdxQuote(quote);
  const innerAt = q.qeAuthData.byteOffset - quote.byteOffset + q.qeAuthData.length + 2;
  const innerSize = new DataView(quote.buffer, quote.byteOffset).getUint32(innerAt, true);
  const pem = quote.slice(q.size - innerSize, q.size);
  const collateralText = typeof tdx.collateral === 'string' ? tdx.collateral : JSON.stringify(tdx.collateral);
  const keyAt = q.signedData.length + 4 + 64;
  // A certificate just under the largest size a Verifier keeps: a VEK name, a filler extension.
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const filler = (n: number) =>
    buildCertificate({
      subject: [['CN', 'SEV-VCEK']],
      issuer: [['CN', 'SEV-Milan']],
      serial: Uint8Array.from([1, 2, 3]),
      notBefore: new Date('2020-01-01T00:00:00Z'),
      notAfter: new Date('2040-01-01T00:00:00Z'),
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      algorithm: 'ecdsa-sha384',
      extensions: [
        {
          oid: '1.3.6.1.4.1.3704.1.99',
          value: Uint8Array.from([0x04, 0x82, n >> 8, n & 0xff, ...randomBytes(n)]),
        },
      ],
    });
  const probe = filler(6000).length - 6000;
  const bigVek = filler(MAX_KEPT_CERT_BYTES - probe - 16);
  const collateralRoom = 64 * 1024 - collateralText.length - 1024;
  const attestationKeys = Array.from({ length: 2 * TDX_CACHE_SIZES.keys }, () => {
    const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    return Buffer.concat([Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  });

  function nth(i: number): EvidenceInput {
    const n = Math.floor(i / 4);
    switch (i % 4) {
      case 0: {
        const report = new Uint8Array(snp.report);
        new DataView(report.buffer).setUint32(0x50, n, true);
        return { ...snp, report };
      }
      case 1: {
        // Another certificate of the same size: the filler extension's first bytes differ.
        const vek = new Uint8Array(bigVek);
        new DataView(vek.buffer).setUint32(vek.length - 900, n, true);
        return { ...snp, vek };
      }
      case 2: {
        // A key from a pool twice the size of `tdx.keys`, taken in turn: an LRU that sees keys
        // in a cycle longer than itself never hits, so each quote still adds a new entry (and the
        // body's REPORTDATA makes every quote distinct). Generating a P-256 key per quote was a
        // tenth of the section's time.
        const report = new Uint8Array(quote);
        report.set(attestationKeys[n % attestationKeys.length]!, keyAt);
        new DataView(report.buffer).setUint32(REPORT_DATA_AT, n, true);
        return { report, collateral: collateralText };
      }
      default: {
        const padded = new Uint8Array(MAX_KEPT_PEM_BYTES - (n % 1024));
        padded.set(pem, 0); // the rest: NULs, which the quote format allows after the chain
        return {
          report: withPem(quote, padded),
          collateral: `${collateralText}${' '.repeat(collateralRoom + (n % 1024))}`,
        };
      }
    }
  }

  // Azure: a simulated VM's evidence with its runtime claims replaced by distinct ones of the
  // largest size kept, hashed into a fresh hardware report of the same simulated platform.
  const AZURE_RUN = 2 * 4 * Math.max(AZURE_CACHE_SIZES.runtimeClaims, AZURE_CACHE_SIZES.aks);
  const azure = {
    snp: {
      sample: await simulated.azure({ tee: 'snp', snp: { product: 'Milan' } }).getEvidence(reportData),
      hardware: simulated.snp({ product: 'Milan', vmpl: 0 }),
    },
    tdx: { sample: await simulated.azure({ tee: 'tdx' }).getEvidence(reportData), hardware: simulated.tdx() },
  };
  async function azureNth(i: number): Promise<EvidenceInput> {
    const tee = i % 2 === 0 ? 'snp' : 'tdx';
    const { sample, hardware } = azure[tee];
    const json = JSON.parse(Buffer.from(parseHclReport(sample.report).claimsBytes).toString('utf8'));
    json['user-data'] = i.toString(16).padStart(128, '0');
    // A distinct HCLAkPub each (any odd 4096-bit modulus imports; the quote then fails), so that
    // the aks caches fill with keys of the largest size kept.
    const modulus = randomBytes(512);
    modulus[0]! |= 0x80;
    modulus[511]! |= 1;
    const ak = (json.keys as Array<Record<string, unknown>>).find((k) => k.kid === 'HCLAkPub')!;
    ak.n = modulus.toString('base64url');
    json.filler = '';
    json.filler = 'f'.repeat(MAX_KEPT_CLAIMS_BYTES - Buffer.byteLength(JSON.stringify(json)));
    const claims = Buffer.from(JSON.stringify(json));
    const hwReportData = new Uint8Array(64);
    hwReportData.set(createHash('sha256').update(claims).digest());
    const hw = await hardware.getEvidence(hwReportData);
    const report = new Uint8Array(HCL_CLAIMS_OFFSET + claims.length);
    report.set(sample.report.subarray(0, HCL_CLAIMS_OFFSET));
    if (tee === 'snp') report.set(hw.report, HCL_HEADER_SIZE);
    else report.set(hwReportData, HCL_HEADER_SIZE + 128); // the TDREPORT's REPORTDATA
    const v = new DataView(report.buffer);
    v.setUint32(8, HCL_CLAIMS_OFFSET + claims.length, true);
    v.setUint32(HCL_RUNTIME_HEADER_OFFSET, claims.length + 20, true);
    v.setUint32(HCL_RUNTIME_HEADER_OFFSET + 16, claims.length, true);
    report.set(claims, HCL_CLAIMS_OFFSET);
    return tee === 'snp'
      ? { ...sample, report, vek: hw.vek!, chain: hw.chain! }
      : { ...sample, report, tdQuote: hw.report, collateral: hw.collateral! };
  }

  // Reports and quotes that verify, a distinct REPORT_DATA each: one signature verdict kept each.
  const SIGNED_RUN = 2 * 2 * Math.max(SNP_CACHE_SIZES.signatures, TDX_CACHE_SIZES.signatures);
  const signers = { snp: simulated.snp({ product: 'Milan' }), tdx: simulated.tdx() };
  function signedNth(i: number): Promise<EvidenceInput> {
    const data = new Uint8Array(64);
    new DataView(data.buffer).setUint32(0, i);
    return (i % 2 === 0 ? signers.snp : signers.tdx).getEvidence(data);
  }

  let verifier: Verifier | undefined = createVerifier({ trustAnchors: simulated.trustAnchors() });
  const before = memory();
  let full = 0;
  const outcomes = new Map<string, number>();
  const chains = challengerStateOf(verifier)!.chains;
  const snpReport = (await signers.snp.getEvidence(new Uint8Array(64))).report;
  const report = [MediaType.SNP_REPORT, Buffer.from(snpReport).toString('base64url')];
  for (let i = 0; i < 4 * CHAIN_TEXT_CACHE_SIZE; i++) {
    // 12 KiB of UTF-8 (two bytes a character: a value of 6 Ki two-byte characters), 16 KiB of base64url.
    const bytes = Buffer.from(`${String(i).padStart(8, '0')}${'é'.repeat(6140)}`);
    const b64 = bytes.toString('base64url');
    if (b64.length !== MAX_KEPT_CHAIN_BASE64) throw new Error(`chain filler is ${b64.length} characters`);
    decodeCmw({ report, chain: [MediaType.PEM_CHAIN, b64] }, REPORT_MEDIA_TYPES, { chains });
  }
  const policies = policyMemoOf(verifier)!;
  for (let i = 0; i < 4 * POLICY_CACHE_SIZE; i++) {
    const measurements = Array.from({ length: 160 }, (_, j) => (i * 1000 + j).toString(16).padStart(96, '0'));
    const policy = { snp: { measurements } };
    if (JSON.stringify(policy).length > MAX_KEPT_POLICY_TEXT) throw new Error('policy filler too long');
    policies.parse(policy);
  }
  for (let i = 0; i < REPORTS; i++) {
    const input =
      i < AZURE_RUN ? await azureNth(i) : i < AZURE_RUN + SIGNED_RUN ? await signedNth(i) : nth(i);
    const code = await verifier.verify(input).then(
      () => 'accepted',
      (err: { code?: string }) => err.code ?? 'other',
    );
    outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
    if (i === Math.min(10_000, REPORTS / 10) - 1) full = memory();
  }
  const end = memory();
  const stats = verifier.stats();
  verifier = undefined;
  const dropped = memory();
  const retained = end - dropped;
  const mib = (b: number) => b / 2 ** 20;
  console.log(
    `  heap+buffers: ${mib(before).toFixed(1)} MiB before, ${mib(full).toFixed(1)} after ${Math.min(10_000, REPORTS / 10)}, ${mib(end).toFixed(1)} after ${REPORTS}, ${mib(dropped).toFixed(1)} once dropped`,
  );
  console.log(`  outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
  console.log(
    `  caches: ${JSON.stringify(Object.fromEntries(Object.entries(stats).map(([k, s]) => [k, `${s.size}/${s.max} (${s.evictions} evicted)`])))}`,
  );
  const full100 = Object.values(stats).every((s) => s.size <= s.max);
  record({
    section: 'verifier',
    metric: `memory retained after ${REPORTS} distinct reports`,
    value: mib(retained),
    unit: 'MiB',
    baseline: { metric: 'documented bound', value: mib(VERIFIER_MEMORY_BOUND_BYTES) },
    ratio: retained / VERIFIER_MEMORY_BOUND_BYTES,
    target: '≤ 1 (and no growth from 10 000 to 100 000 beyond 10%)',
    pass:
      full100 && retained <= VERIFIER_MEMORY_BOUND_BYTES && end - full <= 0.1 * VERIFIER_MEMORY_BOUND_BYTES,
  });
}
