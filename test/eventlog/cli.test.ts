/** `attested-channel eventlog`, run in-process with captured output. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, tempDir } from '../helpers/cli.js';
import { buildLog, EVENTLOG_DIR, fixture, SEPARATOR, text } from './fixtures.js';

const dir = tempDir('ac-eventlog-');

const path = (name: string, file: string) => join(EVENTLOG_DIR, name, file);
const tpmName = 'go-tpm-tools__ubuntu-2404-amd-sevsnp';
const tdxName = 'go-eventlog__cos-113-intel-tdx';

describe('attested-channel eventlog', () => {
  it('--json: every event and the replayed banks of a TPM log', async () => {
    const r = await cli('eventlog', path(tpmName, 'eventlog.bin'), '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    const meta = fixture(tpmName).meta;
    expect(j.ok).toBe(true);
    expect(j.kind).toBe('tcg2');
    expect(j.events.length).toBe(meta.event_count);
    expect(j.pcrs.sha256).toMatchObject(meta.pcrs!.sha256!);
    expect(j.pcrs.sha1).toMatchObject(meta.pcrs!.sha1!);
    expect(j.anomalies).toBeUndefined();
    const digests = j.events.flatMap((e: { digests: Record<string, string> }) => Object.values(e.digests));
    for (const d of meta.efi_app_digests!.sha256!) expect(digests).toContain(d);
    expect(JSON.stringify(j.events)).toContain(JSON.stringify(meta.kernel_cmdline!.replace(/\0$/, '')));
    expect(j.events[0]).toMatchObject({
      register: 'PCR0',
      typeName: 'EV_S_CRTM_VERSION',
      digestVerified: true,
    });
    expect(j.summary).toMatchObject({ secureBoot: false, interpreted: true, events: meta.event_count });
  });

  it('--ccel --ccel-table --json: RTMRs of a TDX log', async () => {
    const r = await cli(
      'eventlog',
      path(tdxName, 'ccel.bin'),
      '--ccel',
      '--ccel-table',
      path(tdxName, 'ccel-table.bin'),
      '--json',
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.kind).toBe('ccel');
    expect(j.rtmrs).toEqual(fixture(tdxName).meta.rtmrs);
    expect(j.pcrs).toBeUndefined();
    expect(j.events.length).toBe(43);
    expect(j.events[0].register).toBe('RTMR0');
  });

  it('--json names the anomalies of the duplicate-separator log', async () => {
    const name = 'go-eventlog__cos-113-intel-tdx-dupe-separator';
    const r = await cli('eventlog', path(name, 'ccel.bin'), '--ccel', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.rtmrs).toEqual(fixture(name).meta.rtmrs);
    expect(j.anomalies.map((a: { kind: string }) => a.kind)).toContain('duplicate-separator');
    expect(j.summary.interpreted).toBe(false);
    const t = await cli('eventlog', path(name, 'ccel.bin'), '--ccel');
    expect(t.out).toMatch(
      /anomalies \(single events are not interpreted\)\n {2}duplicate-separator: duplicate separator at event 15/,
    );
  });

  it('text mode: events, digest marks, replayed banks, summary', async () => {
    const r = await cli('eventlog', path(tpmName, 'eventlog.bin'));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^kind {6}tcg2 \(crypto-agile; banks sha1, sha256, sha384\) — not verified/);
    expect(r.out).toMatch(/#2 {2}PCR7 {2}EV_EFI_VARIABLE_DRIVER_CONFIG {2}verified/);
    expect(r.out).toMatch(/EV_EFI_BOOT_SERVICES_APPLICATION {2}not-recomputable/);
    expect(r.out).toContain(`sha256  PCR4   ${fixture(tpmName).meta.pcrs!.sha256!['4']}`);
    expect(r.out).toMatch(/kernelCmdline {2}\/vmlinuz-6\.8\.0-1010-gcp root=/);
  });

  it('text mode escapes control characters from the log', async () => {
    const seps = [0, 1, 2, 3, 4, 5, 6, 7].map((pcr) => ({ pcr, type: 4, data: SEPARATOR }));
    const evil = buildLog(
      ['sha256'],
      [
        ...seps,
        {
          pcr: 8,
          type: 0xd,
          data: new Uint8Array(Buffer.from('grub_cmd: echo \x1b[2J\x1b]0;pwned\x07\u202e', 'utf8')),
        },
      ],
    );
    const f = join(dir, 'evil.bin');
    writeFileSync(f, evil);
    const r = await cli('eventlog', f);
    expect(r.code).toBe(0);
    expect(r.out).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
    expect(r.out).toContain('echo \\u{1b}[2J\\u{1b}]0;pwned\\u{7}');
    expect(r.out).toContain('\\u{202e}');
    expect(r.out).not.toContain('\u202e');
  });

  it('must-fail logs: exit 1 with the code, JSON and text', async () => {
    const junk = join(dir, 'junk.bin');
    writeFileSync(junk, text('not an event log at all, just text\n'));
    const r = await cli('eventlog', junk, '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out)).toMatchObject({ ok: false, error: { code: 'ERR_EVIDENCE_MALFORMED' } });
    const c = await cli(
      'eventlog',
      junk,
      '--ccel',
      '--ccel-table',
      path(tdxName, 'ccel-table.bin'),
      '--json',
    );
    expect(c.code).toBe(1);
    expect(JSON.parse(c.out).error.code).toBe('ERR_EVIDENCE_MALFORMED');
    const t = await cli('eventlog', path(tpmName, 'eventlog.bin'), '--ccel');
    expect(t.code).toBe(1);
    expect(t.err).toMatch(/ERR_EVIDENCE_MALFORMED/);
  });

  it('usage errors exit 2', async () => {
    expect((await cli('eventlog')).code).toBe(2);
    expect((await cli('eventlog', 'a', 'b')).code).toBe(2);
    expect(
      (await cli('eventlog', path(tdxName, 'ccel.bin'), '--ccel-table', path(tdxName, 'ccel-table.bin')))
        .code,
    ).toBe(2);
    expect((await cli('eventlog', join(dir, 'missing.bin'))).code).toBe(2);
    expect((await cli('eventlog', path(tpmName, 'eventlog.bin'), '--nope')).code).toBe(2);
    const h = await cli('eventlog', '--help');
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/--ccel-table/);
    expect((await cli('--help')).out).toMatch(/eventlog/);
  });

  it('with --json a usage error is one JSON object (exit 2); a repeated option is one', async () => {
    for (const args of [
      ['eventlog', '--json'],
      ['eventlog', path(tpmName, 'eventlog.bin'), '--json', '--nope'],
      ['eventlog', path(tpmName, 'eventlog.bin'), '--json', '--json'],
      ['eventlog', join(dir, 'missing.bin'), '--json'],
      ['eventlog', path(tdxName, 'ccel.bin'), '--ccel-table', path(tdxName, 'ccel-table.bin'), '--json'],
    ]) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toBe('');
      expect(JSON.parse(r.out)).toMatchObject({ ok: false, error: { code: 'ERR_INVALID_ARGUMENT' } });
    }
  });
});
