/**
 * The TLS identity of one end of an attested channel: an ECDSA P-256 key and a self-signed
 * certificate around it. Nobody checks this certificate against a CA; what makes it trustworthy is
 * that the hash of its SPKI goes into the binder, so hardware evidence vouches for the key.
 */
import {
  createPublicKey,
  constants as cryptoConstants,
  generateKeyPairSync,
  KeyObject,
  randomBytes,
} from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { AttestationError } from '../errors.js';
import { equalBytes } from '../evidence/bytes.js';
import { Lru } from '../evidence/lru.js';
import { buildSelfSignedCertificate } from '../evidence/x509/build.js';
import { certificateSpki, parseCertificate } from '../evidence/x509/cert.js';
import { derToPem } from '../evidence/x509/pem.js';
import { ChainEncoder } from './cmw.js';

export interface TlsIdentity {
  /** Private key (ECDSA P-256). */
  readonly key: KeyObject;
  /** The certificate, DER. */
  readonly cert: Uint8Array;
  /** SubjectPublicKeyInfo of the certificate, DER (what the binder hashes). */
  readonly spki: Uint8Array;
  /** PEM forms, as node:tls wants them. */
  readonly keyPem: string;
  readonly certPem: string;
}

export interface CreateTlsIdentityOptions {
  /** Subject common name (default "attested-channel"). It carries no trust. */
  commonName?: string;
  /** Start of validity (default: one hour before now, to tolerate skewed peer clocks). */
  notBefore?: Date;
  /** Lifetime in ms (default one year). */
  lifetimeMs?: number;
}

export function createTlsIdentity(options: CreateTlsIdentityOptions = {}): TlsIdentity {
  if (typeof options !== 'object' || options === null)
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'options must be an object');
  const notBefore = options.notBefore ?? new Date(Date.now() - 3_600_000);
  if (!(notBefore instanceof Date && Number.isFinite(notBefore.getTime())))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'notBefore must be a valid Date');
  if (options.commonName !== undefined && typeof options.commonName !== 'string')
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'commonName must be a string');
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const lifetime = options.lifetimeMs ?? 365 * 24 * 3_600_000;
  if (!(Number.isFinite(lifetime) && lifetime > 0))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'lifetimeMs must be a positive number');
  const serial = randomBytes(16);
  // A positive INTEGER in minimal form: top bit clear, first byte non-zero.
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  const { spki, pkcs8 } = p256Encodings(privateKey);
  const cert = buildSelfSignedCertificate({
    commonName: options.commonName ?? 'attested-channel',
    serial,
    notBefore,
    notAfter: new Date(notBefore.getTime() + lifetime),
    spki,
    signingKey: privateKey,
  });
  // Built here around this very key, so identityFrom's checks (a parse and two key exports, ~1 ms
  // on Node 20) would only prove what the lines above did; mutual channels make one per connection.
  return new OwnIdentity(privateKey, cert, spki, derToPem(pkcs8, 'PRIVATE KEY'));
}

/**
 * DER of a P-256 SubjectPublicKeyInfo (RFC 5480 §2) up to the uncompressed point's coordinates,
 * and of a PKCS #8 PrivateKeyInfo (RFC 5208) around the RFC 5915 ECPrivateKey as OpenSSL writes
 * it (the curve named outside, the public point inside) up to the private scalar, then to the point.
 */
const P256_SPKI_HEAD = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d03010703420004', 'hex');
const P256_PKCS8_HEAD = Buffer.from(
  '308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420',
  'hex',
);
const P256_PKCS8_POINT = Buffer.from('a14403420004', 'hex');

/**
 * The SPKI and PKCS #8 DER of a P-256 key, byte for byte what KeyObject#export() gives
 * (test/channel/identity.test.ts), put together from its JWK: OpenSSL 3's encoders, which
 * export() uses for DER and PEM, take ~0.1 ms a call, the JWK export a few µs.
 */
function p256Encodings(key: KeyObject): { spki: Uint8Array; pkcs8: Uint8Array } {
  const jwk = key.export({ format: 'jwk' });
  const [x, y, d] = [jwk.x, jwk.y, jwk.d].map((v) => Buffer.from(v ?? '', 'base64url'));
  // Node pads JWK coordinates to the field size; anything else is not a key this can frame.
  if (jwk.crv !== 'P-256' || x!.length !== 32 || y!.length !== 32 || d!.length !== 32)
    return {
      spki: new Uint8Array(createPublicKey(key).export({ format: 'der', type: 'spki' })),
      pkcs8: new Uint8Array(key.export({ format: 'der', type: 'pkcs8' })),
    };
  return {
    spki: new Uint8Array(Buffer.concat([P256_SPKI_HEAD, x!, y!])),
    pkcs8: new Uint8Array(Buffer.concat([P256_PKCS8_HEAD, d!, P256_PKCS8_POINT, x!, y!])),
  };
}

/**
 * Refuses what is not shaped like a TlsIdentity (a string, a key alone, a copy missing its PEM
 * forms) when the options are read, not later inside node:tls where it would surface as a
 * closed connection.
 */
export function checkIdentity(identity: unknown, who: string): asserts identity is TlsIdentity {
  const i = identity as Partial<Record<keyof TlsIdentity, unknown>> | null;
  if (
    typeof i !== 'object' ||
    i === null ||
    !(i.key instanceof KeyObject && i.key.type === 'private') ||
    !(i.cert instanceof Uint8Array) ||
    !(i.spki instanceof Uint8Array) ||
    typeof i.keyPem !== 'string' ||
    typeof i.certPem !== 'string'
  )
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      `${who}: identity must be a TlsIdentity (from createTlsIdentity() or identityFrom())`,
    );
}

/** Wraps an existing key and certificate (the certificate's key must be the private key's). */
export function identityFrom(key: KeyObject, cert: Uint8Array): TlsIdentity {
  if (!(key instanceof KeyObject) || key.type !== 'private')
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'identity key must be a private key');
  if (!(cert instanceof Uint8Array))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'identity certificate must be a Uint8Array (DER)');
  parseCertificate(cert, 'ERR_INVALID_ARGUMENT');
  // Byte for byte as in the certificate: what a peer hashes into the binder (protocol.md §5).
  const spki = certificateSpki(cert, 'ERR_INVALID_ARGUMENT');
  const own = new Uint8Array(createPublicKey(key).export({ format: 'der', type: 'spki' }));
  if (!equalBytes(spki, own))
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      'identity certificate does not hold the public key of the key',
    );
  return new OwnIdentity(key, cert, spki);
}

/**
 * The identities createTlsIdentity() and identityFrom() return. Each keeps the node:tls contexts
 * made from it, one per role, so connections reuse them: building a context parses the key and
 * certificate again (~0.13 ms). They live and die with the identity (no process-wide table).
 */
class OwnIdentity implements TlsIdentity {
  readonly keyPem: string;
  readonly certPem: string;
  #client: SecureContext | undefined;
  #server: SecureContext | undefined;
  /**
   * Digests (hex) of the last PRODUCED_DIGESTS reports this side produced bound to this key, the
   * only ones it answers key proofs for (docs/protocol.md §4.7). Made on first use.
   */
  #produced: Lru<string, true> | undefined;
  /**
   * The encoding of the last certificate chain sent with evidence under this identity: a client
   * that keeps its identity (an HTTP agent does) sends its provider's chain on every connection,
   * and re-encoding it cost ~55 µs each (PEM parsed, checked and rebuilt). Made on first use.
   */
  #chains: ChainEncoder | undefined;

  /** The chain encoder of this identity (undefined for any other object: nowhere to keep one). */
  static chainsOf(identity: TlsIdentity): ChainEncoder | undefined {
    if (!(#chains in identity)) return undefined;
    identity.#chains ??= new ChainEncoder();
    return identity.#chains;
  }

  /** Notes a report produced for a binder over this identity's SPKI (any other object: nowhere to keep it). */
  static rememberProduced(identity: TlsIdentity, digest: string): void {
    if (!(#produced in identity)) return;
    identity.#produced ??= new Lru(PRODUCED_DIGESTS);
    identity.#produced.set(digest, true);
  }

  static produced(identity: TlsIdentity, digest: string): boolean {
    return #produced in identity && identity.#produced?.get(digest) === true;
  }

  constructor(
    readonly key: KeyObject,
    readonly cert: Uint8Array,
    readonly spki: Uint8Array,
    keyPem?: string,
  ) {
    this.keyPem = keyPem ?? key.export({ format: 'pem', type: 'pkcs8' }).toString();
    this.certPem = derToPem(cert);
  }

  static contextOf(identity: TlsIdentity, role: 'client' | 'server'): SecureContext {
    // Any other object of the TlsIdentity shape (a copy, a literal) has nowhere to keep one.
    if (!(#client in identity)) return contextFrom(identity, role);
    if (role === 'client') {
      identity.#client ??= contextFrom(identity, role);
      return identity.#client;
    }
    identity.#server ??= contextFrom(identity, role);
    return identity.#server;
  }
}

/**
 * Reports per identity whose digests are kept for key proofs (about 100 bytes each): a returning
 * client names the last report it verified, so a server answers the clients among its last this
 * many connections; older ones get new evidence.
 */
export const PRODUCED_DIGESTS = 4096;

/** @internal Notes that this side produced the report of digest `digest` (hex) for this identity. */
export function rememberProduced(identity: TlsIdentity, digest: string): void {
  OwnIdentity.rememberProduced(identity, digest);
}

/**
 * @internal Where the chains sent under this identity are encoded: the identity's own encoder
 * (a side that serves many connections, the server, passes its own instead).
 */
export function chainsOf(identity: TlsIdentity): ChainEncoder | undefined {
  return OwnIdentity.chainsOf(identity);
}

/** @internal Whether this side produced the report of digest `digest` (hex) for this identity. */
export function producedFor(identity: TlsIdentity, digest: string): boolean {
  return OwnIdentity.produced(identity, digest);
}

function contextFrom(identity: TlsIdentity, role: 'client' | 'server'): SecureContext {
  return createSecureContext({
    key: identity.keyPem,
    cert: identity.certPem,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    // node:tls cannot turn TLS 1.3 tickets off; with NO_TICKET they are stateful, and as there is
    // no session cache behind them nothing can resume. The channel also refuses isSessionReused().
    ...(role === 'server' ? { secureOptions: cryptoConstants.SSL_OP_NO_TICKET } : {}),
  });
}

/**
 * A client that does not attest presents no certificate: every such connection shares this one
 * context. Made once when the module loads and never changed (a constant, not a cache).
 */
const ANONYMOUS_CLIENT: SecureContext = createSecureContext({ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });

/**
 * The node:tls context of one end: TLS 1.3 only, with this identity's key and certificate (a
 * client that does not attest presents none). An identity from createTlsIdentity() or
 * identityFrom() makes each of its two contexts once and keeps it; any other TlsIdentity-shaped
 * object gets a new context per call.
 */
export function secureContextFor(
  identity: TlsIdentity | undefined,
  role: 'client' | 'server',
): SecureContext {
  if (identity === undefined) {
    if (role === 'server')
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'a server needs a TLS identity');
    return ANONYMOUS_CLIENT;
  }
  return OwnIdentity.contextOf(identity, role);
}
