/**
 * verifyEvidence(): the one-call entry point, a thin wrapper over a Verifier (verifier.ts). With
 * `options.verifier` it is that Verifier's verify(); without, it uses a default Verifier for the
 * options' trust anchors, offline flag and collateral settings.
 *
 * The default Verifiers are the one piece of module-level state the verifiers keep (the allowlist
 * of test/architecture/module-state.test.ts): at most DEFAULT_VERIFIERS of them, least recently used
 * dropped first, each found by content — the anchors' bytes, `offline`, the KDS/PCS settings —
 * so a caller that edits its anchor list in place gets the Verifier of the new list. A KDS/PCS
 * client instance is state, not settings: Verifiers are only shared by callers passing that
 * same instance.
 */
import { AttestationError, atBoundary, optionsArg } from '../errors.js';
import { hclFormatOf, parseHclReport } from './azure/hcl.js';
import type { AzureClaims, AzureEvidenceInput, AzureVerifyOptions } from './azure/verify.js';
import { bytesToHex, equalBytes } from './bytes.js';
import { detectFormat, reportDataOf } from './formats.js';
import type {
  Claims,
  CollateralClient,
  CollateralFetchOptions,
  EvidenceInput,
  Verifier,
  VerifyOptions,
} from './types.js';
import { checkCall, checkInput, checkVerifierOptions, createVerifier } from './verifier.js';

export { detectFormat, reportDataOf };

export const SNP_REPORT_SIZE = 0x4a0;

/** The most default Verifiers kept (each bounded as docs/api.md says). */
export const DEFAULT_VERIFIERS = 8;

interface DefaultVerifier {
  settings: string;
  kds: CollateralClient | undefined;
  pcs: CollateralClient | undefined;
  amdArks: Uint8Array[] | undefined;
  intelRoots: Uint8Array[] | undefined;
  verifier: Verifier;
}

/** Most recently used first. */
const defaultVerifiers: DefaultVerifier[] = [];

const isClient = (x: unknown): x is CollateralClient => typeof x === 'object' && x !== null && 'kind' in x;

function settingsOf(x: CollateralFetchOptions | CollateralClient | undefined): unknown {
  if (x === undefined || isClient(x)) return null;
  if (typeof x !== 'object' || x === null) return String(x);
  return Object.entries(x)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : 1));
}

function sameList(kept: Uint8Array[] | undefined, given: Uint8Array[] | undefined): boolean {
  if (kept === undefined || given === undefined) return kept === given;
  if (kept.length !== given.length) return false;
  for (let i = 0; i < kept.length; i++) if (!equalBytes(kept[i]!, given[i]!)) return false;
  return true;
}

/** The settings text of options without fetch settings (the common case), made once. */
const PLAIN_SETTINGS: readonly string[] = Object.freeze(
  [false, true].map((offline) => JSON.stringify([offline, null, null])),
);

function defaultVerifier(options: VerifyOptions): Verifier {
  const { trustAnchors, offline, kds, pcs } = options;
  const amdArks = trustAnchors?.amdArks;
  const intelRoots = trustAnchors?.intelRoots;
  // Every verifyEvidence() call comes here: a client or no settings at all (settingsOf gives
  // null for both) skips the JSON text of the settings.
  const plain = (kds === undefined || isClient(kds)) && (pcs === undefined || isClient(pcs));
  const settings = plain
    ? PLAIN_SETTINGS[offline === true ? 1 : 0]!
    : JSON.stringify([offline === true, settingsOf(kds), settingsOf(pcs)]);
  const kdsClient = isClient(kds) ? kds : undefined;
  const pcsClient = isClient(pcs) ? pcs : undefined;
  // checkVerifierOptions() let only lists of bytes through: they are compared by content. The
  // most recently used entry first, as it is the one a caller verifying with fixed options
  // finds (no closure, no splice).
  let i = 0;
  for (; i < defaultVerifiers.length; i++) {
    const e = defaultVerifiers[i]!;
    if (
      e.settings === settings &&
      e.kds === kdsClient &&
      e.pcs === pcsClient &&
      sameList(e.amdArks, amdArks as Uint8Array[] | undefined) &&
      sameList(e.intelRoots, intelRoots as Uint8Array[] | undefined)
    )
      break;
  }
  if (i < defaultVerifiers.length) {
    const hit = defaultVerifiers[i]!;
    if (i > 0) {
      defaultVerifiers.splice(i, 1);
      defaultVerifiers.unshift(hit);
    }
    return hit.verifier;
  }
  const verifier = createVerifier({
    ...(trustAnchors !== undefined ? { trustAnchors } : {}),
    ...(offline !== undefined ? { offline } : {}),
    ...(kds !== undefined ? { kds } : {}),
    ...(pcs !== undefined ? { pcs } : {}),
  });
  const copy = (l: unknown) =>
    l === undefined ? undefined : (l as Uint8Array[]).map((d) => new Uint8Array(d));
  defaultVerifiers.unshift({
    settings,
    kds: kdsClient,
    pcs: pcsClient,
    amdArks: copy(amdArks),
    intelRoots: copy(intelRoots),
    verifier,
  });
  if (defaultVerifiers.length > DEFAULT_VERIFIERS) defaultVerifiers.pop();
  return verifier;
}

/**
 * The Verifier that `options` name: `options.verifier` (with none of the settings that belong to
 * it beside it), or the default Verifier for their trust anchors, offline flag and collateral
 * settings. For verifiers of formats built on SNP or TDX evidence (azure/verify.ts).
 */
export function verifierFor(options: VerifyOptions): Verifier {
  if (typeof options !== 'object' || options === null)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'options must be an object');
  checkVerifierOptions(options);
  const { verifier, trustAnchors, offline, kds, pcs } = options;
  if (verifier !== undefined) {
    if (typeof verifier !== 'object' || verifier === null || typeof verifier.verify !== 'function')
      throw new AttestationError(
        'ERR_INVALID_ARGUMENT',
        'options.verifier must be a Verifier (createVerifier)',
      );
    const own = { trustAnchors, offline, kds, pcs };
    const clash = Object.entries(own).find(([, v]) => v !== undefined)?.[0];
    if (clash)
      throw new AttestationError(
        'ERR_INVALID_ARGUMENT',
        `options.${clash} belongs to the Verifier: give it to createVerifier() instead`,
      );
  }
  return verifier ?? defaultVerifier(options);
}

/** How many default Verifiers are kept now (tests: the registry stays within DEFAULT_VERIFIERS). */
export function defaultVerifierCount(): number {
  return defaultVerifiers.length;
}

/**
 * Only AttestationError leaves: an abort of `signal` is ERR_ABORTED whatever threw it, and an
 * error that is neither (a bug) is ERR_INTERNAL with its cause rather than a verdict on the evidence.
 */
export async function verifyEvidence(input: EvidenceInput, options?: VerifyOptions): Promise<Claims> {
  const opts = optionsArg(options, 'verifyEvidence');
  try {
    checkInput(input);
    checkCall(opts, 'verifyEvidence');
    const verifier = verifierFor(opts);
    const { policy, now, signal, check, vtpmRoots, endorsementRoot, expectedAk } = opts;
    return await verifier.verify(input, {
      ...(policy !== undefined ? { policy } : {}),
      ...(now !== undefined ? { now } : {}),
      ...(vtpmRoots !== undefined ? { vtpmRoots } : {}),
      ...(endorsementRoot !== undefined ? { endorsementRoot } : {}),
      ...(signal !== undefined ? { signal } : {}),
      ...(check !== undefined ? { check } : {}),
      ...(expectedAk !== undefined ? { expectedAk } : {}),
    });
  } catch (err) {
    throw atBoundary(err, opts.signal instanceof AbortSignal ? opts.signal : undefined, 'verifyEvidence');
  }
}

/**
 * verifyAzure() as the package exports it: the arguments checked as verifyEvidence() checks them
 * (`now` required), and the evidence verified by the options' Verifier (`options.verifier`, or the
 * default one for the options' settings) exactly as verifyEvidence() does, with that Verifier's
 * caches (the runtime claims among them); only AttestationError leaves.
 */
export async function verifyAzure(
  input: AzureEvidenceInput,
  options: AzureVerifyOptions,
): Promise<AzureClaims> {
  const opts = optionsArg(options, 'verifyAzure') as AzureVerifyOptions;
  try {
    checkInput(input);
    checkCall(opts, 'verifyAzure');
    if (!(opts.now instanceof Date))
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'verifyAzure: options.now must be a valid Date');
    const expected = opts.expectedExtraData;
    if (expected !== undefined && !(expected instanceof Uint8Array))
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'options.expectedExtraData must be a Uint8Array');
    // Only an HCL report: other evidence would otherwise be verified as what it is.
    if (hclFormatOf(input.report) === undefined) parseHclReport(input.report);
    const verifier = verifierFor(opts);
    const { policy, now, signal, check, vtpmRoots, expectedAk } = opts;
    const nonce = expected === undefined ? undefined : bytesToHex(expected);
    return (await verifier.verify(input, {
      ...(policy !== undefined ? { policy } : {}),
      now,
      ...(vtpmRoots !== undefined ? { vtpmRoots } : {}),
      ...(signal !== undefined ? { signal } : {}),
      ...(expectedAk !== undefined ? { expectedAk } : {}),
      // The nonce before the caller's own check, which then sees only claims made for it.
      ...(nonce !== undefined || check !== undefined
        ? {
            check: (claims: Claims) => {
              const extraData = (claims as AzureClaims).tpm.extraData;
              if (nonce !== undefined && extraData !== nonce)
                throw new AttestationError(
                  'ERR_BINDING_MISMATCH',
                  'the TPM quote extraData is not the expected nonce',
                  { details: { extraData } },
                );
              return check ? check(claims) : true;
            },
          }
        : {}),
    })) as AzureClaims;
  } catch (err) {
    throw atBoundary(err, opts.signal instanceof AbortSignal ? opts.signal : undefined, 'verifyAzure');
  }
}
