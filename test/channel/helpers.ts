/**
 * Shared test tooling for the channel: an in-memory Duplex pair, a fake SNP-shaped evidence
 * provider with a matching fake verifier (injected through the internal seam, so the channel can
 * be tested before and independently of the real simulated platform), and leak checks.
 */
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import { INTERNAL } from '../../src/channel/options.js';
import type { AttestedServer } from '../../src/channel/server.js';
import { AttestationError } from '../../src/errors.js';
import { bytesToHex } from '../../src/evidence/bytes.js';
import type {
  Claims,
  EvidenceInput,
  EvidenceProvider,
  EvidenceRequestOptions,
  SnpClaims,
  VerifyOptions,
} from '../../src/evidence/types.js';

/** Two connected in-memory Duplexes: what one writes the other reads. */
export function duplexPair(): [Duplex, Duplex] {
  let a!: Duplex;
  let b!: Duplex;
  const make = (other: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk, _enc, cb) {
        other().push(chunk);
        cb();
      },
      final(cb) {
        other().push(null);
        cb();
      },
      destroy(err, cb) {
        const o = other();
        if (!o.destroyed) o.destroy();
        cb(err);
      },
    });
  a = make(() => b);
  b = make(() => a);
  return [a, b];
}

/** `inner`, counting the reports it makes. */
export function countingProvider(inner: EvidenceProvider): EvidenceProvider & { reports: number } {
  const p = {
    format: inner.format,
    reports: 0,
    async getEvidence(reportData: Uint8Array, options?: EvidenceRequestOptions): Promise<EvidenceInput> {
      p.reports++;
      return inner.getEvidence(reportData, options);
    },
  };
  return p;
}

export const SNP_SIZE = 0x4a0;
export const FAKE_MEASUREMENT = 'ab'.repeat(48);

/** A 1184-byte "report" with SNP's layout where it matters: REPORT_DATA at 0x50, MEASUREMENT at 0x90. */
export function fakeReport(reportData: Uint8Array, measurement = FAKE_MEASUREMENT): Uint8Array {
  const r = new Uint8Array(SNP_SIZE);
  r[0] = 5; // version 5, little-endian u32
  r.set(reportData, 0x50);
  r.set(Buffer.from(measurement, 'hex'), 0x90);
  // Stand-in signature: SHA-256 over the signed part, so tampering is detectable.
  r.set(createHash('sha256').update(r.subarray(0, 0x2a0)).digest(), 0x2a0);
  return r;
}

export interface FakeProvider extends EvidenceProvider {
  calls: Uint8Array[];
}

export function fakeProvider(
  options: { measurement?: string; fail?: Error; delayMs?: number } = {},
): FakeProvider {
  const calls: Uint8Array[] = [];
  return {
    format: 'sev-snp',
    calls,
    async getEvidence(reportData: Uint8Array, opts?: { signal?: AbortSignal }): Promise<EvidenceInput> {
      calls.push(reportData);
      if (options.delayMs)
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, options.delayMs);
          opts?.signal?.addEventListener('abort', () => {
            clearTimeout(t);
            reject(new AttestationError('ERR_ABORTED', 'aborted'));
          });
        });
      if (options.fail) throw options.fail;
      return { report: fakeReport(reportData, options.measurement) };
    },
  };
}

/** Verifies fakeReport() output: the stand-in signature, then policy.snp.measurements, then check(). */
export async function fakeVerifier(input: EvidenceInput, options: VerifyOptions): Promise<Claims> {
  const r = input.report;
  if (r.length !== SNP_SIZE) throw new AttestationError('ERR_EVIDENCE_MALFORMED', 'bad size');
  const sig = createHash('sha256').update(r.subarray(0, 0x2a0)).digest();
  if (!sig.equals(r.subarray(0x2a0, 0x2c0)))
    throw new AttestationError('ERR_EVIDENCE_SIGNATURE', 'bad signature');
  const measurement = bytesToHex(r.subarray(0x90, 0xc0));
  const allowed = options.policy?.snp?.measurements;
  if (allowed && !allowed.includes(measurement))
    throw new AttestationError('ERR_EVIDENCE_POLICY', 'measurement not allowed');
  const claims = {
    format: 'sev-snp',
    simulated: true,
    reportData: bytesToHex(r.subarray(0x50, 0x90)),
    measurement,
  };
  if (options.check && (await options.check(claims as SnpClaims)) === false)
    throw new AttestationError('ERR_EVIDENCE_POLICY', 'check() refused');
  return claims as SnpClaims;
}

/** Options fragment that swaps the fake verifier in. */
export const fakeVerify = { [INTERNAL]: { verifier: fakeVerifier } };

export function portOf(server: AttestedServer): number {
  return (server.address() as AddressInfo).port;
}

export function listen(server: AttestedServer): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(portOf(server))));
}

export function closeServer(server: AttestedServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Resolves with the next 'attestationError' of the server. */
export function nextServerError(server: AttestedServer): Promise<AttestationError> {
  return new Promise((resolve) => server.once('attestationError', resolve));
}

export function expectCode(err: unknown, code: string): AttestationError {
  if (!(err instanceof AttestationError))
    throw new Error(`expected AttestationError ${code}, got ${String(err)}`);
  if (err.code !== code) throw new Error(`expected ${code}, got ${err.code}: ${err.message}`);
  return err;
}

export async function rejectionOf(p: Promise<unknown>): Promise<AttestationError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AttestationError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

/** Socket/timer handles alive now (process.getActiveResourcesInfo), by kind. */
export function activeHandles(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of process.getActiveResourcesInfo()) out[k] = (out[k] ?? 0) + 1;
  return out;
}

/** Waits until sockets and timers are back to `baseline` (or fails after ~2 s, listing what remains). */
export async function expectNoLeaks(baseline: Record<string, number>): Promise<void> {
  const kinds = ['TCPSocketWrap', 'TLSWrap', 'Timeout', 'JSSTREAM', 'TCPServerWrap'];
  let now: Record<string, number> = {};
  for (let i = 0; i < 100; i++) {
    now = activeHandles();
    if (kinds.every((k) => (now[k] ?? 0) <= (baseline[k] ?? 0))) return;
    await new Promise((r) => setTimeout(r, 20).unref());
  }
  throw new Error(`leaked handles: now ${JSON.stringify(now)}, baseline ${JSON.stringify(baseline)}`);
}
