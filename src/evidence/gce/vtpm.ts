/**
 * Google Cloud vTPM evidence (format "gce-vtpm", issue 13): a TPM 2.0 quote by the vTPM's
 * attestation key, the AK certificate Google's EK/AK CA issued for that key, and optionally the
 * firmware event log. Trust chain: pinned Google root → intermediate → AK certificate (with the
 * instance identity in extension 1.3.6.1.4.1.11129.2.1.21) → the AK's quote over the PCRs and
 * the verifier's nonce → the log, replayed to the quoted PCRs.
 *
 * The vTPM runs in Google's host, outside the TEE: this vouches for what booted in the VM as far
 * as Google's vTPM and CA are trusted, and for which instance it is; the hardware report (raw
 * SNP/TDX on Google Cloud) is separate evidence (docs/trust-model.md).
 *
 * The chain rules: go-tpm-tools server/verify.go accepts AK certificates under Google's EK/AK
 * roots with one intermediate; the AK certificate is a leaf with digitalSignature (as the fixture
 * has it, test/fixtures/gce-vtpm/).
 */
import { createHash } from 'node:crypto';
import { AttestationError } from '../../errors.js';
import { appraiseBoot, type BootClaims, bootClaims, bootPinned, type EventLogInput } from '../boot.js';
import { bytesToHex, equalBytes } from '../bytes.js';
import type { AnomalyKind } from '../eventlog/index.js';
import { type GcePolicy, type Policy, parsePolicy } from '../policy.js';
import { parseTpmsAttest, parseTpmtSignature } from '../tpm/attest.js';
import { akFromTpmPublic, type PcrValues, type TpmQuoteClaims, verifyTpmQuote } from '../tpm/quote.js';
import { isSignedBy, OID, type ParsedCert, parseCertificate } from '../x509/cert.js';
import { type ChainProfile, verifyChain } from '../x509/chain.js';
import { readChildren, readTlv } from '../x509/der.js';
import { toDerList } from '../x509/pem.js';
import { GOOGLE_VTPM_INTERMEDIATES, GOOGLE_VTPM_ROOTS } from './vtpm-roots.js';

/** The GCE instance-identity extension of AK certificates. */
export const GCE_INSTANCE_INFO_OID = '1.3.6.1.4.1.11129.2.1.21';

export interface GceVtpmInput {
  /** The AK certificate (DER or PEM), as read from the vTPM's NV index. */
  akCert: Uint8Array | string;
  /** The AK's TPMT_PUBLIC, when the attester sends it: it must be the certificate's key. */
  akPublic?: Uint8Array;
  tpm: {
    /** TPMS_ATTEST bytes. */
    quote: Uint8Array;
    /** Marshalled TPMT_SIGNATURE. */
    signature: Uint8Array;
    /** The values of the PCRs the quote selects, `{"sha256": {"0": hex, …}}`. */
    pcrs: PcrValues;
  };
  /** The firmware event log (binary_bios_measurements): replayed to the quoted PCRs. */
  eventLog?: EventLogInput;
}

/** Roots that replace Google's pinned ones (`--tpm-roots`): anchors and candidate intermediates. */
export interface GceVtpmRoots {
  /** Self-signed CA certificates to trust (DER or PEM). */
  anchors: Array<Uint8Array | string>;
  /** Candidate intermediates (DER or PEM). */
  intermediates?: Array<Uint8Array | string>;
}

export interface GceVtpmVerifyOptions {
  now: Date;
  /** The policy: its `gce` and `boot` sections apply. */
  policy?: Policy;
  /** Replace Google's pinned EK/AK CA roots (tests, a private CA). */
  roots?: GceVtpmRoots;
  /** The quote's extraData must be these bytes (the verifier's nonce); ERR_BINDING_MISMATCH otherwise. */
  expectedExtraData?: Uint8Array;
}

/** The GCE instance identity from the AK certificate (extension 1.3.6.1.4.1.11129.2.1.21). */
export interface GceInstanceInfo {
  zone: string;
  /** Decimal. */
  projectNumber: string;
  projectId: string;
  /** Decimal (a 64-bit number). */
  instanceId: string;
  instanceName: string;
  /** From the extension's security properties: the vTPM's security version and production flag. */
  securityVersion?: number;
  isProduction?: boolean;
}

export interface GceVtpmClaims {
  format: 'gce-vtpm';
  /** Whether the policy pins what booted (boot pins); instance pins (`gce`) are not workload pins. */
  workloadPinned: boolean;
  tpm: TpmQuoteClaims;
  gce: GceInstanceInfo;
  akCertificate: { serial: string; issuer: string; notBefore: string; notAfter: string; rootSha256: string };
  boot?: BootClaims;
}

function malformed(message: string): AttestationError {
  return new AttestationError('ERR_EVIDENCE_MALFORMED', message);
}

function utf8(tlv: { tag: number; value: Uint8Array }, what: string): string {
  // UTF8String (12), PrintableString (19), IA5String (22).
  if (tlv.tag !== 0x0c && tlv.tag !== 0x13 && tlv.tag !== 0x16)
    throw malformed(`GCE instance info: ${what} is not a string`);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(tlv.value);
  } catch {
    throw malformed(`GCE instance info: ${what} is not UTF-8`);
  }
}

function uintText(tlv: { tag: number; value: Uint8Array }, what: string): string {
  if (tlv.tag !== 0x02 || tlv.value.length === 0 || tlv.value.length > 9 || (tlv.value[0]! & 0x80) !== 0)
    throw malformed(`GCE instance info: ${what} is not a non-negative INTEGER of at most 64 bits`);
  let n = 0n;
  for (const b of tlv.value) n = n * 256n + BigInt(b);
  return n.toString();
}

/**
 * Parses the instance-identity extension: SEQUENCE { zone UTF8String, projectNumber INTEGER,
 * projectId UTF8String, instanceId INTEGER, instanceName UTF8String, [0] security properties
 * (optional: [0] securityVersion INTEGER, [1] isProduction BOOLEAN, further flags) }, the layout
 * go-tpm-tools' server package reads (its gceInstanceInfo type) and the fixture's certificate has.
 */
export function parseGceInstanceInfo(ext: Uint8Array): GceInstanceInfo {
  if (!(ext instanceof Uint8Array))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'parseGceInstanceInfo: expected a Uint8Array');
  const seq = readTlv(ext);
  if (seq.tag !== 0x30 || seq.end !== ext.length) throw malformed('GCE instance info: not one SEQUENCE');
  const f = readChildren(seq.value);
  if (f.length < 5) throw malformed('GCE instance info: fewer than five fields');
  const out: GceInstanceInfo = {
    zone: utf8(f[0]!, 'zone'),
    projectNumber: uintText(f[1]!, 'projectNumber'),
    projectId: utf8(f[2]!, 'projectId'),
    instanceId: uintText(f[3]!, 'instanceId'),
    instanceName: utf8(f[4]!, 'instanceName'),
  };
  const props = f[5];
  if (props !== undefined) {
    if (props.tag !== 0xa0) throw malformed('GCE instance info: unexpected field after instanceName');
    const inner = readTlv(props.value);
    if (inner.tag !== 0x30) throw malformed('GCE instance info: security properties are not a SEQUENCE');
    for (const p of readChildren(inner.value)) {
      const v = readTlv(p.value);
      if (p.tag === 0xa0 && v.tag === 0x02 && v.value.length <= 4) {
        let n = 0;
        for (const b of v.value) n = n * 256 + b;
        out.securityVersion = n;
      } else if (p.tag === 0xa1 && v.tag === 0x01 && v.value.length === 1)
        out.isProduction = v.value[0] !== 0;
    }
  }
  return out;
}

/** The chain-engine profile: AK certificate ← intermediate ← pinned root. */
function vtpmProfile(anchors: ParsedCert[]): ChainProfile {
  return {
    name: 'Google vTPM AK certificate chain',
    signatureAlgorithms: [OID.rsaSha256, OID.rsaSha384, OID.ecdsaSha256, OID.ecdsaSha384],
    canonicalDer: true,
    matchingAlgorithms: true,
    rootName: 'Google vTPM EK/AK CA root',
    anchors,
    path: [
      { what: 'AK certificate', ca: false, keyUsage: ['digitalSignature'] },
      { what: 'EK/AK CA intermediate', ca: true, keyUsage: ['keyCertSign'] },
      { what: 'EK/AK CA root', ca: true, keyUsage: ['keyCertSign'] },
    ],
  };
}

function certs(list: ReadonlyArray<Uint8Array | string>): ParsedCert[] {
  return list
    .flatMap((c) => toDerList(c, 'ERR_INVALID_ARGUMENT'))
    .map((d) => parseCertificate(d, 'ERR_INVALID_ARGUMENT'));
}

function pinnedRoots(): { anchors: ParsedCert[]; intermediates: ParsedCert[] } {
  const load = (c: { der: string; sha256: string; name: string }) => {
    const der = new Uint8Array(Buffer.from(c.der, 'base64'));
    // The pin is the fingerprint; the embedded bytes must be the ones pinned.
    if (createHash('sha256').update(der).digest('hex') !== c.sha256)
      throw new AttestationError(
        'ERR_EVIDENCE_CHAIN',
        `embedded Google vTPM CA ${c.name} is not the pinned one`,
      );
    return parseCertificate(der, 'ERR_EVIDENCE_CHAIN');
  };
  return { anchors: GOOGLE_VTPM_ROOTS.map(load), intermediates: GOOGLE_VTPM_INTERMEDIATES.map(load) };
}

/**
 * Verifies the AK certificate under the roots at `now`: the intermediate is picked from the
 * candidates by issuer name, and the chain engine checks every signature, rule and validity.
 */
export function verifyAkCertificate(
  akCert: Uint8Array | string,
  now: Date,
  roots?: GceVtpmRoots,
): { leaf: ParsedCert; root: ParsedCert } {
  const ders = toDerList(akCert, 'ERR_EVIDENCE_MALFORMED');
  if (ders.length !== 1) throw malformed('the AK certificate must be one certificate');
  const leaf = parseCertificate(ders[0]!, 'ERR_EVIDENCE_MALFORMED');
  const { anchors, intermediates } = roots
    ? { anchors: certs(roots.anchors), intermediates: certs(roots.intermediates ?? []) }
    : pinnedRoots();
  const profile = vtpmProfile(anchors);
  const candidates = intermediates.filter((i) => equalBytes(i.subjectDer, leaf.issuerDer));
  if (candidates.length === 0)
    throw new AttestationError(
      'ERR_EVIDENCE_CHAIN',
      `Google vTPM AK certificate chain: no known intermediate named "${leaf.issuer.CN ?? '?'}" issued the AK certificate`,
    );
  let last: unknown;
  for (const mid of candidates) {
    // The root is left out: the engine tries each pinned anchor in turn.
    try {
      const chain = verifyChain([leaf, mid], { ...profile, rootOptional: true }, now);
      return { leaf, root: chain.root };
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

/**
 * Splits a set of CA certificates (`--tpm-roots DIR`) into roots and intermediates: the
 * self-signed ones are trust anchors, the others candidate intermediates.
 */
export function splitTpmRoots(list: ReadonlyArray<Uint8Array | string>): GceVtpmRoots {
  if (!Array.isArray(list) || !list.every((c) => typeof c === 'string' || c instanceof Uint8Array))
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      'splitTpmRoots: expected a list of DER or PEM certificates',
    );
  const anchors: Uint8Array[] = [];
  const intermediates: Uint8Array[] = [];
  for (const cert of certs(list))
    (equalBytes(cert.issuerDer, cert.subjectDer) && isSignedBy(cert, cert) ? anchors : intermediates).push(
      cert.der,
    );
  return { anchors, intermediates };
}

/** Applies the policy's `gce` section to the instance identity (ERR_EVIDENCE_POLICY). */
export function appraiseGce(gce: GceInstanceInfo, policy: GcePolicy | undefined): void {
  if (!policy) return;
  const check = (field: keyof GcePolicy, got: string) => {
    const allowed = policy[field];
    if (allowed !== undefined && !allowed.includes(got))
      throw new AttestationError('ERR_EVIDENCE_POLICY', `policy gce.${field}: ${got} is not allowed`, {
        details: { field: `gce.${field}`, got },
      });
  };
  check('projectIds', gce.projectId);
  check('instanceIds', gce.instanceId);
  check('zones', gce.zone);
}

function checkInput(input: GceVtpmInput): void {
  const bad = (what: string) => new AttestationError('ERR_INVALID_ARGUMENT', what);
  if (typeof input !== 'object' || input === null) throw bad('input must be an object');
  if (!(input.akCert instanceof Uint8Array) && typeof input.akCert !== 'string')
    throw bad('input.akCert must be a DER Uint8Array or PEM text');
  const tpm = input.tpm;
  if (typeof tpm !== 'object' || tpm === null) throw bad('input.tpm must hold the quote, signature and PCRs');
  if (!(tpm.quote instanceof Uint8Array) || !(tpm.signature instanceof Uint8Array))
    throw bad('input.tpm.quote and input.tpm.signature must be Uint8Arrays');
  if (typeof tpm.pcrs !== 'object' || tpm.pcrs === null) throw bad('input.tpm.pcrs must be an object');
}

/** Verifies Google Cloud vTPM evidence at `options.now`. */
export function verifyGceVtpm(input: GceVtpmInput, options: GceVtpmVerifyOptions): GceVtpmClaims {
  checkInput(input);
  if (typeof options !== 'object' || options === null)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'options must be an object with `now`');
  if (!(options.now instanceof Date) || !Number.isFinite(options.now.getTime()))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'options.now must be a valid Date');
  const policy = parsePolicy(options.policy);
  parseTpmsAttest(input.tpm.quote);
  parseTpmtSignature(input.tpm.signature);

  const { leaf, root } = verifyAkCertificate(input.akCert, options.now, options.roots);
  const ext = leaf.extensions.get(GCE_INSTANCE_INFO_OID);
  if (!ext) throw malformed('the AK certificate has no GCE instance-identity extension');
  const gce = parseGceInstanceInfo(ext.value);
  if (input.akPublic !== undefined) {
    const fromTpm = akFromTpmPublic(input.akPublic).export({ format: 'der', type: 'spki' });
    if (!equalBytes(fromTpm, leaf.spki))
      throw new AttestationError('ERR_EVIDENCE_CHAIN', "the AK public area is not the AK certificate's key");
  }
  const quote = verifyTpmQuote(
    { message: input.tpm.quote, signature: input.tpm.signature, pcrs: input.tpm.pcrs },
    leaf.publicKey,
  );
  if (
    options.expectedExtraData !== undefined &&
    !equalBytes(quote.attest.extraData, options.expectedExtraData)
  )
    throw new AttestationError('ERR_BINDING_MISMATCH', 'the TPM quote extraData is not the expected nonce', {
      details: { extraData: quote.claims.extraData },
    });

  let boot: BootClaims | undefined;
  if (input.eventLog !== undefined) {
    const accept = policy.boot?.acceptAnomalies as AnomalyKind[] | undefined;
    boot = bootClaims(input.eventLog, { pcrs: quote.claims.pcrs }, accept ? { acceptAnomalies: accept } : {});
  }
  appraiseGce(gce, policy.gce);
  appraiseBoot(boot, policy.boot);
  // The same pins as for every other format (appraise.ts BOOT_PINS); instance pins are not workload pins.
  const workloadPinned = bootPinned(policy);
  return {
    format: 'gce-vtpm',
    workloadPinned,
    tpm: quote.claims,
    gce,
    akCertificate: {
      serial: leaf.serialHex,
      issuer: leaf.issuer.CN ?? '',
      notBefore: leaf.notBefore.toISOString(),
      notAfter: leaf.notAfter.toISOString(),
      rootSha256: root.fingerprint256,
    },
    ...(boot ? { boot } : {}),
  };
}

/** The quote's qualifyingData for a channel binder: SHA-384(binder), as on Azure (48 bytes fit every vTPM). */
export function gceVtpmQuoteNonce(binder: Uint8Array): Uint8Array {
  if (!(binder instanceof Uint8Array) || binder.length !== 64)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'the binder must be 64 bytes');
  return new Uint8Array(createHash('sha384').update(binder).digest());
}

/** The quote must be bound to the channel: extraData = SHA-384(binder); ERR_BINDING_MISMATCH otherwise. */
export function checkGceVtpmBinding(claims: Pick<GceVtpmClaims, 'tpm'>, binder: Uint8Array): void {
  if (!(binder instanceof Uint8Array) || binder.length !== 64)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'the binder must be 64 bytes');
  if (typeof claims !== 'object' || claims === null || typeof claims.tpm?.extraData !== 'string')
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'claims must be the claims verifyGceVtpm() returned');
  if (claims.tpm.extraData !== bytesToHex(gceVtpmQuoteNonce(binder)))
    throw new AttestationError(
      'ERR_BINDING_MISMATCH',
      'the TPM quote is not bound to this channel (extraData is not SHA-384 of the binder)',
    );
}
