/**
 * What `serve` and `tunnel` share: HOST:PORT parsing, policy files, the choice of evidence provider,
 * one-line descriptions of verified claims, a byte-counting splice between two streams, and how
 * their errors become exit codes.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { AttestationError } from '../errors.js';
import { unpinnedFormats } from '../evidence/appraise.js';
import type { AzureClaims } from '../evidence/azure/verify.js';
import { type Policy, parsePolicy } from '../evidence/policy.js';
import { configfsTsm } from '../evidence/providers/configfs-tsm.js';
import { SIMULATED_ROOT_SHA256 } from '../evidence/simulated-marker.js';
import type {
  Claims,
  EvidenceFormat,
  EvidenceProvider,
  RevocationStatus,
  TrustAnchors,
} from '../evidence/types.js';
import { type CliIo, printable, usageError } from './io.js';

export interface HostPort {
  host: string;
  port: number;
}

/** "HOST:PORT" or "[v6]:PORT". Port 0 only where `allowZero` (listening on a free port). */
export function parseHostPort(text: string, what: string, allowZero = false): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = m ? Number(m[3]) : Number.NaN;
  if (!host || !(port <= 65535 && (port > 0 || (allowZero && port === 0))))
    throw new AttestationError('ERR_INVALID_ARGUMENT', `${what} must be HOST:PORT (got "${text}")`);
  if (m?.[1] !== undefined && isIP(host) !== 6)
    throw new AttestationError('ERR_INVALID_ARGUMENT', `${what}: "${host}" is not an IPv6 address`);
  return { host, port };
}

export function formatHostPort(a: HostPort): string {
  return isIP(a.host) === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Reads and validates a policy file (plain JSON, the Policy schema). */
export async function loadPolicy(path: string): Promise<Policy> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new AttestationError('ERR_INVALID_ARGUMENT', `cannot read policy file ${path}`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new AttestationError('ERR_POLICY_INVALID', `policy file ${path} is not JSON`, { cause: err });
  }
  return parsePolicy(value);
}

/**
 * A policy that pins no workload lets any genuine guest through (a policy naming no format: any
 * guest of either vendor). serve and tunnel refuse one unless --any-workload says it is meant;
 * every format the policy admits must be pinned. Returns the unpinned formats (for the log).
 */
export function checkWorkloadPinned(policy: Policy, anyWorkload: boolean): EvidenceFormat[] {
  const unpinned = unpinnedFormats(policy);
  if (unpinned.length > 0 && !anyWorkload) {
    throw new AttestationError(
      'ERR_POLICY_INVALID',
      `the policy pins no workload for ${unpinned.join(' and ')}: any genuine ${unpinned.join(' or ')} guest would be accepted. ` +
        `Pin it (snp.measurements, snp.hostData, snp.idKeyDigests; tdx.mrTd, tdx.rtmr0-3, tdx.mrConfigId, tdx.mrOwner, tdx.mrOwnerConfig), ` +
        'name only the formats you use, or give --any-workload',
      { details: { unpinned } },
    );
  }
  return unpinned;
}

/**
 * The simulated platform, loaded only when a flag asks for it (--simulate, --simulated-roots, the
 * demo): it carries published private keys, and no other path of the CLI loads it.
 */
export async function loadSimulated(): Promise<typeof import('../simulated.js')['simulated']> {
  return (await import('../simulated.js')).simulated;
}

/** --simulated-roots: the simulator's roots as the verifier's trust anchors; nothing (the vendors' roots) without it. */
export async function simulatedRoots(flag: unknown): Promise<{ trustAnchors?: TrustAnchors }> {
  return flag === true ? { trustAnchors: (await loadSimulated()).trustAnchors() } : {};
}

/** --simulate snp|tdx or --configfs [--configfs-root DIR]: this side's evidence, or undefined. */
export async function providerFrom(opts: {
  simulate?: string | undefined;
  configfs?: boolean | undefined;
  configfsRoot?: string | undefined;
}): Promise<EvidenceProvider | undefined> {
  if (opts.simulate !== undefined && opts.configfs)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'give --simulate or --configfs, not both');
  if (opts.simulate === 'snp') return (await loadSimulated()).snp();
  if (opts.simulate === 'tdx') return (await loadSimulated()).tdx();
  if (opts.simulate === 'azure-snp') return (await loadSimulated()).azure({ tee: 'snp' });
  if (opts.simulate === 'azure-tdx') return (await loadSimulated()).azure({ tee: 'tdx' });
  if (opts.simulate !== undefined)
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      `--simulate takes snp, tdx, azure-snp or azure-tdx (got "${opts.simulate}")`,
    );
  if (opts.configfs) return configfsTsm(opts.configfsRoot ? { root: opts.configfsRoot } : {});
  if (opts.configfsRoot !== undefined)
    throw new AttestationError('ERR_INVALID_ARGUMENT', '--configfs-root needs --configfs');
  return undefined;
}

/**
 * What to do about a chain refused because it ends at one of the simulator's roots (the chain
 * error names the root by its SHA-256): " …: give --simulated-roots" when that flag was not
 * given, else "".
 */
export function simulatedRootHint(err: AttestationError, simulatedRoots: boolean): string {
  const fingerprint = err.details['fingerprint'];
  if (simulatedRoots || err.code !== 'ERR_EVIDENCE_CHAIN' || typeof fingerprint !== 'string') return '';
  // By fingerprint, so that a refusal does not load the simulator (and its keys) to explain itself.
  return SIMULATED_ROOT_SHA256.includes(fingerprint.toLowerCase())
    ? ' (the evidence is SIMULATED, from the simulator of attested-channel: give --simulated-roots to accept it, for testing only)'
    : '';
}

/** "sev-snp Milan measurement <96 hex> (SIMULATED)" — what an operator needs to recognise a peer. */
export function describeClaims(claims: Claims | undefined): string {
  if (!claims) return 'peer not attested';
  const sim = claims.simulated ? ' (SIMULATED, not a TEE)' : '';
  const any = claims.workloadPinned === false ? ' (workload NOT pinned by the policy)' : '';
  const tail = sim + any + describeRevocation(claims.revocation);
  if (claims.format === 'sev-snp')
    return `sev-snp ${claims.product} measurement ${claims.measurement}${tail}`;
  if (claims.format === 'azure-sev-snp' || claims.format === 'azure-tdx') return describeAzure(claims) + tail;
  return `tdx mrTd ${claims.mrTd} tcb ${claims.tcbStatus}${tail}`;
}

/**
 * A chain not checked against a CRL is not known to be unrevoked (types.ts RevocationStatus):
 * the operator sees that on every accepted connection, and which CRLs held when they did.
 */
function describeRevocation(r: RevocationStatus): string {
  if (!r.checked) return ` (revocation NOT checked${r.reason ? `: ${printable(r.reason)}` : ''})`;
  const until = r.crls
    .map((c) => c.nextUpdate)
    .filter((n): n is string => n !== undefined)
    .sort()[0];
  return ` (revocation checked: ${r.source}${until ? `, CRLs valid until ${until}` : ''})`;
}

/** Azure: the paravisor's measurement says little; the PCRs, the AK and the binding say more. */
function describeAzure(claims: AzureClaims): string {
  const hw =
    claims.format === 'azure-sev-snp'
      ? `${claims.product} paravisor measurement ${claims.measurement}`
      : `paravisor mrTd ${claims.mrTd} tcb ${claims.tcbStatus}`;
  const binding = claims.binding ? ` binding ${claims.binding}` : '';
  return `${claims.format} ${hw} ak ${claims.tpm.akSha256}${binding}`;
}

/**
 * Splices two byte streams both ways, keeping half-close (each direction ends on its own). A
 * failure or an abrupt close of either side tears both down; a clean close lets the other side
 * flush and close on its own. Calls `done` once both are closed, with the bytes moved each way.
 */
export function splice(a: Duplex, b: Duplex, done: (aToB: number, bToA: number) => void): void {
  let aToB = 0;
  let bToA = 0;
  let open = 2;
  a.on('data', (d: Buffer) => {
    aToB += d.length;
  });
  b.on('data', (d: Buffer) => {
    bToA += d.length;
  });
  a.pipe(b);
  b.pipe(a);
  const kill = () => {
    a.destroy();
    b.destroy();
  };
  const closed = (self: Duplex, other: Duplex) => () => {
    // Closed before its peer saw its end: the connection broke, so the other side goes too.
    if (!self.readableEnded) other.destroy();
    if (--open === 0) done(aToB, bToA);
  };
  a.on('error', kill);
  b.on('error', kill);
  a.once('close', closed(a, b));
  b.once('close', closed(b, a));
}

/** Resolves on the next SIGINT or SIGTERM (the long-running commands stop cleanly on either). */
export function untilSignal(): { signalled: Promise<void>; cancel(): void } {
  let stop = () => {};
  const signalled = new Promise<void>((resolve) => {
    stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return {
    signalled,
    cancel: () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}

/** Bad options are usage errors (exit 2, with the usage text); anything else is a failure (exit 1). */
export function commandFailure(io: CliIo, command: string, usage: string, err: unknown): number {
  if (
    err instanceof AttestationError &&
    (err.code === 'ERR_INVALID_ARGUMENT' || err.code === 'ERR_POLICY_INVALID')
  )
    return usageError(io, `${command}: ${err.message}\n\n${usage}`);
  io.err(
    `attested-channel ${command}: ${err instanceof AttestationError ? `${err.code} ` : ''}${printable(String((err as Error)?.message ?? err))}\n`,
  );
  return 1;
}

/** A long-running command: --help, start (or a usage/failure exit code), then serve until SIGINT/SIGTERM. */
export async function runUntilSignal(
  args: string[],
  io: CliIo,
  command: string,
  usage: string,
  start: (args: string[], io: CliIo) => Promise<{ drain?(): Promise<void>; close(): Promise<void> }>,
): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    io.out(usage);
    return 0;
  }
  let handle: { drain?(): Promise<void>; close(): Promise<void> };
  try {
    handle = await start(args, io);
  } catch (err) {
    return commandFailure(io, command, usage, err);
  }
  await untilSignal().signalled;
  if (handle.drain) {
    // The first signal lets open sessions finish (bounded by the command); a second cuts them.
    const again = untilSignal();
    await Promise.race([handle.drain(), again.signalled]);
    again.cancel();
  }
  await handle.close();
  return 0;
}
