/**
 * Quickstart: an attested channel over TCP, both ends in one script.
 *
 * The server plays a confidential VM on the SIMULATED SEV-SNP platform (no hardware needed); the
 * client accepts it only if its launch measurement is the one in the policy, and only the
 * simulator's roots are trusted for that. On a real SEV-SNP guest, use `await configfsTsm()` as
 * the evidence provider and drop `trustAnchors` (AMD's pinned roots are then used).
 *
 * Run: npx tsx examples/quickstart/index.ts. (In your own code the imports are 'attested-channel'
 * and 'attested-channel/simulated'; the simulator is a subpath of its own, see docs/api.md.)
 */
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  type AttestedServer,
  attestedConnect,
  createAttestedServer,
  type SnpClaims,
} from '../../src/index.js';
import { simulated } from '../../src/simulated.js';

/** The VM: attests with the simulated platform and echoes what it receives. */
export function echoVm(): AttestedServer {
  const server = createAttestedServer({ evidence: simulated.snp() }, (channel) => {
    // A client that resets its connection makes the channel emit 'error'; with no listener Node
    // would throw it and take the whole server (every other client) down with it.
    channel.on('error', (err) => console.error(`server: a channel failed: ${err.message}`));
    channel.on('data', (chunk: Buffer) => channel.write(`echo: ${chunk}`));
    channel.on('end', () => channel.end());
  });
  // A client that fails to attest, or drops mid-handshake, costs only its own connection.
  server.on('attestationError', (err) => console.error(`server: refused a client: ${err.code}`));
  return server;
}

// Run as a script (imported, e.g. by a test, it only defines echoVm).
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();

async function main(): Promise<void> {
  const server = echoVm();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  // The client: nothing is sent or received until the evidence is verified and bound to this connection.
  const channel = await attestedConnect({
    host: '127.0.0.1',
    port,
    verify: {
      policy: { snp: { measurements: [simulated.defaults.snpMeasurement] } },
      trustAnchors: simulated.trustAnchors(),
    },
  });
  const peer = channel.peer as SnpClaims;
  console.log(
    `attested: ${peer.format} ${peer.product}, measurement ${peer.measurement}, simulated ${peer.simulated}`,
  );

  channel.write('hello');
  const reply = await new Promise<string>((resolve) =>
    channel.once('data', (d: Buffer) => resolve(d.toString())),
  );
  console.log(`reply: ${reply}`);

  channel.end();
  await new Promise((resolve) => channel.once('close', resolve));
  await new Promise((resolve) => server.close(resolve));
  console.log('done');
}
