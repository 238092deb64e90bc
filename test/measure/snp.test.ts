/** snpLaunchDigest against the shared sev-snp-measure vectors, intermediates, and bad inputs. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import { GUIDS, guidBytes, parseOvmf } from '../../src/measure/ovmf.js';
import {
  type SnpLaunchDigestOptions,
  sevHashesTable,
  snpLaunchDigest,
  VCPU_SIGNATURES,
  type VmmType,
  vmsaPage,
} from '../../src/measure/snp.js';
import { file, hex, MEASURE_DIR, optionsOf, VECTORS } from './vectors.js';

const snpVectors = VECTORS.vectors.filter((v) => v.mode === 'snp');

describe('snpLaunchDigest: shared vectors', () => {
  it('has the 15 snp vectors', () => expect(snpVectors.length).toBe(15));

  for (const v of snpVectors) {
    it(v.id, async () => {
      if (v.expect === 'ok') {
        const r = await snpLaunchDigest(optionsOf(v));
        expect(hex(r.measurement)).toBe(v.measurement);
        if (v.stages) expect(hex(r.firmwareDigest)).toBe(v.stages.after_firmware_pages);
        expect(hex(r.firmwareDigest)).toBe(VECTORS.files[v.ovmf]!.firmware!.ld_after_firmware_pages);
        expect(hex(r.firmware.sha384!)).toBe(
          createHash('sha384')
            .update(readFileSync(file(v.ovmf)))
            .digest('hex'),
        );
        if (v.snp_ovmf_hash) {
          const seeded = await snpLaunchDigest({
            ...optionsOf(v),
            firmwareDigest: Buffer.from(v.snp_ovmf_hash, 'hex'),
          });
          expect(hex(seeded.measurement)).toBe(v.measurement);
          expect(seeded.firmware.sha384).toBeUndefined();
        }
      } else {
        await expect(snpLaunchDigest(optionsOf(v))).rejects.toMatchObject({
          code: 'ERR_INVALID_ARGUMENT',
          details: { reason: 'no-kernel-hashes' },
        });
      }
    });
  }

  it('the same digest from bytes as from a file', async () => {
    const v = snpVectors.find((x) => x.id.startsWith('oracle__amdsev_2vcpu_milan'))!;
    const o = optionsOf(v);
    const r = await snpLaunchDigest({
      ...o,
      ovmf: readFileSync(o.ovmf as string),
      kernel: readFileSync(o.kernel as string),
      initrd: readFileSync(o.initrd as string),
    });
    expect(hex(r.measurement)).toBe(v.measurement);
  });

  it('a seed other than the firmware digest changes the result', async () => {
    const v = snpVectors[0]!;
    const r = await snpLaunchDigest({ ...optionsOf(v), firmwareDigest: new Uint8Array(48) });
    expect(hex(r.measurement)).not.toBe(v.measurement);
  });
});

describe('snpLaunchDigest: intermediates', () => {
  it('builds the three SEV hashes tables byte for byte', async () => {
    for (const t of VECTORS.intermediates.sev_hashes_tables) {
      const sha = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());
      const table = sevHashesTable({
        cmdline: sha(Buffer.concat([Buffer.from(t.append), Buffer.of(0)])),
        initrd: sha(readFileSync(file(t.initrd))),
        kernel: sha(readFileSync(file(t.kernel))),
      });
      expect(hex(table)).toBe(t.table_hex);
    }
  });

  it('builds the six VMSA pages (two byte for byte)', () => {
    for (const p of VECTORS.intermediates.vmsa_pages) {
      const rdx = p.vmm_type === 'qemu' ? VCPU_SIGNATURES[p.vcpu_type]! : 0x600;
      const page = vmsaPage(Number(p.eip), p.vmm_type, rdx, BigInt(p.guest_features));
      expect(createHash('sha384').update(page).digest('hex'), `${p.vmm_type} ${p.vcpu}`).toBe(p.sha384);
    }
    const bsp = vmsaPage(0xfffffff0, 'qemu', 0x800f12, 0x21n);
    expect(Buffer.from(bsp).equals(readFileSync(file('vmsa-qemu-epyc-v4-0x21-bsp.bin')))).toBe(true);
    const ap = vmsaPage(0x80b004, 'qemu', 0x800f12, 0x21n);
    expect(Buffer.from(ap).equals(readFileSync(file('vmsa-qemu-epyc-v4-0x21-ap.bin')))).toBe(true);
  });

  it('derives the firmware facts the vectors list', () => {
    const info = parseOvmf(readFileSync(file('ovmf_AmdSev_suffix.bin')));
    expect(info.sevEsResetEip).toBe(0x80b004);
    expect(info.sevHashesTableGpa).toBe(0x810c00);
    expect(info.sections.map((s) => s.type)).toEqual([
      'SNP_SEC_MEM',
      'SNP_SEC_MEM',
      'SNP_SECRETS',
      'CPUID',
      'SVSM_CAA',
      'SNP_KERNEL_HASHES',
      'SNP_SEC_MEM',
    ]);
  });
});

describe('snpLaunchDigest: bad input', () => {
  const base: SnpLaunchDigestOptions = {
    ovmf: file('ovmf_AmdSev_suffix.bin'),
    vcpus: 1,
    vcpuType: 'EPYC-v4',
    vmmType: 'qemu',
  };
  const rejects = async (o: Partial<SnpLaunchDigestOptions> & Record<string, unknown>, re: RegExp) => {
    const err = await snpLaunchDigest({ ...base, ...o } as SnpLaunchDigestOptions).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AttestationError);
    expect((err as AttestationError).code).toBe('ERR_INVALID_ARGUMENT');
    expect((err as AttestationError).message).toMatch(re);
  };

  it('refuses each bad option with ERR_INVALID_ARGUMENT', async () => {
    await rejects({ vcpus: 0 }, /vcpus/);
    await rejects({ vcpus: 1.5 }, /vcpus/);
    await rejects({ vcpus: 65536 }, /vcpus/);
    await rejects({ vcpuType: 'EPYC-v9' }, /unknown vCPU type/);
    await rejects({ vcpuType: 'toString' }, /unknown vCPU type/);
    await rejects({ vcpuType: undefined }, /QEMU needs/);
    await rejects({ vcpuSignature: 0x800f12 }, /not both/);
    await rejects({ vcpuType: undefined, vcpuSignature: -1 }, /vcpuSignature/);
    await rejects({ vmmType: 'kvm' as VmmType }, /vmmType/);
    await rejects({ guestFeatures: -1n }, /64 bits/);
    await rejects({ guestFeatures: 1n << 64n }, /64 bits/);
    await rejects({ initrd: file('empty.bin') }, /initrd needs kernel/);
    await rejects({ append: 'x' }, /append needs kernel/);
    await rejects({ ovmf: file('missing.fd') }, /cannot read firmware/);
    await rejects({ kernel: file('missing-kernel') }, /cannot read kernel/);
    await rejects({ ovmf: MEASURE_DIR }, /not a regular file/);
    await rejects({ ovmf: new Uint8Array(4096) }, /no SEV metadata/);
    await rejects({ ovmf: new Uint8Array(4000) }, /whole number of 4 KiB pages/);
    await rejects({ ovmf: new Uint8Array(0) }, /whole number/);
    await rejects({ firmwareDigest: new Uint8Array(47) }, /48 bytes/);
  });

  it('ec2 and gce need no vCPU type (RDX is 0x600 there)', async () => {
    for (const vmmType of ['ec2', 'gce'] as const) {
      const a = await snpLaunchDigest({ ...base, vmmType, vcpuType: undefined });
      const b = await snpLaunchDigest({ ...base, vmmType, vcpuType: 'EPYC-Milan' });
      expect(hex(a.measurement)).toBe(hex(b.measurement));
      expect(a.rdx).toBe(0x600);
    }
  });

  it('refuses firmware the VMSAs or the hashes page cannot be built for, and huge section ranges', async () => {
    const img = new Uint8Array(readFileSync(file('ovmf_AmdSev_suffix.bin')));
    const at = (guid: string) => Buffer.from(img).indexOf(Buffer.from(guidBytes(guid)));
    // Another GUID on the reset-block entry: no AP entry point.
    const noReset = img.slice();
    noReset[at(GUIDS.sevEsResetBlock)]! ^= 0xff;
    await expect(snpLaunchDigest({ ...base, ovmf: noReset })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      details: { reason: 'no-reset-block' },
    });
    // A hashes-table GPA 0xf80 into its page leaves no room for 176 bytes.
    const tight = Buffer.from(img);
    const entry = at(GUIDS.sevHashTable) - 2 - 8; // data (u32 GPA, u32 size) ‖ u16 length ‖ GUID
    expect(tight.readUInt32LE(entry)).toBe(0x810c00);
    tight.writeUInt32LE(0x810f80, entry);
    await rejects({ ovmf: new Uint8Array(tight), kernel: file('empty.bin') }, /no room for the table/);
    expect((await snpLaunchDigest({ ...base, ovmf: new Uint8Array(tight) })).measurement).toHaveLength(48);
    // Two SEC_MEM sections of almost 4 GiB each: more pages than 32-bit ranges can name.
    const huge = Buffer.from(img);
    const d = huge.indexOf(Buffer.from('0000800000900000', 'hex'));
    huge.writeUInt32LE(0xfffff000, d + 4);
    huge.writeUInt32LE(0xfffff000, d + 12 + 4);
    await rejects({ ovmf: new Uint8Array(huge) }, /more than 4 GiB/);
  });

  it('a firmware with a broken metadata section is refused before hashing', async () => {
    const img = new Uint8Array(readFileSync(file('ovmf_AmdSev_suffix.bin')));
    const info = parseOvmf(img);
    expect(info.sections.length).toBe(7);
    // Find the first descriptor (GPA 0x800000) and give it an unknown type.
    const d = Buffer.from(img).indexOf(Buffer.from('0000800000900000', 'hex'));
    expect(d).toBeGreaterThan(0);
    const bad = img.slice();
    bad[d + 8] = 9;
    await rejects({ ovmf: bad }, /unknown type 9/);
    const odd = img.slice();
    odd[d + 4] = 0x01; // size 0x9001
    await rejects({ ovmf: odd }, /not whole pages/);
  });
});
