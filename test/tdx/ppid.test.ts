/**
 * The PPID of a TDX quote's PCK certificate (Intel SGX PCK Certificate and CRL Profile: SGX
 * Extensions 1.2.840.113741.1.13.1, PPID at .1, an OCTET STRING of 16 bytes) and the policy
 * field that pins it, `tdx.ppids` / `azure.tdx.ppids`: read from the real PCK certificates of
 * test/fixtures (values cross-checked with `openssl asn1parse -strparse` on the extension, see
 * test/fixtures/tdx/README.md), matched, and refused when one nibble differs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import { parsePolicy } from '../../src/evidence/policy.js';
import { parseSgxExtensions } from '../../src/evidence/tdx/pck.js';
import { parseTdxQuote, splitPckChain } from '../../src/evidence/tdx/quote.js';
import type { TdxClaims } from '../../src/evidence/types.js';
import { verifyAzure, verifyEvidence } from '../../src/evidence/verify.js';
import { type ParsedCert, parseCertificate } from '../../src/evidence/x509/cert.js';
import { derInteger, derOctetString, derOid, derSequence } from '../../src/evidence/x509/der.js';
import { codeOf as azureCodeOf, inputOf, loadFixture, optionsOf } from '../azure/fixtures.js';
import { errorOf, loadVector, VECTOR_IDS } from './fixtures.js';

/** The PPID of each real vector's PCK certificate. */
const REAL_PPIDS: Record<string, string> = {
  automata__quote_v4_gcp_8000: '85d50af2ad61799ebce974b7b0978b46',
  'dcap-qvl__quote': '811dca2a26b952e85bb6448b097ba4fd',
  'dcap-qvl__quote_sample_hex': 'de5d028ab970ae67f36c3da32d5ee27e',
  'go-tdx-guest__quote': '089ddfdb9c0359c82a3bc7719239574e',
  'go-tdx-guest__quote_cos113_ccel': '8ebf889447fd60ab1913348582eb509e',
  'go-tdx-guest__quote_v5': '2734b654f553596897eaadfb5667a954',
  trustee__quote_v4_debug: 'df4c32a9d8d86009aaf380ec43cfcefb',
};
/** The PPID of the PCK certificate in the TD quote of test/fixtures/azure/trustee__tdx-hcl-report. */
const AZURE_PPID = 'a1b0718ffa8e6d55fdaf5eceb03f3c72';

const SGX = '1.2.840.113741.1.13.1';
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function pckLeaf(quote: Uint8Array): ParsedCert {
  let ders: Uint8Array[] = [];
  parseTdxQuote(quote, (pem) => {
    ders = splitPckChain(pem);
    return ders;
  });
  return parseCertificate(ders[0]!);
}

/** Flips the nibble at `i` (0-31) of a hex PPID. */
function flipNibble(ppid: string, i: number): string {
  const c = (Number.parseInt(ppid[i]!, 16) ^ 0x1).toString(16);
  return ppid.slice(0, i) + c + ppid.slice(i + 1);
}

/** An SGX extension value with the entries the parser requires, PPID as given (null: none). */
function sgxExtension(ppid: Uint8Array | null, options: { tag?: number; twice?: boolean } = {}): Uint8Array {
  const pair = (suffix: string, value: Uint8Array) => derSequence(derOid(`${SGX}.${suffix}`), value);
  const tcb = derSequence(
    ...Array.from({ length: 16 }, (_, i) => pair(`2.${i + 1}`, derInteger(i))),
    pair('2.17', derInteger(11)),
    pair('2.18', derOctetString(new Uint8Array(16))),
  );
  const ppidEntry = (p: Uint8Array) => {
    const v = derOctetString(p);
    if (options.tag !== undefined) v[0] = options.tag;
    return pair('1', v);
  };
  const entries = [
    ...(ppid === null ? [] : [ppidEntry(ppid)]),
    ...(ppid !== null && options.twice ? [ppidEntry(ppid)] : []),
    pair('2', tcb),
    pair('3', derOctetString(new Uint8Array(2))),
    pair('4', derOctetString(Uint8Array.from([0x90, 0xc0, 0x6f, 0, 0, 0]))),
  ];
  return derSequence(...entries);
}

/** parseSgxExtensions reads only the certificate's extension map. */
function certWith(value: Uint8Array): ParsedCert {
  return { extensions: new Map([[SGX, { critical: false, value }]]) } as unknown as ParsedCert;
}

function thrown(fn: () => unknown): AttestationError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AttestationError) return err;
    throw err;
  }
  throw new Error('expected an AttestationError');
}

describe('PPID in the PCK certificate', () => {
  it('is read from the PCK certificate of every real TDX vector', () => {
    expect(Object.keys(REAL_PPIDS).sort()).toEqual(VECTOR_IDS);
    for (const id of VECTOR_IDS)
      expect(hex(parseSgxExtensions(pckLeaf(loadVector(id).quote)).ppid), id).toBe(REAL_PPIDS[id]);
    const azure = loadFixture('trustee__tdx-hcl-report').files.get('td-quote.bin')!;
    expect(hex(parseSgxExtensions(pckLeaf(azure)).ppid)).toBe(AZURE_PPID);
  });

  it('property: any 16 bytes are read back as the PPID', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (ppid) => {
        expect(hex(parseSgxExtensions(certWith(sgxExtension(ppid))).ppid)).toBe(hex(ppid));
      }),
    );
  });

  it('property: a PPID that is not 16 bytes is malformed', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 40 }).filter((b) => b.length !== 16),
        (ppid) => {
          const err = thrown(() => parseSgxExtensions(certWith(sgxExtension(ppid))));
          expect(err.code).toBe('ERR_EVIDENCE_MALFORMED');
          expect(err.message).toMatch(/PPID/);
        },
      ),
    );
  });

  it('property: a PPID that is not an OCTET STRING is malformed', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0x1e }).filter((t) => t !== 0x04),
        (tag) => {
          const err = thrown(() => parseSgxExtensions(certWith(sgxExtension(new Uint8Array(16), { tag }))));
          expect(err.code).toBe('ERR_EVIDENCE_MALFORMED');
        },
      ),
    );
  });

  it('an extension without a PPID, or with two, is malformed', () => {
    const none = thrown(() => parseSgxExtensions(certWith(sgxExtension(null))));
    expect(none.code).toBe('ERR_EVIDENCE_MALFORMED');
    expect(none.message).toMatch(/PPID missing/);
    const twice = thrown(() =>
      parseSgxExtensions(certWith(sgxExtension(new Uint8Array(16), { twice: true }))),
    );
    expect(twice.code).toBe('ERR_EVIDENCE_MALFORMED');
    expect(twice.message).toMatch(/duplicate/);
  });
});

describe('policy tdx.ppids', () => {
  const v = loadVector('dcap-qvl__quote');
  const ppid = REAL_PPIDS['dcap-qvl__quote']!;
  const run = (tdx: Record<string, unknown>) =>
    verifyEvidence(
      { report: v.quote, collateral: v.collateral! },
      { now: v.now, offline: true, policy: { tdx } },
    ) as Promise<TdxClaims>;

  it('parses as a list of 32-hex-character PPIDs, lower-cased', () => {
    expect(parsePolicy({ tdx: { ppids: [ppid.toUpperCase()] } }).tdx?.ppids).toEqual([ppid]);
    for (const bad of [[ppid.slice(1)], [`${ppid}00`], ['zz'.repeat(16)], ppid, [16]])
      expect(thrown(() => parsePolicy({ tdx: { ppids: bad } })).code).toBe('ERR_POLICY_INVALID');
    expect(thrown(() => parsePolicy({ azure: { tdx: { ppids: [ppid.slice(2)] } } })).code).toBe(
      'ERR_POLICY_INVALID',
    );
  });

  it('the claims carry the PPID; a policy listing it accepts the real quote', async () => {
    expect((await run({})).ppid).toBe(ppid);
    expect((await run({ ppids: [ppid] })).ppid).toBe(ppid);
    expect((await run({ ppids: ['00'.repeat(16), ppid.toUpperCase()] })).ppid).toBe(ppid);
  });

  it('property: a PPID with one nibble flipped is refused (ERR_EVIDENCE_POLICY, tdx.ppids)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 31 }), async (i) => {
        const err = await errorOf(() => run({ ppids: [flipNibble(ppid, i)] }));
        expect(err.code).toBe('ERR_EVIDENCE_POLICY');
        expect(err.details.field).toBe('tdx.ppids');
      }),
      { numRuns: 32 },
    );
  });

  it('an empty list admits no platform; another vector of the same FMSPC is not this platform', async () => {
    expect((await errorOf(() => run({ ppids: [] }))).details.field).toBe('tdx.ppids');
    const other = REAL_PPIDS['dcap-qvl__quote_sample_hex']!;
    expect((await errorOf(() => run({ ppids: [other] }))).details.field).toBe('tdx.ppids');
  });

  it('under Azure: azure.tdx.ppids pins the platform of the TD quote', async () => {
    const fx = loadFixture('trustee__tdx-hcl-report');
    const base = optionsOf(fx);
    const tdx = base.policy!.azure!.tdx!;
    const withPpids = (ppids: string[]) => ({ ...base, policy: { azure: { tdx: { ...tdx, ppids } } } });
    const claims = await verifyAzure(inputOf(fx), withPpids([AZURE_PPID]));
    expect(claims.format).toBe('azure-tdx');
    expect((claims as unknown as TdxClaims).ppid).toBe(AZURE_PPID);
    expect(await azureCodeOf(verifyAzure(inputOf(fx), withPpids([flipNibble(AZURE_PPID, 31)])))).toBe(
      'ERR_EVIDENCE_POLICY',
    );
  });
});
