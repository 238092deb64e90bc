/**
 * ECDSA signatures made and checked on libuv's threadpool (the callback forms of node:crypto's
 * sign() and verify()) rather than on the event loop. A P-384 verify takes ~0.5 ms and a sign
 * ~0.55 ms; done synchronously, each holds up everything else the process is doing: the other
 * direction of a mutual exchange (a side's evidence generation and its check of the peer's would
 * otherwise run one after the other), and every other connection of a server. Off the event loop,
 * the main thread only hands the job over and takes the answer (a round trip of ~10–25 µs,
 * docs/benchmarks.md), and the threadpool's threads use the machine's other cores.
 *
 * node:crypto copies the inputs of an asynchronous job before it returns, so a caller's bytes may
 * change afterwards without touching the job. The threadpool (4 threads unless UV_THREADPOOL_SIZE
 * says otherwise) is shared with fs, dns.lookup and zlib: a job of ~0.5 ms delays those by at most
 * that while all threads are busy.
 */
import { type KeyObject, type SigningOptions, sign, verify } from 'node:crypto';

/** A key as sign()/verify() take it, with the options of the signature scheme. */
export type OffloadKey = KeyObject | (SigningOptions & { key: KeyObject });

/**
 * Whether `signature` verifies over `data` under `key`, checked on the threadpool. Never rejects:
 * anything node:crypto refuses (a key of another type, a malformed signature), thrown at once or
 * passed to the callback, is a signature that does not verify, as the synchronous form's callers
 * treat it; they turn false into their AttestationError.
 */
export function verifyOffThread(
  algorithm: string,
  data: Uint8Array,
  key: OffloadKey,
  signature: Uint8Array,
): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    try {
      verify(algorithm, data, key, signature, (err, ok) => resolve(err === null && ok === true));
    } catch {
      resolve(false);
    }
  });
}

/** A signature over `data` by `key`, made on the threadpool; rejects with node:crypto's error. */
export function signOffThread(algorithm: string, data: Uint8Array, key: OffloadKey): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    try {
      sign(algorithm, data, key, (err, signature) => (err ? reject(err) : resolve(signature)));
    } catch (err) {
      reject(err);
    }
  });
}
