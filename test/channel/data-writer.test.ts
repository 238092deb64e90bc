/** The DATA writer's frame buffers: owned by the writer, reused while a transfer flows, gone when idle. */
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
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
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reuses written frame buffers through a lull, and holds none once idle for a second', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
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
    writes[2]!.done(null); // nothing in flight: a lull, the pool stays for now
    vi.advanceTimersByTime(999);
    writer.write(fourFrames(), () => {});
    expect([a, b]).toContain(writes[3]!.chunk.buffer);
    writes[3]!.done(null);
    vi.advanceTimersByTime(1_000); // idle for a second: the pool is emptied
    writer.write(fourFrames(), () => {});
    const e = writes[4]!.chunk.buffer;
    expect(e).not.toBe(a);
    expect(e).not.toBe(b);
  });

  it('a discarded writer keeps no buffer: neither the pooled one nor one written afterwards', () => {
    const { socket, writes } = manualSocket();
    const writer = new DataWriter(socket);
    writer.write(fourFrames(), () => {});
    writer.write(fourFrames(), () => {});
    writes[0]!.done(null); // pooled
    writer.discard();
    writes[1]!.done(null); // written after the discard: not pooled
    writer.write(fourFrames(), () => {});
    const [a, b] = writes.map((w) => w.chunk.buffer);
    expect(writes[2]!.chunk.buffer).not.toBe(a);
    expect(writes[2]!.chunk.buffer).not.toBe(b);
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
