/**
 * What a boot policy reads from a log: the replayed registers, Secure Boot, the kernel command
 * line, the EFI applications. Only meaningful once checkReplay() has matched the log against
 * values a verified quote vouches for, and only content whose digest was recomputed from the
 * event data (digestVerified) is read — except the EFI applications' digests, which are the
 * measured values themselves (their paths are not measured and are shown for information).
 *
 * A log with anomalies (see parse.ts) is not interpreted event by event unless the caller
 * accepts each kind: `interpreted` is then false and the single-event fields are absent, while
 * the registers are reported as always (pins on register values alone do not depend on them).
 */
import { AttestationError } from '../../errors.js';
import { EV } from './decode.js';
import type { Anomaly, AnomalyKind, EventLog } from './parse.js';
import { checkKind, replayEventLog } from './replay.js';

export interface BootSummaryOptions {
  /** Anomaly kinds to interpret the log despite, e.g. `['duplicate-separator', 'missing-separator']`. */
  acceptAnomalies?: readonly AnomalyKind[];
  /**
   * The bank the EFI application digests are taken from: the bank checkReplay() compared.
   * Default: 'sha256' when the log has it, else 'sha384', else its first bank.
   */
  bank?: string;
}

export interface EfiApp {
  /** The device path as text; not measured (null when it does not decode). */
  path: string | null;
  /** The PE image's Authenticode digest in `bank`, hex: the measured value. */
  digest: string;
}

export interface BootSummary {
  source: 'tpm' | 'ccel';
  /** tcg2: replayed PCRs per bank, hex. */
  pcrs?: Record<string, Record<string, string>>;
  /** ccel: replayed RTMR0-3, hex. */
  rtmrs?: string[];
  anomalies: Anomaly[];
  /** False when the log has anomalies not accepted: the fields from secureBoot on are absent. */
  interpreted: boolean;
  /** The bank `efiApps` digests come from. */
  bank: string;
  /** From the SecureBoot variable measured in PCR7 / RTMR0; null when not measured or conflicting. */
  secureBoot?: boolean | null;
  /** GRUB's last kernel_cmdline (PCR8 / RTMR2), without the trailing NUL; null when none. */
  kernelCmdline?: string | null;
  /** Every kernel_cmdline GRUB measured, in order (more than one when GRUB ran `linux` again). */
  kernelCmdlines?: string[];
  /** The kernel and initrd files of GRUB's last `linux` / `initrd` commands. */
  kernel?: string | null;
  initrd?: string[];
  /** EV_EFI_BOOT_SERVICES_APPLICATION events in PCR4 / RTMR1, in log order. */
  efiApps?: EfiApp[];
  /** "n/m": n of the m extended events had their digests recomputed from their data. */
  digestsVerified: string;
  /** Number of events (the Spec ID header not counted). */
  events: number;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function bootSummary(log: EventLog, options: BootSummaryOptions = {}): BootSummary {
  checkKind(log, 'bootSummary: log');
  if (typeof options !== 'object' || options === null)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'bootSummary: options must be an object');
  const replayed = replayEventLog(log);
  const bank =
    options.bank ??
    (log.banks.includes('sha256') ? 'sha256' : log.banks.includes('sha384') ? 'sha384' : log.banks[0]!);
  const extended = log.events.filter((e) => e.type !== EV.NO_ACTION);
  const base: BootSummary = {
    source: log.kind === 'ccel' ? 'ccel' : 'tpm',
    ...(log.kind === 'ccel'
      ? { rtmrs: replayed.rtmrs!.map(hex) }
      : {
          pcrs: Object.fromEntries(
            Object.entries(replayed.pcrs).map(([b, v]) => [
              b,
              Object.fromEntries(Object.entries(v).map(([i, d]) => [i, hex(d)])),
            ]),
          ),
        }),
    anomalies: log.anomalies,
    interpreted: false,
    bank,
    digestsVerified: `${extended.filter((e) => e.digestVerified).length}/${extended.length}`,
    events: log.events.length,
  };
  const accepted = new Set(options.acceptAnomalies ?? []);
  if (log.anomalies.some((a) => !accepted.has(a.kind))) return base;
  if (!log.banks.includes(bank))
    throw new AttestationError('ERR_INVALID_ARGUMENT', `bootSummary: the log has no ${bank} bank`);

  // Which register each kind of event belongs in: TDVF maps PCR7 → RTMR0, PCR4 → RTMR1 and
  // PCR8/9 → RTMR2 (test/fixtures/eventlog/README.md §2 rule 5).
  const ccel = log.kind === 'ccel';
  const inSecureBootReg = (i: number) => i === (ccel ? 1 : 7);
  const inAppReg = (i: number) => i === (ccel ? 2 : 4);
  const inGrubReg = (i: number) => (ccel ? i === 3 : i === 8 || i === 9);

  const sb = new Set<boolean>();
  const cmdlines: string[] = [];
  let kernel: string | null = null;
  let initrd: string[] = [];
  const efiApps: EfiApp[] = [];
  for (const e of log.events) {
    const d = e.decoded;
    if (e.type === EV.EFI_BOOT_SERVICES_APPLICATION && inAppReg(e.pcrIndex)) {
      efiApps.push({
        path: d?.kind === 'efi-image' && d.devicePath !== '' ? d.devicePath : null,
        digest: hex(e.digests[bank]!),
      });
      continue;
    }
    if (!e.digestVerified || !d) continue;
    if (d.kind === 'efi-variable' && d.secureBoot !== undefined && e.type === EV.EFI_VARIABLE_DRIVER_CONFIG) {
      if (inSecureBootReg(e.pcrIndex)) sb.add(d.secureBoot);
    } else if (d.kind === 'grub-kernel-cmdline' && inGrubReg(e.pcrIndex)) cmdlines.push(d.cmdline);
    else if (d.kind === 'grub-command' && inGrubReg(e.pcrIndex)) {
      if (d.kernel) kernel = d.kernel;
      if (d.initrd) initrd = d.initrd;
    }
  }
  return {
    ...base,
    interpreted: true,
    secureBoot: sb.size === 1 ? [...sb][0]! : null,
    kernelCmdline: cmdlines.at(-1) ?? null,
    kernelCmdlines: cmdlines,
    kernel,
    initrd,
    efiApps,
  };
}
