/**
 * The format table: every evidence format the library reads, one entry each (format.ts says what
 * an entry holds), in the order policies and the channel's media types list them. Detection tries
 * them by `detectOrder`, so a format recognised by a header comes before one recognised by its
 * size alone. Adding a format: a folder under src/evidence/ whose format.ts exports its entry, and
 * one line here.
 */
import { AttestationError } from '../errors.js';
import { AZURE_SNP_FORMAT, AZURE_TDX_FORMAT } from './azure/format.js';
import type { EvidenceFormatSpec } from './format.js';
import { SNP_FORMAT } from './snp/format.js';
import { TDX_FORMAT } from './tdx/format.js';
import type { EvidenceFormat } from './types.js';

export const FORMATS: readonly EvidenceFormatSpec[] = Object.freeze([
  SNP_FORMAT,
  TDX_FORMAT,
  AZURE_SNP_FORMAT,
  AZURE_TDX_FORMAT,
]);

const DETECTION: readonly EvidenceFormatSpec[] = Object.freeze(
  [...FORMATS].sort((a, b) => a.detectOrder - b.detectOrder),
);

/** The format of a report (primary record), from its bytes; undefined when none recognises it. */
export function formatOf(report: Uint8Array): EvidenceFormatSpec | undefined {
  return DETECTION.find((f) => f.detect(report));
}

export function formatNamed(name: EvidenceFormat): EvidenceFormatSpec {
  const f = FORMATS.find((x) => x.name === name);
  if (!f) throw new AttestationError('ERR_INVALID_ARGUMENT', `unknown evidence format ${String(name)}`);
  return f;
}

/** The format whose report record has this media type. */
export function formatOfMediaType(mediaType: string): EvidenceFormatSpec | undefined {
  return FORMATS.find((f) => f.mediaType === mediaType);
}

/** Tells evidence formats apart by the report's first bytes (a TDX quote header, an SNP report's size). */
export function detectFormat(report: Uint8Array): EvidenceFormat | undefined {
  if (!(report instanceof Uint8Array))
    throw new AttestationError('ERR_INVALID_ARGUMENT', 'detectFormat: report must be a Uint8Array');
  return formatOf(report)?.name;
}

/** The REPORT_DATA a report claims (unverified: the channel compares it before any signature check). */
export function reportDataOf(report: Uint8Array): Uint8Array | undefined {
  return formatOf(report)?.reportDataOf(report);
}
