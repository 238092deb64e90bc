/**
 * Measured boot over verified evidence: a boot event log checked against the registers that a
 * verified quote vouches for (TPM PCRs, TDX RTMR0-3), summarised into the claims' `boot`, and the
 * policy's `boot` section applied to that summary (issue 13).
 *
 * The log itself is untrusted bytes. It becomes evidence only through checkReplay(): every
 * register it extends must replay to the value the signed quote carries. What the summary reads
 * from single events (Secure Boot, the command line, EFI applications) is then bound by the
 * replay, and only where the event's digest was recomputed from its data (eventlog/summary.ts).
 *
 * Kept apart from the format verifiers: it takes their verified claims and the log, and returns
 * `boot`, so each verifier (raw TDX, Azure, Google Cloud's vTPM) adds one call.
 */
import { AttestationError } from '../errors.js';
import {
  type Anomaly,
  type AnomalyKind,
  bootSummary,
  checkReplay,
  type EfiApp,
  type EventLog,
  parseEventLog,
  replayEventLog,
} from './eventlog/index.js';
import { type BootPolicy, parsePolicy } from './policy.js';

/** A boot event log as the attester hands it over (EvidenceInput.eventLog). */
export interface EventLogInput {
  /** The log bytes: the TPM's binary_bios_measurements, or the CCEL log area. */
  log: Uint8Array;
  /** The log is a TDX CCEL (RTMR0-3), not a TPM log: its bytes cannot tell (eventlog/parse.ts). */
  ccel?: boolean;
  /** CCEL only: the ACPI CCEL table, checked against the log area. */
  ccelTable?: Uint8Array;
}

export interface BootClaims {
  source: 'tpm' | 'ccel';
  /** tpm: the replayed PCRs of the banks the quote covers, by bank then decimal index (all equal to the quoted values). */
  pcrs?: Record<string, Record<string, string>>;
  /** ccel: RTMR0-3 as replayed (equal to the quote's where the log extends them). */
  rtmrs?: string[];
  /** Registers the quote vouches for that the log does not explain (PCR10 under IMA, RTMR3 extended by the OS). */
  unexplained: string[];
  /** The SecureBoot variable as measured; null when not measured, conflicting or not interpreted. */
  secureBoot: boolean | null;
  /** GRUB's last measured kernel command line; null when none or not interpreted. */
  kernelCmdline: string | null;
  /** The EFI boot applications in log order; null when the log was not interpreted. */
  efiApps: EfiApp[] | null;
  /** "n/m": n of the m extended events had their digests recomputed from their data. */
  digestsVerified: string;
  /** Events whose digest did not match the data the spec says it covers. */
  digestMismatches: number;
  events: number;
  anomalies: Anomaly[];
  /** False when the log has anomalies the policy does not accept: single events were not read. */
  interpreted: boolean;
}

/** The registers a verified quote vouches for: TPM PCRs (quoted banks) or TDX RTMR0-3 (hex). */
export type VerifiedRegisters =
  | { pcrs: Partial<Record<string, Record<string, string>>> }
  | { rtmrs: readonly string[] };

function checkLogInput(input: EventLogInput): void {
  if (typeof input !== 'object' || input === null || !(input.log instanceof Uint8Array))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'eventLog.log must be a Uint8Array');
  if (input.ccelTable !== undefined && !(input.ccelTable instanceof Uint8Array))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'eventLog.ccelTable must be a Uint8Array');
}

/** Parses the log as its input says (ERR_EVIDENCE_MALFORMED when it does not parse). */
export function parseLogInput(input: EventLogInput): EventLog {
  checkLogInput(input);
  return parseEventLog(input.log, {
    ...(input.ccel ? { ccel: true } : {}),
    ...(input.ccelTable !== undefined ? { ccelTable: input.ccelTable } : {}),
  });
}

/**
 * Checks the log against the verified registers and summarises it. A TPM log against a TDX quote
 * (or a CCEL against a TPM quote) is refused: it explains registers the quote does not have.
 * Throws ERR_EVENTLOG_MISMATCH when the log does not replay to the quoted values,
 * ERR_EVIDENCE_MALFORMED when it does not parse.
 */
export function bootClaims(
  input: EventLogInput,
  registers: VerifiedRegisters,
  options: { acceptAnomalies?: readonly AnomalyKind[] } = {},
): BootClaims {
  const bad = (m: string) => new AttestationError('ERR_INVALID_ARGUMENT', `bootClaims: ${m}`);
  if (typeof registers !== 'object' || registers === null)
    throw bad('registers must be { pcrs } or { rtmrs }');
  const isTpm = 'pcrs' in registers;
  if (isTpm ? typeof registers.pcrs !== 'object' || registers.pcrs === null : !Array.isArray(registers.rtmrs))
    throw bad('registers must be { pcrs: { bank: { index: hex } } } or { rtmrs: [hex…] }');
  if (typeof options !== 'object' || options === null) throw bad('options must be an object');
  const accept: unknown = options.acceptAnomalies;
  if (accept !== undefined && !(Array.isArray(accept) && accept.every((k) => typeof k === 'string')))
    throw bad('options.acceptAnomalies must be a list of anomaly kinds');
  const log = parseLogInput(input);
  const replayed = replayEventLog(log);
  if ((log.kind === 'ccel') === isTpm)
    throw new AttestationError(
      'ERR_EVENTLOG_MISMATCH',
      isTpm
        ? 'a CCEL event log cannot explain TPM PCRs'
        : 'a TPM event log cannot explain TDX RTMRs (give the CCEL)',
      { details: { register: 'none' } },
    );
  let bank: string | undefined;
  let check: { matched: string[]; unexplained: string[] };
  let quotedBanks: string[] = [];
  if (isTpm) {
    const pcrs: Record<string, Record<string, string>> = {};
    for (const [b, v] of Object.entries(registers.pcrs)) if (v && Object.keys(v).length > 0) pcrs[b] = v;
    quotedBanks = Object.keys(pcrs);
    check = checkReplay(replayed, { pcrs });
    // The EFI application digests are read from a bank the quote vouches for.
    bank = quotedBanks.includes('sha256') ? 'sha256' : quotedBanks[0];
  } else {
    check = checkReplay(replayed, { rtmrs: registers.rtmrs });
  }
  const summary = bootSummary(log, {
    ...(options.acceptAnomalies ? { acceptAnomalies: options.acceptAnomalies } : {}),
    ...(bank !== undefined ? { bank } : {}),
  });
  const extended = log.events.filter((e) => e.digestCheck !== 'not-extended');
  return {
    source: summary.source,
    ...(summary.pcrs
      ? {
          pcrs: Object.fromEntries(Object.entries(summary.pcrs).filter(([b]) => quotedBanks.includes(b))),
        }
      : {}),
    ...(summary.rtmrs ? { rtmrs: summary.rtmrs } : {}),
    unexplained: check.unexplained,
    secureBoot: summary.interpreted ? (summary.secureBoot ?? null) : null,
    kernelCmdline: summary.interpreted ? (summary.kernelCmdline ?? null) : null,
    efiApps: summary.interpreted ? (summary.efiApps ?? []) : null,
    digestsVerified: summary.digestsVerified,
    digestMismatches: extended.filter((e) => e.digestCheck === 'mismatch').length,
    events: summary.events,
    anomalies: summary.anomalies,
    interpreted: summary.interpreted,
  };
}

function refuse(field: string, message: string, details: Record<string, unknown> = {}): AttestationError {
  return new AttestationError('ERR_EVIDENCE_POLICY', `policy boot.${field}: ${message}`, {
    details: { field: `boot.${field}`, ...details },
  });
}

/**
 * Measured-boot pins, as "boot.field" (appraise.ts lists them among every format's workload pins):
 * register values and the single events a policy reads from a log that replayed to them.
 * `boot.secureBoot` and `boot.requireDigestsVerified` admit any OS that satisfies them and so
 * are not pins.
 */
export const BOOT_PINS: readonly string[] = [
  'boot.pcrs',
  'boot.rtmrs',
  'boot.kernelCmdlines',
  'boot.efiAppDigests',
];

/** Whether the (parsed) policy's boot section pins what booted (any of BOOT_PINS). */
export function bootPinned(policy: { boot?: BootPolicy }): boolean {
  const b = policy.boot as Record<string, unknown> | undefined;
  return BOOT_PINS.some((path) => {
    const field = path.slice('boot.'.length);
    return b !== undefined && Object.hasOwn(b, field) && b[field] !== undefined;
  });
}

/**
 * The part of a boot section that applies to one log when the evidence carries two (a TDX quote's
 * CCEL and Google's vTPM log): register pins go to the log of those registers (`pcrs` → tpm,
 * `rtmrs` → ccel), and everything read from single events (`secureBoot`, `kernelCmdlines`,
 * `efiAppDigests`, `requireDigestsVerified`) to each log, so a pin holds for both and what one
 * log records beyond the other is not accepted unlisted. Undefined when nothing is left to check.
 */
export function bootSectionFor(
  section: BootPolicy | undefined,
  source: 'tpm' | 'ccel',
): BootPolicy | undefined {
  if (section === undefined) return undefined;
  const out: BootPolicy = { ...section };
  delete out[source === 'tpm' ? 'rtmrs' : 'pcrs'];
  const checks = Object.entries(out).filter(([k, v]) => k !== 'acceptAnomalies' && v !== undefined);
  return checks.length > 0 ? out : undefined;
}

/** The policy fields that read single events: refused on a log that was not interpreted. */
const INTERPRETING: ReadonlyArray<keyof BootPolicy> = ['secureBoot', 'kernelCmdlines', 'efiAppDigests'];

/**
 * Applies the policy's `boot` section to the claims' `boot`. A section with evidence that carries
 * no log is refused: the policy lists boot state that nothing here vouches for.
 */
export function appraiseBoot(boot: BootClaims | undefined, section: BootPolicy | undefined): void {
  if (section === undefined) return;
  // Validated as parsePolicy() would (a no-op cost for a section it returned: a few fields).
  const policy = parsePolicy({ boot: section }).boot!;
  if (
    boot !== undefined &&
    (typeof boot !== 'object' ||
      boot === null ||
      typeof boot.interpreted !== 'boolean' ||
      !Array.isArray(boot.anomalies) ||
      typeof boot.digestMismatches !== 'number')
  )
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      'appraiseBoot: boot must be the claims bootClaims() returned',
    );
  if (boot === undefined)
    throw new AttestationError(
      'ERR_EVIDENCE_POLICY',
      'policy boot: the policy has a boot section, but the evidence carries no event log',
      { details: { field: 'boot' } },
    );
  if (policy.pcrs !== undefined) {
    if (!boot.pcrs) throw refuse('pcrs', 'the log is a CCEL, not a TPM log (use boot.rtmrs)');
    for (const [bank, values] of Object.entries(policy.pcrs)) {
      for (const [index, allowed] of Object.entries(values)) {
        const got = boot.pcrs[bank]?.[index];
        if (got === undefined)
          throw refuse('pcrs', `${bank} PCR${index} is not vouched for by the quote and the log`, {
            bank,
            index: Number(index),
          });
        if (!allowed.includes(got))
          throw refuse('pcrs', `${bank} PCR${index} ${got} is not allowed`, {
            bank,
            index: Number(index),
            got,
          });
      }
    }
  }
  if (policy.rtmrs !== undefined) {
    if (!boot.rtmrs) throw refuse('rtmrs', 'the log is a TPM log, not a CCEL (use boot.pcrs)');
    for (const [index, allowed] of Object.entries(policy.rtmrs)) {
      const got = boot.rtmrs[Number(index)]!;
      if (!allowed.includes(got))
        throw refuse('rtmrs', `RTMR${index} ${got} is not allowed`, { index: Number(index), got });
    }
  }
  if (policy.requireDigestsVerified === true && boot.digestMismatches > 0)
    throw refuse(
      'requireDigestsVerified',
      `${boot.digestMismatches} event(s) have digests that do not match their data`,
    );
  const interpreting = INTERPRETING.filter((f) => policy[f] !== undefined);
  if (interpreting.length === 0) return;
  if (!boot.interpreted)
    throw refuse(
      interpreting[0]!,
      `the log has anomalies (${[...new Set(boot.anomalies.map((a) => a.kind))].join(', ')}) and its single events are not read unless boot.acceptAnomalies lists them`,
      { anomalies: boot.anomalies.map((a) => a.kind) },
    );
  if (policy.secureBoot !== undefined && boot.secureBoot !== policy.secureBoot)
    throw refuse(
      'secureBoot',
      `Secure Boot is ${boot.secureBoot === null ? 'not measured' : boot.secureBoot ? 'on' : 'off'}`,
      { got: boot.secureBoot },
    );
  if (policy.kernelCmdlines !== undefined) {
    if (boot.kernelCmdline === null || !policy.kernelCmdlines.includes(boot.kernelCmdline))
      throw refuse(
        'kernelCmdlines',
        boot.kernelCmdline === null
          ? 'no kernel command line is measured'
          : 'the kernel command line is not allowed',
        { got: boot.kernelCmdline },
      );
  }
  if (policy.efiAppDigests !== undefined) {
    const apps = boot.efiApps ?? [];
    if (apps.length === 0) throw refuse('efiAppDigests', 'no EFI application is measured');
    for (const app of apps)
      if (!policy.efiAppDigests.includes(app.digest))
        throw refuse('efiAppDigests', `EFI application ${app.digest} (${app.path ?? '?'}) is not allowed`, {
          got: app.digest,
        });
  }
}

/**
 * For the raw formats (verify.ts): checks `input.eventLog` against the verified claims, sets
 * `claims.boot`, and applies the policy's boot section. TDX: the CCEL against RTMR0-3. Raw SNP
 * has no register a log could be checked against (its vTPM, where there is one, is separate
 * evidence): a log there is refused rather than ignored.
 */
export function attachBoot<C extends { format: string; boot?: BootClaims }>(
  claims: C,
  eventLog: EventLogInput | undefined,
  policy: BootPolicy | undefined,
  registers: () => VerifiedRegisters | undefined,
): C {
  if (eventLog !== undefined) {
    const regs = registers();
    if (regs === undefined)
      throw new AttestationError(
        'ERR_EVIDENCE_MALFORMED',
        `${claims.format} evidence has no register an event log could be checked against`,
      );
    const acceptAnomalies = policy?.acceptAnomalies as AnomalyKind[] | undefined;
    claims.boot = bootClaims(eventLog, regs, acceptAnomalies ? { acceptAnomalies } : {});
  }
  appraiseBoot(claims.boot, policy);
  return claims;
}
