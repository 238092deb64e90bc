/** `attested-channel measure snp`, run in-process the way the shared vectors' README calls it. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { file, VECTORS, type Vector } from './vectors.js';

/** The flags the checks pass: always --guest-features, 0x on hex, EPYC-v4 where a vector names no CPU. */
function argsOf(v: Vector): string[] {
  const a = ['measure', 'snp', '--ovmf', file(v.ovmf), '--vcpus', String(v.vcpus)];
  if (v.vcpu_sig) a.push('--vcpu-sig', v.vcpu_sig);
  else a.push('--vcpu-type', v.vcpu_type ?? 'EPYC-v4');
  a.push('--vmm-type', v.vmm_type);
  if (v.kernel) a.push('--kernel', file(v.kernel));
  if (v.initrd) a.push('--initrd', file(v.initrd));
  if (v.append !== null) a.push('--append', v.append);
  a.push('--guest-features', v.guest_features, '--json');
  return a;
}

describe('attested-channel measure snp', () => {
  for (const v of VECTORS.vectors.filter((x) => x.mode === 'snp')) {
    it(v.id, async () => {
      const r = await cli(...argsOf(v));
      const j = JSON.parse(r.out);
      if (v.expect === 'ok') {
        expect(r.code).toBe(0);
        expect(j.ok).toBe(true);
        expect(j.measurement).toBe(v.measurement);
        expect(j.inputs).toMatchObject({
          vcpus: v.vcpus,
          vmmType: v.vmm_type,
          guestFeatures: v.guest_features,
        });
      } else {
        expect(r.code).toBe(1);
        expect(j).toMatchObject({ ok: false, error: { code: 'ERR_INVALID_ARGUMENT' } });
        expect(j.error.message).toMatch(/SNP_KERNEL_HASHES/);
      }
    });
  }

  it('without --json prints the measurement alone', async () => {
    const v = VECTORS.vectors[0]!;
    const r = await cli(...argsOf(v).filter((a) => a !== '--json'));
    expect(r.code).toBe(0);
    expect(r.out).toBe(`${v.measurement}\n`);
  });

  it('--json echoes what was measured', async () => {
    const v = VECTORS.vectors.find((x) => x.id.startsWith('oracle__amdsev_2vcpu_milan'))!;
    const j = JSON.parse((await cli(...argsOf(v))).out);
    expect(j.inputs).toMatchObject({
      vcpuType: 'EPYC-Milan',
      vcpuSignature: '0xa00f11',
      rdx: '0xa00f11',
      append: v.append,
      firmware: { size: 4096, gpa: '0xfffff000', sevEsResetEip: '0x80b004', sevHashesTableGpa: '0x810c00' },
    });
    expect(j.inputs.kernelHashes.kernel).toBe(
      '9383a9b07d671560065d96eecdc9fb9385fcc2d928ec7acdcc847adfc16029eb',
    );
    expect(j.inputs.firmware.sections).toHaveLength(7);
    expect(j.inputs.firmware.sha384).toBe(
      createHash('sha384')
        .update(readFileSync(file(v.ovmf)))
        .digest('hex'),
    );
  });

  it('--snp-ovmf-hash seeds the digest', async () => {
    const v = VECTORS.vectors.find((x) => x.snp_ovmf_hash)!;
    const r = await cli(...argsOf(v), '--snp-ovmf-hash', v.snp_ovmf_hash!);
    expect(JSON.parse(r.out).measurement).toBe(v.measurement);
  });

  const good = [
    'measure',
    'snp',
    '--ovmf',
    file('ovmf_AmdSev_suffix.bin'),
    '--vcpus',
    '1',
    '--vmm-type',
    'qemu',
  ];
  const withCpu = [...good, '--vcpu-type', 'EPYC-v4'];
  /** `args` with option `name` given `value` instead (an option may appear only once). */
  const set = (args: string[], name: string, value: string) => {
    const i = args.indexOf(name);
    return i < 0 ? [...args, name, value] : args.map((a, j) => (j === i + 1 ? value : a));
  };

  it('usage errors exit 2 with one JSON object, never a stack trace', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['measure'], /needs a TEE/],
      [['measure', 'tdx'], /unknown TEE/],
      [[...withCpu.filter((_a, i) => i !== 2 && i !== 3)], /--ovmf is required/],
      [[...good.slice(0, 4), '--vmm-type', 'qemu', '--vcpu-type', 'EPYC-v4'], /--vcpus is required/],
      [set(withCpu, '--vcpus', '0x2'), /decimal/],
      [[...withCpu, '--vcpus', '2'], /--vcpus given more than once/],
      [[...good], /needs --vcpu-type or --vcpu-sig/],
      [[...good, '--vcpu-type', 'EPYC-v9'], /unknown --vcpu-type/],
      [[...good, '--vcpu-type', 'EPYC-v4', '--vcpu-sig', '0x800f12'], /not both/],
      [[...good, '--vcpu-sig', '800f12'], /0x-prefixed/],
      [[...good, '--vcpu-sig', '0x100000000'], /32 bits/],
      [set(withCpu, '--vmm-type', 'kvm'), /unknown --vmm-type/],
      [[...withCpu, '--guest-features', '21'], /0x-prefixed/],
      [[...withCpu, '--initrd', file('empty.bin')], /--initrd needs --kernel/],
      [[...withCpu, '--append', 'x'], /--append needs --kernel/],
      [[...withCpu, '--snp-ovmf-hash', 'ab'], /96 hex/],
      [[...withCpu, '--bogus'], /Unknown option/],
    ];
    for (const [args, re] of cases) {
      const r = await cli(...args, '--json');
      expect(r.code, args.join(' ')).toBe(2);
      const j = JSON.parse(r.out);
      expect(j.ok).toBe(false);
      expect(j.error.code).toBe('ERR_INVALID_ARGUMENT');
      expect(j.error.message).toMatch(re);
      const plain = await cli(...args);
      expect(plain.code).toBe(2);
      expect(plain.out).toBe('');
      expect(plain.err).toMatch(/^attested-channel: /);
      expect(plain.err).not.toMatch(/\n\s+at /);
    }
  });

  it('inputs that cannot be measured exit 1 with the code', async () => {
    const cases: Array<[string[], RegExp]> = [
      [
        [...withCpu.map((a) => (a.endsWith('ovmf_AmdSev_suffix.bin') ? file('missing.fd') : a))],
        /cannot read firmware/,
      ],
      [
        [...withCpu.map((a) => (a.endsWith('ovmf_AmdSev_suffix.bin') ? file('kernel-s1.bin') : a))],
        /4 KiB pages/,
      ],
      [
        [
          ...withCpu.map((a) =>
            a.endsWith('ovmf_AmdSev_suffix.bin') ? file('vmsa-qemu-epyc-v4-0x21-ap.bin') : a,
          ),
        ],
        /no SEV metadata/,
      ],
      [[...withCpu, '--kernel', file('nope.bin')], /cannot read kernel/],
      [set(withCpu, '--vcpus', '0'), /vcpus/],
    ];
    for (const [args, re] of cases) {
      const r = await cli(...args, '--json');
      expect(r.code, args.join(' ')).toBe(1);
      const j = JSON.parse(r.out);
      expect(j).toMatchObject({ ok: false, error: { code: 'ERR_INVALID_ARGUMENT' } });
      expect(j.error.message).toMatch(re);
      const plain = await cli(...args);
      expect(plain.code).toBe(1);
      expect(plain.err).toMatch(/^attested-channel: ERR_INVALID_ARGUMENT: /);
    }
  });

  it('--svsm measures a boot through COCONUT-SVSM (the shared snp-svsm vector)', async () => {
    const v = VECTORS.vectors.find((x) => x.mode === 'snp-svsm')! as Vector & { vars_size: number };
    const args = [
      'measure',
      'snp',
      '--ovmf',
      file(v.ovmf),
      '--svsm',
      file('svsm.bin'),
      '--vars-size',
      String(v.vars_size),
    ];
    const r = await cli(...args, '--vcpus', '2', '--vcpu-type', 'EPYC-v4', '--vmm-type', 'qemu', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({
      ok: true,
      measurement: v.measurement,
      inputs: { mode: 'snp-svsm', guestFeatures: '0x1' },
    });
    const usage = async (extra: string[], re: RegExp) => {
      const u = await cli(...args, '--vcpus', '2', '--vcpu-type', 'EPYC-v4', ...extra, '--json');
      expect(u.code).toBe(2);
      expect(JSON.parse(u.out).error.message).toMatch(re);
    };
    await usage(['--vmm-type', 'gce'], /qemu only/);
    await usage(['--vmm-type', 'qemu', '--kernel', file('empty.bin')], /no --kernel/);
    const noVars = await cli(
      'measure',
      'snp',
      '--ovmf',
      file(v.ovmf),
      '--svsm',
      file('svsm.bin'),
      '--vcpus',
      '1',
      '--vcpu-type',
      'EPYC',
      '--vmm-type',
      'qemu',
    );
    expect(noVars.code).toBe(2);
    expect(noVars.err).toMatch(/needs --vars-size/);
    const missing = await cli(
      ...args.map((a) => (a.endsWith('svsm.bin') ? file('nope.bin') : a)),
      '--vcpus',
      '2',
      '--vcpu-type',
      'EPYC-v4',
      '--vmm-type',
      'qemu',
      '--json',
    );
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.out).error.message).toMatch(/cannot read SVSM image/);
  });

  it('is listed in the top-level help, and --help prints its usage', async () => {
    expect((await cli('--help')).out).toMatch(/measure\s+the launch measurement/);
    const h = await cli('measure', 'snp', '--help');
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/--vmm-type/);
  });
});
