/**
 * The Intel SGX Root CA every PCK chain, TCB-signing chain and root CRL must end at. The DER is
 * embedded (never taken from the quote or the collateral) and its SHA-256 is checked against the
 * pinned value when this module loads, so a corrupted constant cannot silently change the anchor.
 * Intel's QVL sample data ships a different, synthetic root with the same subject (SHA-256
 * bf85a53f…): it is not this certificate and is refused like any other unknown root.
 */
import { createHash } from 'node:crypto';
import { AttestationError } from '../../errors.js';
import type { TrustAnchors } from '../types.js';
import { type ParsedCert, parseCertificate } from '../x509/cert.js';

/** SHA-256 of the DER of the production Intel SGX Root CA (CN=Intel SGX Root CA, O=Intel Corporation). */
export const INTEL_SGX_ROOT_CA_SHA256 = '44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3';

const INTEL_SGX_ROOT_CA_B64 =
  'MIICjzCCAjSgAwIBAgIUImUM1lqdNInzg7SVUr9QGzknBqwwCgYIKoZIzj0EAwIwaDEaMBgGA1UEAwwRSW50ZWwgU0dYIFJvb3Qg' +
  'Q0ExGjAYBgNVBAoMEUludGVsIENvcnBvcmF0aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJBgNVBAYT' +
  'AlVTMB4XDTE4MDUyMTEwNDUxMFoXDTQ5MTIzMTIzNTk1OVowaDEaMBgGA1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoM' +
  'EUludGVsIENvcnBvcmF0aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJBgNVBAYTAlVTMFkwEwYHKoZI' +
  'zj0CAQYIKoZIzj0DAQcDQgAEC6nEwMDIYZOj/iPWsCzaEKi71OiOSLRFhWGjbnBVJfVnkY4u3IjkDYYL0MxO4mqsyYjlBalTVYxF' +
  'P2sJBK5zlKOBuzCBuDAfBgNVHSMEGDAWgBQiZQzWWp00ifODtJVSv1AbOScGrDBSBgNVHR8ESzBJMEegRaBDhkFodHRwczovL2Nl' +
  'cnRpZmljYXRlcy50cnVzdGVkc2VydmljZXMuaW50ZWwuY29tL0ludGVsU0dYUm9vdENBLmRlcjAdBgNVHQ4EFgQUImUM1lqdNInz' +
  'g7SVUr9QGzknBqwwDgYDVR0PAQH/BAQDAgEGMBIGA1UdEwEB/wQIMAYBAf8CAQEwCgYIKoZIzj0EAwIDSQAwRgIhAOW/5QkR+S9C' +
  'iSDcNoowLuPRLsWGf/Yi7GSX94BgwTwgAiEA4J0lrHoMs+Xo5o/sX6O9QWxHRAvZUGOdRQ7cvqRXaqI=' +
  '';

export const INTEL_SGX_ROOT_CA_DER: Uint8Array = new Uint8Array(Buffer.from(INTEL_SGX_ROOT_CA_B64, 'base64'));

if (createHash('sha256').update(INTEL_SGX_ROOT_CA_DER).digest('hex') !== INTEL_SGX_ROOT_CA_SHA256)
  throw new Error('embedded Intel SGX Root CA does not match its pinned SHA-256');

/**
 * The roots a TDX verification trusts: the caller's intelRoots when given (they replace the
 * built-in root; that is how simulated evidence is trusted), else the pinned Intel root.
 */
export function intelRoots(anchors: TrustAnchors | undefined): ParsedCert[] {
  const given = anchors?.intelRoots;
  if (given === undefined) return [parseCertificate(INTEL_SGX_ROOT_CA_DER, 'ERR_INVALID_ARGUMENT')];
  if (!Array.isArray(given) || given.length === 0 || !given.every((d) => d instanceof Uint8Array))
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      'trustAnchors.intelRoots must be a non-empty list of DER certificates',
    );
  return given.map((d) => parseCertificate(d, 'ERR_INVALID_ARGUMENT'));
}
