/**
 * The TLS identity of one end of an attested channel: an ECDSA P-256 key and a self-signed
 * certificate around it. Nobody checks this certificate against a CA; what makes it trustworthy is
 * that the hash of its SPKI goes into the binder, so hardware evidence vouches for the key.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { AttestationError } from '../errors.js';
import { equalBytes } from '../evidence/bytes.js';
import { buildCertificate, derToPem, parseCertificate } from '../evidence/x509.js';

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
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const notBefore = options.notBefore ?? new Date(Date.now() - 3_600_000);
  const lifetime = options.lifetimeMs ?? 365 * 24 * 3_600_000;
  if (!(Number.isFinite(lifetime) && lifetime > 0))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'lifetimeMs must be a positive number');
  const name: Array<['CN', string]> = [['CN', options.commonName ?? 'attested-channel']];
  const serial = randomBytes(16);
  // A positive INTEGER in minimal form: top bit clear, first byte non-zero.
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  const cert = buildCertificate({
    subject: name,
    issuer: name,
    serial,
    notBefore,
    notAfter: new Date(notBefore.getTime() + lifetime),
    publicKey,
    signingKey: privateKey,
    algorithm: 'ecdsa-sha256',
  });
  return identityFrom(privateKey, cert);
}

/** Wraps an existing key and certificate (the certificate's key must be the private key's). */
export function identityFrom(key: KeyObject, cert: Uint8Array): TlsIdentity {
  if (key.type !== 'private')
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'identity key must be a private key');
  const parsed = parseCertificate(cert, 'ERR_INVALID_ARGUMENT');
  const spki = new Uint8Array(parsed.publicKey.export({ format: 'der', type: 'spki' }));
  const own = new Uint8Array(createPublicKey(key).export({ format: 'der', type: 'spki' }));
  if (!equalBytes(spki, own))
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      'identity certificate does not hold the public key of the key',
    );
  return {
    key,
    cert,
    spki,
    keyPem: key.export({ format: 'pem', type: 'pkcs8' }).toString(),
    certPem: derToPem(cert),
  };
}
