/**
 * Launch measurements (SEV-SNP MEASUREMENT, TDX MRTD) of provider firmware and paravisors, each
 * with where the value comes from. Data only: explainClaims() looks a report's value up here to
 * say whose code it covers. A value here names a provider's image; it never pins the user's
 * workload (the same value is reported by every customer's VM on that image).
 *
 * Every value was read from a real report or quote in test/fixtures (the folder is given) whose
 * upstream origin is the `source`; test/explain/known-images.test.ts checks each against its
 * fixture. A provider ships new builds often, so this table is never complete: an unknown value
 * says "unknown image", not "untrusted image".
 */
import { AttestationError } from '../errors.js';

export interface KnownImage {
  /** The register: SEV-SNP MEASUREMENT or TDX MRTD. */
  register: 'measurement' | 'mrTd';
  /** Lowercase hex, 96 characters. */
  value: string;
  /** Whose code it is. */
  owner: 'Microsoft' | 'Google';
  /** What the value covers. */
  image: string;
  /** Where the value was published (repository, path, commit; licence). */
  source: string;
  /** The fixture folder (under test/fixtures) that holds the report, for the table's own test. */
  fixture: string;
}

const AZURE_SNP =
  "Azure confidential VM (SEV-SNP): Microsoft's paravisor (HCL) and UEFI at VMPL0, the same for every customer on this build";
const AZURE_TDX =
  "Azure confidential VM (TDX): Microsoft's paravisor (HCL) and TDVF in the L1 TD, the same for every customer on this build";

export const KNOWN_IMAGES: readonly KnownImage[] = Object.freeze([
  {
    register: 'measurement',
    value: '9ac48fcac8a2d88aeeff8d427ad4f2be0e3917c748a18bdf52cc317e7fe20308b459d5ef1a12e0c22944eb386d17c315',
    owner: 'Microsoft',
    image: AZURE_SNP,
    source:
      'confidential-containers/trustee deps/verifier/test_data/az-snp-vtpm/hcl-report.bin @ a9851d3d0a8f (Apache-2.0)',
    fixture: 'azure/trustee__snp-hcl-report',
  },
  {
    register: 'measurement',
    value: '6a063be9dd79f6371c842e480f8dc3b5c725961344e57130e88c5adf49e8f7f6c79b75a5eb77fc769959f4aeb2f9401e',
    owner: 'Microsoft',
    image: AZURE_SNP,
    source:
      'confidential-containers/trustee deps/verifier/test_data/az-snp-vtpm/evidence-v0.json @ 10db0c12039f (Apache-2.0)',
    fixture: 'azure/trustee__snp-evidence-v0',
  },
  {
    register: 'measurement',
    value: '5b0ce64ad1c1f6375dbda5f760b98526ca1bcf91b8195091afc28e7b024251d68fe32e05af34048d6607678cd23283ff',
    owner: 'Microsoft',
    image: AZURE_SNP,
    source:
      'confidential-containers/trustee deps/verifier/test_data/az-snp-vtpm/evidence-v2.json @ 258ea4acb7b9 (Apache-2.0)',
    fixture: 'azure/trustee__snp-evidence-v2',
  },
  {
    register: 'measurement',
    value: 'f57dc09a507c6ecd82369bffb600f0003792f4d99bc26e985ec0c266fc34faf3706faf814c9e61065768a6ff917c89ae',
    owner: 'Microsoft',
    image: AZURE_SNP,
    source:
      'confidential-containers/trustee deps/verifier/test_data/az-snp-vtpm/evidence-genoa (SNP report extracted from its HCL report; Apache-2.0)',
    fixture: 'snp/trustee__azure-genoa-v3',
  },
  {
    register: 'mrTd',
    value: '024a32b070383331181619fa387cb4d55d1e38879f989933055ccad5bc2db795d1737b66205949d15469dc8c1ba7ab7b',
    owner: 'Microsoft',
    image: AZURE_TDX,
    source:
      'confidential-containers/trustee deps/verifier/test_data/az-tdx-vtpm/td-quote.bin @ a9851d3d0a8f (Apache-2.0); the same MRTD is in edgelesssys/constellation test data (kinvolk/azure-cvm-tooling has a TDX HCL report of another build)',
    fixture: 'azure/trustee__tdx-hcl-report',
  },
  {
    register: 'mrTd',
    value: 'dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396c1d04231f94a',
    owner: 'Google',
    image:
      "Google Compute Engine C3 confidential VM (TDX): Google's TDVF firmware, the same for every customer on this build",
    source:
      'google/go-tdx-guest testing/testdata/ccel/cos-113-tdx-quote.dat @ fc0ee167f440 (Apache-2.0), a GCE C3 VM running Container-Optimized OS 113 (its CCEL log: google/go-eventlog testdata/eventlogs/ccel/cos-113-intel-tdx.bin)',
    fixture: 'tdx/go-tdx-guest__quote_cos113_ccel',
  },
]);

/** The entry for a register value, or undefined. */
export function knownImage(register: KnownImage['register'], value: string): KnownImage | undefined {
  if ((register !== 'measurement' && register !== 'mrTd') || typeof value !== 'string')
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      "knownImage: register must be 'measurement' or 'mrTd' and value a hex string",
    );
  const v = value.toLowerCase();
  return KNOWN_IMAGES.find((k) => k.register === register && k.value === v);
}
