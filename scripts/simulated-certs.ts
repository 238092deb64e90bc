/**
 * Prints SIMULATED_INTERMEDIATES for src/evidence/providers/simulated-keys.ts: the simulated AMD
 * ASKs and ASVKs and the simulated Intel PCK Platform CA, PCK and TCB Signing certificates, issued
 * under the embedded roots with the embedded keys. Run it (npx tsx scripts/simulated-certs.ts) only
 * when the simulators' certificate contents change, and replace the block with its output;
 * test/providers/simulated-certs.test.ts fails until they match.
 */
import { issueAmdIntermediates, SNP_PRODUCTS } from '../src/evidence/providers/simulated-snp.js';
import { issueIntelIntermediates } from '../src/evidence/providers/simulated-tdx.js';
import { derToPem } from '../src/evidence/x509/pem.js';

const entries: Array<[string, Uint8Array]> = [];
for (const product of SNP_PRODUCTS) {
  const { ask, asvk } = issueAmdIntermediates(product);
  const p = product.toLowerCase();
  entries.push([`${p}Ask`, ask], [`${p}Asvk`, asvk]);
}
const intel = issueIntelIntermediates();
entries.push(
  ['intelPlatformCa', intel.platformCa],
  ['intelPck', intel.pck],
  ['intelTcbSigning', intel.tcbSigning],
);

const lines = ['export const SIMULATED_INTERMEDIATES = {'];
for (const [name, der] of entries) lines.push(`  ${name}: \`${derToPem(der).trimEnd()}\`,`);
lines.push('} as const;');
process.stdout.write(`${lines.join('\n')}\n`);
