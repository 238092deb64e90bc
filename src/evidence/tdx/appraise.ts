/**
 * Appraisal of verified TDX claims against the `tdx` section of a policy. Defaults are strict:
 * only UpToDate is accepted, debug TDs and bound service TDs are refused, SEPT_VE_DISABLE is
 * required. The TCB verdict comes first (ERR_EVIDENCE_TCB, with the status and advisory IDs in
 * the details), then each policy field (ERR_EVIDENCE_POLICY, details.field = "tdx.<name>").
 */
import { AttestationError } from '../../errors.js';
import { bytesToHex } from '../bytes.js';
import type { TdxPolicy } from '../policy.js';
import { SIMULATED_ORGANIZATION } from '../simulated-marker.js';
import type { RevocationStatus, TdxClaims } from '../types.js';
import type { PckChain } from './pck.js';
import { TD_REPORT_FIELDS, TD_REPORT10_SIZE, TD_REPORT15_SIZE, type TdxQuote } from './quote.js';
import type { TcbResult } from './tcb.js';

/** The claims fields a quote states by itself: what the parser read, nothing verified. */
export type TdxQuoteFields = Omit<
  TdxClaims,
  'format' | 'simulated' | 'revocation' | 'workloadPinned' | 'fmspc' | 'ppid' | 'tcbStatus' | 'advisoryIds'
>;

export function decodeTdAttributes(raw: Uint8Array, hex = bytesToHex): TdxClaims['tdAttributes'] {
  return {
    raw: hex(raw),
    debug: (raw[0]! & 0x01) !== 0,
    septVeDisable: (raw[3]! & 0x10) !== 0,
    pks: (raw[3]! & 0x40) !== 0,
    kl: (raw[3]! & 0x80) !== 0,
    perfmon: (raw[7]! & 0x80) !== 0,
  };
}

/**
 * Hex of the fields of one body, read from the signed bytes the parser made the body's views of
 * (the body ends them: header, v5 descriptor, body). The whole body is converted once and each
 * field is a slice of that string at its offset in the TD report (TD_REPORT_FIELDS, as the
 * parser cut the views): 16 conversions cost ~2 µs a quote, and checking that each view lies in
 * one buffer (its `.buffer`) costs ~0.8 µs more, about 1% of a verification.
 */
function bodyHex(quote: TdxQuote): (field: readonly [number, number]) => string {
  const signed = quote.signedData;
  const size = quote.bodyType === 3 ? TD_REPORT15_SIZE : TD_REPORT10_SIZE;
  const hex = bytesToHex(signed.subarray(signed.length - size));
  return ([at, length]) => hex.slice(at * 2, (at + length) * 2);
}

/** Every claims field the quote itself holds (the CLI shows these for a quote that did not verify). */
export function tdxQuoteFields(quote: TdxQuote): TdxQuoteFields {
  return withQuoteFields({}, quote) as TdxQuoteFields;
}

/**
 * Adds the quote's fields to `out`, in the order the claims list them: the claims are built in
 * one object rather than spread from a second one (one object less per verification).
 */
function withQuoteFields<T extends object>(out: T, quote: TdxQuote): T & TdxQuoteFields {
  const hex = bodyHex(quote);
  const F = TD_REPORT_FIELDS;
  const o = out as T & TdxQuoteFields;
  o.version = quote.header.version;
  o.teeTcbSvn = hex(F.teeTcbSvn);
  if (quote.bodyType === 3) o.teeTcbSvn2 = hex(F.teeTcbSvn2);
  o.mrSeam = hex(F.mrSeam);
  o.mrSignerSeam = hex(F.mrSignerSeam);
  o.seamAttributes = hex(F.seamAttributes);
  o.tdAttributes = decodeTdAttributes(quote.body.tdAttributes, () => hex(F.tdAttributes));
  o.xfam = hex(F.xfam);
  o.mrTd = hex(F.mrTd);
  o.mrConfigId = hex(F.mrConfigId);
  o.mrOwner = hex(F.mrOwner);
  o.mrOwnerConfig = hex(F.mrOwnerConfig);
  o.rtmr0 = hex(F.rtmr0);
  o.rtmr1 = hex(F.rtmr1);
  o.rtmr2 = hex(F.rtmr2);
  o.rtmr3 = hex(F.rtmr3);
  o.reportData = hex(F.reportData);
  if (quote.bodyType === 3) o.mrServiceTd = hex(F.mrServiceTd);
  return o;
}

/**
 * The claims of a quote, as the parser read it (`tdxQuoteFields`), and what verification concluded:
 * the accepting root (simulated or not), the revocation check, the verified PCK's FMSPC and PPID
 * and the TCB status. snp/appraise.ts builds SNP claims the same way.
 */
export function tdxClaims(
  quote: TdxQuote,
  pck: PckChain,
  tcb: Pick<TcbResult, 'status' | 'advisoryIds'>,
  revocation: RevocationStatus,
): TdxClaims {
  const claims = withQuoteFields(
    {
      format: 'tdx',
      simulated: pck.root.subject.O === SIMULATED_ORGANIZATION,
      revocation,
      // Set by appraiseClaims(), from the policy the claims passed.
      workloadPinned: false,
    },
    quote,
  ) as TdxClaims;
  claims.fmspc = pck.sgx.fmspcHex;
  claims.ppid = pck.sgx.ppidHex;
  claims.tcbStatus = tcb.status;
  claims.advisoryIds = tcb.advisoryIds;
  return claims;
}

const DEFAULT_ACCEPTED_STATUS = ['UpToDate'];

const MEASUREMENT_FIELDS = [
  'mrTd',
  'rtmr0',
  'rtmr1',
  'rtmr2',
  'rtmr3',
  'mrConfigId',
  'mrOwner',
  'mrOwnerConfig',
  'mrSeam',
] as const;

function refuse(field: keyof TdxPolicy, message: string): AttestationError {
  return new AttestationError('ERR_EVIDENCE_POLICY', message, { details: { field: `tdx.${field}` } });
}

export function appraiseTdx(claims: TdxClaims, policy: TdxPolicy = {}): void {
  const accepted = policy.acceptTcbStatus ?? DEFAULT_ACCEPTED_STATUS;
  if (!accepted.includes(claims.tcbStatus)) {
    throw new AttestationError(
      'ERR_EVIDENCE_TCB',
      claims.tcbStatus === 'NoMatchingTcbLevel'
        ? 'no TCB level of the TCB info matches this platform'
        : `TCB status ${claims.tcbStatus} is not accepted (accepted: ${accepted.join(', ') || 'none'})`,
      { details: { tcbStatus: claims.tcbStatus, advisoryIds: claims.advisoryIds } },
    );
  }
  if (claims.tdAttributes.debug && policy.allowDebug !== true)
    throw refuse(
      'allowDebug',
      'the TD runs in debug mode (TDATTRIBUTES.DEBUG) and tdx.allowDebug is not set',
    );
  if (!claims.tdAttributes.septVeDisable && policy.requireSeptVeDisable !== false)
    throw refuse('requireSeptVeDisable', 'TDATTRIBUTES.SEPT_VE_DISABLE is not set');
  if (claims.mrServiceTd !== undefined && /[^0]/.test(claims.mrServiceTd) && policy.allowServiceTd !== true)
    throw refuse(
      'allowServiceTd',
      'a service TD is bound (MRSERVICETD is not zero) and tdx.allowServiceTd is not set',
    );
  for (const field of MEASUREMENT_FIELDS) {
    const allowed = policy[field];
    if (allowed !== undefined && !allowed.some((v) => v.toLowerCase() === claims[field]))
      throw refuse(field, `${field} ${claims[field]} is not in the policy's list`);
  }
  if (policy.ppids !== undefined && !policy.ppids.some((v) => v.toLowerCase() === claims.ppid))
    throw refuse('ppids', `the PCK certificate's PPID ${claims.ppid} is not in the policy's list`);
}
