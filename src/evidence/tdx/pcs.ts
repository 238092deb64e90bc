/**
 * Intel PCS v4 client for TDX collateral (the same paths work against a PCCS: set baseUrl).
 *
 *   TCB info      GET {base}/tdx/certification/v4/tcb?fmspc={hex}      header TCB-Info-Issuer-Chain
 *   QE identity   GET {base}/tdx/certification/v4/qe/identity          header SGX-Enclave-Identity-Issuer-Chain
 *   PCK CRL       GET {base}/sgx/certification/v4/pckcrl?ca=platform|processor&encoding=der
 *                                                                      header SGX-PCK-CRL-Issuer-Chain
 *   root CA CRL   GET {rootCrlUrl} (default Intel's certificate site)
 *
 * Header values are URL-encoded PEM. The signed tcbInfo / enclaveIdentity texts are cut out of
 * the response bodies byte-exactly (their signatures cover those bytes, so re-serialising parsed
 * JSON would break them). HTTP, timeouts, retries, caches and offline mode are fetch.ts's job;
 * nothing fetched here is trusted: collateral.ts verifies it all.
 */
import { AttestationError } from '../../errors.js';
import { bytesToHex } from '../bytes.js';
import { CollateralFetcher, type CollateralFetcherOptions, type FetchResult } from '../fetch.js';
import type { CollateralClient, CollateralFetchOptions, TdxCollateral } from '../types.js';

export const INTEL_PCS_BASE_URL = 'https://api.trustedservices.intel.com';
export const INTEL_ROOT_CA_CRL_URL = 'https://certificates.trustedservices.intel.com/IntelSGXRootCA.der';

export interface PcsClientOptions extends CollateralFetcherOptions {
  /** Full URL of the Intel SGX Root CA CRL (a PCCS serves it at {base}/sgx/certification/v4/rootcacrl). */
  rootCrlUrl?: string;
}

function unavailable(message: string, details?: Record<string, unknown>): AttestationError {
  return new AttestationError('ERR_COLLATERAL_UNAVAILABLE', message, details ? { details } : {});
}

/**
 * Finds the exact source text of a top-level member's value in a JSON object text. The whole
 * text must be valid JSON (checked first with JSON.parse), so the scanner only has to track
 * strings and nesting, never to validate.
 */
export function extractJsonMember(text: string, name: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw unavailable(`PCS response is not JSON (looking for "${name}")`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw unavailable('PCS response is not a JSON object');
  let i = 0;
  const ws = () => {
    while (i < text.length && /[ \t\r\n]/.test(text[i]!)) i++;
  };
  const skipString = () => {
    const start = i;
    i++; // opening quote
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const skipValue = () => {
    const c = text[i];
    if (c === '"') {
      skipString();
      return;
    }
    if (c === '{' || c === '[') {
      let depth = 0;
      do {
        const d = text[i];
        if (d === '"') {
          skipString();
          continue;
        }
        if (d === '{' || d === '[') depth++;
        else if (d === '}' || d === ']') depth--;
        i++;
      } while (depth > 0 && i < text.length);
      return;
    }
    while (i < text.length && !/[,}\] \t\r\n]/.test(text[i]!)) i++;
  };
  let found: string | undefined;
  ws();
  i++; // '{'
  for (;;) {
    ws();
    if (text[i] === '}') break;
    const key = skipString();
    ws();
    i++; // ':'
    ws();
    const start = i;
    skipValue();
    // Duplicate members would make "which one was signed" ambiguous.
    if (key === name) {
      if (found !== undefined) throw unavailable(`PCS response has "${name}" twice`);
      found = text.slice(start, i);
    }
    ws();
    if (text[i] === ',') i++;
  }
  if (found === undefined) throw unavailable(`PCS response has no "${name}"`);
  return found;
}

function issuerChain(res: FetchResult, ...names: string[]): string {
  for (const n of names) {
    const v = res.headers[n.toLowerCase()];
    if (v !== undefined) {
      try {
        return decodeURIComponent(v);
      } catch {
        throw unavailable(`PCS header ${n} is not URL-encoded PEM`);
      }
    }
  }
  throw unavailable(`PCS response lacks the ${names[0]} header`);
}

/** CRLs arrive as DER (encoding=der), as hex (PCCS) or as PEM; normalised to lowercase hex. */
function crlHex(body: Uint8Array): string {
  if (body[0] === 0x30) return bytesToHex(body);
  const text = Buffer.from(body).toString('latin1').trim();
  if (/^([0-9a-fA-F]{2})+$/.test(text)) return text.toLowerCase();
  const pem = /-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----/.exec(text);
  if (pem) return Buffer.from(pem[1]!.replace(/\s+/g, ''), 'base64').toString('hex');
  throw unavailable('CRL response is neither DER, hex nor PEM');
}

function signedPart(res: FetchResult, member: string): { text: string; signature: string } {
  const body = Buffer.from(res.body).toString('utf8');
  const text = extractJsonMember(body, member);
  const parsed = JSON.parse(body) as Record<string, unknown>;
  const sig = Object.hasOwn(parsed, 'signature') ? parsed.signature : undefined;
  if (typeof sig !== 'string') throw unavailable(`PCS response for ${member} has no signature`);
  return { text, signature: sig };
}

export class PcsClient implements CollateralClient {
  readonly kind = 'pcs' as const;
  readonly fetcher: CollateralFetcher;
  private readonly rootCrl: { fetcher: CollateralFetcher; path: string };

  constructor(options: PcsClientOptions = {}) {
    if (typeof options !== 'object' || options === null)
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'options must be an object');
    const { rootCrlUrl, ...rest } = options;
    this.fetcher = new CollateralFetcher({ ...rest, baseUrl: rest.baseUrl ?? INTEL_PCS_BASE_URL });
    let url: URL;
    try {
      url = new URL(rootCrlUrl ?? INTEL_ROOT_CA_CRL_URL);
    } catch (err) {
      throw new AttestationError('ERR_INVALID_ARGUMENT', `invalid rootCrlUrl ${rootCrlUrl}`, { cause: err });
    }
    const same =
      url.origin === new URL(this.fetcher.baseUrl).origin && url.href.startsWith(this.fetcher.baseUrl);
    this.rootCrl = same
      ? { fetcher: this.fetcher, path: url.href.slice(this.fetcher.baseUrl.length) }
      : { fetcher: new CollateralFetcher({ ...rest, baseUrl: url.origin }), path: url.pathname + url.search };
  }

  /** Fetches the four collateral items for a platform and returns them in the evidence schema. */
  async getCollateral(
    fmspc: Uint8Array,
    ca: 'platform' | 'processor',
    options: { signal?: AbortSignal; offline?: boolean } = {},
  ): Promise<TdxCollateral> {
    if (!(fmspc instanceof Uint8Array && fmspc.length === 6))
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'fmspc must be 6 bytes');
    if (ca !== 'platform' && ca !== 'processor')
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'ca must be "platform" or "processor"');
    if (typeof options !== 'object' || options === null)
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'options must be an object');
    const get = {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.offline ? { offline: true } : {}),
    };
    const [tcb, qe, pckCrl, rootCrl] = await Promise.all([
      this.fetcher.get(`/tdx/certification/v4/tcb?fmspc=${bytesToHex(fmspc)}`, get),
      this.fetcher.get('/tdx/certification/v4/qe/identity', get),
      this.fetcher.get(`/sgx/certification/v4/pckcrl?ca=${ca}&encoding=der`, get),
      this.rootCrl.fetcher.get(this.rootCrl.path, get),
    ]);
    const tcbInfo = signedPart(tcb, 'tcbInfo');
    const qeIdentity = signedPart(qe, 'enclaveIdentity');
    return {
      tcb_info: tcbInfo.text,
      tcb_info_signature: tcbInfo.signature,
      tcb_info_issuer_chain: issuerChain(tcb, 'TCB-Info-Issuer-Chain', 'SGX-TCB-Info-Issuer-Chain'),
      qe_identity: qeIdentity.text,
      qe_identity_signature: qeIdentity.signature,
      qe_identity_issuer_chain: issuerChain(qe, 'SGX-Enclave-Identity-Issuer-Chain'),
      pck_crl: crlHex(pckCrl.body),
      pck_crl_issuer_chain: issuerChain(pckCrl, 'SGX-PCK-CRL-Issuer-Chain'),
      root_ca_crl: crlHex(rootCrl.body),
    };
  }
}

/**
 * The client for VerifierOptions.pcs: an instance is used as is (its cache is shared with whoever
 * else holds it); settings make a new client, owned by the Verifier that asked.
 */
export function pcsClientFor(pcs: CollateralFetchOptions | CollateralClient | undefined): PcsClient {
  if (pcs instanceof PcsClient) return pcs;
  if (pcs !== undefined && 'kind' in pcs)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'options.pcs is a collateral client of another kind');
  return new PcsClient(pcs ?? {});
}
