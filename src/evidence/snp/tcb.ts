/**
 * TCB_VERSION: eight bytes whose meaning depends on the processor generation. Milan and Genoa
 * put bootloader, tee, snp and microcode SPLs at bytes 0, 1, 6, 7; Turin adds an FMC SPL and
 * packs them as fmc, bootloader, tee, snp at bytes 0..3 with microcode at 7
 * (docs/reference/snp-format.md §2).
 * Reading a Turin TCB with the Milan layout gives plausible but wrong numbers, so the product
 * must be known before a TCB is decoded or compared.
 */
import { bytesToHex } from '../bytes.js';
import type { TcbVersion } from '../types.js';
import type { SnpProduct } from './roots.js';

export type TcbComponent = 'bootloader' | 'tee' | 'snp' | 'microcode' | 'fmc';

/**
 * Product line from the CPUID family/model a v3+ report carries. Ranges follow virtee/sev and
 * trustee (Genoa includes Bergamo and Siena, KDS product "Genoa"). Family 0x1A beyond Turin's
 * models (Venice) uses another TCB layout, so it is unknown here rather than guessed.
 */
export function productFromCpuid(family: number, model: number): SnpProduct | undefined {
  if (family === 0x19) {
    if (model <= 0x0f) return 'Milan';
    if ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf)) return 'Genoa';
  }
  if (family === 0x1a && model <= 0x11) return 'Turin';
  return undefined;
}

/** Product from a VEK productName extension ("Milan-B0", "Genoa", "Turin"): the part before "-". */
export function productFromName(name: string): SnpProduct | undefined {
  const base = name.split('-')[0];
  return base === 'Milan' || base === 'Genoa' || base === 'Turin' ? base : undefined;
}

export function hasFmc(product: SnpProduct): boolean {
  return product === 'Turin';
}

/** Decodes 8 raw TCB bytes with the layout of `product`. */
export function decodeTcb(raw: Uint8Array, product: SnpProduct): TcbVersion {
  if (hasFmc(product)) {
    return {
      raw: bytesToHex(raw),
      fmc: raw[0]!,
      bootloader: raw[1]!,
      tee: raw[2]!,
      snp: raw[3]!,
      microcode: raw[7]!,
    };
  }
  return { raw: bytesToHex(raw), bootloader: raw[0]!, tee: raw[1]!, snp: raw[6]!, microcode: raw[7]! };
}

/** The components that exist for a product, in the order KDS URLs list them. */
export function tcbComponents(product: SnpProduct): TcbComponent[] {
  return hasFmc(product)
    ? ['fmc', 'bootloader', 'tee', 'snp', 'microcode']
    : ['bootloader', 'tee', 'snp', 'microcode'];
}

/** First component of `tcb` below `min` (absent minimums and components the product lacks are skipped). */
export function firstBelow(
  tcb: TcbVersion,
  min: Partial<Record<TcbComponent, number>>,
  product: SnpProduct,
): TcbComponent | undefined {
  for (const c of tcbComponents(product)) {
    const want = min[c];
    const have = tcb[c];
    if (want !== undefined && (have === undefined || have < want)) return c;
  }
  return undefined;
}
