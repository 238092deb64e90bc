/**
 * parseEventLog decodes the content parsing does not need on first read (issue 13's benchmark):
 * what a reader sees must be exactly what decoding at parse time gave, for every event of every
 * real log, and a decoder's failure must still show as `decodeError`.
 */
import { describe, expect, it } from 'vitest';
import { decodeEvent, EV } from '../../src/evidence/eventlog/decode.js';
import { parseEventLog } from '../../src/evidence/eventlog/index.js';
import { buildLog, loadEventLogFixtures, SEPARATOR } from './fixtures.js';

describe('decoding on read', () => {
  for (const f of loadEventLogFixtures())
    it(`${f.name}: every event reads as decoded at parse time`, () => {
      const log = parseEventLog(f.log, f.options);
      for (const e of log.events) {
        const eager = decodeEvent(e.type, e.data, Object.entries(e.digests));
        expect(eager.later).toBeUndefined();
        expect(e.digestCheck).toBe(eager.check);
        expect(e.decoded).toEqual(eager.decoded);
        expect(e.decodeError).toBe(eager.decodeError);
        // Read twice: decoded once and kept.
        expect(e.decoded).toBe(e.decoded);
        // JSON output (the CLI's) shows the content without anyone having read it first.
        const fresh = parseEventLog(f.log, f.options).events[e.index]!;
        expect(JSON.parse(JSON.stringify(fresh)).decoded).toEqual(
          eager.decoded === undefined ? undefined : JSON.parse(JSON.stringify(eager.decoded)),
        );
      }
    });

  it('a variable event that does not decode reports why, when read', () => {
    const bad = new Uint8Array(40); // UEFI_VARIABLE_DATA whose name length runs past the data
    bad[16] = 0xff;
    const log = parseEventLog(
      buildLog(
        ['sha256', 'sha384'],
        [
          { pcr: 7, type: EV.EFI_VARIABLE_DRIVER_CONFIG, data: bad },
          { pcr: 7, type: EV.SEPARATOR, data: SEPARATOR },
        ],
      ),
    );
    const e = log.events[0]!;
    expect(e.digestCheck).toBe('verified');
    expect(e.decodeError).toMatch(/UnicodeNameLength|run past/);
    expect(e.decoded).toBeUndefined();
  });
});
