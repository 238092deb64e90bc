/**
 * `attested-channel demo`: a simulated SEV-SNP confidential VM and a client on loopback, narrated.
 * It shows the happy path step by step, then two refusals that must happen: evidence relayed by a
 * man in the middle from another live connection, and a VM whose measurement the policy does not
 * allow. Exit 0 only when every step behaved as expected.
 */
import { randomBytes } from 'node:crypto';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { PROTOCOL_ID } from '../channel/binder.js';
import type { AttestedChannel } from '../channel/channel.js';
import { REPORT_MEDIA_TYPES } from '../channel/cmw.js';
import { attestedConnect } from '../channel/connect.js';
import {
  encodeEvidence,
  encodeRequest,
  FrameDecoder,
  FrameType,
  parseAlert,
  parseEvidence,
  parseRequest,
  parseResult,
} from '../channel/frames.js';
import { createTlsIdentity } from '../channel/identity.js';
import { createAttestedServer } from '../channel/server.js';
import { AttestationError } from '../errors.js';
import { bytesToHex } from '../evidence/bytes.js';
import type { AzureSnpClaims, EvidenceProvider, SnpClaims } from '../evidence/types.js';
import { loadSimulated } from './endpoint-args.js';
import type { CliIo } from './io.js';
import { usageError } from './io.js';

const STEP_TIMEOUT_MS = 15_000;
const short = (hex: string, n = 16): string => `${hex.slice(0, n)}…`;

function tcb(t: SnpClaims['reportedTcb']): string {
  return `bl ${t.bootloader} tee ${t.tee} snp ${t.snp} ucode ${t.microcode}${t.fmc !== undefined ? ` fmc ${t.fmc}` : ''}`;
}

function codeOf(err: unknown): string {
  return err instanceof AttestationError ? err.code : `(not an AttestationError: ${String(err)})`;
}

function listenLocal<T extends NetServer>(server: T): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : 0);
    });
  });
}

function closeServer(server: NetServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * The man in the middle of step 4, speaking attested-channel/1 with the library's own frame
 * encoders. It terminates the victim's TLS with its own key (it cannot have the VM's), passes the
 * victim's REQUEST context on to the real VM over a second, genuine connection, and relays the
 * VM's EVIDENCE back. The report is real and correctly signed, only bound to the other connection.
 */
function relayingAttacker(
  vmPort: number,
  say: (line: string) => void,
): {
  server: NetServer;
  victimVerdict: Promise<string>;
  close(): void;
} {
  const identity = createTlsIdentity({ commonName: 'mallory' });
  const sockets = new Set<TLSSocket>();
  let settle: (v: string) => void = () => {};
  const victimVerdict = new Promise<string>((resolve) => {
    settle = resolve;
  });
  const server = createTlsServer({
    key: identity.keyPem,
    cert: identity.certPem,
    ALPNProtocols: [PROTOCOL_ID],
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
  });
  server.on('secureConnection', (victim: TLSSocket) => {
    sockets.add(victim);
    victim.on('error', () => {});
    victim.on('close', () => settle('the victim closed the connection without a verdict'));
    // Each side sends one REQUEST; the attacker does not need the victim's evidence.
    victim.write(encodeRequest(randomBytes(32), []));
    const fromVictim = new FrameDecoder();
    victim.on('data', (chunk: Buffer) => {
      let frames: ReturnType<FrameDecoder['push']>;
      try {
        frames = fromVictim.push(chunk);
      } catch {
        victim.destroy();
        return;
      }
      for (const f of frames) {
        if (f.type === FrameType.REQUEST) {
          const { context, accept } = parseRequest(f.payload);
          say(
            `   [mitm]     victim's REQUEST context ${short(bytesToHex(context))}; asking the real VM with it`,
          );
          relay(victim, context, accept);
        } else if (f.type === FrameType.ALERT) {
          const alert = parseAlert(f.payload);
          settle(`ALERT ${alert.code}`);
        } else if (f.type === FrameType.RESULT) {
          const result = parseResult(f.payload);
          settle(result.ok ? 'RESULT ok' : `RESULT ${result.code}`);
        }
      }
    });
  });

  function relay(victim: TLSSocket, context: Uint8Array, accept: string[]): void {
    const upstream = tlsConnect({
      host: '127.0.0.1',
      port: vmPort,
      ALPNProtocols: [PROTOCOL_ID],
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      rejectUnauthorized: false,
    });
    sockets.add(upstream);
    upstream.on('error', () => {});
    upstream.on('close', () => victim.destroy());
    victim.on('close', () => upstream.destroy());
    upstream.once('secureConnect', () => {
      upstream.write(encodeRequest(context, accept.length > 0 ? accept : REPORT_MEDIA_TYPES));
    });
    const fromVm = new FrameDecoder();
    upstream.on('data', (chunk: Buffer) => {
      let frames: ReturnType<FrameDecoder['push']>;
      try {
        frames = fromVm.push(chunk);
      } catch {
        upstream.destroy();
        return;
      }
      for (const f of frames) {
        if (f.type !== FrameType.EVIDENCE) continue;
        const evidence = parseEvidence(f.payload);
        say('   [mitm]     got genuine evidence from the VM (for the attacker↔VM connection); relaying it');
        victim.write(encodeEvidence(context, evidence.evidence));
      }
    });
  }

  return {
    server,
    victimVerdict,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

export async function run(args: string[], io: CliIo): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    io.out(
      'usage: attested-channel demo\n\nRuns a simulated SEV-SNP confidential VM and a client on loopback and narrates\nthe attestation, a message round trip, a relay attack and a policy refusal.\n',
    );
    return 0;
  }
  if (args.length > 0) return usageError(io, `demo takes no arguments (got ${args.join(' ')})`);
  const say = (line: string) => io.out(`${line}\n`);
  const failures: string[] = [];
  const expect = (ok: boolean, what: string) => {
    if (!ok) {
      failures.push(what);
      say(`   ✗ UNEXPECTED: ${what}`);
    }
  };

  const simulated = await loadSimulated();
  const measurement = simulated.defaults.snpMeasurement;
  const anchors = simulated.trustAnchors();
  const policy = { snp: { measurements: [measurement] } };
  const inner = simulated.snp({ measurement });
  let narrate = true;
  const given: string[] = [];
  const provider: EvidenceProvider = {
    format: inner.format,
    async getEvidence(reportData, options) {
      given.push(bytesToHex(reportData));
      if (narrate) {
        say("   [request]  the VM received the client's REQUEST (a fresh 32-byte context)");
        say(`   [evidence] the VM asks its (simulated) AMD-SP for a report with REPORT_DATA = binder`);
        say(
          `              = SHA-512(protocol ‖ "server" ‖ SHA-256(its TLS key) ‖ TLS exporter) = ${short(bytesToHex(reportData), 24)}`,
        );
      }
      return inner.getEvidence(reportData, options);
    },
  };

  const vmErrors: AttestationError[] = [];
  const vmChannels = new Set<AttestedChannel>();
  const attested = createAttestedServer({ evidence: provider, timeout: STEP_TIMEOUT_MS }, (channel) => {
    vmChannels.add(channel);
    channel.on('close', () => vmChannels.delete(channel));
    channel.on('error', () => {});
    // The VM's application: answer each message in upper case.
    channel.on('data', (d: Buffer) => channel.write(d.toString('utf8').toUpperCase()));
    channel.on('end', () => channel.end());
  });
  attested.on('attestationError', (err) => vmErrors.push(err));
  const vmSockets = new Set<Socket>();
  const vm = createNetServer({ allowHalfOpen: true }, (socket) => {
    vmSockets.add(socket);
    socket.on('close', () => vmSockets.delete(socket));
    const channel = attested.accept(socket);
    if (!channel) return; // dropped: maxPendingConnections were already pending
    channel.socket.once('secure', () => {
      if (narrate)
        say(
          `   [tls]      TLS 1.3 handshake done: ${channel.socket.getProtocol()}, ALPN ${channel.socket.alpnProtocol}, ${channel.socket.getCipher().name}; no byte of application data yet`,
        );
    });
  });
  let attacker: ReturnType<typeof relayingAttacker> | undefined;
  const cleanup = async () => {
    attacker?.close();
    for (const c of vmChannels) c.destroy();
    for (const s of vmSockets) s.destroy();
    await closeServer(vm);
  };

  try {
    say('attested-channel demo: a simulated AMD SEV-SNP confidential VM and a client, on loopback');
    say("(simulated hardware: the trust anchors are the simulator's test roots, never AMD's)\n");
    const vmPort = await listenLocal(vm);
    say(`1. A confidential VM (simulated SEV-SNP) serves attested-channel/1 on 127.0.0.1:${vmPort}`);
    say(`   launch measurement ${measurement}\n`);

    say('2. The client connects; it accepts only that measurement, on the simulated roots');
    let checked: SnpClaims | undefined;
    const channel = await attestedConnect({
      host: '127.0.0.1',
      port: vmPort,
      timeout: STEP_TIMEOUT_MS,
      verify: {
        policy,
        trustAnchors: anchors,
        check: (claims) => {
          checked = claims as SnpClaims;
          say(
            '   [binder]   REPORT_DATA equals the binder the client computed from ITS end of this connection ✓',
          );
          say('   [verify]   report signature (P-384) → VCEK → ASK → ARK (simulated root) ✓; policy ✓');
          return true;
        },
      },
    });
    const peer = channel.peer as SnpClaims;
    expect(checked !== undefined && peer.measurement === measurement, "the verified measurement is the VM's");
    expect(given.at(-1) === peer.reportData, 'the report carries the binder the VM was given');
    say(
      `   [claims]   ${peer.format} ${peer.product}, report v${peer.version}, signer ${peer.signer}, VMPL ${peer.vmpl}, simulated: ${peer.simulated}`,
    );
    expect(peer.workloadPinned, 'the policy pins the workload (snp.measurements)');
    say(
      `              measurement ${peer.measurement} (pinned by the policy: workloadPinned ${peer.workloadPinned})`,
    );
    say(
      `              debug ${peer.policy.debug ? 'ON' : 'off'}, reported TCB ${tcb(peer.reportedTcb)}, chip ${short(peer.chipId)}`,
    );
    say('   [open]     the channel is open: only now may application bytes flow\n');

    say('3. A message round trip through the attested channel');
    const message = 'hello, confidential world';
    say(`   client → VM: "${message}"`);
    const reply = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reply')), STEP_TIMEOUT_MS);
      channel.once('data', (d: Buffer) => {
        clearTimeout(timer);
        resolve(d.toString('utf8'));
      });
      channel.write(message);
    });
    say(`   VM → client: "${reply}"`);
    expect(reply === message.toUpperCase(), 'the VM answers in upper case');
    channel.end();
    await new Promise<void>((resolve) =>
      channel.destroyed ? resolve() : channel.once('close', () => resolve()),
    );
    say('   channel closed\n');

    narrate = false;
    say('4. Attack: a man in the middle relays evidence taken from another live connection');
    attacker = relayingAttacker(vmPort, say);
    const mitmPort = await listenLocal(attacker.server);
    say(`   the client is lured to 127.0.0.1:${mitmPort}; the attacker opens its own connection to the VM`);
    const relayed = await attestedConnect({
      host: '127.0.0.1',
      port: mitmPort,
      timeout: STEP_TIMEOUT_MS,
      verify: { policy, trustAnchors: anchors },
    }).then(
      (c) => {
        c.destroy();
        return undefined;
      },
      (err: unknown) => err,
    );
    const verdict = await attacker.victimVerdict;
    say(
      `   refused by the client: ${codeOf(relayed)} — ${relayed instanceof Error ? relayed.message : 'accepted!'}`,
    );
    say(`   the attacker received: ${verdict}`);
    expect(
      codeOf(relayed) === 'ERR_BINDING_MISMATCH',
      'relayed evidence is refused with ERR_BINDING_MISMATCH',
    );
    expect(
      /^(RESULT|ALERT) ERR_BINDING_MISMATCH$/.test(verdict),
      'the client tells the attacker ERR_BINDING_MISMATCH',
    );
    say('   (the report was genuine and correctly signed; it was bound to the other TLS connection)\n');

    say('5. Policy: a client that only accepts another measurement');
    const other = 'ab'.repeat(48);
    say(`   allowed measurement ${short(other, 24)} (the VM runs ${short(measurement, 24)})`);
    const vmErrorsBefore = vmErrors.length;
    const refused = await attestedConnect({
      host: '127.0.0.1',
      port: vmPort,
      timeout: STEP_TIMEOUT_MS,
      verify: { policy: { snp: { measurements: [other] } }, trustAnchors: anchors },
    }).then(
      (c) => {
        c.destroy();
        return undefined;
      },
      (err: unknown) => err,
    );
    say(
      `   refused by the client: ${codeOf(refused)} — ${refused instanceof Error ? refused.message : 'accepted!'}`,
    );
    expect(
      codeOf(refused) === 'ERR_EVIDENCE_POLICY',
      'a wrong measurement is refused with ERR_EVIDENCE_POLICY',
    );
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    while (
      !vmErrors.slice(vmErrorsBefore).some((e) => e.code === 'ERR_PEER_REJECTED') &&
      Date.now() < deadline
    )
      await new Promise((r) => setTimeout(r, 10));
    const seen = vmErrors.slice(vmErrorsBefore).find((e) => e.code === 'ERR_PEER_REJECTED');
    say(
      `   the VM was told: ${seen ? `${seen.code} (peer code ${String(seen.details['peerCode'] ?? seen.message)})` : 'nothing'}`,
    );
    expect(seen !== undefined, 'the VM hears ERR_PEER_REJECTED');
    say('');

    await azureSteps(say, expect, simulated);
  } catch (err) {
    failures.push(`unexpected error: ${err instanceof Error ? err.message : String(err)}`);
    say(`   ✗ UNEXPECTED ERROR: ${codeOf(err)} ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    await cleanup();
  }
  if (failures.length > 0) {
    io.err(`demo FAILED: ${failures.join('; ')}\n`);
    return 1;
  }
  say(
    'demo finished: attested, round trip done, relay and wrong measurement refused, Azure VM attested through its vTPM, as expected',
  );
  return 0;
}

/**
 * Step 6: a simulated Azure confidential VM, whose hardware report is the paravisor's: the binder
 * travels in the vTPM quote (and the HCL report's user-data), and the workload is pinned by a PCR.
 */
async function azureSteps(
  say: (line: string) => void,
  expect: (ok: boolean, what: string) => void,
  simulated: Awaited<ReturnType<typeof loadSimulated>>,
): Promise<void> {
  const anchors = simulated.trustAnchors();
  const pcr7 = simulated.defaults.azurePcrs['7']!;
  const policy = { azure: { pcrs: { sha256: { '7': [pcr7] } }, requireReportBinding: true } };
  const serve = async (evidence: EvidenceProvider) => {
    const server = createAttestedServer({ evidence, timeout: STEP_TIMEOUT_MS }, (c) => {
      c.on('error', () => {});
      c.resume();
      c.on('end', () => c.end());
    });
    server.on('attestationError', () => {});
    server.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    return server;
  };
  const connectTo = (server: Awaited<ReturnType<typeof serve>>) =>
    attestedConnect({
      host: '127.0.0.1',
      port: (server.address() as { port: number }).port,
      timeout: STEP_TIMEOUT_MS,
      verify: { policy, trustAnchors: anchors },
    });
  say("6. An Azure confidential VM (simulated): Microsoft's paravisor holds the hardware report");
  say(`   the client pins PCR 7 = ${short(pcr7, 24)} and requires the HCL report to carry the binder`);
  const fresh = await serve(simulated.azure({ tee: 'snp' }));
  const stale = await serve(simulated.azure({ tee: 'snp', reportBinding: false }));
  try {
    const channel = await connectTo(fresh);
    const peer = channel.peer as AzureSnpClaims;
    say(
      `   [claims]   ${peer.format}: paravisor measurement ${short(peer.measurement, 24)}, VMPL ${peer.vmpl}, AK ${short(peer.tpm.akSha256, 16)}`,
    );
    say(
      `              TPM quote qualifyingData = SHA-384(binder) ${short(peer.tpm.extraData, 24)}; binding ${peer.binding}; workloadPinned ${peer.workloadPinned}`,
    );
    expect(peer.binding === 'report', 'the Azure VM is bound through the quote and the HCL report');
    expect(peer.workloadPinned, 'azure.pcrs pins the workload');
    channel.destroy();
    const refused = await connectTo(stale).then(
      (c) => {
        c.destroy();
        return undefined;
      },
      (err: unknown) => err,
    );
    say(
      `   a VM that sends its boot-time HCL report (user-data not the binder): refused, ${codeOf(refused)}`,
    );
    expect(
      codeOf(refused) === 'ERR_BINDING_MISMATCH',
      'a stale HCL report is refused under requireReportBinding',
    );
    say('');
  } finally {
    await Promise.all([fresh, stale].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}
