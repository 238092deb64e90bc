/**
 * AttestedChannel: the application's view of an attested-channel/1 connection, a Duplex that
 * carries DATA frames over the TLS socket once the session (session.ts) says the channel is open.
 */
import { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { AttestationError } from '../errors.js';
import type { Policy } from '../evidence/policy.js';
import type {
  Claims,
  CollateralClient,
  CollateralFetchOptions,
  EvidenceProvider,
  TrustAnchors,
} from '../evidence/types.js';
import type { TlsIdentity } from './identity.js';

export type Role = 'client' | 'server';

/** How a side appraises the peer's evidence (passed to verifyEvidence). */
export interface ChannelVerifyOptions {
  policy?: Policy;
  trustAnchors?: TrustAnchors;
  /** Time for certificate, CRL and collateral checks. Default: the wall clock at each verification. */
  now?: Date;
  check?: (claims: Claims) => boolean | undefined | Promise<boolean | undefined>;
  offline?: boolean;
  kds?: CollateralFetchOptions | CollateralClient;
  pcs?: CollateralFetchOptions | CollateralClient;
}

/** Options both ends share. */
export interface ChannelOptions {
  /** Produces this side's evidence when the peer asks for it. */
  evidence?: EvidenceProvider;
  /** When set, the peer must attest; its evidence is appraised with these options. */
  verify?: ChannelVerifyOptions;
  /** Whole TLS handshake plus attestation, and each re-attestation, in ms. Default 30 000. */
  timeout?: number;
  /** Re-attest the peer every this many ms after open (needs `verify`). Default: never. */
  reattestEvery?: number;
  /** Largest control-frame payload accepted, bytes. Default 1 MiB. */
  maxControlPayload?: number;
}

export const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * A Duplex that only ever carries attested bytes. Obtained from attestedConnect() or an attested
 * server's 'channel' event, i.e. already open: the peer's evidence (if asked for) is verified.
 */
export class AttestedChannel extends Duplex {
  readonly role: Role;
  readonly socket: TLSSocket;
  #peer: Claims | undefined;

  /** @internal Channels are made by attestedConnect() and createAttestedServer(). */
  constructor(socket: TLSSocket, role: Role) {
    super({ allowHalfOpen: true });
    this.socket = socket;
    this.role = role;
  }

  /** The peer's verified claims; undefined when this side did not ask the peer to attest. */
  get peer(): Claims | undefined {
    return this.#peer;
  }

  /** Asks the peer for fresh evidence on this connection; resolves with its verified claims. */
  reattest(): Promise<Claims> {
    return Promise.reject(new AttestationError('ERR_INVALID_ARGUMENT', 'not implemented yet'));
  }

  /** Like net.Socket#setTimeout: 'timeout' is emitted after `ms` of inactivity (0 disables). */
  setTimeout(ms: number, callback?: () => void): this {
    void ms;
    void callback;
    return this;
  }

  override _read(): void {}
}

export type { TlsIdentity };
