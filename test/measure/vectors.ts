/** The shared SEV-SNP measurement vectors (test/fixtures/measure/vectors.json) as test inputs. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SnpLaunchDigestOptions, VmmType } from '../../src/measure/snp.js';

export const MEASURE_DIR = join(import.meta.dirname, '..', 'fixtures', 'measure');
export const file = (name: string) => join(MEASURE_DIR, name);
export const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

export interface Vector {
  id: string;
  mode: string;
  ovmf: string;
  vcpus: number;
  vcpu_type: string | null;
  vcpu_sig: string | null;
  vmm_type: VmmType;
  kernel: string | null;
  initrd: string | null;
  append: string | null;
  guest_features: string;
  snp_ovmf_hash: string | null;
  expect: 'ok' | 'error';
  measurement?: string;
  stages?: { after_firmware_pages: string };
}
export const VECTORS = JSON.parse(readFileSync(file('vectors.json'), 'utf8')) as {
  vectors: Vector[];
  files: Record<string, { firmware?: { ld_after_firmware_pages: string; sev_es_reset_eip: string } }>;
  intermediates: {
    sev_hashes_tables: Array<{ kernel: string; initrd: string; append: string; table_hex: string }>;
    vmsa_pages: Array<{
      vmm_type: VmmType;
      vcpu: 'bsp' | 'ap';
      vcpu_type: string;
      guest_features: string;
      eip: string;
      sha384: string;
    }>;
  };
};

export function optionsOf(v: Vector): SnpLaunchDigestOptions {
  return {
    ovmf: file(v.ovmf),
    vcpus: v.vcpus,
    vmmType: v.vmm_type,
    ...(v.vcpu_type ? { vcpuType: v.vcpu_type } : {}),
    ...(v.vcpu_sig ? { vcpuSignature: Number(v.vcpu_sig) } : {}),
    ...(v.kernel ? { kernel: file(v.kernel) } : {}),
    ...(v.initrd ? { initrd: file(v.initrd) } : {}),
    ...(v.append !== null ? { append: v.append } : {}),
    guestFeatures: BigInt(v.guest_features),
  };
}
