/**
 * createVerifier(): one object that owns everything verification keeps between calls — its own
 * copies of the trust anchors, its KDS and PCS clients, and its caches — and dispatches evidence
 * through the format table (formats.ts). Nothing in src/evidence keeps state anywhere else
 * (test/architecture/module-state.test.ts checks it), so two Verifiers share nothing and a
 * Verifier that is dropped takes its caches with it.
 *
 * The caches are bounded LRUs (lru.ts) keyed by content, never by object identity:
 *
 *   certificates      256  parsed certificates by SHA-256 of their DER (x509/cert.ts)
 *   sev-snp.chains    256  VEK + chain verdicts by their bytes (snp/verify.ts)
 *   sev-snp.crls       16  ARK-verified CRLs by ARK and CRL digest (snp/verify.ts)
 *   tdx.chains        128  PCK chains by their PEM text, with the verified chain (tdx/verify.ts)
 *   tdx.collateral     32  collateral by JSON text / verified collateral by digest (tdx/collateral.ts)
 *   tdx.keys          256  attestation keys with their last vouched-for QE report (tdx/verify.ts)
 *
 * so a Verifier holds at most VERIFIER_MEMORY_BOUND_BYTES however many distinct reports it sees
 * (bench/verifier.ts measures one after 100 000). Every verdict taken from a cache is checked
 * again at `now`.
 */
import { createHash } from 'node:crypto';
import { AttestationError, asAttestationError } from '../errors.js';
import { checkFormat } from './appraise.js';
import type { FormatSettings, FormatVerifier } from './format.js';
import { FORMATS, formatOf } from './formats.js';
import { Lru } from './lru.js';
import { parsePolicy } from './policy.js';
import { SNP_REPORT_LENGTH } from './snp/report.js';
import type {
  Claims,
  EvidenceFormat,
  EvidenceInput,
  Verifier,
  VerifierCallOptions,
  VerifierOptions,
  VerifierStats,
} from './types.js';
import type { ParsedCert } from './x509/cert.js';

/** Size of the certificate cache every format of a Verifier shares. */
export const CERTIFICATE_CACHE_SIZE = 256;

/**
 * The most memory (V8 heap and buffers) one Verifier retains with every cache full, whatever
 * it has seen: what the bench row "verifier memory" holds it to (docs/api.md gives the figures).
 */
export const VERIFIER_MEMORY_BOUND_BYTES = 32 * 2 ** 20;

function checkInput(input: EvidenceInput): void {
  if (typeof input !== 'object' || input === null || !(input.report instanceof Uint8Array))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'input.report must be a Uint8Array');
  if (input.vek !== undefined && !(input.vek instanceof Uint8Array))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'input.vek must be a Uint8Array (DER)');
}

/** Own copies of a list of DER anchors; anything else is passed on for the format to refuse. */
function copyAnchors(list: unknown): Uint8Array[] | undefined {
  if (list === undefined) return undefined;
  if (Array.isArray(list) && list.every((d) => d instanceof Uint8Array))
    return list.map((d: Uint8Array) => new Uint8Array(d));
  return list as Uint8Array[];
}

const fingerprints = (list: Uint8Array[] | undefined) =>
  Array.isArray(list)
    ? Object.freeze(
        list.map((d) => (d instanceof Uint8Array ? createHash('sha256').update(d).digest('hex') : '?')),
      )
    : undefined;

/** Options of one call given to the Verifier, or the reverse: refused, never silently dropped. */
function misplaced(options: object, keys: readonly string[], where: string): void {
  const key = keys.find(
    (k) => Object.hasOwn(options, k) && (options as Record<string, unknown>)[k] !== undefined,
  );
  if (key !== undefined)
    throw new AttestationError('ERR_INVALID_ARGUMENT', `${key} belongs to ${where}, not here`, {
      details: { field: key },
    });
}

export function createVerifier(options: VerifierOptions = {}): Verifier {
  if (typeof options !== 'object' || options === null)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'createVerifier options must be an object');
  // A policy given here would otherwise be ignored: a Verifier that accepts more than meant.
  misplaced(options, ['policy', 'now', 'check', 'signal', 'verifier'], 'verifier.verify()');
  const anchors = options.trustAnchors;
  if (anchors !== undefined && anchors !== null && typeof anchors !== 'object')
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'trustAnchors must be an object');
  const amdArks = copyAnchors(anchors?.amdArks);
  const intelRoots = copyAnchors(anchors?.intelRoots);
  const certs = new Lru<string, ParsedCert>(CERTIFICATE_CACHE_SIZE);
  const settings: FormatSettings = {
    ...(amdArks !== undefined ? { amdArks } : {}),
    ...(intelRoots !== undefined ? { intelRoots } : {}),
    offline: options.offline === true,
    ...(options.kds !== undefined ? { kds: options.kds } : {}),
    ...(options.pcs !== undefined ? { pcs: options.pcs } : {}),
    certs,
  };
  const formats = new Map<EvidenceFormat, FormatVerifier>(
    FORMATS.map((f) => [f.name, f.createVerifier(settings)]),
  );
  const amdPrints = fingerprints(amdArks);
  const intelPrints = fingerprints(intelRoots);

  async function verify(input: EvidenceInput, call: VerifierCallOptions = {}): Promise<Claims> {
    checkInput(input);
    if (typeof call !== 'object' || call === null)
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'verify options must be an object');
    // Anchors given here would otherwise be ignored: this Verifier's own would decide.
    misplaced(call, ['trustAnchors', 'offline', 'kds', 'pcs', 'verifier'], 'createVerifier()');
    if (call.now !== undefined && !(call.now instanceof Date && Number.isFinite(call.now.getTime())))
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'options.now must be a valid Date');
    const policy = parsePolicy(call.policy);
    call.signal?.throwIfAborted();
    const format = formatOf(input.report);
    if (!format)
      throw new AttestationError(
        'ERR_EVIDENCE_MALFORMED',
        `evidence is neither an SNP report (${SNP_REPORT_LENGTH} bytes) nor a TDX quote (${input.report.length} bytes)`,
      );
    // Before any signature or collateral work: a format the policy does not name is refused as
    // such, and costs no fetch. appraiseClaims() checks it again on the verified claims.
    checkFormat(format.name, policy);
    const claims = await formats.get(format.name)!.verify(input, {
      policy,
      now: call.now ?? new Date(),
      ...(call.signal ? { signal: call.signal } : {}),
    });
    if (call.check) {
      let verdict: boolean | undefined;
      try {
        verdict = await call.check(claims);
      } catch (err) {
        throw asAttestationError(err, 'ERR_EVIDENCE_POLICY', 'check() refused the evidence');
      }
      if (verdict === false)
        throw new AttestationError('ERR_EVIDENCE_POLICY', 'check() refused the evidence');
    }
    return claims;
  }

  function stats(): VerifierStats {
    const out: VerifierStats = { certificates: certs.stats() };
    for (const [name, f] of formats)
      for (const [cache, lru] of Object.entries(f.caches)) out[`${name}.${cache}`] = lru.stats();
    return out;
  }

  return Object.freeze({
    verify,
    stats,
    anchors: Object.freeze({
      ...(amdPrints ? { amdArks: amdPrints } : {}),
      ...(intelPrints ? { intelRoots: intelPrints } : {}),
    }),
  });
}
