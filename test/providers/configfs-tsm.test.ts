import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import { bytesToHex } from '../../src/evidence/bytes.js';
import { buildCertTable, CERT_TABLE_GUIDS } from '../../src/evidence/providers/cert-table.js';
import { configfsTsm, nodeTsmFileSystem } from '../../src/evidence/providers/configfs-tsm.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { simulatedSnp } from '../../src/evidence/providers/simulated-snp.js';
import { simulatedTdx } from '../../src/evidence/providers/simulated-tdx.js';
import type { TdxClaims } from '../../src/evidence/types.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { toDerList } from '../../src/evidence/x509/pem.js';
import { fixture } from '../eventlog/fixtures.js';
import { createFakeTsm, type FakeTsm, type FakeTsmOptions, withRoot } from './fake-tsm.js';

const RD = Uint8Array.from({ length: 64 }, (_, i) => i * 3);
const NOW = new Date('2026-03-01T00:00:00Z');

const fakes: FakeTsm[] = [];
afterEach(() => {
  for (const f of fakes.splice(0)) f.cleanup();
});

async function fake(options: Partial<FakeTsmOptions> = {}, root = true): Promise<FakeTsm> {
  const f = createFakeTsm({ platform: simulatedSnp(), ...options });
  fakes.push(f);
  return root ? withRoot(f) : f;
}

async function failure(p: Promise<unknown>): Promise<AttestationError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AttestationError);
    return err as AttestationError;
  }
  throw new Error('expected a rejection');
}

describe('configfsTsm on a fake kernel folder', () => {
  it('SNP: writes the 64-byte inblob, returns outblob and the certificates of auxblob, removes its directory', async () => {
    const f = await fake();
    const provider = await configfsTsm({ root: f.root, fs: f.fs });
    expect(provider.format).toBe('sev-snp');
    const ev = await provider.getEvidence(RD);
    expect(f.inblobs.map(bytesToHex)).toEqual([bytesToHex(RD)]);
    expect(ev.report.length).toBe(0x4a0);
    expect(bytesToHex(ev.report.subarray(0x50, 0x90))).toBe(bytesToHex(RD));
    expect(ev.vek?.[0]).toBe(0x30);
    const chain = toDerList(ev.chain ?? []);
    expect(chain).toHaveLength(2);
    expect(await f.entries()).toEqual([]);
  });

  it('SNP with a VLEK: picks the VLEK entry because SIGNING_KEY says so', async () => {
    const platform = simulatedSnp({ signer: 'vlek' });
    const reference = await platform.getEvidence(RD);
    const f = await fake({ platform });
    const ev = await (await configfsTsm({ root: f.root, fs: f.fs })).getEvidence(RD);
    expect(bytesToHex(ev.vek!)).toBe(bytesToHex(reference.vek!));
  });

  it('SNP: picks the VCEK when both VEKs are in the table', async () => {
    const vcek = Uint8Array.of(0x30, 1);
    const vlek = Uint8Array.of(0x30, 2);
    const f = await fake({
      auxblob: buildCertTable([
        { guid: CERT_TABLE_GUIDS.vlek, data: vlek },
        { guid: CERT_TABLE_GUIDS.vcek, data: vcek },
      ]),
    });
    const ev = await (await configfsTsm({ root: f.root, fs: f.fs })).getEvidence(RD);
    expect([...ev.vek!]).toEqual([...vcek]);
    expect(ev.chain).toBeUndefined();
  });

  it('SNP: an empty or absent auxblob gives a report without certificates', async () => {
    for (const opts of [{ auxblob: new Uint8Array() }, { noAuxblob: true }]) {
      const f = await fake(opts);
      const ev = await (await configfsTsm({ root: f.root, fs: f.fs })).getEvidence(RD);
      expect(ev.report.length).toBe(0x4a0);
      expect(ev.vek).toBeUndefined();
      expect(ev.chain).toBeUndefined();
    }
  });

  it('TDX: returns the quote and nothing else', async () => {
    const f = await fake({ platform: simulatedTdx({ now: NOW }) });
    const provider = await configfsTsm({ root: f.root, fs: f.fs, ccel: false });
    expect(provider.format).toBe('tdx');
    const ev = await provider.getEvidence(RD);
    expect(bytesToHex(ev.report.subarray(568, 632))).toBe(bytesToHex(RD));
    expect(Object.keys(ev)).toEqual(['report']);
    expect(await f.entries()).toEqual([]);
  });

  it('TDX: the CCEL and its table come with the quote and replay to its RTMRs', async () => {
    const cos = fixture('go-eventlog__cos-113-intel-tdx');
    const platform = simulated.tdx({ now: NOW, rtmrs: cos.meta.rtmrs! });
    const f = await fake({ platform });
    const dir = mkdtempSync(join(tmpdir(), 'ac-ccel-'));
    try {
      writeFileSync(join(dir, 'CCEL.log'), cos.log);
      writeFileSync(join(dir, 'CCEL.table'), cos.table!);
      const ccel = { log: join(dir, 'CCEL.log'), table: join(dir, 'CCEL.table') };
      const ev = await (await configfsTsm({ root: f.root, fs: f.fs, ccel })).getEvidence(RD);
      expect(ev.eventLog?.ccel).toBe(true);
      expect(Buffer.from(ev.eventLog!.log).equals(Buffer.from(cos.log))).toBe(true);
      // configfs gives the quote alone; the collateral is the simulated platform's.
      const { collateral } = await platform.getEvidence(RD);
      const claims = await verifyEvidence(
        { ...ev, ...(collateral ? { collateral } : {}) },
        { now: NOW, offline: true, trustAnchors: simulated.trustAnchors() },
      );
      expect((claims as TdxClaims).boot?.rtmrs).toEqual(cos.meta.rtmrs);
      // A log path given explicitly must be readable.
      const missing = await failure(
        (await configfsTsm({ root: f.root, fs: f.fs, ccel: { log: join(dir, 'none') } })).getEvidence(RD),
      );
      expect(missing.code).toBe('ERR_PROVIDER_FAILED');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs concurrent requests in separate directories', async () => {
    const f = await fake();
    const provider = await configfsTsm({ root: f.root, fs: f.fs });
    const datas = Array.from({ length: 5 }, (_, k) => new Uint8Array(64).fill(k + 1));
    const results = await Promise.all(datas.map((d) => provider.getEvidence(d)));
    expect(results.map((ev) => ev.report[0x50])).toEqual([1, 2, 3, 4, 5]);
    expect(await f.entries()).toEqual([]);
  });

  it('a missing folder is ERR_PROVIDER_UNAVAILABLE', async () => {
    const f = await fake({}, false);
    const err = await failure(configfsTsm({ root: f.root, fs: f.fs }));
    expect(err.code).toBe('ERR_PROVIDER_UNAVAILABLE');
    // The default file layer says the same about a path that does not exist.
    const base = mkdtempSync(join(tmpdir(), 'tsm-none-'));
    try {
      expect((await failure(configfsTsm({ root: join(base, 'missing') }))).code).toBe(
        'ERR_PROVIDER_UNAVAILABLE',
      );
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('an unknown provider is ERR_PROVIDER_UNAVAILABLE and leaves no directory behind', async () => {
    const f = await fake({ provider: 'arm_cca_guest' });
    const err = await failure(configfsTsm({ root: f.root, fs: f.fs }));
    expect(err.code).toBe('ERR_PROVIDER_UNAVAILABLE');
    expect(err.details.provider).toBe('arm_cca_guest');
    expect(await f.entries()).toEqual([]);
  });

  it('a provider that changed since the probe is ERR_PROVIDER_FAILED, before any inblob is written', async () => {
    const options: FakeTsmOptions = { platform: simulatedSnp() };
    const f = await withRoot(createFakeTsm(options));
    fakes.push(f);
    const provider = await configfsTsm({ root: f.root, fs: f.fs });
    options.provider = 'tdx_guest';
    const err = await failure(provider.getEvidence(RD));
    expect(err.code).toBe('ERR_PROVIDER_FAILED');
    expect(f.inblobs).toHaveLength(0);
    expect(await f.entries()).toEqual([]);
  });

  it('the kernel refusing the inblob write (EINVAL) is ERR_PROVIDER_FAILED and the directory is removed', async () => {
    const f = await fake({ failWrite: { attribute: 'inblob', errno: 'EINVAL' } });
    const provider = await configfsTsm({ root: f.root, fs: f.fs });
    const err = await failure(provider.getEvidence(RD));
    expect(err.code).toBe('ERR_PROVIDER_FAILED');
    expect(err.details.errno).toBe('EINVAL');
    expect(await f.entries()).toEqual([]);
  });

  it('a failed outblob read (EFBIG) is ERR_PROVIDER_FAILED', async () => {
    const f = await fake({ failRead: { attribute: 'outblob', errno: 'EFBIG' } });
    const err = await failure((await configfsTsm({ root: f.root, fs: f.fs })).getEvidence(RD));
    expect(err.code).toBe('ERR_PROVIDER_FAILED');
    expect(err.message).toMatch(/outblob/);
    expect(await f.entries()).toEqual([]);
  });

  it('a generation bump during the request (a concurrent writer) is ERR_PROVIDER_FAILED', async () => {
    const f = await fake({ raceOnOutblob: true });
    const err = await failure((await configfsTsm({ root: f.root, fs: f.fs })).getEvidence(RD));
    expect(err.code).toBe('ERR_PROVIDER_FAILED');
    expect(err.message).toMatch(/generation changed from 1 to 2/);
    expect(await f.entries()).toEqual([]);
  });

  it('a malformed auxblob is ERR_PROVIDER_FAILED', async () => {
    const table = buildCertTable([{ guid: CERT_TABLE_GUIDS.vcek, data: new Uint8Array(10) }]);
    new DataView(table.buffer).setUint32(20, 1000, true); // length runs past the end
    const f = await fake({ auxblob: table });
    const err = await failure((await configfsTsm({ root: f.root, fs: f.fs })).getEvidence(RD));
    expect(err.code).toBe('ERR_PROVIDER_FAILED');
    expect(await f.entries()).toEqual([]);
  });

  it('writes privlevel before inblob on SNP and reports its refusal', async () => {
    const f = await fake();
    const ok = await configfsTsm({ root: f.root, fs: f.fs, privlevel: 2 });
    expect((await ok.getEvidence(RD)).report.length).toBe(0x4a0);
    const g = await fake({ failWrite: { attribute: 'privlevel', errno: 'EINVAL' } });
    const err = await failure((await configfsTsm({ root: g.root, fs: g.fs, privlevel: 3 })).getEvidence(RD));
    expect(err.code).toBe('ERR_PROVIDER_FAILED');
    expect(g.inblobs).toHaveLength(0);
    const t = await fake({ platform: simulatedTdx({ now: NOW }) });
    expect((await failure(configfsTsm({ root: t.root, fs: t.fs, privlevel: 1 }))).code).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });

  it('refuses report data that is not 64 bytes before touching the folder, and honours abort', async () => {
    const f = await fake();
    const provider = await configfsTsm({ root: f.root, fs: f.fs });
    expect((await failure(provider.getEvidence(new Uint8Array(32)))).code).toBe('ERR_INVALID_ARGUMENT');
    const ac = new AbortController();
    ac.abort();
    expect((await failure(provider.getEvidence(RD, { signal: ac.signal }))).code).toBe('ERR_ABORTED');
    expect(f.inblobs).toHaveLength(0);
    expect((await failure(configfsTsm({ root: f.root, fs: f.fs, privlevel: 9 }))).code).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });
});

describe('the default file layer', () => {
  it('never creates attributes, and bounds what it reads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsm-fs-'));
    try {
      await expect(nodeTsmFileSystem.write(join(dir, 'inblob'), RD)).rejects.toMatchObject({
        code: 'ENOENT',
      });
      writeFileSync(join(dir, 'outblob'), new Uint8Array(100));
      expect((await nodeTsmFileSystem.read(join(dir, 'outblob'), 100)).length).toBe(100);
      await expect(nodeTsmFileSystem.read(join(dir, 'outblob'), 99)).rejects.toMatchObject({ code: 'EFBIG' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
