/**
 * The attested channel inside a WebSocket, whose upgrade an ordinary `http` server handles (next
 * to its normal routes). Because the attested TLS runs inside the WebSocket, a proxy or load
 * balancer that terminates the outer HTTPS changes nothing: the evidence is bound to the inner
 * connection, which the proxy cannot open.
 *
 * Run: npx tsx examples/websocket/index.ts
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  attachWebSocket,
  attestedConnect,
  createAttestedServer,
  type SnpClaims,
  simulated,
} from '../../src/index.js';

// An ordinary HTTP server with a normal route...
const http = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' }).end(`plain HTTP on ${req.url}\n`);
});
// ...and attested channels on /attested (simulated SEV-SNP platform: no hardware needed).
const attested = createAttestedServer({ evidence: simulated.snp() }, (channel) => {
  channel.on('data', (chunk: Buffer) => channel.write(`echo over WebSocket: ${chunk}`));
  channel.on('end', () => channel.end());
});
const attachment = attachWebSocket(http, attested, { path: '/attested' });
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
