/**
 * The binder: the 64 bytes an attester must put into REPORT_DATA (docs/protocol.md §5).
 *
 *   exporter   = TLS-Exporter("EXPORTER-attested-channel-v1-" + R, REQUEST.context, 32)
 *   reportData = SHA-512("attested-channel/1" || 0x00 || R || 0x00 || SHA-256(SPKI of R's cert) || exporter)
 *
 * The exporter ties the evidence to this TLS connection (relay), the context to this exchange
 * (replay), R to the attester's role (reflection) and the SPKI hash to the key that terminates
 * the TLS connection (key substitution).
 */
import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { AttestationError } from '../errors.js';
import { detectFormat } from '../evidence/verify.js';
import type { Role } from './channel.js';
import { CONTEXT_SIZE } from './frames.js';

export const PROTOCOL_ID = 'attested-channel/1';
export const EXPORTER_LABEL_PREFIX = 'EXPORTER-attested-channel-v1-';
export const EXPORTER_LENGTH = 32;
export const REPORT_DATA_SIZE = 64;

export function exporterLabel(role: Role): string {
  return EXPORTER_LABEL_PREFIX + role;
}

/** The exporter of the attester with role `role`, computed on either end of the connection. */
export function exportBinderSecret(socket: TLSSocket, role: Role, context: Uint8Array): Uint8Array {
  if (context.length !== CONTEXT_SIZE) throw new AttestationError('ERR_PROTOCOL', 'context must be 32 bytes');
  try {
    return new Uint8Array(
      socket.exportKeyingMaterial(EXPORTER_LENGTH, exporterLabel(role), Buffer.from(context)),
    );
  } catch (err) {
    throw new AttestationError('ERR_TLS', 'TLS exporter unavailable (connection not established?)', {
      cause: err,
    });
  }
}

/** The 64-byte reportData from its parts (pure, so a second implementation can be checked against it). */
export function computeBinder(role: Role, spki: Uint8Array, exporter: Uint8Array): Uint8Array {
  if (exporter.length !== EXPORTER_LENGTH)
    throw new AttestationError('ERR_PROTOCOL', 'exporter must be 32 bytes');
  const spkiHash = createHash('sha256').update(spki).digest();
  return new Uint8Array(
    createHash('sha512')
      .update(PROTOCOL_ID, 'utf8')
      .update(Buffer.of(0))
      .update(role, 'utf8')
      .update(Buffer.of(0))
      .update(spkiHash)
      .update(exporter)
      .digest(),
  );
}

/** SNP ATTESTATION_REPORT: REPORT_DATA at 0x50. */
const SNP_REPORT_DATA_OFFSET = 0x50;
/** TDX quote: 48-byte header, then the TD report body whose REPORT_DATA is at 520. */
const TDX_HEADER_SIZE = 48;
const TDX_BODY_REPORT_DATA_OFFSET = 520;
/** v5 quotes put a 6-byte descriptor (u16 body type, u32 body size) before the body. */
const TDX_V5_DESCRIPTOR_SIZE = 6;

/**
 * REPORT_DATA as the raw evidence claims it, read before any signature is checked, so evidence
 * bound to another connection is refused as such (and cheaply). The verifier's claims are compared
 * again afterwards. Undefined when the bytes are too short to say; the verifier then reports why.
 */
export function peekReportData(report: Uint8Array): Uint8Array | undefined {
  const format = detectFormat(report);
  let offset: number;
  if (format === 'sev-snp') offset = SNP_REPORT_DATA_OFFSET;
  else if (format === 'tdx') {
    const version = report[0]! | (report[1]! << 8);
    if (version === 4) offset = TDX_HEADER_SIZE + TDX_BODY_REPORT_DATA_OFFSET;
    else if (version === 5) offset = TDX_HEADER_SIZE + TDX_V5_DESCRIPTOR_SIZE + TDX_BODY_REPORT_DATA_OFFSET;
    else return undefined;
  } else return undefined;
  if (report.length < offset + REPORT_DATA_SIZE) return undefined;
  return report.subarray(offset, offset + REPORT_DATA_SIZE);
}
