/**
 * The attested channel inside a WebSocket, whose upgrade an ordinary `http` server handles (next
 * to its normal routes). Because the attested TLS runs inside the WebSocket, a proxy or load
 * balancer that terminates the outer HTTPS changes nothing: the evidence is bound to the inner
 * connection, which the proxy cannot open.
 *
 * Run: npx tsx examples/websocket/index.ts
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  attachWebSocket,
  attestedConnect,
  createAttestedServer,
  type SnpClaims,
  type WebSocketAttachment,
} from '../../src/index.js';
import { simulated } from '../../src/simulated.js';

/** An ordinary HTTP server with a normal route, and attested channels on /attested. */
export function webServer(): { http: Server; attachment: WebSocketAttachment } {
  const http = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`plain HTTP on ${req.url}\n`);
  });
  // Simulated SEV-SNP platform: no hardware needed.
  const attested = createAttestedServer({ evidence: simulated.snp() }, (channel) => {
    // A client that resets its connection makes the channel emit 'error'; with no listener Node
    // would throw it and take the whole server (every other client) down with it.
    channel.on('error', (err) => console.error(`server: a channel failed: ${err.message}`));
    channel.on('data', (chunk: Buffer) => channel.write(`echo over WebSocket: ${chunk}`));
    channel.on('end', () => channel.end());
  });
  // A client that fails to attest, or drops mid-handshake, costs only its own connection.
  attested.on('attestationError', (err) => console.error(`server: refused a client: ${err.code}`));
  return { http, attachment: attachWebSocket(http, attested, { path: '/attested' }) };
}

// Run as a script (imported, e.g. by a test, it only defines webServer).
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();

async function main(): Promise<void> {
  const { http, attachment } = webServer();
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;

  const plain = await fetch(`http://127.0.0.1:${port}/health`);
  console.log(`http: ${(await plain.text()).trim()}`);

  const channel = await attestedConnect({
    url: `ws://127.0.0.1:${port}/attested`,
    verify: {
      policy: { snp: { measurements: [simulated.defaults.snpMeasurement] } },
      trustAnchors: simulated.trustAnchors(),
    },
  });
  const peer = channel.peer as SnpClaims;
  console.log(
    `attested over WebSocket: ${peer.format} measurement ${peer.measurement}, simulated ${peer.simulated}`,
  );

  channel.write('hello');
  const reply = await new Promise<string>((resolve) =>
    channel.once('data', (d: Buffer) => resolve(d.toString())),
  );
  console.log(`reply: ${reply}`);

  channel.end();
  await new Promise((resolve) => channel.once('close', resolve));
  attachment.close();
  await new Promise((resolve) => http.close(resolve));
  console.log('done');
}
