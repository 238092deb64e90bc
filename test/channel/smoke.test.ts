import { describe, expect, it } from 'vitest';
import { attestedConnect } from '../../src/channel/connect.js';
import { createAttestedServer } from '../../src/channel/server.js';
import { closeServer, fakeProvider, fakeVerify, listen } from './helpers.js';

describe('smoke', () => {
  it('one-way over TCP', async () => {
    const server = createAttestedServer({ evidence: fakeProvider(), ...fakeVerify }, (ch) => {
      ch.on('data', (d) => ch.write(d));
      ch.on('end', () => ch.end());
    });
    server.on('attestationError', (e) => console.log('server err', e));
    const port = await listen(server);
    const ch = await attestedConnect({ host: '127.0.0.1', port, verify: {}, ...fakeVerify });
    expect(ch.peer?.format).toBe('sev-snp');
    ch.write('hello');
    const got = await new Promise<string>((r) => ch.once('data', (d) => r(String(d))));
    expect(got).toBe('hello');
    ch.end();
    await closeServer(server);
  });
});
