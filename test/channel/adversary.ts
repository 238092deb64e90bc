/**
 * A hand-built peer that speaks attested-channel/1 over real node:tls (so exporters are real) and
 * does whatever a test tells it to: relay, replay, reflect, swap keys, send early or malformed frames.
 */
import { once } from 'node:events';
import { type AddressInfo, createServer as createNetServer, type Server } from 'node:net';
import { createSecureContext, TLSSocket, connect as tlsConnect } from 'node:tls';
import { computeBinder, exportBinderSecret, PROTOCOL_ID } from '../../src/channel/binder.js';
import {
  encodeEvidence,
  encodeRequest,
  type Frame,
  FrameDecoder,
  FrameType,
  parseEvidence,
  parseRequest,
} from '../../src/channel/frames.js';
import { createTlsIdentity, type TlsIdentity } from '../../src/channel/identity.js';
import type { Role } from '../../src/channel/options.js';

export class FrameReader {
  #decoder = new FrameDecoder();
  #frames: Frame[] = [];
  #waiting: Array<(f: Frame | undefined) => void> = [];
  #ended = false;
  constructor(readonly socket: TLSSocket) {
    socket.on('data', (chunk: Buffer) => {
      for (const f of this.#decoder.push(chunk)) {
        const w = this.#waiting.shift();
        if (w) w(f);
        else this.#frames.push(f);
      }
    });
    const end = () => {
      this.#ended = true;
      for (const w of this.#waiting.splice(0)) w(undefined);
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', () => {});
  }
  /** The next frame, or undefined once the peer closed. */
  next(): Promise<Frame | undefined> {
    const f = this.#frames.shift();
    if (f) return Promise.resolve(f);
    if (this.#ended) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }
  /** Frames until the peer closes. */
  async rest(): Promise<Frame[]> {
    const out: Frame[] = [];
    for (;;) {
      const f = await this.next();
      if (!f) return out;
      out.push(f);
    }
  }
}

export interface RawPeer {
  socket: TLSSocket;
  reader: FrameReader;
  identity: TlsIdentity;
}

/** A raw TLS client with ALPN attested-channel/1 and its own identity. */
export async function rawClient(
  port: number,
  options: { identity?: TlsIdentity; alpn?: string[] | false; session?: Buffer } = {},
): Promise<RawPeer> {
  const identity = options.identity ?? createTlsIdentity();
  const socket = tlsConnect({
    host: '127.0.0.1',
    port,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.3',
    key: identity.keyPem,
    cert: identity.certPem,
    ...(options.alpn === false ? {} : { ALPNProtocols: options.alpn ?? [PROTOCOL_ID] }),
    ...(options.session ? { session: options.session } : {}),
  });
  const reader = new FrameReader(socket);
  await once(socket, 'secureConnect');
  return { socket, reader, identity };
}

/** A raw TLS server; `onPeer` runs for each connection once TLS is up. */
export async function rawServer(
  onPeer: (peer: RawPeer) => void | Promise<void>,
  options: { identity?: TlsIdentity } = {},
): Promise<{ port: number; server: Server; identity: TlsIdentity; close: () => Promise<void> }> {
  const identity = options.identity ?? createTlsIdentity();
  const context = createSecureContext({
    key: identity.keyPem,
    cert: identity.certPem,
    minVersion: 'TLSv1.3',
  });
  const sockets = new Set<TLSSocket>();
  const server = createNetServer((raw) => {
    const socket = new TLSSocket(raw, {
      isServer: true,
      secureContext: context,
      ALPNProtocols: [PROTOCOL_ID],
    });
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const reader = new FrameReader(socket);
    socket.once('secure', () => void onPeer({ socket, reader, identity }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    server,
    identity,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The binder an honest attester of role `role` on this socket would use. */
export function binderFor(socket: TLSSocket, role: Role, spki: Uint8Array, context: Uint8Array): Uint8Array {
  return computeBinder(role, spki, exportBinderSecret(socket, role, context));
}

export function json(frame: Frame | undefined): Record<string, unknown> {
  if (!frame) throw new Error('no frame');
  return JSON.parse(Buffer.from(frame.payload).toString()) as Record<string, unknown>;
}

export { parseEvidence, parseRequest };

/** Teardowns a test file collects and runs (newest first) after each test. */
export type Cleanups = Array<() => Promise<void> | void>;

/** The context of the next frame, a REQUEST. */
export const contextOf = (reader: FrameReader) => reader.next().then((f) => parseRequest(f!.payload).context);

/** An adversary server; `done` settles when its handler for the (first) connection returns. */
export async function adversaryServer(cleanups: Cleanups, onPeer: (peer: RawPeer) => Promise<void>) {
  let finish!: () => void;
  const done = new Promise<void>((r) => {
    finish = r;
  });
  const s = await rawServer(async (peer) => {
    try {
      await onPeer(peer);
    } finally {
      finish();
    }
  });
  cleanups.push(s.close);
  return { ...s, done };
}

/**
 * The adversary as a server answering our client's REQUEST with this evidence for its context;
 * resolves with every frame our client sent after it ([type, 'data' or the parsed JSON]).
 */
export async function serveEvidence(
  peer: RawPeer,
  makeCmw: (ctx: Uint8Array) => Promise<unknown>,
): Promise<unknown[]> {
  const ctx = await contextOf(peer.reader);
  peer.socket.write(encodeRequest(new Uint8Array(32).fill(0x5a), []));
  peer.socket.write(encodeEvidence(ctx, await makeCmw(ctx)));
  return (await peer.reader.rest()).map((f) => [f.type, f.type === FrameType.DATA ? 'data' : json(f)]);
}
