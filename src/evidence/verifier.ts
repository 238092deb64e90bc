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
 *   sev-snp.signatures 1024  report signatures that verified, by r ‖ s, with copies of the VEK's
 *                          SPKI and the signed bytes (~1.1 KB each; snp/verify.ts, verdicts.ts)
 *   tdx.chains        128  PCK chains by their PEM text, with the verified chain (tdx/verify.ts)
 *   tdx.collateral     32  collateral by JSON text / verified collateral by digest (tdx/collateral.ts)
 *   tdx.keys          256  attestation keys with their last vouched-for QE report (tdx/verify.ts)
 *   tdx.signatures   1024  quote signatures that verified, by the signature, with copies of the
 *                          attestation key and signed bytes (~0.9 KB each; tdx/verify.ts, verdicts.ts)
 *   azure-*.runtimeClaims  64  parsed runtime claims by SHA-256 of their JSON bytes (azure/verify.ts)
 *   azure-*.aks       256  imported HCLAkPub keys by the JWK's n and e text (azure/verify.ts)
 *   sev-snp.kds,      256  the KDS / PCS clients' fetched responses by URL (fetch.ts; maxEntries)
 *   tdx.pcs
 *   reuse.evidence    128  per peer TLS key, the evidence last verified for it (reuse.ts; only
 *                          with a policy's reuse.maxEvidenceAge, at most 64 KiB each)
 *   policies           16  parsed policies by their JSON text (policy-memo.ts; up to 16 KiB each)
 *   channel.chains      8  the chain texts of peers' CMW evidence by their exact base64url text
 *                          (challenger.ts; up to 16 KiB of base64url each)
 *
 * so a Verifier holds at most VERIFIER_MEMORY_BOUND_BYTES however many distinct reports it sees
 * (bench/verifier.ts measures one after 100 000). Every verdict taken from a cache is checked
 * again at `now`; a signature verdict depends on no time, only on the bytes it compares.
 */
import { createHash, KeyObject } from 'node:crypto';
import { AttestationError, asAttestationError, atBoundary, optionsArg, signalArg } from '../errors.js';
import { checkFormat } from './appraise.js';
import { attachBoot, bootSectionFor } from './boot.js';
import { CHALLENGER_STATE, ChallengerState } from './challenger.js';
import type { FormatCall, FormatSettings, FormatVerifier } from './format.js';
import { FORMATS, formatOf } from './formats.js';
import {
  appraiseEndorsement,
  checkEndorsementRoot,
  type EndorsementRoot,
  endorsementClaims,
} from './gce/launch.js';
import { type GceVtpmRoots, verifyGceVtpm } from './gce/vtpm.js';
import { Lru } from './lru.js';
import type { BootPolicy, Policy } from './policy.js';
import { POLICY_MEMO, PolicyMemo } from './policy-memo.js';
import { EVIDENCE_MEMORY, EvidenceMemory } from './reuse.js';
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
import { toDerList } from './x509/pem.js';

/** Size of the certificate cache every format of a Verifier shares. */
export const CERTIFICATE_CACHE_SIZE = 256;

/**
 * The most memory (V8 heap and buffers) one Verifier retains with every cache full, whatever
 * it has seen, besides its collateral clients' memory caches (maxEntries responses of the KDS or
 * PCS it was pointed at, not of the peer): what the bench row "verifier memory" holds it to (docs/api.md gives the figures).
 */
export const VERIFIER_MEMORY_BOUND_BYTES = 32 * 2 ** 20;

function isBytes(v: unknown): boolean {
  return v instanceof Uint8Array;
}

/** The shape of an EvidenceInput (what is in it is the format's to judge). */
export function checkInput(input: EvidenceInput): void {
  if (typeof input !== 'object' || input === null || !isBytes(input.report))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'input.report must be a Uint8Array');
  if (input.vek !== undefined && !isBytes(input.vek))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'input.vek must be a Uint8Array (DER)');
  const chain: unknown = input.chain;
  if (
    chain !== undefined &&
    typeof chain !== 'string' &&
    !isBytes(chain) &&
    !(Array.isArray(chain) && chain.every((c) => typeof c === 'string' || isBytes(c)))
  )
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      'input.chain must be a PEM string, a Uint8Array or an array of them',
    );
  const collateral: unknown = input.collateral;
  if (
    collateral !== undefined &&
    typeof collateral !== 'string' &&
    (typeof collateral !== 'object' || collateral === null || Array.isArray(collateral))
  )
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'input.collateral must be an object or its JSON text');
  const tpm: unknown = input.tpm;
  if (tpm !== undefined) {
    const t = tpm as Record<string, unknown>;
    if (typeof tpm !== 'object' || tpm === null || !isBytes(t.quote) || !isBytes(t.signature))
      throw new AttestationError(
        'ERR_INVALID_ARGUMENT',
        'input.tpm must be { quote: Uint8Array, signature: Uint8Array, pcrs: object }',
      );
    if (typeof t.pcrs !== 'object' || t.pcrs === null || Array.isArray(t.pcrs))
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'input.tpm.pcrs must be an object of PCR banks');
  }
  if (input.tdQuote !== undefined && !isBytes(input.tdQuote))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'input.tdQuote must be a Uint8Array');
  if (input.eventLog !== undefined && !isBytes(input.eventLog?.log))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'input.eventLog.log must be a Uint8Array');
  if (input.launchEndorsement !== undefined && !isBytes(input.launchEndorsement))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'input.launchEndorsement must be a Uint8Array');
}

/**
 * Measured boot and Google's vTPM beside a verified raw report (boot.ts, gce/vtpm.ts). Without a
 * vTPM the policy's boot section applies to the one log (a CCEL against RTMR0-3). With one, each
 * log is checked against its own registers — the CCEL against the quote's RTMRs (`claims.boot`),
 * the vTPM's log against the quoted PCRs (`claims.vtpm.boot`) — and the section is split between
 * them (bootSectionFor): `rtmrs` binds the CCEL, `pcrs` the vTPM log, what single events say
 * binds each log there is. The gce section needs the vTPM's AK certificate: the raw report
 * carries no instance identity.
 */
function attachMeasuredBoot(
  claims: Claims,
  input: EvidenceInput,
  policy: Policy,
  options: { now: Date; vtpmRoots?: GceVtpmRoots | undefined },
): void {
  const registers = () =>
    claims.format === 'tdx' ? { rtmrs: [claims.rtmr0, claims.rtmr1, claims.rtmr2, claims.rtmr3] } : undefined;
  if (input.vtpm === undefined) {
    // A format that checks its log itself (Azure: against the quoted PCRs) has set claims.boot.
    if (claims.boot === undefined) attachBoot(claims, input.eventLog, policy.boot, registers);
    if (policy.gce !== undefined)
      throw new AttestationError(
        'ERR_EVIDENCE_POLICY',
        'policy gce: the policy names Google Cloud instances, but the evidence has no vTPM AK certificate',
        { details: { field: 'gce' } },
      );
    return;
  }
  const section = policy.boot;
  if (section !== undefined && input.eventLog === undefined && input.vtpm.eventLog === undefined)
    throw new AttestationError(
      'ERR_EVIDENCE_POLICY',
      'policy boot: the policy has a boot section, but the evidence carries no event log',
      { details: { field: 'boot' } },
    );
  // acceptAnomalies alone checks nothing, but says how each log's single events are read.
  const only = (log: unknown, part: BootPolicy | undefined): BootPolicy | undefined =>
    part ??
    (log !== undefined && section?.acceptAnomalies
      ? { acceptAnomalies: section.acceptAnomalies }
      : undefined);
  const ccelSection = bootSectionFor(section, 'ccel');
  if (input.eventLog === undefined && ccelSection?.rtmrs !== undefined)
    throw new AttestationError(
      'ERR_EVIDENCE_POLICY',
      'policy boot.rtmrs: the evidence carries no CCEL event log (the vTPM log explains PCRs, not RTMRs)',
      { details: { field: 'boot.rtmrs' } },
    );
  // Without a CCEL, the single-event pins are the vTPM log's alone.
  attachBoot(
    claims,
    input.eventLog,
    input.eventLog !== undefined ? only(input.eventLog, ccelSection) : undefined,
    registers,
  );
  const boot = only(input.vtpm.eventLog, bootSectionFor(section, 'tpm'));
  const roots = options.vtpmRoots;
  claims.vtpm = verifyGceVtpm(input.vtpm, {
    now: options.now,
    policy: { ...(boot ? { boot } : {}), ...(policy.gce ? { gce: policy.gce } : {}) },
    ...(roots ? { roots } : {}),
  });
}

/** The options of one verification: `now`, `signal`, `check`. */
export function checkCall(call: VerifierCallOptions, who: string): void {
  if (call.now !== undefined && !(call.now instanceof Date && Number.isFinite(call.now.getTime())))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'options.now must be a valid Date');
  signalArg(call.signal, who);
  if (call.check !== undefined && typeof call.check !== 'function')
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'options.check must be a function');
  if (
    call.expectedAk !== undefined &&
    !(call.expectedAk instanceof KeyObject && call.expectedAk.type !== 'secret')
  )
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      'options.expectedAk must be a public or private KeyObject',
    );
  if (call.offload !== undefined && typeof call.offload !== 'boolean')
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'options.offload must be a boolean');
}

/** The Verifier's own options: `offline`, `trustAnchors`, `kds`, `pcs`. */
export function checkVerifierOptions(options: VerifierOptions): void {
  if (options.offline !== undefined && typeof options.offline !== 'boolean')
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'options.offline must be a boolean');
  const anchors: unknown = options.trustAnchors;
  if (anchors !== undefined) {
    if (typeof anchors !== 'object' || anchors === null)
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'options.trustAnchors must be an object');
    for (const key of ['amdArks', 'intelRoots'] as const) {
      const list: unknown = (anchors as Record<string, unknown>)[key];
      if (list !== undefined && !(Array.isArray(list) && list.every(isBytes)))
        throw new AttestationError(
          'ERR_INVALID_ARGUMENT',
          `options.trustAnchors.${key} must be an array of Uint8Array`,
        );
    }
  }
  checkVtpmRoots(options.vtpmRoots);
  checkEndorsementRoot(options.endorsementRoot);
  for (const key of ['kds', 'pcs'] as const) {
    const client: unknown = options[key];
    if (client !== undefined && (typeof client !== 'object' || client === null))
      throw new AttestationError('ERR_INVALID_ARGUMENT', `options.${key} must be an object`);
  }
}

/** `vtpmRoots`, of a Verifier or of one call: `{ anchors, intermediates? }`, lists of DER or PEM. */
export function checkVtpmRoots(roots: unknown): void {
  if (roots === undefined) return;
  const certList = (l: unknown) => Array.isArray(l) && l.every((c) => typeof c === 'string' || isBytes(c));
  const r = roots as Record<string, unknown>;
  if (
    typeof roots !== 'object' ||
    roots === null ||
    !certList(r.anchors) ||
    (r.anchors as unknown[]).length === 0 ||
    (r.intermediates !== undefined && !certList(r.intermediates))
  )
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      'options.vtpmRoots must be { anchors: [DER|PEM, …], intermediates?: [DER|PEM, …] } with at least one anchor',
    );
}

/** Own copies of vtpmRoots (checkVtpmRoots() let only lists of bytes or strings through). */
function copyVtpmRoots(roots: GceVtpmRoots | undefined): GceVtpmRoots | undefined {
  const copy = (l: Array<Uint8Array | string>) =>
    l.map((c) => (typeof c === 'string' ? c : new Uint8Array(c)));
  return (
    roots && {
      anchors: copy(roots.anchors),
      ...(roots.intermediates ? { intermediates: copy(roots.intermediates) } : {}),
    }
  );
}

/** An own copy of endorsementRoot (checkEndorsementRoot() let only this shape through). */
function copyEndorsementRoot(root: EndorsementRoot | undefined): EndorsementRoot | undefined {
  if (root === undefined) return undefined;
  const certificate =
    typeof root.certificate === 'string' ? root.certificate : new Uint8Array(root.certificate);
  return { certificate, ...(root.sha256 !== undefined ? { sha256: root.sha256 } : {}) };
}

/** Own copies of a list of DER anchors (checkVerifierOptions() let only such lists through). */
function copyAnchors(list: Uint8Array[] | undefined): Uint8Array[] | undefined {
  return list?.map((d) => new Uint8Array(d));
}

const fingerprints = (list: Uint8Array[] | undefined) =>
  list && Object.freeze(list.map((d) => createHash('sha256').update(d).digest('hex')));

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

export function createVerifier(options?: VerifierOptions): Verifier {
  try {
    return create(optionsArg(options, 'createVerifier'));
  } catch (err) {
    throw atBoundary(err, undefined, 'createVerifier');
  }
}

function create(options: VerifierOptions): Verifier {
  // A policy given here would otherwise be ignored: a Verifier that accepts more than meant.
  misplaced(options, ['policy', 'now', 'check', 'signal', 'verifier'], 'verifier.verify()');
  checkVerifierOptions(options);
  const anchors = options.trustAnchors;
  const amdArks = copyAnchors(anchors?.amdArks);
  const intelRoots = copyAnchors(anchors?.intelRoots);
  const vtpmRoots = copyVtpmRoots(options.vtpmRoots);
  const endorsementRoot = copyEndorsementRoot(options.endorsementRoot);
  const certs = new Lru<string, ParsedCert>(CERTIFICATE_CACHE_SIZE);
  const memory = new EvidenceMemory();
  const challenger = new ChallengerState();
  const policies = new PolicyMemo();
  const settings: FormatSettings = {
    ...(amdArks !== undefined ? { amdArks } : {}),
    ...(intelRoots !== undefined ? { intelRoots } : {}),
    offline: options.offline === true,
    ...(options.kds !== undefined ? { kds: options.kds } : {}),
    ...(options.pcs !== undefined ? { pcs: options.pcs } : {}),
    certs,
    // Read at verification time, after the map below is filled.
    formatVerifier: (name) => formats.get(name)!,
  };
  const formats: Map<EvidenceFormat, FormatVerifier> = new Map(
    FORMATS.map((f) => [f.name, f.createVerifier(settings)]),
  );
  const amdPrints = fingerprints(amdArks);
  const intelPrints = fingerprints(intelRoots);
  const vtpmPrints =
    vtpmRoots && fingerprints(vtpmRoots.anchors.flatMap((c) => toDerList(c, 'ERR_INVALID_ARGUMENT')));

  /**
   * Only AttestationError leaves: an abort of `signal` is ERR_ABORTED whatever threw it, and an
   * error that is neither (a bug) is ERR_INTERNAL with its cause, not a verdict on the evidence.
   */
  async function verify(input: EvidenceInput, options?: VerifierCallOptions): Promise<Claims> {
    const call = optionsArg(options, 'verifier.verify');
    try {
      return await verifyChecked(input, call);
    } catch (err) {
      throw atBoundary(err, call.signal instanceof AbortSignal ? call.signal : undefined, 'verifier.verify');
    }
  }

  async function verifyChecked(input: EvidenceInput, call: VerifierCallOptions): Promise<Claims> {
    checkInput(input);
    // Anchors given here would otherwise be ignored: this Verifier's own would decide.
    misplaced(call, ['trustAnchors', 'offline', 'kds', 'pcs', 'verifier'], 'createVerifier()');
    checkCall(call, 'verifier.verify');
    checkVtpmRoots(call.vtpmRoots);
    checkEndorsementRoot(call.endorsementRoot);
    const policy = policies.parse(call.policy);
    if (call.signal?.aborted)
      throw new AttestationError('ERR_ABORTED', 'verification aborted', { cause: call.signal.reason });
    const format = formatOf(input.report);
    if (!format)
      throw new AttestationError(
        'ERR_EVIDENCE_MALFORMED',
        `evidence is neither an SNP report (${SNP_REPORT_LENGTH} bytes) nor a TDX quote (${input.report.length} bytes)`,
      );
    // Before any signature or collateral work: a format the policy does not name is refused as
    // such, and costs no fetch. appraiseClaims() checks it again on the verified claims.
    checkFormat(format.name, policy);
    const now = call.now ?? new Date();
    // Built by assignment: conditional spreads cost a temporary object each, on every verification.
    const formatCall: FormatCall = { policy, now };
    if (call.signal) formatCall.signal = call.signal;
    if (call.expectedAk) formatCall.expectedAk = call.expectedAk;
    if (call.offload) formatCall.offload = true;
    const claims = await formats.get(format.name)!.verify(input, formatCall);
    // A call's vtpmRoots replace the Verifier's (nothing verified under them is cached).
    attachMeasuredBoot(claims, input, policy, { now, vtpmRoots: call.vtpmRoots ?? vtpmRoots });
    // Google's launch endorsement, under the call's root or the Verifier's (nothing is cached).
    if (input.launchEndorsement !== undefined)
      claims.endorsement = endorsementClaims(
        input.launchEndorsement,
        claims,
        call.endorsementRoot ?? endorsementRoot,
        now,
      );
    appraiseEndorsement(claims.endorsement, policy.endorsement);
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
    out['reuse.evidence'] = memory.lru.stats();
    out.policies = policies.lru.stats();
    out['channel.chains'] = challenger.chains.stats();
    return out;
  }

  return Object.freeze({
    verify,
    stats,
    [EVIDENCE_MEMORY]: memory,
    [CHALLENGER_STATE]: challenger,
    [POLICY_MEMO]: policies,
    anchors: Object.freeze({
      ...(amdPrints ? { amdArks: amdPrints } : {}),
      ...(intelPrints ? { intelRoots: intelPrints } : {}),
      ...(vtpmPrints ? { vtpmRoots: vtpmPrints } : {}),
    }),
  });
}
