/** The DATA writer's frame buffers: owned by the writer, reused while a transfer flows, gone when idle. */
import type { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DataWriter } from '../../src/channel/data-writer.js';
import { HEADER_SIZE } from '../../src/channel/frames.js';

const FRAME_PAYLOAD = 16_384 - HEADER_SIZE;

/** A socket that completes writes only when told to. */
function manualSocket() {
  const writes: Array<{ chunk: Buffer; done: (err?: Error | null) => void }> = [];
  const socket = {
    destroyed: false,
    writableEnded: false,
    write(chunk: Buffer, done: (err?: Error | null) => void) {
      writes.push({ chunk, done });
      return true;
    },
  };
  return { socket: socket as unknown as Duplex, writes };
}

const fourFrames = () => [Buffer.alloc(4 * FRAME_PAYLOAD, 7)];

describe('DataWriter', () => {
  it('reuses a written frame buffer while others are in flight, and holds none once idle', () => {
    const { socket, writes } = manualSocket();
    const writer = new DataWriter(socket);
    writer.write(fourFrames(), () => {});
    writer.write(fourFrames(), () => {});
    expect(writes).toHaveLength(2);
    const [a, b] = writes.map((w) => w.chunk.buffer);
    expect(a).not.toBe(b);
    writes[0]!.done(null); // A written, B still in flight: A's buffer goes to the pool
    writer.write(fourFrames(), () => {});
    expect(writes[2]!.chunk.buffer).toBe(a);
    writes[1]!.done(null);
    writes[2]!.done(null); // nothing in flight: the pool is emptied
    writer.write(fourFrames(), () => {});
    const d = writes[3]!.chunk.buffer;
    expect(d).not.toBe(a);
    expect(d).not.toBe(b);
  });

  it('two writers share no buffer', () => {
    const one = manualSocket();
    const two = manualSocket();
    const w1 = new DataWriter(one.socket);
    const w2 = new DataWriter(two.socket);
    w1.write(fourFrames(), () => {});
    w1.write(fourFrames(), () => {});
    one.writes[0]!.done(null); // w1 pools a buffer
    w2.write(fourFrames(), () => {});
    expect(two.writes[0]!.chunk.buffer).not.toBe(one.writes[0]!.chunk.buffer);
  });
});
