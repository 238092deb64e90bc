/**
 * The sending half of an open channel's DATA (the analogue of ws's Sender): application bytes are
 * framed into DATA frames that each fill one TLS record, coalesced within a tick, built in pooled
 * buffers the writer owns, and held back when the TLS socket has too much queued.
 */
import type { Duplex } from 'node:stream';
import { FrameType, HEADER_SIZE } from './frames.js';

/** The largest TLS record's plaintext; each DATA frame we send fills one. */
const RECORD_SIZE = 16_384;
const SEND_DATA_PAYLOAD = RECORD_SIZE - HEADER_SIZE;
/** Bytes we let queue in the TLS socket before the channel reports backpressure to its writer. */
const WRITE_QUEUE_BYTES = 256 * 1024;
/**
 * The partial frame's first buffer: small enough to come from Node's shared allocation pool (an
 * HTTP message then costs no 16 KiB buffer of its own), doubled up to one record as writes join it.
 */
const PENDING_MIN = 1024;
/**
 * Full DATA frames are built in 64 KiB buffers taken from the writer's own pool and returned
 * once the socket has written them: bulk transfers would otherwise allocate (and the GC collect)
 * one buffer per write. While a transfer flows at most WRITE_QUEUE_BYTES plus one write are in
 * flight, so POOL_MAX buffers (384 KiB) cover it. The pool is emptied once nothing has been in
 * flight for POOL_IDLE_MS, so an idle channel holds none; not at once, because a fast socket
 * empties between two writes of one transfer (emptying at once measured 20–25% less throughput).
 */
const POOL_FRAMES = 4;
const POOL_MAX = 6;
const POOL_IDLE_MS = 1_000;

export class DataWriter {
  readonly #socket: Duplex;
  /** The DATA frame being filled (header room + #pendingLength payload bytes), sent by flush(). */
  #pending: Buffer | undefined;
  #pendingLength = 0;
  #flushQueued = false;
  /** The partial frame waits for the socket to write what it holds (see #flushTask). */
  #flushOnWritten = false;
  /** Where take() reads next: sources[#si], from byte #so. */
  #sources: Buffer[] = [];
  #si = 0;
  #so = 0;
  /** DATA bytes handed to the socket and not yet written by it. */
  #inFlight = 0;
  /** The writer's callback, held while #inFlight is over the limit. */
  #backpressured: (() => void) | undefined;
  #discarded = false;
  /** Written-out frame buffers, reused by the next full frames (see POOL_MAX). */
  readonly #pool: Buffer[] = [];
  /** Set while the pool waits to be emptied (see POOL_IDLE_MS). */
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(socket: Duplex) {
    this.#socket = socket;
  }

  /**
   * Frames and sends `chunks`; `callback` runs at once, or when the socket has written enough
   * (backpressure). The caller has checked that the channel is open and the socket writable.
   */
  write(chunks: Buffer[], callback: () => void): void {
    // Bytes are framed into DATA frames of exactly one TLS record (header + payload = 16 KiB), so
    // the receiver finds each frame whole in one read and slices it without copying. The last,
    // partial frame waits in #pending for the writes that follow in this same tick and goes out
    // at the end of it (flush): a 64 KiB write then costs 4 records, not 4 and a 25-byte one.
    let total = this.#pendingLength;
    for (const c of chunks) total += c.length;
    const full = Math.floor(total / SEND_DATA_PAYLOAD);
    // Pending bytes lead the full frames; with no full frame the new bytes are appended after them.
    const sources =
      full > 0 && this.#pending && this.#pendingLength > 0
        ? [this.#pending.subarray(HEADER_SIZE, HEADER_SIZE + this.#pendingLength), ...chunks]
        : chunks;
    this.#sources = sources;
    this.#si = 0;
    this.#so = 0;
    for (let f = 0; f < full; f += POOL_FRAMES) {
      const frames = Math.min(POOL_FRAMES, full - f);
      const out = this.#pool.pop() ?? Buffer.allocUnsafe(POOL_FRAMES * RECORD_SIZE);
      for (let i = 0; i < frames; i++) {
        const at = i * RECORD_SIZE;
        out[at] = FrameType.DATA;
        out.writeUInt32BE(SEND_DATA_PAYLOAD, at + 1);
        this.#take(out, at + HEADER_SIZE, SEND_DATA_PAYLOAD);
      }
      this.#pendingLength = 0;
      this.#send(out, frames * RECORD_SIZE, true);
    }
    const rest = total - full * SEND_DATA_PAYLOAD;
    if (rest > 0) {
      // Appends after what is pending (full === 0), or starts over (its bytes went out above).
      const skip = full === 0 ? this.#pendingLength : 0;
      let pending = this.#pending;
      if (!pending || pending.length < HEADER_SIZE + rest) {
        // Doubling, so bytes already pending are copied O(1) times each (amortised).
        const size = Math.max(HEADER_SIZE + rest, 2 * (pending?.length ?? 0), PENDING_MIN);
        const grown = Buffer.allocUnsafe(Math.min(RECORD_SIZE, size));
        if (pending && skip > 0) pending.copy(grown, HEADER_SIZE, HEADER_SIZE, HEADER_SIZE + skip);
        pending = this.#pending = grown;
      }
      this.#take(pending, HEADER_SIZE + skip, rest - skip);
      this.#pendingLength = rest;
      if (!this.#flushQueued) {
        this.#flushQueued = true;
        queueMicrotask(this.#flushTask);
      }
    }
    this.#sources = [];
    // Backpressure on what the socket has not written yet, released at half of the limit rather
    // than at 'drain' (empty): the socket never runs dry while the next writes come through.
    if (this.#inFlight <= WRITE_QUEUE_BYTES) callback();
    else this.#backpressured = callback;
  }

  /** Copies the next `n` source bytes of write() to `target` at `at`. */
  #take(target: Buffer, at: number, n: number): void {
    const sources = this.#sources;
    while (n > 0) {
      const c = sources[this.#si]!;
      const m = Math.min(n, c.length - this.#so);
      c.copy(target, at, this.#so, this.#so + m);
      at += m;
      n -= m;
      this.#so += m;
      if (this.#so === c.length) {
        this.#si++;
        this.#so = 0;
      }
    }
  }

  /** Sends the partial DATA frame, if any; before any control frame and the end, to keep order. */
  flush(): void {
    this.#flushOnWritten = false;
    const frame = this.#pending;
    const length = this.#pendingLength;
    if (!frame || length === 0) return;
    this.#pending = undefined; // the socket keeps a reference until it is written out
    this.#pendingLength = 0;
    const socket = this.#socket;
    if (this.#discarded || socket.destroyed || socket.writableEnded) return;
    frame[0] = FrameType.DATA;
    frame.writeUInt32BE(length, 1);
    this.#send(frame, HEADER_SIZE + length, false);
  }

  /** After a failure: unsent DATA goes nowhere and a held writer callback is dropped. */
  discard(): void {
    this.#discarded = true;
    this.#dropPool();
    this.#pending = undefined;
    this.#pendingLength = 0;
    this.#backpressured = undefined;
  }

  /** On destroy: a writer waiting for backpressure to clear is not called back. */
  releaseWaiter(): void {
    this.#backpressured = undefined;
    this.#dropPool();
  }

  /** Hands `length` bytes of `buffer` to the socket; a pooled buffer goes back once written. */
  #send(buffer: Buffer, length: number, pooled: boolean): void {
    this.#inFlight += length;
    this.#socket.write(length === buffer.length ? buffer : buffer.subarray(0, length), (err) => {
      this.#inFlight -= length;
      if (pooled && !err && !this.#discarded && this.#pool.length < POOL_MAX) this.#pool.push(buffer);
      if (this.#inFlight === 0 && this.#pool.length > 0 && !this.#idleTimer) {
        this.#idleTimer = setTimeout(this.#onIdle, POOL_IDLE_MS);
        this.#idleTimer.unref();
      }
      if (this.#inFlight === 0 && this.#flushOnWritten) this.flush();
      const waiting = this.#backpressured;
      if (waiting && this.#inFlight <= WRITE_QUEUE_BYTES / 2) {
        this.#backpressured = undefined;
        waiting();
      }
    });
  }

  /** Empties the pool if nothing went out since the timer was set; else waits for the next lull. */
  #onIdle = (): void => {
    this.#idleTimer = undefined;
    if (this.#inFlight === 0) this.#pool.length = 0;
  };

  #dropPool(): void {
    this.#pool.length = 0;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  #flushTask = (): void => {
    this.#flushQueued = false;
    // While the socket still holds DATA it could not write yet, the partial frame could not leave
    // before those bytes anyway: it waits for them to be written (the last write's callback sends
    // it), and the writes of the next ticks fill it up instead of going out as short records. Sent
    // at once, it would also be handed to TLS in one writev with the frames after it, which node:tls
    // joins into one stream of records (tls_wrap.cc DoWrite), so the frames after it would no longer
    // start on a record and the receiver would take its copying path (Session#dataPayload) for all
    // of them. A control frame or the end flushes it first, as before.
    if (this.#inFlight > 0 && this.#socket.writableLength > 0) this.#flushOnWritten = true;
    else this.flush();
  };
}
