/**
 * The embedded simulated intermediates (SIMULATED_INTERMEDIATES) are what the simulators' issuers
 * make today: equal to-be-signed parts (the signatures are randomised), and each verifies under
 * its embedded issuer. Regenerate with `npx tsx scripts/simulated-certs.ts` when this fails.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { simulated } from '../../src/evidence/providers/simulated.js';
import {
  issueAmdIntermediates,
  SNP_PRODUCTS,
  simulatedAmdChain,
} from '../../src/evidence/providers/simulated-snp.js';
import { issueIntelIntermediates, simulatedIntelChain } from '../../src/evidence/providers/simulated-tdx.js';
import { SIMULATED_ROOT_SHA256 } from '../../src/evidence/simulated-marker.js';
import { parseCertificate } from '../../src/evidence/x509/cert.js';

const tbsHex = (der: Uint8Array) => Buffer.from(parseCertificate(der).tbs).toString('hex');

describe('embedded simulated intermediates', () => {
  for (const product of SNP_PRODUCTS)
    it(`${product}: ASK and ASVK as issueAmdIntermediates makes them`, () => {
      const embedded = simulatedAmdChain(product);
      const issued = issueAmdIntermediates(product);
      expect(tbsHex(embedded.ask)).toBe(tbsHex(issued.ask));
      expect(tbsHex(embedded.asvk)).toBe(tbsHex(issued.asvk));
      expect(Buffer.from(embedded.ask).equals(Buffer.from(issued.ask))).toBe(false); // fresh signature
    });

  it('Intel: PCK Platform CA, PCK and TCB Signing as issueIntelIntermediates makes them', () => {
    const embedded = simulatedIntelChain();
    const issued = issueIntelIntermediates();
    for (const name of ['platformCa', 'pck', 'tcbSigning'] as const)
      expect(tbsHex(embedded[name]), name).toBe(tbsHex(issued[name]));
  });

  it('SIMULATED_ROOT_SHA256 (what the CLI recognises simulated roots by) are the embedded roots', () => {
    const anchors = simulated.trustAnchors();
    const hashes = [...anchors.amdArks, ...anchors.intelRoots].map((d) =>
      createHash('sha256').update(d).digest('hex'),
    );
    expect(hashes).toEqual(SIMULATED_ROOT_SHA256);
  });

  it('each call gives a fresh copy: a caller that writes into one does not change the next', () => {
    const a = simulatedAmdChain('Genoa');
    a.ask.fill(0);
    expect(simulatedAmdChain('Genoa').ask[0]).toBe(0x30);
    const i = simulatedIntelChain();
    i.pck.fill(0);
    expect(simulatedIntelChain().pck[0]).toBe(0x30);
  });
});
