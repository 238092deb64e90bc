/**
 * End to end over loopback TCP with the real simulated SNP and TDX platforms and the real
 * verifiers: what a user of the library runs.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attestedConnect } from '../../src/channel/connect.js';
import { type AttestedServer, createAttestedServer } from '../../src/channel/server.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import {
  activeHandles,
  closeServer,
  expectNoLeaks,
  listen,
  nextServerError,
  rejectionOf,
} from './helpers.js';

const anchors = simulated.trustAnchors();
const snpPolicy = { snp: { measurements: [simulated.defaults.snpMeasurement] } };

let server: AttestedServer | undefined;
let baseline: Record<string, number>;
beforeEach(() => {
  baseline = activeHandles();
});
afterEach(async () => {
  if (server?.listening) await closeServer(server);
  server = undefined;
});

function echo(ch: import('../../src/channel/channel.js').AttestedChannel): void {
  ch.on('data', (d) => ch.write(d));
  ch.on('end', () => ch.end());
  ch.on('error', () => {});
}

async function roundTrip(
  ch: import('../../src/channel/channel.js').AttestedChannel,
  text: string,
): Promise<string> {
  ch.write(text);
  return new Promise<string>((r) => ch.once('data', (d) => r(String(d))));
}

describe('attested channel with the simulated platforms', () => {
  it('one-way SNP: the client gets verified claims whose REPORT_DATA is the binder', async () => {
    server = createAttestedServer({ evidence: simulated.snp() }, echo);
    const port = await listen(server);
    const ch = await attestedConnect({
      host: '127.0.0.1',
      port,
      verify: { policy: snpPolicy, trustAnchors: anchors },
    });
    expect(ch.peer?.format).toBe('sev-snp');
    expect(ch.peer?.simulated).toBe(true);
    expect(ch.peer && 'measurement' in ch.peer ? ch.peer.measurement : '').toBe(
      simulated.defaults.snpMeasurement,
    );
    expect(await roundTrip(ch, 'ping')).toBe('ping');
    ch.end();
    await new Promise((r) => ch.once('close', r));
  });

  it("mutual: SNP server, TDX client, each side sees the other's claims", async () => {
    let serverSide: import('../../src/channel/channel.js').AttestedChannel | undefined;
    server = createAttestedServer(
      {
        evidence: simulated.snp(),
        verify: { trustAnchors: anchors, policy: { tdx: { acceptTcbStatus: ['UpToDate'] } } },
      },
      (ch) => {
        serverSide = ch;
        echo(ch);
      },
    );
    const port = await listen(server);
    const ch = await attestedConnect({
      host: '127.0.0.1',
      port,
      evidence: simulated.tdx(),
      verify: { policy: snpPolicy, trustAnchors: anchors },
    });
    expect(ch.peer?.format).toBe('sev-snp');
    expect(await roundTrip(ch, 'x')).toBe('x');
    expect(serverSide?.peer?.format).toBe('tdx');
    ch.end();
    await new Promise((r) => ch.once('close', r));
  });

  it("a server's policy changed in place applies to the next client that attests", async () => {
    const policy = { snp: { measurements: [simulated.defaults.snpMeasurement] } };
    server = createAttestedServer(
      { evidence: simulated.snp(), verify: { policy, trustAnchors: anchors } },
      echo,
    );
    const port = await listen(server);
    const client = () =>
      attestedConnect({
        host: '127.0.0.1',
        port,
        evidence: simulated.snp(),
        verify: { policy: snpPolicy, trustAnchors: anchors },
      });
    const first = await client();
    first.destroy();
    policy.snp.measurements = ['cd'.repeat(48)];
    const err = await rejectionOf(client());
    expect(err.code).toBe('ERR_PEER_REJECTED');
    expect(err.details['peerCode']).toBe('ERR_EVIDENCE_POLICY');
  });

  it("a wrong measurement is refused with the verifier's code on both ends", async () => {
    server = createAttestedServer({ evidence: simulated.snp({ measurement: 'cd'.repeat(48) }) });
    const port = await listen(server);
    const serverError = nextServerError(server);
    const err = await rejectionOf(
      attestedConnect({ host: '127.0.0.1', port, verify: { policy: snpPolicy, trustAnchors: anchors } }),
    );
    expect(err.code).toBe('ERR_EVIDENCE_POLICY');
    const peerSide = await serverError;
    expect(peerSide.code).toBe('ERR_PEER_REJECTED');
    expect(peerSide.details['peerCode']).toBe('ERR_EVIDENCE_POLICY');
    await closeServer(server);
    await expectNoLeaks(baseline);
  });

  it('simulated evidence is refused without the simulated trust anchors', async () => {
    server = createAttestedServer({ evidence: simulated.snp() });
    const port = await listen(server);
    const err = await rejectionOf(
      attestedConnect({ host: '127.0.0.1', port, verify: { policy: snpPolicy } }),
    );
    expect(['ERR_EVIDENCE_CHAIN', 'ERR_EVIDENCE_SIGNATURE']).toContain(err.code);
  });
});
