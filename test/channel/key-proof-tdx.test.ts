/**
 * Key-continuity proofs (docs/protocol.md §4.7) with the simulated TDX platform, raw and under
 * Azure: a policy that pins the platform by the PPID of the PCK certificate (`tdx.ppids`,
 * `azure.tdx.ppids`) may allow reuse, a returning client then gets a key proof instead of a new
 * quote, and the remembered quote is appraised again, so a policy listing another PPID refuses it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { AttestedChannel } from '../../src/channel/channel.js';
import { attestedConnect } from '../../src/channel/connect.js';
import { type AttestedServer, createAttestedServer } from '../../src/channel/server.js';
import { parsePolicy } from '../../src/evidence/policy.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import type { EvidenceProvider, Verifier } from '../../src/evidence/types.js';
import { createVerifier } from '../../src/evidence/verifier.js';
import { closeServer, countingProvider, listen, rejectionOf } from './helpers.js';

const anchors = simulated.trustAnchors();
const PPID = simulated.defaults.tdxPlatform.ppid;
const OTHER_PPID = `${PPID.slice(0, 31)}${PPID[31] === '0' ? '1' : '0'}`;
const T0 = new Date();
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

const servers: AttestedServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) if (s.listening) await closeServer(s);
});

async function serve(inner: EvidenceProvider) {
  const provider = countingProvider(inner);
  const server = createAttestedServer({ evidence: provider }, (ch: AttestedChannel) => {
    ch.on('data', (d) => ch.write(d));
    ch.on('end', () => ch.end());
    ch.on('error', () => {});
  });
  servers.push(server);
  return { port: await listen(server), provider };
}

function connect(port: number, verifier: Verifier, now: Date, policy: unknown) {
  return attestedConnect({ host: '127.0.0.1', port, verify: { verifier, policy: parsePolicy(policy), now } });
}

async function done(ch: AttestedChannel): Promise<void> {
  ch.end();
  if (!ch.destroyed) await new Promise((r) => ch.once('close', r));
}

const cases = [
  {
    name: 'raw TDX, tdx.ppids',
    provider: () => simulated.tdx(),
    format: 'tdx',
    policy: (ppids: string[], maxEvidenceAge = 300) => ({
      tdx: { mrTd: [simulated.defaults.tdxMrTd], ppids },
      reuse: { maxEvidenceAge },
    }),
    unpinned: () => ({ tdx: { mrTd: [simulated.defaults.tdxMrTd] }, reuse: { maxEvidenceAge: 300 } }),
  },
  {
    name: 'Azure TDX, azure.tdx.ppids',
    provider: () => simulated.azure({ tee: 'tdx' }),
    format: 'azure-tdx',
    policy: (ppids: string[], maxEvidenceAge = 300) => ({
      azure: { tdx: { ppids }, pcrs: { sha256: { '0': [simulated.defaults.azurePcrs['0']!] } } },
      reuse: { maxEvidenceAge },
    }),
    unpinned: () => ({
      azure: { tdx: {}, pcrs: { sha256: { '0': [simulated.defaults.azurePcrs['0']!] } } },
      reuse: { maxEvidenceAge: 300 },
    }),
  },
] as const;

describe.each(cases)('key-continuity proof with the simulated TDX platform: $name', (c) => {
  it('a returning client within maxEvidenceAge gets a key proof: no new quote, reused, the PPID', async () => {
    const { port, provider } = await serve(c.provider());
    const verifier = createVerifier({ trustAnchors: anchors });
    const first = await connect(port, verifier, T0, c.policy([PPID]));
    expect(first.peer).toMatchObject({ format: c.format, reused: false, evidenceAge: 0, ppid: PPID });
    await done(first);
    const second = await connect(port, verifier, at(60), c.policy([PPID]));
    expect(provider.reports).toBe(1);
    expect(second.peer).toMatchObject({ format: c.format, reused: true, ppid: PPID });
    expect(second.peer!.evidenceAge).toBeGreaterThanOrEqual(60);
    await done(second);
  });

  it('a policy that no longer lists the PPID refuses the remembered quote', async () => {
    const { port, provider } = await serve(c.provider());
    const verifier = createVerifier({ trustAnchors: anchors });
    await done(await connect(port, verifier, T0, c.policy([PPID])));
    const err = await rejectionOf(connect(port, verifier, at(10), c.policy([OTHER_PPID])));
    expect(err.code).toBe('ERR_EVIDENCE_POLICY');
    expect(err.details.field).toBe('tdx.ppids');
    expect(provider.reports).toBe(1); // refused on the key-proof path, not on a new quote
  });

  it('without the PPID pin the policy cannot turn reuse on; with reuse off a new quote comes each time', async () => {
    expect(() => parsePolicy(c.unpinned())).toThrow(/platform pin/);
    const { port, provider } = await serve(c.provider());
    const verifier = createVerifier({ trustAnchors: anchors });
    await done(await connect(port, verifier, T0, c.policy([PPID], 0)));
    const again = await connect(port, verifier, at(10), c.policy([PPID], 0));
    expect(again.peer?.reused).toBe(false);
    expect(provider.reports).toBe(2);
    await done(again);
  });
});
