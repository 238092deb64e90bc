/**
 * Failed handshakes of every kind (bad binder, stall, bad frame, TLS error) against one server
 * leave nothing behind: no socket, no timer, no pending channel, no listener. fuzz/leaks.ts runs the
 * same with 10 000 of each and memory figures after GC (`npm run leaks`).
 */
import { describe, expect, it } from 'vitest';
import {
  attempts,
  EXPECTED_CODE,
  FAILURE_KINDS,
  settle,
  snapshot,
  startServer,
} from '../../fuzz/failed-handshakes.js';

const COUNT = 60;

describe('failed handshakes leave nothing behind', () => {
  it.each(FAILURE_KINDS)('%s', { timeout: 60_000 }, async (kind) => {
    // A short timeout only where the server must wait one out: elsewhere a busy test machine
    // must not turn a slow handshake into a stall.
    const run = await startServer(kind === 'stall' ? 200 : 20_000);
    try {
      await attempts(run.port, kind, 2, 2);
      const base = await settle(run.server, await snapshot(run.server));
      run.codes.clear();
      await attempts(run.port, kind, COUNT, 20);
      const after = await settle(run.server, base);
      // Each attempt failed for the reason it stands for.
      expect(Object.fromEntries(run.codes)).toEqual({ [EXPECTED_CODE[kind]]: COUNT });
      expect(after.pending).toBe(0);
      for (const k of ['TCPSocketWrap', 'TLSWrap', 'Timeout'])
        expect(after.resources[k] ?? 0, k).toBeLessThanOrEqual(base.resources[k] ?? 0);
      expect(after.listeners).toEqual(base.listeners);
    } finally {
      await run.close();
    }
  });
});
