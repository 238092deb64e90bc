/**
 * The DATA writer: its frame buffers (owned by the writer, reused while a transfer flows, gone when
 * idle), how it coalesces writes into frames, and its backpressure.
 */
import type { Duplex } from 'node:stream';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DataWriter } from '../../src/channel/data-writer.js';
import { FrameDecoder, FrameType, HEADER_SIZE } from '../../src/channel/frames.js';

const FRAME_PAYLOAD = 16_384 - HEADER_SIZE;

/**
 * A socket that completes writes only when told to; writableLength counts the bytes of the writes
 * not completed yet, as a stream's does. `written` is what a write's bytes were when it completed
 * (a real socket has sent them by then; afterwards the writer may reuse the buffer).
 */
function manualSocket() {
  const writes: Array<{ chunk: Buffer; written?: Buffer; done: (err?: Error | null) => void }> = [];
  let unwritten = 0;
  const socket = {
    destroyed: false,
    writableEnded: false,
    get writableLength() {
      return unwritten;
    },
    write(chunk: Buffer, done: (err?: Error | null) => void) {
      unwritten += chunk.length;
      const entry: (typeof writes)[number] = {
        chunk,
        done: (err) => {
          if (entry.written) return;
          entry.written = Buffer.from(chunk);
          unwritten -= chunk.length;
          done(err);
        },
      };
      writes.push(entry);
      return true;
    },
  };
  return { socket: socket as unknown as Duplex, writes };
}

/** Lets queued microtasks (the end-of-tick flush) run. */
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The frames in `chunks`, each chunk checked to hold whole frames only. */
function framesOf(chunks: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const chunk of chunks) {
    const decoder = new FrameDecoder();
    for (const f of decoder.push(chunk)) {
      expect(f.type).toBe(FrameType.DATA);
      out.push(Buffer.from(f.payload));
    }
    expect(decoder.buffered).toBe(0);
  }
  return out;
}

const bytes = (n: number, seed: number) =>
  Buffer.from(Array.from({ length: n }, (_, i) => (seed * 31 + i) & 0xff));

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

  it('joins the writes of one tick into one frame, sent at the end of the tick when nothing is queued', async () => {
    const { socket, writes } = manualSocket();
    const writer = new DataWriter(socket);
    for (let i = 0; i < 10; i++) writer.write([bytes(10, i)], () => {});
    expect(writes).toHaveLength(0);
    await tick();
    expect(writes).toHaveLength(1);
    expect(framesOf([writes[0]!.chunk])).toEqual([
      Buffer.concat(Array.from({ length: 10 }, (_, i) => bytes(10, i))),
    ]);
  });

  it('holds a short frame while the socket still holds earlier DATA, fills it with later writes, and sends the rest once that is written', async () => {
    const { socket, writes } = manualSocket();
    const writer = new DataWriter(socket);
    const a = bytes(100, 1);
    const b = bytes(50, 2);
    const c = bytes(20_000, 3);
    writer.write([a], () => {});
    await tick();
    expect(writes).toHaveLength(1); // nothing was queued: out at the end of the tick
    writer.write([b], () => {});
    await tick();
    expect(writes).toHaveLength(1); // the socket still holds a: b waits
    writer.write([c], () => {});
    await tick();
    expect(writes).toHaveLength(2); // b and the start of c: one full frame; the rest waits
    writes[0]!.done(null);
    expect(writes).toHaveLength(2); // the second write is not written yet
    writes[1]!.done(null);
    expect(writes).toHaveLength(3); // everything written: the rest goes out, no further write needed
    writes[2]!.done(null);
    const frames = framesOf(writes.map((w) => w.written!));
    expect(frames.map((f) => f.length)).toEqual([100, FRAME_PAYLOAD, 150 + 20_000 - 100 - FRAME_PAYLOAD]);
    expect(Buffer.concat(frames).equals(Buffer.concat([a, b, c]))).toBe(true);
  });

  it('a held short frame goes out first when a control frame or the end flushes', async () => {
    const { socket, writes } = manualSocket();
    const writer = new DataWriter(socket);
    writer.write([bytes(10, 1)], () => {});
    await tick();
    writer.write([bytes(20, 2)], () => {});
    await tick();
    expect(writes).toHaveLength(1);
    writer.flush();
    expect(writes).toHaveLength(2);
    expect(framesOf([writes[1]!.chunk])).toEqual([bytes(20, 2)]);
    writes[0]!.done(null);
    writes[1]!.done(null);
    expect(writes).toHaveLength(2); // nothing left to send
  });

  it('keeps every byte in order, in whole frames of at most one record, however writes, ticks and completions interleave (property)', async () => {
    type Op = { kind: 'write'; sizes: number[] } | { kind: 'tick' } | { kind: 'complete' };
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('write' as const),
        sizes: fc.array(fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 70_000 })), {
          minLength: 1,
          maxLength: 4,
        }),
      }),
      fc.constant({ kind: 'tick' as const }),
      fc.constant({ kind: 'complete' as const }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op as fc.Arbitrary<Op>, { maxLength: 25 }), async (ops) => {
        const { socket, writes } = manualSocket();
        const writer = new DataWriter(socket);
        const sent: Buffer[] = [];
        let completed = 0;
        let seed = 0;
        for (const o of ops) {
          if (o.kind === 'write') {
            const chunks = o.sizes.map((n) => bytes(n, seed++));
            sent.push(...chunks);
            writer.write(chunks, () => {});
          } else if (o.kind === 'tick') await tick();
          else if (completed < writes.length) writes[completed++]!.done(null);
        }
        await tick();
        while (completed < writes.length) writes[completed++]!.done(null);
        await tick();
        const frames = framesOf(writes.map((w) => w.written!));
        for (const f of frames) {
          expect(f.length).toBeGreaterThan(0);
          expect(f.length).toBeLessThanOrEqual(FRAME_PAYLOAD);
        }
        // Every socket write is either whole full frames or one short frame.
        for (const w of writes) {
          const fs = framesOf([w.written!]);
          if (fs.length > 1) for (const f of fs) expect(f.length).toBe(FRAME_PAYLOAD);
        }
        expect(Buffer.concat(frames).equals(Buffer.concat(sent))).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it('backpressure: the callback is held while more than 256 KiB are unwritten, released below half of that', () => {
    const { socket, writes } = manualSocket();
    const writer = new DataWriter(socket);
    let called = 0;
    // 4 full frames a write (64 KiB of records): the 5th write puts 320 KiB in flight.
    for (let i = 0; i < 4; i++) writer.write(fourFrames(), () => called++);
    expect(called).toBe(4);
    writer.write(fourFrames(), () => called++);
    expect(called).toBe(4);
    writes[0]!.done(null); // 256 KiB left: still over half
    writes[1]!.done(null); // 192 KiB
    expect(called).toBe(4);
    writes[2]!.done(null); // 128 KiB: released
    expect(called).toBe(5);
  });

  it('a small write is framed in a buffer of its size, not a whole record', async () => {
    const { socket, writes } = manualSocket();
    const writer = new DataWriter(socket);
    writer.write([Buffer.from('ping 1')], () => {});
    await Promise.resolve(); // the end of the tick: nothing queued, the partial frame goes out
    expect(writes).toHaveLength(1);
    const chunk = writes[0]!.chunk;
    expect([...chunk]).toEqual([4, 0, 0, 0, 6, ...Buffer.from('ping 1')]);
    // A record-sized buffer (16 KiB, its own ArrayBuffer) per small write stayed with the
    // allocator of a process holding 10 000 channels that had each echoed once. The small one
    // comes from Node's shared pool (8 KiB up to Node 22, 64 KiB from Node 24) or is its own.
    const shared = chunk.buffer.byteLength === Buffer.poolSize;
    expect(shared || chunk.buffer.byteLength < 16_384).toBe(true);
  });
});
