/**
 * Issue 10 item 11: the AMD path's DER rules for every certificate and CRL of every vendor —
 * canonical DER (exact lengths at every level, zero unused bits in the signature BIT STRING) and
 * the outer signatureAlgorithm equal to the TBS one. The specific cases of the issue go through
 * verifyEvidence on a real TDX vector (each was accepted before the chain engine); the property
 * flips single bits of every certificate and CRL of test/fixtures/{snp,tdx,intel}.
 */
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import { equalBytes } from '../../src/evidence/bytes.js';
import { Lru } from '../../src/evidence/lru.js';
import { parseTdxQuote } from '../../src/evidence/tdx/quote.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { OID, type ParsedCert, parseCertificate } from '../../src/evidence/x509/cert.js';
import {
  type ChainProfile,
  type EncodingRules,
  verifyChain,
  verifyCrl,
} from '../../src/evidence/x509/chain.js';
import { readTlv } from '../../src/evidence/x509/der.js';
import { pemToDer } from '../../src/evidence/x509/pem.js';
import { allFixtures, SNP_DIR } from '../snp/fixtures.js';
import { INTEL_DIR, loadVector, VECTOR_IDS } from '../tdx/fixtures.js';

// ---------------------------------------------------------------------------------------------
// The cases, through the public API

/** The quote with certificate `i` of its PEM PCK chain changed in place (same DER length). */
function mutatePckCert(quote: Uint8Array, i: number, edit: (der: Uint8Array) => void): Uint8Array {
  const text = Buffer.from(quote).toString('latin1');
  const blocks = [...text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)];
  const m = blocks[i]!;
  const start = m.index! + '-----BEGIN CERTIFICATE-----'.length;
  const body = m[1]!;
  const der = new Uint8Array(Buffer.from(body.replace(/\s+/g, ''), 'base64'));
  edit(der);
  const b64 = Buffer.from(der).toString('base64');
  let k = 0;
  let rebuilt = '';
  for (const ch of body) rebuilt += /\s/.test(ch) ? ch : b64[k++];
  expect(k).toBe(b64.length);
  const out = quote.slice();
  out.set(Buffer.from(rebuilt, 'latin1'), start);
  return out;
}

/** Offsets of a certificate's or CRL's TBS, outer signatureAlgorithm and signature BIT STRING. */
function layout(der: Uint8Array) {
  const outer = readTlv(der, 0);
  const tbs = readTlv(der, outer.start);
  const alg = readTlv(der, tbs.end);
  const sig = readTlv(der, alg.end);
  return { outer, tbs, alg, sig };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return err instanceof AttestationError ? `${err.code}: ${err.message}` : `foreign: ${String(err)}`;
  }
  return 'accepted';
}

describe('DER rules on the Intel path (real vector dcap-qvl__quote)', () => {
  const v = loadVector('dcap-qvl__quote');
  const run = (report: Uint8Array, collateral = v.collateral!) =>
    codeOf(verifyEvidence({ report, collateral }, { now: v.now, offline: true }));

  it('control: the untouched vector is accepted', async () => {
    expect(await run(v.quote)).toBe('accepted');
  });

  it('a PCK chain intermediate whose outer signatureAlgorithm SEQUENCE length is wrong is refused', async () => {
    const q = mutatePckCert(v.quote, 1, (der) => {
      const { alg } = layout(der);
      expect(der[alg.start - 1]).toBe(0x0a);
      der[alg.start - 1] = 0x09; // one byte short: the OID's last byte falls outside
    });
    expect(await run(q)).toMatch(/^ERR_EVIDENCE_CHAIN: PCK chain: PCK CA is not canonical DER/);
  });

  it('a root CA CRL whose outer SEQUENCE length is wrong is refused', async () => {
    const der = new Uint8Array(Buffer.from(v.collateral!.root_ca_crl, 'hex'));
    expect(der.subarray(0, 2)).toEqual(Uint8Array.of(0x30, 0x82));
    der[3]! -= 1;
    const collateral = { ...v.collateral!, root_ca_crl: Buffer.from(der).toString('hex') };
    expect(await run(v.quote, collateral)).toMatch(/^ERR_EVIDENCE_CHAIN: root CA CRL is not canonical DER/);
  });

  it('a root CA CRL whose signature BIT STRING has a non-zero unused-bits byte is refused', async () => {
    const der = new Uint8Array(Buffer.from(v.collateral!.root_ca_crl, 'hex'));
    const { sig } = layout(der);
    expect(sig.tag).toBe(0x03);
    expect(der[sig.start]).toBe(0);
    der[sig.start] = 1;
    const collateral = { ...v.collateral!, root_ca_crl: Buffer.from(der).toString('hex') };
    expect(await run(v.quote, collateral)).toMatch(/^ERR_EVIDENCE_CHAIN: root CA CRL is not canonical DER/);
  });

  it('a PCK leaf whose signature BIT STRING has a non-zero unused-bits byte is refused', async () => {
    const q = mutatePckCert(v.quote, 0, (der) => {
      der[layout(der).sig.start] = 7;
    });
    expect(await run(q)).toMatch(/^ERR_EVIDENCE_CHAIN: PCK chain: PCK leaf is not canonical DER/);
  });
});

// ---------------------------------------------------------------------------------------------
// Every single-bit flip

const AMD: EncodingRules = {
  name: 'AMD',
  signatureAlgorithms: [OID.rsaPss],
  canonicalDer: true,
  matchingAlgorithms: true,
};
const INTEL: EncodingRules = {
  name: 'Intel',
  signatureAlgorithms: [OID.ecdsaSha256],
  canonicalDer: true,
  matchingAlgorithms: true,
};

interface Item {
  what: string;
  kind: 'cert' | 'crl';
  der: Uint8Array;
  /** A certificate's chain above it, root last (empty for a root); a CRL's issuer first. */
  above: Uint8Array[];
  rules: EncodingRules;
}

function collect(): Item[] {
  const items = new Map<string, Item>();
  const add = (
    what: string,
    kind: Item['kind'],
    der: Uint8Array,
    rules: EncodingRules,
    above: Uint8Array[],
  ) => {
    const key = Buffer.from(der).toString('base64');
    if (!items.has(key)) items.set(key, { what, kind, der, rules, above });
  };
  const chainOf = (certs: Uint8Array[], rules: EncodingRules, name: string, names: string[]) => {
    for (const [i, der] of certs.entries())
      add(`${name} ${names[i]}`, 'cert', der, rules, certs.slice(i + 1));
  };
  for (const f of allFixtures()) chainOf([f.vek, f.ask, f.ark], AMD, f.name, ['VEK', 'ASK', 'ARK']);
  const roots = `${SNP_DIR}roots/`;
  for (const p of ['milan', 'genoa', 'turin']) {
    const r = (n: string) => new Uint8Array(readFileSync(`${roots}${p}_${n}.der`));
    chainOf([r('ask'), r('ark')], AMD, p, ['ASK', 'ARK']);
    chainOf([r('asvk'), r('ark')], AMD, p, ['ASVK', 'ARK']);
  }
  for (const id of VECTOR_IDS) {
    const v = loadVector(id);
    chainOf(parseTdxQuote(v.quote).pckChain, INTEL, id, ['PCK', 'PCK CA', 'root']);
    const c = v.collateral;
    if (!c) continue;
    chainOf(pemToDer(c.tcb_info_issuer_chain), INTEL, id, ['TCB Signing', 'root']);
    const crlChain = pemToDer(c.pck_crl_issuer_chain);
    chainOf(crlChain, INTEL, id, ['PCK CRL issuer', 'root']);
    add(`${id} root CA CRL`, 'crl', new Uint8Array(Buffer.from(c.root_ca_crl, 'hex')), INTEL, [crlChain[1]!]);
    add(`${id} PCK CRL`, 'crl', new Uint8Array(Buffer.from(c.pck_crl, 'hex')), INTEL, [crlChain[0]!]);
  }
  const intelRoot = new Uint8Array(readFileSync(`${INTEL_DIR}Intel_SGX_Root_CA.der`));
  for (const name of readdirSync(INTEL_DIR).filter((n) => n.endsWith('.der'))) {
    const der = new Uint8Array(readFileSync(`${INTEL_DIR}${name}`));
    const root = equalBytes(der, intelRoot);
    add(`intel/${name}`, name.includes('_crl_') ? 'crl' : 'cert', der, INTEL, root ? [] : [intelRoot]);
  }
  return [...items.values()];
}

/** The untouched certificates are parsed once, as a Verifier's certificate cache would. */
const parsed = new Lru<string, ParsedCert>(1024);

/** True when `der`, in `item`'s place, passes the engine: DER rules, algorithms, signatures. */
function accepted(item: Item, der: Uint8Array): boolean {
  try {
    if (item.kind === 'crl') {
      verifyCrl(der, parseCertificate(item.above[0]!, undefined, parsed), item.rules);
      return true;
    }
    const certs = [der, ...item.above];
    const rootDer = certs[certs.length - 1]!;
    // A flipped root is its own anchor here: only the DER rules and its self-signature may refuse it.
    const profile: ChainProfile = {
      ...item.rules,
      path: certs.map((_, i) => ({ what: `certificate ${i}` })),
      anchors: [parseCertificate(rootDer, undefined, parsed)],
      rootName: 'root',
    };
    const now = new Date(
      Math.max(
        ...[item.der, ...item.above].map((d) => parseCertificate(d, undefined, parsed).notBefore.getTime()),
      ),
    );
    verifyChain(certs, profile, now, parsed);
    return true;
  } catch (err) {
    if (err instanceof AttestationError) return false;
    throw err;
  }
}

function flip(der: Uint8Array, bit: number): Uint8Array {
  const out = der.slice();
  out[bit >> 3]! ^= 0x80 >> (bit & 7);
  return out;
}

describe('every single-bit flip of every fixture certificate and CRL is refused (or changes nothing)', () => {
  const items = collect();

  it('the fixtures hold certificates and CRLs of both vendors, and each verifies untouched', () => {
    expect(items.filter((i) => i.rules === AMD).length).toBeGreaterThanOrEqual(9);
    expect(items.filter((i) => i.rules === INTEL && i.kind === 'cert').length).toBeGreaterThanOrEqual(5);
    expect(items.filter((i) => i.kind === 'crl').length).toBeGreaterThanOrEqual(3);
    for (const item of items) expect(accepted(item, item.der), item.what).toBe(true);
  });

  it('sampled over all of them (fast-check)', () => {
    fc.assert(
      fc.property(fc.nat(items.length - 1), fc.nat(), (i, n) => {
        const item = items[i]!;
        const der = flip(item.der, n % (item.der.length * 8));
        return !accepted(item, der) || equalBytes(der, item.der);
      }),
      { numRuns: 800 },
    );
  });

  // The examples are Intel's: every bit of Intel's root CA CRL is tried, and every bit of
  // the PCK Platform CA outside its TBS body (the headers, lengths, outer algorithm and signature:
  // what the signature does not cover); the sample above reaches the TBS body.
  const find = (name: string) => {
    const der = new Uint8Array(readFileSync(`${INTEL_DIR}${name}`));
    return items.find((i) => equalBytes(i.der, der))!;
  };
  it('exhaustively: IntelSGXRootCA_crl_2025-03-20.der', () => {
    const item = find('IntelSGXRootCA_crl_2025-03-20.der');
    const taken: number[] = [];
    for (let bit = 0; bit < item.der.length * 8; bit++)
      if (accepted(item, flip(item.der, bit))) taken.push(bit);
    expect(taken).toEqual([]);
  });
  it('exhaustively outside the TBS body: Intel_SGX_PCK_Platform_CA.der', () => {
    const item = find('Intel_SGX_PCK_Platform_CA.der');
    const { tbs } = layout(item.der);
    const bytes = [...Array(item.der.length).keys()].filter((b) => b < tbs.start || b >= tbs.end);
    expect(bytes.length).toBeGreaterThan(80);
    const taken: number[] = [];
    for (const byte of bytes)
      for (let bit = byte * 8; bit < byte * 8 + 8; bit++)
        if (accepted(item, flip(item.der, bit))) taken.push(bit);
    expect(taken).toEqual([]);
  });
});
