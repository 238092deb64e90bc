/**
 * The Google Cloud vTPM capture both explain tests read (go-tpm-tools' COS 85 VM, nonce 9009;
 * provenance in test/fixtures/gce-vtpm/README.md): its paths, the time it was valid at, and its
 * evidence as verifyGceVtpm() / verifyEvidence() take it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EVENTLOG_DIR } from '../eventlog/fixtures.js';

export const GCE = fileURLToPath(
  new URL('../fixtures/gce-vtpm/go-tpm-tools__gce-cos-85-nonce9009/', import.meta.url),
);
export const LOG = join(EVENTLOG_DIR, 'go-tpm-tools__gce-cos-85-nonce9009', 'eventlog.bin');
export const AT = new Date('2021-12-22T00:00:00Z');
export const file = (n: string) => new Uint8Array(readFileSync(join(GCE, n)));

/** The capture's evidence: AK certificate, quote, signature and PCRs, with its event log unless `log` is false. */
export function input(log = true) {
  return {
    akCert: file('ak-cert.der'),
    tpm: {
      quote: file('quote-sha256.msg'),
      signature: file('quote-sha256.sig'),
      pcrs: JSON.parse(readFileSync(join(GCE, 'pcrs.json'), 'utf8')),
    },
    ...(log ? { eventLog: { log: new Uint8Array(readFileSync(LOG)) } } : {}),
  };
}
