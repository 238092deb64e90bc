/**
 * One attester, two sources of evidence (issue 13): on Google Cloud the hardware report (SNP or
 * TDX, through configfs-tsm) binds the channel, and the vTPM's quote, AK certificate and event log
 * say what booted. combine() asks both for evidence bound to the same 64-byte binder and hands
 * the verifier one EvidenceInput, which the channel sends as one CMW collection.
 */
import { AttestationError } from '../../errors.js';
import type { EvidenceInput, EvidenceProvider } from '../types.js';
import type { TpmQuoteProvider } from './tpm-quote.js';

/**
 * Combines a hardware provider and a vTPM provider (gceVtpm()). The result has the hardware
 * provider's format; its evidence is the hardware evidence with the vTPM's as `vtpm`.
 * Rejects with ERR_PROVIDER_FAILED when the vTPM sent no AK certificate (nothing would vouch for
 * its key) or either provider fails.
 */
export function combine(hardware: EvidenceProvider, vtpm: TpmQuoteProvider): EvidenceProvider {
  if (typeof hardware?.getEvidence !== 'function' || typeof vtpm?.getEvidence !== 'function')
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'combine() takes two evidence providers');
  if (vtpm.format !== 'tpm')
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      'combine(): the second provider must be a TPM quote provider',
    );
  return {
    format: hardware.format,
    async getEvidence(reportData, options = {}): Promise<EvidenceInput> {
      // One after the other: the two may share a device queue, and a failure of the first spares the second.
      const ev = await hardware.getEvidence(reportData, options);
      const t = await vtpm.getEvidence(reportData, options);
      if (!t.akCert)
        throw new AttestationError(
          'ERR_PROVIDER_FAILED',
          'combine(): the vTPM provider returned no AK certificate (give akCertNvIndex, or use gceVtpm())',
        );
      return {
        ...ev,
        vtpm: {
          akCert: t.akCert,
          akPublic: t.akPublic,
          tpm: t.tpm,
          ...(t.eventLog ? { eventLog: t.eventLog } : {}),
        },
      };
    },
  };
}
