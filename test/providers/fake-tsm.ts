/**
 * A fake configfs-tsm report folder: a real temporary directory plus a file layer that behaves
 * like the kernel's configfs (attributes appear on mkdir, inblob must be exactly 64 bytes and bumps
 * `generation`, outblob comes from a simulated platform, rmdir removes the attributes). Knobs let
 * tests make the kernel refuse a write, race the request, or report an unknown provider.
 */
import { promises as fsp, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { buildCertTable, CERT_TABLE_GUIDS } from '../../src/evidence/providers/cert-table.js';
import { nodeTsmFileSystem, type TsmFileSystem } from '../../src/evidence/providers/configfs-tsm.js';
import type { EvidenceProvider } from '../../src/evidence/types.js';
import { toDerList } from '../../src/evidence/x509/pem.js';

function errno(code: string, message: string): Error {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

export interface FakeTsmOptions {
  /** Where outblob (and auxblob) come from. */
  platform: EvidenceProvider;
  /** The `provider` attribute. Default from the platform's format. */
  provider?: string;
  /** Fail writes to this attribute with this errno. */
  failWrite?: { attribute: string; errno: string };
  /** Fail reads of this attribute with this errno. */
  failRead?: { attribute: string; errno: string };
  /** Bump generation while outblob is being read, as a concurrent writer would. */
  raceOnOutblob?: boolean;
  /** Replace the auxblob the platform's certificates would give. */
  auxblob?: Uint8Array;
  /** Omit the auxblob attribute (kernels before 6.7's auxblob). */
  noAuxblob?: boolean;
  /** Further certificate-table entries after the platform's (e.g. Google's launch endorsement). */
  extraEntries?: Array<{ guid: string; data: Uint8Array }>;
}

export interface FakeTsm {
  root: string;
  fs: TsmFileSystem;
  /** Names of report directories currently present. */
  entries(): Promise<string[]>;
  /** Every inblob written so far. */
  inblobs: Uint8Array[];
  cleanup(): void;
}

export function createFakeTsm(options: FakeTsmOptions): FakeTsm {
  const base = mkdtempSync(join(tmpdir(), 'fake-tsm-'));
  const root = join(base, 'report');
  // Read at each mkdir, so a test can change the provider between requests.
  const provider = () => options.provider ?? (options.platform.format === 'tdx' ? 'tdx_guest' : 'sev_guest');
  const inblobs: Uint8Array[] = [];
  const generations = new Map<string, number>();

  const bump = async (dir: string) => {
    const g = (generations.get(dir) ?? 0) + 1;
    generations.set(dir, g);
    await fsp.writeFile(join(dir, 'generation'), `${g}\n`);
  };

  const fs: TsmFileSystem = {
    async mkdir(path) {
      await fsp.mkdir(path);
      generations.set(path, 0);
      await fsp.writeFile(join(path, 'provider'), `${provider()}\n`);
      await fsp.writeFile(join(path, 'generation'), '0\n');
      for (const a of ['inblob', 'outblob', 'privlevel']) await fsp.writeFile(join(path, a), '');
      if (!options.noAuxblob) await fsp.writeFile(join(path, 'auxblob'), '');
    },
    async rmdir(path) {
      // configfs removes the attributes with the directory; a plain folder needs them gone first.
      for (const f of await fsp.readdir(path)) await fsp.rm(join(path, f));
      await fsp.rmdir(path);
      generations.delete(path);
    },
    async read(path, maxBytes) {
      const dir = dirname(path);
      const attribute = basename(path);
      if (options.failRead?.attribute === attribute) throw errno(options.failRead.errno, `read ${attribute}`);
      if (attribute === 'outblob' && options.raceOnOutblob) await bump(dir);
      return nodeTsmFileSystem.read(path, maxBytes);
    },
    async write(path, data) {
      const dir = dirname(path);
      const attribute = basename(path);
      if (options.failWrite?.attribute === attribute)
        throw errno(options.failWrite.errno, `write ${attribute}`);
      // Both guest drivers refuse anything but exactly 64 bytes.
      if (attribute === 'inblob' && data.length !== 64) throw errno('EINVAL', 'inblob must be 64 bytes');
      await nodeTsmFileSystem.write(path, data);
      if (attribute === 'privlevel') await bump(dir);
      if (attribute !== 'inblob') return;
      inblobs.push(Uint8Array.from(data));
      await bump(dir);
      const evidence = await options.platform.getEvidence(data);
      await fsp.writeFile(join(dir, 'outblob'), evidence.report);
      if (options.noAuxblob) return;
      let aux = options.auxblob;
      if (!aux && evidence.vek) {
        const vekGuid = (evidence.report[0x48]! >> 2) & 7 ? CERT_TABLE_GUIDS.vlek : CERT_TABLE_GUIDS.vcek;
        const [ask, ark] = toDerList(evidence.chain ?? []);
        aux = buildCertTable([
          { guid: vekGuid, data: evidence.vek },
          { guid: CERT_TABLE_GUIDS.ask, data: ask! },
          { guid: CERT_TABLE_GUIDS.ark, data: ark! },
          ...(options.extraEntries ?? []),
        ]);
      }
      await fsp.writeFile(join(dir, 'auxblob'), aux ?? new Uint8Array());
    },
  };

  return {
    root,
    fs,
    inblobs,
    async entries() {
      return fsp.readdir(root).catch(() => []);
    },
    cleanup() {
      rmSync(base, { recursive: true, force: true });
    },
  };
}

/** Creates the report root (the fake starts without one, like a kernel without configfs-tsm). */
export async function withRoot(fake: FakeTsm): Promise<FakeTsm> {
  await fsp.mkdir(fake.root, { recursive: true });
  return fake;
}
