/**
 * Real Azure evidence from CVMs other than test/fixtures/azure's that is published without the
 * rest of its chain (test/fixtures/azure-hcl-only/README.md): two HCL reports of kinvolk's
 * azure-cvm-tooling, one of Microsoft's cvm-attestation-tools, a vTPM quote with its AK, and an
 * Azure TDX CVM's full evidence whose TD quote lacks Intel collateral here. What can be checked
 * without the hardware signature is checked: the parser takes each (no strict
 * version / report-size check), REPORT_DATA binds its runtime claims and a changed claims byte
 * breaks that binding, `inspect` and `explain --no-verify` describe it, and `verify` refuses it
 * for want of its quote; the quote verifies with its AK and its tamper cases are refused.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import {
  checkRuntimeClaimsBinding,
  parseHclReport,
  parseRuntimeClaims,
} from '../../src/evidence/azure/hcl.js';
import { TDREPORT_FIELDS } from '../../src/evidence/azure/verify.js';
import { tdxQuoteFields } from '../../src/evidence/tdx/appraise.js';
import { parseTdxQuote } from '../../src/evidence/tdx/quote.js';
import { akFromSpki, akSha256, verifyTpmQuote } from '../../src/evidence/tpm/quote.js';
import { cli } from '../helpers/cli.js';

const DIR = fileURLToPath(new URL('../fixtures/azure-hcl-only/', import.meta.url));

interface HclMeta {
  id: string;
  format: 'azure-sev-snp' | 'azure-tdx';
  sources: Array<{ file: string }>;
  hcl_report: {
    version: number;
    report_size: number;
    request_type: number;
    report_type: number;
    claim_size: number;
  };
  values: {
    report_data: string;
    runtime_claims_sha256: string;
    ak_modulus_sha256: string;
    user_data: string | null;
    measurement?: string;
    mr_td?: string;
  };
  tamper: Array<{
    id: string;
    mutations: Array<{ offset: number; op: 'xor' | 'set'; value: number }>;
    expect: { codes: string[] };
  }>;
}

const HCL_IDS = [
  'kinvolk__snp-hcl-report',
  'kinvolk__tdx-hcl-report',
  'cvm-attestation-tools__tdx-hcl-report',
];

function load(id: string): { meta: HclMeta; file: string; bytes: Uint8Array } {
  const meta = JSON.parse(readFileSync(join(DIR, id, 'meta.json'), 'utf8')) as HclMeta;
  const file = join(DIR, id, meta.sources[0]!.file);
  return { meta, file, bytes: new Uint8Array(readFileSync(file)) };
}

/** Parse, check REPORT_DATA against the claims, take the AK: everything short of signatures. */
function bindingCode(bytes: Uint8Array): string {
  try {
    const hcl = parseHclReport(bytes);
    const off = hcl.tee === 'sev-snp' ? 0x50 : 0x80;
    const digest = checkRuntimeClaimsBinding(hcl, hcl.hardwareReport.subarray(off, off + 64));
    parseRuntimeClaims(hcl, Buffer.from(digest).toString('hex'));
    return 'bound';
  } catch (err) {
    return err instanceof AttestationError ? err.code : `not an AttestationError: ${String(err)}`;
  }
}

describe.each(HCL_IDS)('%s', (id) => {
  const { meta, file, bytes } = load(id);

  it('parses (header as upstream: no strict version / report size), binds its runtime claims, names its AK', () => {
    const hcl = parseHclReport(bytes);
    expect(hcl).toMatchObject({
      version: meta.hcl_report.version,
      reportSize: meta.hcl_report.report_size,
      requestType: meta.hcl_report.request_type,
      tee: meta.format === 'azure-tdx' ? 'tdx' : 'sev-snp',
      runtimeData: { reportType: meta.hcl_report.report_type, claimSize: meta.hcl_report.claim_size },
    });
    expect(bindingCode(bytes)).toBe('bound');
    const rc = parseRuntimeClaims(hcl);
    expect(rc.sha256).toBe(meta.values.runtime_claims_sha256);
    expect(akSha256(rc.ak)).toBe(meta.values.ak_modulus_sha256);
    expect(rc.userData).toBe(meta.values.user_data);
  });

  for (const t of meta.tamper)
    it(`tamper ${t.id}: ${t.expect.codes.join(' or ')}`, () => {
      const b = bytes.slice();
      for (const m of t.mutations) {
        if (m.op === 'xor') b[m.offset]! ^= m.value;
        else b[m.offset] = m.value;
      }
      expect(t.expect.codes).toContain(bindingCode(b));
    });

  it('inspect and explain --no-verify describe it; verify refuses it without its quote', async () => {
    const inspected = JSON.parse((await cli('inspect', file, '--json')).out);
    expect(inspected).toMatchObject({
      format: meta.format,
      verified: false,
      fields: {
        header: { version: meta.hcl_report.version, reportSize: meta.hcl_report.report_size },
        runtimeClaimsSha256: meta.values.runtime_claims_sha256,
      },
    });
    const r = await cli('explain', '--no-verify', '--json', file);
    expect(r.code, r.out + r.err).toBe(0);
    const { report } = JSON.parse(r.out);
    expect(report).toMatchObject({ verified: false, tee: { format: meta.format, via: 'azure' } });
    expect(report.measurement.value).toBe(meta.values.measurement ?? meta.values.mr_td);
    expect(report.reportData.value).toBe(meta.values.report_data);
    const v = await cli('verify', file, '--offline', '--json');
    expect(v.code).toBe(1);
    expect(JSON.parse(v.out)).toMatchObject({ ok: false, error: { code: 'ERR_EVIDENCE_MALFORMED' } });
  });
});

describe('kinvolk__vtpm-quote: an Azure vTPM quote with its AK', () => {
  const d = join(DIR, 'kinvolk__vtpm-quote');
  const meta = JSON.parse(readFileSync(join(d, 'meta.json'), 'utf8'));
  const ak = akFromSpki(readFileSync(join(d, 'akpub.pem'), 'utf8'));
  const message = new Uint8Array(readFileSync(join(d, 'tpm-quote.msg')));
  const signature = new Uint8Array(readFileSync(join(d, 'tpm-quote.sig')));
  const pcrs = JSON.parse(readFileSync(join(d, 'pcrs.json'), 'utf8'));
  const code = (f: () => unknown) => {
    try {
      f();
      return 'accepted';
    } catch (err) {
      return err instanceof AttestationError ? err.code : String(err);
    }
  };

  it('the normalised files are the bincode original’s fields', () => {
    const q = Buffer.from(readFileSync(join(d, 'quote.bin')));
    const sigLen = Number(q.readBigUInt64LE(0));
    const msgLen = Number(q.readBigUInt64LE(8 + sigLen));
    expect(Buffer.from(signature.subarray(6)).equals(q.subarray(8, 8 + sigLen))).toBe(true);
    expect(Buffer.from(message).equals(q.subarray(16 + sigLen, 16 + sigLen + msgLen))).toBe(true);
    const at = 16 + sigLen + msgLen;
    expect(Number(q.readBigUInt64LE(at))).toBe(24);
    expect(pcrs.sha256['23']).toBe(q.subarray(at + 8 + 23 * 32, at + 8 + 24 * 32).toString('hex'));
  });

  it('verifies with its AK, with the nonce and PCRs upstream expects', () => {
    const { claims } = verifyTpmQuote({ message, signature, pcrs }, ak);
    expect(claims.extraData).toBe(meta.values.extra_data);
    expect(Buffer.from(claims.extraData, 'hex').toString()).toBe('challenge');
    expect(claims.extraData).not.toBe('01020304');
    expect(claims.pcrs.sha256?.['0']).toBe(meta.values.pcr0);
    expect(claims.firmwareVersion).toBe('2020031200120003');
  });

  it('signature reversed (the upstream test’s edit), a PCR bit, another AK: ERR_EVIDENCE_SIGNATURE', () => {
    const reversed = signature.slice();
    reversed.subarray(6).reverse();
    expect(code(() => verifyTpmQuote({ message, signature: reversed, pcrs }, ak))).toBe(
      'ERR_EVIDENCE_SIGNATURE',
    );
    const v = Buffer.from(pcrs.sha256['0'], 'hex');
    v[0]! ^= 1;
    const bad = { sha256: { ...pcrs.sha256, '0': v.toString('hex') } };
    expect(code(() => verifyTpmQuote({ message, signature, pcrs: bad }, ak))).toBe('ERR_EVIDENCE_SIGNATURE');
    // No published HCL report names this AK: the kinvolk reports' own AKs do not verify it.
    for (const id of ['kinvolk__snp-hcl-report', 'kinvolk__tdx-hcl-report']) {
      const other = parseRuntimeClaims(parseHclReport(load(id).bytes)).ak;
      expect(code(() => verifyTpmQuote({ message, signature, pcrs }, other))).toBe('ERR_EVIDENCE_SIGNATURE');
    }
  });
});

describe('attested-tls-proxy__tdx-evidence: an Azure TDX CVM’s full evidence, short of Intel collateral', () => {
  const d = join(DIR, 'attested-tls-proxy__tdx-evidence');
  const meta = JSON.parse(readFileSync(join(d, 'meta.json'), 'utf8'));
  const read = (f: string) => new Uint8Array(readFileSync(join(d, f)));
  const hclBytes = read('hcl-report.bin');
  const tdQuote = read('td-quote.bin');
  const message = read('tpm-quote.msg');
  const signature = read('tpm-quote.sig');
  const pcrs = JSON.parse(readFileSync(join(d, 'pcrs.json'), 'utf8'));
  const code = (f: () => unknown) => {
    try {
      f();
      return 'accepted';
    } catch (err) {
      return err instanceof AttestationError ? err.code : String(err);
    }
  };
  const tdreportDiffers = (hcl: Uint8Array) => {
    const tdreport = parseHclReport(hcl).hardwareReport;
    const body = tdxQuoteFields(parseTdxQuote(tdQuote)) as unknown as Record<string, unknown>;
    const hex = (off: number, len: number) => Buffer.from(tdreport.subarray(off, off + len)).toString('hex');
    return TDREPORT_FIELDS.filter(([f, off, len]) => body[f] !== hex(off, len)).map(([f]) => f);
  };

  it('the normalised files are the original JSON’s fields', () => {
    const j = JSON.parse(readFileSync(join(d, 'azure-tdx-1764662251380464271'), 'utf8'));
    expect(Buffer.from(hclBytes).equals(Buffer.from(j.hcl_report_base64, 'base64url'))).toBe(true);
    expect(Buffer.from(tdQuote).equals(Buffer.from(j.tdx_quote_base64, 'base64url'))).toBe(true);
    expect(Buffer.from(message).equals(Buffer.from(j.tpm_attestation.quote.message))).toBe(true);
    expect(Buffer.from(signature.subarray(6)).equals(Buffer.from(j.tpm_attestation.quote.signature))).toBe(
      true,
    );
    expect(pcrs.sha256['11']).toBe(Buffer.from(j.tpm_attestation.quote.pcrs[11]).toString('hex'));
  });

  it('every Azure link holds: TD quote body = TDREPORT, REPORT_DATA binds the claims, the quote verifies with HCLAkPub', () => {
    expect(tdreportDiffers(hclBytes)).toEqual([]);
    expect(bindingCode(hclBytes)).toBe('bound');
    const rc = parseRuntimeClaims(parseHclReport(hclBytes));
    expect(rc.sha256).toBe(meta.values.runtime_claims_sha256);
    expect(akSha256(rc.ak)).toBe(meta.values.ak_modulus_sha256);
    // The vTPM's AK certificate certifies that same key. Upstream read it from its NV index with the
    // index's zero padding after the DER (30 82 LL LL …): the certificate is the first 4 + LL bytes.
    const pem = readFileSync(join(d, 'ak-cert.pem'), 'utf8');
    const padded = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    expect(padded[0]).toBe(0x30);
    const der = padded.subarray(0, 4 + padded.readUInt16BE(2));
    expect(padded.subarray(der.length).every((b) => b === 0)).toBe(true);
    const certKey = new X509Certificate(der).publicKey;
    expect(certKey.equals(rc.ak)).toBe(true);
    const { claims } = verifyTpmQuote({ message, signature, pcrs }, rc.ak);
    // Upstream verifies with input data [0; 64] and pins PCR 4, 9 and 11 to these values.
    expect(claims.extraData).toBe('00'.repeat(32));
    expect(claims.pcrs.sha256).toMatchObject({
      '4': 'c4a25a6d7704629f63db84d20ea8db0e9ce002b2801be9a340091fe7ac588699',
      '9': '9f4a5775122ca4703e135a9ae6041edead0064262e399df11ca85182b0f1541d',
      '11': 'abd7c695ffdb6081e99636ee016d1322919c68d049b698b399d22ae215a121bf',
    });
  });

  it('its tamper cases are refused', () => {
    const ak = parseRuntimeClaims(parseHclReport(hclBytes)).ak;
    const sig = signature.slice();
    sig[6]! ^= 1;
    expect(code(() => verifyTpmQuote({ message, signature: sig, pcrs }, ak))).toBe('ERR_EVIDENCE_SIGNATURE');
    const v = Buffer.from(pcrs.sha256['4'], 'hex');
    v[0]! ^= 1;
    const bad = { sha256: { ...pcrs.sha256, '4': v.toString('hex') } };
    expect(code(() => verifyTpmQuote({ message, signature, pcrs: bad }, ak))).toBe('ERR_EVIDENCE_SIGNATURE');
    for (const t of meta.tamper.filter(
      (t: { id: string }) => t.id.startsWith('runtime-claims') || t.id.startsWith('tdreport'),
    )) {
      const b = hclBytes.slice();
      b[t.mutations[0].offset]! ^= t.mutations[0].value;
      if (t.expect.codes) expect(t.expect.codes).toContain(bindingCode(b));
      else expect(tdreportDiffers(b)).toEqual(t.expect.differs);
    }
  });

  it('the CLI takes it as far as Intel collateral, which it lacks offline', async () => {
    const args = [join(d, 'hcl-report.bin'), '--tpm-quote', join(d, 'tpm-quote.msg')];
    args.push('--tpm-signature', join(d, 'tpm-quote.sig'), '--pcrs', join(d, 'pcrs.json'));
    args.push('--td-quote', join(d, 'td-quote.bin'), '--at', '2025-12-01T20:34:00Z', '--offline', '--json');
    const r = await cli('verify', ...args);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out)).toMatchObject({
      ok: false,
      format: 'azure-tdx',
      error: { code: 'ERR_COLLATERAL_UNAVAILABLE' },
    });
    const e = JSON.parse((await cli('explain', '--no-verify', '--json', join(d, 'hcl-report.bin'))).out);
    expect(e.report.measurement.value).toBe(meta.values.mr_td);
  });
});
