/**
 * The append-only audit log: one JSON object per line, one line per decision. The broker writes
 * the line BEFORE it answers, so no secret leaves without a record; if the write fails the secret
 * is not released. Entries are built only from claims, names and reasons: the type has no field
 * that could carry a secret value.
 */
import { type FileHandle, open } from 'node:fs/promises';
import type { Claims } from '../../src/evidence/types.js';

export type Decision = 'released' | 'denied' | 'not_found' | 'refused';

export interface AuditEntry {
  time: string;
  /** "request" for an HTTP request, "channel" for a connection refused before any request. */
  event: 'request' | 'channel';
  decision: Decision;
  reason: string;
  /** The secret asked for (requests only). */
  secret?: string;
  /** The policy field that failed, when a policy refused. */
  field?: string;
  /** The library's error code, when an error decided. */
  code?: string;
  remote?: string;
  peer?: {
    format: Claims['format'];
    simulated: boolean;
    /** SNP MEASUREMENT or TDX MRTD. */
    measurement: string;
    /** SNP CHIP_ID (all zero for VLEK-signed reports); absent for TDX. */
    chipId?: string;
  };
}

/** Names the peer in the log: what it runs and on which chip. */
export function peerSummary(claims: Claims | undefined): AuditEntry['peer'] {
  if (!claims) return undefined;
  if (claims.format === 'sev-snp' || claims.format === 'azure-sev-snp')
    return {
      format: claims.format,
      simulated: claims.simulated,
      measurement: claims.measurement,
      chipId: claims.chipId,
    };
  return { format: claims.format, simulated: claims.simulated, measurement: claims.mrTd };
}

/** Attacker-chosen text (paths, peer reasons) is cut short so a client cannot bloat the log. */
export function clip(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

export class AuditLog {
  private tail: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  /** Opens (creating with mode 0600 if needed) for appending only: existing lines are never rewritten. */
  static async open(path: string): Promise<AuditLog> {
    const handle = await open(path, 'a', 0o600);
    return new AuditLog(path, handle);
  }

  /**
   * Appends one line. Writes are chained so lines never interleave; the promise settles when
   * this line reached the file (or rejects, and the caller must then refuse to release).
   */
  write(entry: Omit<AuditEntry, 'time'>): Promise<void> {
    if (this.closed) return Promise.reject(new Error('audit log is closed'));
    const line = `${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`;
    const next = this.tail.then(async () => {
      await this.handle.write(line);
    });
    // The chain must survive a failed write; the failure is reported to this entry's caller.
    this.tail = next.catch(() => {});
    return next;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.tail;
    await this.handle.close();
  }
}
