/**
 * Real Azure evidence from CVMs other than test/fixtures/azure's that is published without the
 * rest of its chain (test/fixtures/azure-hcl-only/README.md): two HCL reports of kinvolk's
 * azure-cvm-tooling, one of Microsoft's cvm-attestation-tools, and a vTPM quote with its AK. What can
 * be checked without the hardware signature is checked: the parser takes each (no strict
 * version / report-size check), REPORT_DATA binds its runtime claims and a changed claims byte
 * breaks that binding, `inspect` and `explain --no-verify` describe it, and `verify` refuses it
 * for want of its quote; the quote verifies with its AK and its tamper cases are refused.
 */
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
