/** Channel binding of Azure evidence: the TPM quote's qualifyingData, and the HCL report's user-data. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { azureQuoteNonce, checkAzureBinding } from '../../src/evidence/azure/binding.js';
import { verifyAzure } from '../../src/evidence/verify.js';
import { thrownCode as code } from '../helpers/codes.js';
import { inputOf, loadFixture, optionsOf } from './fixtures.js';

const binder = Uint8Array.from({ length: 64 }, (_, i) => i);
// SHA-384(00 01 … 3f), computed independently (python3 hashlib).
const VECTOR =
  '9f2c9eb7116b3d7a4ba84a74a4d4eff8a5efcf54b6d7b662693c38577914c73a214766f0a175339bb0895a863824fc0a';
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function claims(extraData: string, userData: string | null) {
  return {
    userData,
    tpm: { extraData, pcrs: {}, clock: 0, resetCount: 0, firmwareVersion: '00', akSha256: '00' },
  };
}

describe('Azure channel binding', () => {
  it('qualifyingData = SHA-384(binder): the pinned vector', () => {
    expect(hex(azureQuoteNonce(binder))).toBe(VECTOR);
  });

  it("docs/protocol.md §6.1's vectors: both binders, quote and user-data", () => {
    const text = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
    const server = Buffer.from(
      'c2e4a25be9e3cef1ff2642b6ace7900803b768d227f709d90221ff35a566792a8ed88f60a379f40a08ddedb7e990934114fb4518ff9290dd81055cdf68f528ab',
      'hex',
    );
    for (const b of [binder, new Uint8Array(server)]) {
      expect(text).toContain(`qualifyingData = ${hex(azureQuoteNonce(b))}`);
      expect(text).toContain(`user-data      = "${hex(b)}"`);
      const vec = hex(azureQuoteNonce(b));
      expect(checkAzureBinding(claims(vec, hex(b)), b, { requireReportBinding: true })).toBe('report');
    }
  });

  it('quote binding alone: "tpm-quote"; with user-data = binder as well: "report"', () => {
    expect(checkAzureBinding(claims(VECTOR, '0'.repeat(128)), binder)).toBe('tpm-quote');
    expect(checkAzureBinding(claims(VECTOR, null), binder)).toBe('tpm-quote');
    expect(checkAzureBinding(claims(VECTOR, hex(binder)), binder)).toBe('report');
    expect(checkAzureBinding(claims(VECTOR, hex(binder)), binder, { requireReportBinding: true })).toBe(
      'report',
    );
  });

  it('refused: another binder, a quote not bound (even with the report bound), report binding required but absent', () => {
    const other = Uint8Array.from(binder, (x) => x ^ 1);
    expect(code(() => checkAzureBinding(claims(VECTOR, null), other))).toBe('ERR_BINDING_MISMATCH');
    // A fresh report with a replayed quote: the PCRs would be stale, so it does not count.
    expect(code(() => checkAzureBinding(claims('00'.repeat(48), hex(binder)), binder))).toBe(
      'ERR_BINDING_MISMATCH',
    );
    // The raw binder as extraData (not its SHA-384) is not the binding either.
    expect(code(() => checkAzureBinding(claims(hex(binder), null), binder))).toBe('ERR_BINDING_MISMATCH');
    expect(code(() => checkAzureBinding(claims(VECTOR, null), binder, { requireReportBinding: true }))).toBe(
      'ERR_BINDING_MISMATCH',
    );
    expect(code(() => checkAzureBinding(claims(VECTOR, null), new Uint8Array(48)))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });

  it('real evidence: trustee evidence-v2 binds its 48-byte nonce in both extraData and user-data', async () => {
    // trustee's v2 convention puts the 48 bytes themselves in extraData and user-data (not this
    // library's SHA-384 rule), so the library's binding check refuses it for any 64-byte binder,
    // while its claims show both values.
    const fx = loadFixture('trustee__snp-evidence-v2');
    const c = await verifyAzure(inputOf(fx), optionsOf(fx));
    expect(c.userData?.startsWith(c.tpm.extraData)).toBe(true);
    const padded = new Uint8Array(64);
    padded.set(Buffer.from(c.tpm.extraData, 'hex'));
    expect(code(() => checkAzureBinding(c, padded))).toBe('ERR_BINDING_MISMATCH');
  });
});
