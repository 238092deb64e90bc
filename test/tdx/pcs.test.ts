import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import { extractJsonMember, PcsClient } from '../../src/evidence/tdx/pcs.js';
import type { TdxClaims } from '../../src/evidence/types.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { errorOf, loadVector } from './fixtures.js';

const v = loadVector('dcap-qvl__quote');
const c = v.collateral!;
const hits: string[] = [];
let server: Server;
let base: string;

beforeAll(async () => {
  // A PCS look-alike serving the vector's collateral the way Intel PCS v4 does (bodies and headers).
  server = createServer((req, res) => {
    const url = req.url ?? '';
    hits.push(url);
    if (url === '/tdx/certification/v4/tcb?fmspc=b0c06f000000') {
      res.setHeader('TCB-Info-Issuer-Chain', encodeURIComponent(c.tcb_info_issuer_chain));
      res.end(`{"tcbInfo":${c.tcb_info},"signature":"${c.tcb_info_signature}"}`);
    } else if (url === '/tdx/certification/v4/qe/identity') {
      res.setHeader('SGX-Enclave-Identity-Issuer-Chain', encodeURIComponent(c.qe_identity_issuer_chain));
      res.end(`{"enclaveIdentity":${c.qe_identity},"signature":"${c.qe_identity_signature}"}`);
    } else if (url === '/sgx/certification/v4/pckcrl?ca=platform&encoding=der') {
      res.setHeader('SGX-PCK-CRL-Issuer-Chain', encodeURIComponent(c.pck_crl_issuer_chain));
      res.end(Buffer.from(c.pck_crl, 'hex'));
    } else if (url === '/IntelSGXRootCA.der') {
      res.end(Buffer.from(c.root_ca_crl, 'hex'));
    } else {
      res.statusCode = 404;
      res.end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function client(): PcsClient {
  return new PcsClient({
    baseUrl: base,
    rootCrlUrl: `${base}/IntelSGXRootCA.der`,
    retries: 0,
    timeoutMs: 5000,
  });
}

describe('Intel PCS client against a local PCS', () => {
  it('fetches TCB info, QE identity and both CRLs; the quote verifies UpToDate', async () => {
    const pcs = client();
    hits.length = 0;
    const claims = (await verifyEvidence({ report: v.quote }, { now: v.now, pcs })) as TdxClaims;
    expect(claims.tcbStatus).toBe('UpToDate');
    expect([...hits].sort()).toEqual([
      '/IntelSGXRootCA.der',
      '/sgx/certification/v4/pckcrl?ca=platform&encoding=der',
      '/tdx/certification/v4/qe/identity',
      '/tdx/certification/v4/tcb?fmspc=b0c06f000000',
    ]);
    // The signed texts were cut out byte-exactly: they equal the fixture strings.
    const got = await pcs.getCollateral(new Uint8Array(Buffer.from('b0c06f000000', 'hex')), 'platform');
    expect(got).toEqual({ ...c, pck_crl: c.pck_crl.toLowerCase(), root_ca_crl: c.root_ca_crl.toLowerCase() });
    // A second verification is answered from the cache.
    hits.length = 0;
    await verifyEvidence({ report: v.quote }, { now: v.now, pcs });
    expect(hits).toEqual([]);
  });

  it('offline without collateral fails with ERR_COLLATERAL_UNAVAILABLE and sends nothing', async () => {
    hits.length = 0;
    const err = await errorOf(() =>
      verifyEvidence({ report: v.quote }, { now: v.now, offline: true, pcs: client() }),
    );
    expect(err.code).toBe('ERR_COLLATERAL_UNAVAILABLE');
    expect(hits).toEqual([]);
  });

  it('an FMSPC the PCS does not know (404) is ERR_COLLATERAL_UNAVAILABLE', async () => {
    const err = await errorOf(() => client().getCollateral(new Uint8Array(6), 'platform'));
    expect(err.code).toBe('ERR_COLLATERAL_UNAVAILABLE');
  });

  it('a PCS response without its own "signature" member is refused, whatever Object.prototype holds', async () => {
    const unsigned = createServer((_req, res) => {
      res.setHeader('TCB-Info-Issuer-Chain', encodeURIComponent(c.tcb_info_issuer_chain));
      res.end(`{"tcbInfo":${c.tcb_info}}`);
    });
    await new Promise<void>((resolve) => unsigned.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(unsigned.address() as AddressInfo).port}`;
    const proto = Object.prototype as { signature?: string };
    Object.defineProperty(proto, 'signature', {
      value: c.tcb_info_signature,
      configurable: true,
      writable: true,
    });
    try {
      const pcs = new PcsClient({ baseUrl: url, rootCrlUrl: `${url}/crl`, retries: 0 });
      const err = await errorOf(() =>
        pcs.getCollateral(new Uint8Array(Buffer.from('b0c06f000000', 'hex')), 'platform'),
      );
      expect(err.code).toBe('ERR_COLLATERAL_UNAVAILABLE');
      expect(err.message).toMatch(/no signature/);
    } finally {
      delete proto.signature;
      await new Promise<void>((resolve) => unsigned.close(() => resolve()));
    }
  });

  it('a PCS without the issuer-chain header is ERR_COLLATERAL_UNAVAILABLE', async () => {
    const bare = createServer((_req, res) => res.end('{"tcbInfo":{},"signature":"00"}'));
    await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(bare.address() as AddressInfo).port}`;
    try {
      const pcs = new PcsClient({ baseUrl: url, rootCrlUrl: `${url}/crl`, retries: 0 });
      const err = await errorOf(() => pcs.getCollateral(new Uint8Array(6), 'platform'));
      expect(err.code).toBe('ERR_COLLATERAL_UNAVAILABLE');
    } finally {
      await new Promise<void>((resolve) => bare.close(() => resolve()));
    }
  });
});

describe('extractJsonMember', () => {
  it('returns the exact source text, whitespace and key order included', () => {
    const body = '{ "a" : [1, {"b":"}"}] ,"tcbInfo" :  {"x" : "\\"{" ,"y":[ ]} , "signature":"ab"}';
    expect(extractJsonMember(body, 'tcbInfo')).toBe('{"x" : "\\"{" ,"y":[ ]}');
    expect(extractJsonMember(body, 'signature')).toBe('"ab"');
    expect(extractJsonMember(body, 'a')).toBe('[1, {"b":"}"}]');
  });
  it('refuses non-JSON, a missing member and duplicates', () => {
    for (const [body, name] of [
      ['{"tcbInfo":', 'tcbInfo'],
      ['{"other":1}', 'tcbInfo'],
      ['{"tcbInfo":1,"tcbInfo":2}', 'tcbInfo'],
      ['[1]', 'tcbInfo'],
    ] as const) {
      expect(() => extractJsonMember(body, name)).toThrow(AttestationError);
    }
  });
  it('property: for any JSON object, the extracted text parses to the member value', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { minKeys: 1, maxKeys: 5 }),
        fc.nat(),
        fc.constantFrom('', ' ', '\n  ', '\t'),
        (obj, pick, ws) => {
          const keys = Object.keys(obj);
          const key = keys[pick % keys.length]!;
          const body = `{${ws}${keys.map((k) => `${JSON.stringify(k)}${ws}:${ws}${JSON.stringify(obj[k], null, ws.length ? 1 : 0)}`).join(`${ws},${ws}`)}${ws}}`;
          const text = extractJsonMember(body, key);
          expect(body.includes(text)).toBe(true);
          expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(obj[key])));
        },
      ),
      { numRuns: 300 },
    );
  });
  it('property: arbitrary text gives a typed error or a member, never a crash', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        try {
          extractJsonMember(s, 'tcbInfo');
        } catch (err) {
          expect(err).toBeInstanceOf(AttestationError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
