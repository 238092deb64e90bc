/** `attested-channel verify` with measured boot: a vTPM quote with its AK certificate, and --event-log. */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseEventLog } from '../../src/evidence/eventlog/index.js';
import { EVENTLOG_DIR, fixture } from '../eventlog/fixtures.js';
import { cli, tempDir } from '../helpers/cli.js';

const GCE = fileURLToPath(
  new URL('../fixtures/gce-vtpm/go-tpm-tools__gce-cos-85-nonce9009/', import.meta.url),
);
const ROOTS = fileURLToPath(new URL('../fixtures/gce-vtpm/roots/', import.meta.url));
const LOG = join(EVENTLOG_DIR, 'go-tpm-tools__gce-cos-85-nonce9009', 'eventlog.bin');
const AT = '2021-12-22T00:00:00Z';
const dir = tempDir('ac-vtpm-cli-');

const base = (bank = 'sha256', o: Record<string, string> = {}) => {
  const a = {
    '--tpm-quote': join(GCE, `quote-${bank}.msg`),
    '--tpm-signature': join(GCE, `quote-${bank}.sig`),
    '--pcrs': join(GCE, 'pcrs.json'),
    '--ak-cert': join(GCE, 'ak-cert.der'),
    '--event-log': LOG,
    '--at': AT,
    ...o,
  };
  return ['verify', ...Object.entries(a).flat(), '--offline', '--json'];
};
const meta = fixture('go-tpm-tools__gce-cos-85-nonce9009').meta;

describe('verify --tpm-quote (Google Cloud vTPM, no HCL report)', () => {
  it.each(['sha256', 'sha384'])(
    '%s quote: ok under the pinned roots and under --tpm-roots DIR',
    async (bank) => {
      for (const extra of [{}, { '--tpm-roots': ROOTS }] as Array<Record<string, string>>) {
        const r = await cli(...base(bank, extra), '--nonce', '9009');
        expect(r.code, r.out + r.err).toBe(0);
        const j = JSON.parse(r.out);
        expect(j.ok).toBe(true);
        expect(j.claims.tpm.extraData).toBe('9009');
        expect(j.claims.boot.pcrs[bank]).toEqual(meta.pcrs![bank]);
        expect(j.claims.gce.instanceName).toBe('cos-test');
      }
    },
  );

  it('refusals: another nonce, a changed log, only the newer root, times outside the AK validity', async () => {
    expect(JSON.parse((await cli(...base(), '--nonce', '9010')).out).error.code).toBe('ERR_BINDING_MISMATCH');
    const log = new Uint8Array(readFileSync(LOG));
    log[parseEventLog(log).events[2]!.offset + 12 + 22 + 2]! ^= 1;
    writeFileSync(join(dir, 'tampered.bin'), log);
    const t = await cli(...base('sha256', { '--event-log': join(dir, 'tampered.bin') }));
    expect(t.code).toBe(1);
    expect(JSON.parse(t.out).error.code).toBe('ERR_EVENTLOG_MISMATCH');
    const newer = join(dir, 'newer');
    mkdirSync(newer);
    copyFileSync(join(ROOTS, 'gcp_ek_ak_ca_root.crt'), join(newer, 'gcp_ek_ak_ca_root.crt'));
    copyFileSync(join(ROOTS, 'tpm_ek_intermediate_2.crt'), join(newer, 'tpm_ek_intermediate_2.crt'));
    expect(JSON.parse((await cli(...base('sha256', { '--tpm-roots': newer }))).out).error.code).toBe(
      'ERR_EVIDENCE_CHAIN',
    );
    for (const at of ['2021-08-01T00:00:00Z', '2052-01-01T00:00:00Z'])
      expect(JSON.parse((await cli(...base('sha256', { '--at': at }))).out).error.code).toBe(
        'ERR_EVIDENCE_CHAIN',
      );
    // A CA certificate as the AK certificate.
    const ca = await cli(...base('sha256', { '--ak-cert': join(ROOTS, 'tpm_ek_intermediate_2.crt') }));
    expect(['ERR_EVIDENCE_CHAIN', 'ERR_EVIDENCE_SIGNATURE']).toContain(JSON.parse(ca.out).error.code);
  });

  it('usage errors: a missing part, an evidence file beside --tpm-quote', async () => {
    const r = await cli('verify', '--tpm-quote', join(GCE, 'quote-sha256.msg'), '--json');
    expect(r.code).toBe(2);
    expect(JSON.parse(r.out).error.message).toContain('--tpm-signature');
    const p = await cli(...base(), 'extra-file');
    expect(p.code).toBe(2);
  });
});

describe('verify --event-log with a TDX quote', () => {
  it('the CCEL is refused against a quote with other RTMRs (the cos-113 quote has no collateral: refused first)', async () => {
    const q = fileURLToPath(
      new URL('../fixtures/tdx/go-tdx-guest__quote_cos113_ccel/quote.bin', import.meta.url),
    );
    const ccel = join(EVENTLOG_DIR, 'go-eventlog__cos-113-intel-tdx');
    const r = await cli(
      'verify',
      q,
      '--event-log',
      join(ccel, 'ccel.bin'),
      '--ccel-table',
      join(ccel, 'ccel-table.bin'),
      '--offline',
      '--json',
      '--at',
      '2024-08-29T00:00:00Z',
    );
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out).error.code).toBe('ERR_COLLATERAL_UNAVAILABLE');
    const u = await cli('verify', q, '--ccel-table', join(ccel, 'ccel-table.bin'), '--json');
    expect(u.code).toBe(2);
  });
});
