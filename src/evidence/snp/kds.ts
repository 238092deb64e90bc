/**
 * AMD Key Distribution Service client (docs/reference/snp-format.md §5) on top of the shared
 * CollateralFetcher: VCEKs by chip ID and TCB, the ASK/ASVK+ARK chains, and the ARK-signed CRLs. VLEKs are not
 * publicly downloadable, so there is no VLEK getter: they must come with the evidence.
 * Everything returned is untrusted until the verifier has checked it against the pinned ARKs.
 */
import { AttestationError } from '../../errors.js';
import { bytesToHex, isAllZero } from '../bytes.js';
import { CollateralFetcher, type CollateralFetcherOptions } from '../fetch.js';
import type { CollateralClient, CollateralFetchOptions, TcbVersion } from '../types.js';
import { pemToDer } from '../x509/pem.js';
import { SNP_PRODUCTS, type SnpProduct } from './roots.js';
import { hasFmc } from './tcb.js';

export const AMD_KDS_URL = 'https://kdsintf.amd.com';

export interface KdsCallOptions {
  signal?: AbortSignal;
  offline?: boolean;
}

export class KdsClient implements CollateralClient {
  readonly kind = 'kds' as const;
  readonly fetcher: CollateralFetcher;

  constructor(options: CollateralFetcherOptions = {}) {
    if (typeof options !== 'object' || options === null)
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'options must be an object');
    this.fetcher = new CollateralFetcher({ ...options, baseUrl: options.baseUrl ?? AMD_KDS_URL });
  }

  /** @internal `/vcek/v1/{product}/{hwid}?…`: Turin uses the 8-byte ID and lists fmcSPL first. */
  static vcekPath(product: SnpProduct, chipId: Uint8Array, tcb: TcbVersion): string {
    if (chipId.length !== 64) throw new AttestationError('ERR_INVALID_ARGUMENT', 'CHIP_ID must be 64 bytes');
    const turin = hasFmc(product);
    const hwid = bytesToHex(turin ? chipId.subarray(0, 8) : chipId);
    const q = `blSPL=${tcb.bootloader}&teeSPL=${tcb.tee}&snpSPL=${tcb.snp}&ucodeSPL=${tcb.microcode}`;
    return `/vcek/v1/${product}/${hwid}?${turin ? `fmcSPL=${tcb.fmc ?? 0}&` : ''}${q}`;
  }

  /** @internal The KDS path of a product's ASK/ASVK + ARK chain. */
  static chainPath(product: SnpProduct, signer: 'vcek' | 'vlek'): string {
    return `/${signer}/v1/${product}/cert_chain`;
  }

  /** @internal The KDS path of a product's CRL. */
  static crlPath(product: SnpProduct, signer: 'vcek' | 'vlek'): string {
    return `/${signer}/v1/${product}/crl`;
  }

  /** The VCEK (DER) for a chip at the REPORTED_TCB. A masked (all-zero) CHIP_ID cannot be looked up. */
  async getVcek(product: SnpProduct, chipId: Uint8Array, tcb: TcbVersion, o: KdsCallOptions = {}) {
    checkArgs(product, 'vcek');
    if (!(chipId instanceof Uint8Array))
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'chipId must be a Uint8Array');
    if (typeof tcb !== 'object' || tcb === null)
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'tcb must be a TcbVersion');
    if (isAllZero(chipId))
      throw new AttestationError(
        'ERR_COLLATERAL_UNAVAILABLE',
        'no VCEK in the evidence and CHIP_ID is masked, so KDS cannot be asked for it',
      );
    const res = await this.fetcher.get(KdsClient.vcekPath(product, chipId, tcb), o);
    return res.body;
  }

  /** [ASK or ASVK, ARK] as DER, from the PEM KDS serves. */
  async getCertChain(
    product: SnpProduct,
    signer: 'vcek' | 'vlek',
    o: KdsCallOptions = {},
  ): Promise<Uint8Array[]> {
    checkArgs(product, signer);
    const res = await this.fetcher.get(KdsClient.chainPath(product, signer), o);
    const ders = pemToDer(Buffer.from(res.body).toString('latin1'), 'ERR_COLLATERAL_UNAVAILABLE');
    if (ders.length !== 2)
      throw new AttestationError(
        'ERR_COLLATERAL_UNAVAILABLE',
        `KDS cert_chain holds ${ders.length} certificates, not 2`,
      );
    return ders;
  }

  /** The ARK-signed CRL (DER) for VCEK or VLEK intermediates of a product. */
  async getCrl(product: SnpProduct, signer: 'vcek' | 'vlek', o: KdsCallOptions = {}): Promise<Uint8Array> {
    checkArgs(product, signer);
    return (await this.fetcher.get(KdsClient.crlPath(product, signer), o)).body;
  }
}

function checkArgs(product: unknown, signer: unknown): void {
  if (!(SNP_PRODUCTS as readonly unknown[]).includes(product))
    throw new AttestationError('ERR_INVALID_ARGUMENT', `product must be one of ${SNP_PRODUCTS.join(', ')}`);
  if (signer !== 'vcek' && signer !== 'vlek')
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'signer must be "vcek" or "vlek"');
}

/**
 * The client for VerifierOptions.kds: an instance is used as is (its cache is shared with whoever
 * else holds it); settings make a new client, owned by the Verifier that asked.
 */
export function kdsClientFor(kds: CollateralFetchOptions | CollateralClient | undefined): KdsClient {
  if (kds instanceof KdsClient) return kds;
  if (kds && 'kind' in kds)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'options.kds is not a KDS client');
  return new KdsClient(kds ?? {});
}
