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
import { hash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { AttestationError } from '../errors.js';
import { CONTEXT_SIZE } from './frames.js';
import type { Role } from './options.js';

export const PROTOCOL_ID = 'attested-channel/1';

/**
 * The ALPN list [PROTOCOL_ID] in its wire form (a length byte, then the name), for
 * `ALPNProtocols`. A DataView because of how Node copies the list into each TLSSocket (lib/tls.js
 * convertALPNProtocols): strings or a Uint8Array are copied into its shared 8 KiB Buffer pool,
 * and the socket keeps that 19-byte slice, which keeps the whole slab alive as long as the
 * connection lives (0.4 slabs, ~3 KiB, per held client channel in a heap snapshot of 2 000);
 * any other view is copied into an ArrayBuffer of its own. Node only reads it.
 */
export const ALPN_PROTOCOLS: DataView = new DataView(
  Uint8Array.from([PROTOCOL_ID.length, ...Buffer.from(PROTOCOL_ID, 'latin1')]).buffer,
);
export const EXPORTER_LABEL_PREFIX = 'EXPORTER-attested-channel-v1-';
export const EXPORTER_LENGTH = 32;

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
  // One-shot hash() over one buffer: a Hash object and its updates cost ~10 µs more per binder.
  const head = role === 'client' ? CLIENT_HEAD : SERVER_HEAD;
  const input = Buffer.allocUnsafe(head.length + 32 + EXPORTER_LENGTH);
  head.copy(input, 0);
  hash('sha256', spki, 'buffer').copy(input, head.length);
  input.set(exporter, head.length + 32);
  return new Uint8Array(hash('sha512', input, 'buffer'));
}

/** "attested-channel/1" || 0x00 || R || 0x00, the constant start of the binder's input per role. */
const CLIENT_HEAD = Buffer.from(`${PROTOCOL_ID}\0client\0`, 'utf8');
const SERVER_HEAD = Buffer.from(`${PROTOCOL_ID}\0server\0`, 'utf8');

/**
 * What the binder needs of the TLS connection, checked once it is up: TLS 1.3 (the exporter of
 * RFC 8446 §7.5), this protocol's ALPN, and a full handshake (a resumed session would bind the
 * evidence to an older key exchange). A description of the first problem, or undefined.
 */
export function tlsProblem(socket: TLSSocket): string | undefined {
  return socket.getProtocol() !== 'TLSv1.3'
    ? `TLS version ${socket.getProtocol()} (only TLSv1.3 is allowed)`
    : socket.alpnProtocol !== PROTOCOL_ID
      ? `ALPN "${String(socket.alpnProtocol)}" (must be ${PROTOCOL_ID})`
      : socket.isSessionReused()
        ? 'a resumed TLS session (resumption is not allowed)'
        : undefined;
}
