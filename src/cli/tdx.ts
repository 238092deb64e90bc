/**
 * The TDX parts of the CLI: what `inspect` prints for a quote, the `--collateral` / `--pcs-url`
 * options of `verify`.
 * inspect.ts and verify.ts stay format-neutral and call into here.
 */
import { readFile } from 'node:fs/promises';
import { bytesToHex } from '../evidence/bytes.js';
import { parseSgxExtensions } from '../evidence/tdx/pck.js';
import { parseTdxQuote } from '../evidence/tdx/quote.js';
import type { EvidenceInput, VerifyOptions } from '../evidence/types.js';
import { parseCertificate } from '../evidence/x509/cert.js';

/** Every field of a quote, named as in Intel's headers, with the PCK chain summarised. */
export function inspectTdxFields(bytes: Uint8Array): Record<string, unknown> {
  const q = parseTdxQuote(bytes);
  const certs = q.pckChain.map((der) => parseCertificate(der));
  let sgx: Record<string, unknown>;
  try {
    const ext = parseSgxExtensions(certs[0]!);
    sgx = {
      ppid: bytesToHex(ext.ppid),
      fmspc: bytesToHex(ext.fmspc),
      pceId: bytesToHex(ext.pceId),
      pceSvn: ext.pceSvn,
      sgxTcbComponents: ext.sgxTcbComponents,
    };
  } catch (err) {
    sgx = { error: (err as Error).message };
  }
  const b = q.body;
  const attrs = b.tdAttributes;
  return {
    header: {
      version: q.header.version,
      attestationKeyType: q.header.attestationKeyType,
      teeType: `0x${q.header.teeType.toString(16)}`,
      reserved: q.header.reserved,
      qeVendorId: q.header.qeVendorId,
      userData: q.header.userData,
    },
    bodyType: q.bodyType === 3 ? '3 (TD report 1.5)' : '2 (TD report 1.0)',
    body: {
      ...b,
      tdAttributesDecoded: {
        debug: (attrs[0]! & 0x01) !== 0,
        septVeDisable: (attrs[3]! & 0x10) !== 0,
        pks: (attrs[3]! & 0x40) !== 0,
        kl: (attrs[3]! & 0x80) !== 0,
        perfmon: (attrs[7]! & 0x80) !== 0,
      },
    },
    signature: q.signature,
    attestationKey: q.attestationKey,
    qeReport: {
      cpuSvn: q.qeReport.cpuSvn,
      miscSelect: q.qeReport.miscSelect,
      attributes: q.qeReport.attributes,
      mrEnclave: q.qeReport.mrEnclave,
      mrSigner: q.qeReport.mrSigner,
      isvProdId: q.qeReport.isvProdId,
      isvSvn: q.qeReport.isvSvn,
      reportData: q.qeReport.reportData,
    },
    qeReportSignature: q.qeReportSignature,
    qeAuthData: q.qeAuthData,
    pckChain: certs.map((c) => ({
      subject: c.subject.CN ?? '?',
      issuer: c.issuer.CN ?? '?',
      serial: c.serialHex,
      notBefore: c.notBefore,
      notAfter: c.notAfter,
      sha256: c.fingerprint256,
    })),
    pckSgxExtension: sgx,
    quoteBytes: q.size,
    trailingBytes: bytes.length - q.size,
  };
}

/** Applies --collateral (a collateral.json file) and --pcs-url to a verify request. */
export async function applyTdxOptions(
  values: { collateral?: string; 'pcs-url'?: string },
  input: EvidenceInput,
  options: VerifyOptions,
  fail: (message: string) => Error,
): Promise<void> {
  if (values.collateral !== undefined) {
    try {
      input.collateral = await readFile(values.collateral, 'utf8');
    } catch (err) {
      throw fail(`cannot read --collateral ${values.collateral}: ${(err as Error).message}`);
    }
  }
  if (values['pcs-url'] !== undefined) {
    if (!/^https?:\/\/./.test(values['pcs-url']))
      throw fail(`--pcs-url ${values['pcs-url']} is not an http(s) URL`);
    options.pcs = { baseUrl: values['pcs-url'] };
  }
}
