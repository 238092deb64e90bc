/** combine(): the hardware provider's evidence with the vTPM's beside it, for the same binder. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { combine } from '../../src/evidence/providers/combine.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import type { TpmQuoteEvidence, TpmQuoteProvider } from '../../src/evidence/providers/tpm-quote.js';

const DIR = new URL('../fixtures/gce-vtpm/go-tpm-tools__gce-cos-85-nonce9009/', import.meta.url);
const file = (n: string) => new Uint8Array(readFileSync(new URL(n, DIR)));
const RD = new Uint8Array(64).fill(6);

function fakeVtpm(withCert: boolean, seen: Uint8Array[] = []): TpmQuoteProvider {
  return {
    format: 'tpm',
    async getEvidence(reportData): Promise<TpmQuoteEvidence> {
      seen.push(reportData);
      return {
        ...(withCert ? { akCert: file('ak-cert.der') } : {}),
        akPublic: file('ak-public.tpmt'),
        tpm: { quote: file('quote-sha256.msg'), signature: file('quote-sha256.sig'), pcrs: {} },
      };
    },
  };
}

describe('combine()', () => {
  it('asks both providers for the same binder and puts the vTPM evidence under vtpm', async () => {
    const seen: Uint8Array[] = [];
    const p = combine(simulated.snp(), fakeVtpm(true, seen));
    expect(p.format).toBe('sev-snp');
    const ev = await p.getEvidence(RD);
    expect(seen).toEqual([RD]);
    expect(ev.vtpm?.akCert).toBeDefined();
    expect(ev.report.length).toBe(0x4a0);
  });

  it('a vTPM provider that sends no AK certificate is ERR_PROVIDER_FAILED', async () => {
    await expect(combine(simulated.snp(), fakeVtpm(false)).getEvidence(RD)).rejects.toMatchObject({
      code: 'ERR_PROVIDER_FAILED',
    });
  });

  it('refuses arguments that are not providers', () => {
    expect(() => combine(simulated.snp(), simulated.snp() as never)).toThrow(/TPM quote provider/);
    expect(() => combine({} as never, fakeVtpm(true))).toThrow(/two evidence providers/);
  });
});
