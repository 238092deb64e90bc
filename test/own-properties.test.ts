/**
 * JSON from outside is read by its own properties only: names that Object.prototype has
 * ("constructor", "toString", "__proto__", "hasOwnProperty", ...) are unknown fields, and a member
 * that the JSON lacks is never found on a prototype (each test that pollutes Object.prototype
 * restores it).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../examples/key-broker/config.js';
import { decodeCmw, encodeCmw, MediaType } from '../src/channel/cmw.js';
import { parseEvidence, parseRequest, parseResult } from '../src/channel/frames.js';
import { main } from '../src/cli/main.js';
import { AttestationError } from '../src/errors.js';
import { base64url } from '../src/evidence/bytes.js';
import { parsePolicy } from '../src/evidence/policy.js';
import { simulated } from '../src/evidence/providers/simulated.js';
import { normaliseCollateral } from '../src/evidence/tdx/collateral.js';
import { parseQeIdentity, parseTcbInfo } from '../src/evidence/tdx/tcb.js';
import { thrownCode as codeOf } from './helpers/codes.js';
import { loadVector, VECTOR_IDS } from './tdx/fixtures.js';

const PROTO_NAMES = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', 'isPrototypeOf'];

/** Runs `fn` with Object.prototype[name] = value, then removes it whatever happens. */
function polluted<T>(members: Record<string, unknown>, fn: () => T): T {
  const proto = Object.prototype as Record<string, unknown>;
  for (const [k, v] of Object.entries(members))
    Object.defineProperty(proto, k, { value: v, configurable: true, writable: true, enumerable: false });
  try {
    return fn();
  } finally {
    for (const k of Object.keys(members)) delete proto[k];
  }
}

/** `{"<section>":{"<name>":[]}}` as JSON text (JSON.parse makes even "__proto__" an own member). */
function withMember(section: string, name: string): string {
  return `{${JSON.stringify(section)}:{${JSON.stringify(name)}:[]}}`;
}

describe('policy', () => {
  it.each(PROTO_NAMES)('"%s" is an unknown field in snp, tdx and minTcb, and an unknown section', (name) => {
    for (const section of ['snp', 'tdx']) {
      const text = withMember(section, name);
      expect(JSON.parse(text)[section]).toHaveProperty([name]);
      expect(
        codeOf(() => parsePolicy(text)),
        text,
      ).toBe('ERR_POLICY_INVALID');
      expect(
        codeOf(() => parsePolicy(JSON.parse(text))),
        text,
      ).toBe('ERR_POLICY_INVALID');
    }
    const minTcb = `{"snp":{"minTcb":{${JSON.stringify(name)}:1}}}`;
    expect(codeOf(() => parsePolicy(minTcb))).toBe('ERR_POLICY_INVALID');
    const root = `{${JSON.stringify(name)}:{},"snp":{}}`;
    expect(Object.keys(JSON.parse(root))).toContain(name);
    expect(codeOf(() => parsePolicy(root))).toBe('ERR_POLICY_INVALID');
  });

  it('the error names the field', () => {
    try {
      parsePolicy('{"snp":{"constructor":[]}}');
      throw new Error('accepted');
    } catch (err) {
      expect((err as AttestationError).details.field).toBe('snp.constructor');
    }
  });
});

describe('CMW', () => {
  it.each(PROTO_NAMES)('a "%s" label is refused', async (name) => {
    const ev = await simulated.snp().getEvidence(new Uint8Array(64));
    const cmw = encodeCmw(ev, 'sev-snp');
    const text = JSON.stringify(cmw).replace(
      /^\{/,
      `{${JSON.stringify(name)}:["${MediaType.JSON}","${base64url(new Uint8Array([1]))}"],`,
    );
    expect(codeOf(() => decodeCmw(JSON.parse(text), [MediaType.SNP_REPORT]))).toBe('ERR_EVIDENCE_MALFORMED');
  });
});

describe('control frames', () => {
  const ctx = base64url(new Uint8Array(32).fill(1));
  const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

  it('members the frame lacks are not taken from Object.prototype', () => {
    polluted({ evidence: {}, ok: true, v: 1, accept: [MediaType.SNP_REPORT], code: 'ERR_PROTOCOL' }, () => {
      expect(codeOf(() => parseEvidence(bytes({ context: ctx })))).toBe('ERR_PROTOCOL');
      expect(codeOf(() => parseResult(bytes({ context: ctx })))).toBe('ERR_PROTOCOL');
      expect(codeOf(() => parseRequest(bytes({ context: ctx })))).toBe('ERR_PROTOCOL');
      expect(codeOf(() => parseResult(bytes({ context: ctx, ok: false })))).toBe('ERR_PROTOCOL');
    });
  });

  it('a "__proto__" member is an ordinary member', () => {
    const text = `{"__proto__":{"v":1,"accept":[]},"context":"${ctx}"}`;
    expect(codeOf(() => parseRequest(new TextEncoder().encode(text)))).toBe('ERR_PROTOCOL');
  });
});

describe('TDX collateral', () => {
  const id = VECTOR_IDS.find((v) => loadVector(v).collateral);
  const vector = loadVector(id!);

  it('the nine members must be the collateral object own members', () => {
    const collateral = vector.collateral!;
    expect(codeOf(() => normaliseCollateral({ ...collateral }))).toBe('accepted');
    expect(codeOf(() => normaliseCollateral(Object.create(collateral)))).toBe('ERR_COLLATERAL_UNAVAILABLE');
    const { tcb_info, ...rest } = collateral;
    polluted({ tcb_info }, () => {
      expect(codeOf(() => normaliseCollateral(rest))).toBe('ERR_COLLATERAL_UNAVAILABLE');
      expect(codeOf(() => normaliseCollateral(JSON.stringify(rest)))).toBe('ERR_COLLATERAL_UNAVAILABLE');
    });
  });

  it("TCB info and QE identity members are the signed JSON's own, never a prototype's", () => {
    const c = vector.collateral!;
    const info = parseTcbInfo(c.tcb_info);
    const qe = parseQeIdentity(c.qe_identity);
    const pollution = {
      advisoryIDs: ['INTEL-SA-99999'],
      tdxModuleIdentities: 'not a list',
      tcbLevels: [],
    };
    polluted(pollution, () => {
      expect(parseTcbInfo(c.tcb_info)).toEqual(info);
      expect(parseQeIdentity(c.qe_identity)).toEqual(qe);
    });
  });
});

describe('key broker config and CLI inputs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ac-own-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const M = simulated.defaults.snpMeasurement;

  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])(
    'an environment variable named "%s" that is not set is refused as unset',
    (name) => {
      const raw = {
        auditLog: join(dir, 'audit.log'),
        secrets: { k: { source: { env: name }, policy: { snp: { measurements: [M] } } } },
      };
      let error: unknown;
      try {
        parseConfig(raw, dir, {});
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(AttestationError);
      expect((error as AttestationError).details.field).toBe('secrets.k.source.env');
      // Set, it is read.
      expect(parseConfig(raw, dir, Object.fromEntries([[name, 'v']])).secrets.get('k')?.value).toEqual(
        new TextEncoder().encode('v'),
      );
    },
  );

  it.each(['constructor', 'toString', '__proto__'])(
    '"%s" in a secret, its source or its policy is refused',
    (name) => {
      const base = { auditLog: join(dir, 'audit.log') };
      const good = { source: { env: 'X' }, policy: { snp: { measurements: [M] } } };
      const texts = [
        JSON.stringify({ ...base, secrets: { k: good } }).replace(
          '"source"',
          `${JSON.stringify(name)}:1,"source"`,
        ),
        JSON.stringify({ ...base, secrets: { k: good } }).replace(
          '{"env"',
          `{${JSON.stringify(name)}:1,"env"`,
        ),
        JSON.stringify({ ...base, secrets: { k: good } }).replace(
          '"measurements"',
          `${JSON.stringify(name)}:[],"measurements"`,
        ),
        JSON.stringify({ ...base, secrets: { k: good } }).replace(
          '"auditLog"',
          `${JSON.stringify(name)}:1,"auditLog"`,
        ),
      ];
      for (const text of texts)
        expect(
          codeOf(() => parseConfig(JSON.parse(text), dir, { X: 'v' })),
          text,
        ).toBe('ERR_INVALID_ARGUMENT');
    },
  );

  it('the CLI refuses a policy file with a "constructor" or "__proto__" field (exit 2)', async () => {
    for (const name of ['constructor', '__proto__']) {
      const file = join(dir, `${name}.json`);
      writeFileSync(file, `{"snp":{${JSON.stringify(name)}:[],"measurements":["${M}"]}}`);
      let text = '';
      const io = { out: (t: string) => (text += t), err: (t: string) => (text += t) };
      const code = await main(
        ['tunnel', '--listen', '127.0.0.1:0', '--connect', '127.0.0.1:1', '--policy', file],
        io,
      );
      expect(code).toBe(2);
      expect(text).toContain(`snp.${name}`);
      text = '';
      expect(await main(['verify', file, '--policy', file, '--offline'], io)).toBe(2);
      expect(text).toContain(`snp.${name}`);
    }
  });
});
