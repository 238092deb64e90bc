/** The shared vectors of the other launch flows: SNP with COCONUT-SVSM, SEV-ES and SEV. */
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import { sevLaunchDigest, snpSvsmLaunchDigest } from '../../src/measure/modes.js';
import { file, hex, VECTORS } from './vectors.js';

const others = VECTORS.vectors.filter((v) => v.mode !== 'snp');

describe('other launch flows: shared vectors', () => {
  it('has 5 of them (1 snp-svsm, 2 sev-es, 2 sev)', () =>
    expect(others.map((v) => v.mode).sort()).toEqual(['sev', 'sev', 'sev-es', 'sev-es', 'snp-svsm']));

  for (const v of others) {
    it(`${v.mode}: ${v.id}`, async () => {
      const x = v as typeof v & { svsm?: string; vars_size?: number };
      const run = () =>
        v.mode === 'snp-svsm'
          ? snpSvsmLaunchDigest({
              ovmf: file(v.ovmf),
              svsm: file(x.svsm!),
              ovmfVarsSize: x.vars_size!,
              vcpus: v.vcpus,
              ...(v.vcpu_type ? { vcpuType: v.vcpu_type } : {}),
            })
          : sevLaunchDigest({
              mode: v.mode as 'sev' | 'sev-es',
              ovmf: file(v.ovmf),
              vcpus: v.vcpus,
              vcpuType: v.vcpu_type ?? 'EPYC-v4',
              vmmType: v.vmm_type,
              ...(v.kernel ? { kernel: file(v.kernel) } : {}),
              ...(v.initrd ? { initrd: file(v.initrd) } : {}),
              ...(v.append !== null ? { append: v.append } : {}),
            });
      if (v.expect === 'ok') expect(hex(await run())).toBe(v.measurement);
      else
        await expect(run()).rejects.toMatchObject({
          code: 'ERR_INVALID_ARGUMENT',
          details: { reason: 'no-kernel-hashes' },
        });
    });
  }

  it('SVSM: the vCPU count and the variable store size enter the digest; bad input is typed', async () => {
    const v = others.find((x) => x.mode === 'snp-svsm')! as (typeof others)[number] & { vars_size: number };
    const base = {
      ovmf: file(v.ovmf),
      svsm: file('svsm.bin'),
      ovmfVarsSize: v.vars_size,
      vcpus: 2,
      vcpuType: 'EPYC-v4',
    };
    expect(hex(await snpSvsmLaunchDigest({ ...base, vcpus: 3 }))).not.toBe(v.measurement);
    expect(hex(await snpSvsmLaunchDigest({ ...base, ovmfVarsSize: v.vars_size + 4096 }))).not.toBe(
      v.measurement,
    );
    for (const bad of [
      { vcpus: 0 },
      { ovmfVarsSize: -1 },
      { svsm: file('ovmf_OvmfX64_suffix.bin') },
      { vcpuType: 'nope' },
    ]) {
      const err = await snpSvsmLaunchDigest({ ...base, ...bad }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AttestationError);
      expect((err as AttestationError).code).toBe('ERR_INVALID_ARGUMENT');
    }
  });
});
