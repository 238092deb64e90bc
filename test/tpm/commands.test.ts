/**
 * TPM command marshalling against byte strings worked out from the TPM 2.0 Part 3 command tables
 * (header tag | commandSize | commandCode | handles | authorization area | parameters), response
 * parsing and code names, and the transports' bounds (a peer that never answers, answers one byte
 * at a time, or announces a huge response).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import { streamTransport, TpmClient } from '../../src/evidence/tpm/client.js';
import {
  buildCommand,
  nvDefineSpaceCommand,
  nvReadCommand,
  nvReadPublicCommand,
  nvWriteCommand,
  parseNvRead,
  parseNvReadPublic,
  parsePcrRead,
  parseQuote,
  parseReadPublic,
  pcrReadCommand,
  quoteCommand,
  readPublicCommand,
  TPM_CC,
  TPM_RH,
  TPMA_NV,
  tpmRcName,
} from '../../src/evidence/tpm/commands.js';
import { TPM_ALG } from '../../src/evidence/tpm/marshal.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const ALL = [{ hash: TPM_ALG.SHA256, pcrs: [...Array(24).keys()] }];
// The password session of an empty password: TPM_RS_PW, nonce size 0, continueSession, hmac size 0.
const PW = '40000009 0000 01 0000';

describe('command bytes', () => {
  it('TPM2_GetRandom(8), the shape of Part 3 §16.1', () => {
    expect(hex(buildCommand(TPM_CC.GetRandom, [], bytes('0008')))).toBe('80010000000c0000017b0008');
  });

  it('NV_ReadPublic, ReadPublic, PCR_Read (no sessions)', () => {
    expect(hex(nvReadPublicCommand(0x01400001))).toBe('80010000000e0000016901400001');
    expect(hex(readPublicCommand(0x81000003))).toBe('80010000000e0000017381000003');
    expect(hex(pcrReadCommand(ALL))).toBe('8001000000140000017e00000001000b03ffffff');
    expect(hex(pcrReadCommand([{ hash: TPM_ALG.SHA1, pcrs: [0, 7] }]))).toBe(
      '8001000000140000017e000000010004038100 00'.replace(/ /g, ''),
    );
  });

  it('NV_Read, NV_Write, NV_DefineSpace with the owner password session', () => {
    expect(hex(nvReadCommand(TPM_RH.OWNER, 0x01400001, 1024, 1024))).toBe(
      `8002 00000023 0000014e 40000001 01400001 00000009 ${PW} 0400 0400`.replace(/ /g, ''),
    );
    expect(hex(nvWriteCommand(TPM_RH.OWNER, 0x01400002, bytes('aabb'), 2))).toBe(
      `8002 00000025 00000137 40000001 01400002 00000009 ${PW} 0002 aabb 0002`.replace(/ /g, ''),
    );
    const attrs = TPMA_NV.OWNERWRITE | TPMA_NV.OWNERREAD;
    expect(attrs).toBe(0x00020002);
    expect(
      hex(nvDefineSpaceCommand(TPM_RH.OWNER, { index: 0x01400002, dataSize: 64, attributes: attrs })),
    ).toBe(
      `8002 0000002d 0000012a 40000001 00000009 ${PW} 0000 000e 01400002 000b 00020002 0000 0040`.replace(
        / /g,
        '',
      ),
    );
  });

  it('Quote with the key scheme, and with an explicit RSASSA-SHA256 scheme', () => {
    expect(hex(quoteCommand(0x81000003, bytes('6368616c6c656e6765'), ALL))).toBe(
      `8002 00000032 00000158 81000003 00000009 ${PW} 0009 6368616c6c656e6765 0010 00000001 000b 03 ffffff`.replace(
        / /g,
        '',
      ),
    );
    expect(
      hex(quoteCommand(0x81000003, new Uint8Array(), ALL, { alg: TPM_ALG.RSASSA, hash: TPM_ALG.SHA256 })),
    ).toBe(
      `8002 0000002b 00000158 81000003 00000009 ${PW} 0000 0014 000b 00000001 000b 03 ffffff`.replace(
        / /g,
        '',
      ),
    );
    expect(() => quoteCommand(0x81000003, new Uint8Array(65), ALL)).toThrow(RangeError);
  });
});

describe('responses', () => {
  it('response codes are named (format 0, format 1 with handle/parameter/session, warnings)', () => {
    expect(tpmRcName(0)).toBe('TPM_RC_SUCCESS');
    expect(tpmRcName(0x18b)).toBe('TPM_RC_HANDLE (handle 1)');
    expect(tpmRcName(0x2d5)).toBe('TPM_RC_SIZE (parameter 2)');
    expect(tpmRcName(0x98e)).toBe('TPM_RC_AUTH_FAIL (session 1)');
    expect(tpmRcName(0x14c)).toBe('TPM_RC_NV_DEFINED');
    expect(tpmRcName(0x14a)).toBe('TPM_RC_NV_UNINITIALIZED');
    expect(tpmRcName(0x922)).toBe('TPM_RC_RETRY');
    expect(tpmRcName(0x921)).toBe('TPM_RC_LOCKOUT');
    expect(tpmRcName(0x1e)).toBe('TPM 1.2 response code 0x1e');
    expect(tpmRcName(0x500)).toBe('TPM vendor code 0x500');
  });

  it('an error response is ERR_PROVIDER_FAILED with the code and the command', () => {
    try {
      parseNvReadPublic(bytes('80010000000a0000018b'));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(AttestationError);
      expect((err as AttestationError).code).toBe('ERR_PROVIDER_FAILED');
      expect((err as AttestationError).details).toEqual({
        rc: 0x18b,
        rcName: 'TPM_RC_HANDLE (handle 1)',
        command: 'TPM2_NV_ReadPublic',
      });
    }
  });

  it('a response whose size field is not its length is refused', () => {
    expect(() =>
      parseNvReadPublic(
        bytes(`8001 0000003f 00000000 000e 01400002 000b 20020002 0000 0040 0022 000b ${'11'.repeat(32)}`),
      ),
    ).toThrow(/responseSize 63 but 62 bytes/);
  });

  it('NV_ReadPublic and NV_Read responses', () => {
    const pub = parseNvReadPublic(
      bytes(`8001 0000003e 00000000 000e 01400002 000b 20020002 0000 0040 0022 000b ${'11'.repeat(32)}`),
    );
    expect(pub).toMatchObject({
      index: 0x01400002,
      nameAlg: TPM_ALG.SHA256,
      attributes: 0x20020002,
      dataSize: 64,
    });
    expect(
      hex(
        parseNvRead(bytes('8002 00000018 00000000 00000005 0003 aabbcc 0000 01 0000'.replace(/ /g, '')), 3),
      ),
    ).toBe('aabbcc');
    // More bytes than were asked for, or fewer.
    expect(() =>
      parseNvRead(bytes('8002 00000018 00000000 00000005 0003 aabbcc 0000 01 0000'.replace(/ /g, '')), 2),
    ).toThrow(AttestationError);
    expect(() =>
      parseNvRead(bytes('8002 00000017 00000000 00000004 0002 aabb 0000 01 0000'.replace(/ /g, '')), 3),
    ).toThrow(AttestationError);
  });

  it('PCR_Read: values must match the returned selection', () => {
    const one = `00000001 000b 03 010000`;
    expect(
      parsePcrRead(
        bytes(`8001 0000003e 00000000 00000005 ${one} 00000001 0020 ${'ab'.repeat(32)}`.replace(/ /g, '')),
      ).digests,
    ).toHaveLength(1);
    expect(() =>
      parsePcrRead(bytes(`8001 0000001c 00000000 00000005 ${one} 00000000`.replace(/ /g, ''))),
    ).toThrow(AttestationError);
  });

  it('arbitrary bytes: every response parser fails with ERR_PROVIDER_FAILED only', () => {
    const parsers = [
      parseNvReadPublic,
      (b: Uint8Array) => parseNvRead(b, 16),
      parsePcrRead,
      parseQuote,
      parseReadPublic,
    ];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (b, fixHeader) => {
        if (fixHeader && b.length >= 10) {
          // A success header of the right size, so the parsers reach the parameters.
          b.set([0x80, b[0]! & 1 ? 0x02 : 0x01]);
          new DataView(b.buffer, b.byteOffset).setUint32(2, b.length);
          new DataView(b.buffer, b.byteOffset).setUint32(6, 0);
        }
        for (const p of parsers) {
          try {
            p(b);
          } catch (err) {
            expect(err).toBeInstanceOf(AttestationError);
            expect((err as AttestationError).code).toBe('ERR_PROVIDER_FAILED');
          }
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('transports', () => {
  const servers: Server[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.close();
  });

  async function fakeTpm(onCommand: (sock: Socket, data: Buffer) => void): Promise<number> {
    const server = createServer((sock) => sock.on('data', (d) => onCommand(sock, d)));
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return (server.address() as { port: number }).port;
  }

  const OK_NV_PUBLIC = bytes(
    `8001 0000003e 00000000 000e 01400002 000b 20020002 0000 0040 0022 000b ${'11'.repeat(32)}`,
  );

  it('no simulator on the port: ERR_PROVIDER_UNAVAILABLE', async () => {
    const port = await fakeTpm(() => {});
    servers.pop()!.close();
    await new Promise((r) => setTimeout(r, 20));
    const err = await TpmClient.tcp({ port }).catch((e) => e);
    expect(err.code).toBe('ERR_PROVIDER_UNAVAILABLE');
  });

  it('no TPM device: ERR_PROVIDER_UNAVAILABLE', async () => {
    const err = await TpmClient.device('/nonexistent/tpmrm0').catch((e) => e);
    expect(err.code).toBe('ERR_PROVIDER_UNAVAILABLE');
  });

  it('a device handle: one write per command, one read per response; a read that never returns times out', async () => {
    const writes: string[] = [];
    let closed = 0;
    const handle = (answer: Uint8Array | null) => ({
      async write(b: Uint8Array) {
        writes.push(hex(b));
      },
      async read(buf: Uint8Array) {
        if (!answer) return new Promise<never>(() => {});
        buf.set(answer);
        return { bytesRead: answer.length };
      },
      async close() {
        closed++;
      },
    });
    const ok = await TpmClient.device(handle(OK_NV_PUBLIC));
    expect((await ok.nvReadPublic(0x01400002)).dataSize).toBe(64);
    expect(writes).toEqual([hex(nvReadPublicCommand(0x01400002))]);
    await ok.close();
    expect(closed).toBe(1);
    const stuck = await TpmClient.device(handle(null), { timeoutMs: 50 });
    const err = await stuck.nvReadPublic(1).catch((e) => e);
    expect(err.message).toMatch(/no response within 50 ms/);
    expect(closed).toBe(2);
    expect((await stuck.nvReadPublic(1).catch((e) => e)).message).toMatch(/closed/);
  });

  it('a response arriving one byte at a time is assembled (mssim framing)', async () => {
    const port = await fakeTpm((sock, d) => {
      expect(d.readUInt32BE(0)).toBe(8); // TPM_SEND_COMMAND
      expect(d.readUInt32BE(5)).toBe(d.length - 9);
      const framed = Buffer.concat([
        Buffer.from([0, 0, 0, OK_NV_PUBLIC.length]),
        OK_NV_PUBLIC,
        Buffer.alloc(4),
      ]);
      let i = 0;
      const tick = () => {
        if (i < framed.length) {
          sock.write(framed.subarray(i, ++i));
          setTimeout(tick, 1);
        }
      };
      tick();
    });
    const client = await TpmClient.tcp({ port });
    expect((await client.nvReadPublic(0x01400002)).dataSize).toBe(64);
    await client.close();
  });

  it('a TPM that never answers times out with ERR_PROVIDER_FAILED, and the transport is not reused', async () => {
    const port = await fakeTpm(() => {});
    const client = await TpmClient.tcp({ port, timeoutMs: 100 });
    const err = await client.nvReadPublic(1).catch((e) => e);
    expect(err.code).toBe('ERR_PROVIDER_FAILED');
    expect(err.message).toMatch(/no response within 100 ms/);
    expect((await client.nvReadPublic(1).catch((e) => e)).code).toBe('ERR_PROVIDER_FAILED');
  });

  it('a huge announced response size is refused at once', async () => {
    const port = await fakeTpm((sock) => sock.write(Buffer.from('8001ffffffff00000000', 'hex')));
    const client = await TpmClient.tcp({ port, framing: 'raw', timeoutMs: 60_000 });
    const err = await client.nvReadPublic(1).catch((e) => e);
    expect(err.code).toBe('ERR_PROVIDER_FAILED');
    // Refused from the header, not after waiting for 4 GiB (the timeout is a minute).
    expect(err.message).toMatch(/response of 4294967295 bytes/);
  });

  it('more bytes than the response holds, or a close mid-response, is ERR_PROVIDER_FAILED', async () => {
    const extra = await fakeTpm((sock) => sock.write(Buffer.concat([OK_NV_PUBLIC, Buffer.from([0])])));
    const c1 = await TpmClient.tcp({ port: extra, framing: 'raw' });
    expect((await c1.nvReadPublic(1).catch((e) => e)).code).toBe('ERR_PROVIDER_FAILED');
    const half = await fakeTpm((sock) => sock.end(OK_NV_PUBLIC.subarray(0, 20)));
    const c2 = await TpmClient.tcp({ port: half, framing: 'raw' });
    expect((await c2.nvReadPublic(1).catch((e) => e)).code).toBe('ERR_PROVIDER_FAILED');
  });

  it('mssim framing: bytes after the acknowledgement are refused (the framing is lost)', async () => {
    const port = await fakeTpm((sock) =>
      sock.write(Buffer.concat([Buffer.from([0, 0, 0, OK_NV_PUBLIC.length]), OK_NV_PUBLIC, Buffer.alloc(5)])),
    );
    const client = await TpmClient.tcp({ port });
    expect((await client.nvReadPublic(1).catch((e) => e)).message).toMatch(
      /more bytes than the response holds/,
    );
  });

  it('mssim framing: a non-zero acknowledgement is a failure', async () => {
    const port = await fakeTpm((sock) =>
      sock.write(
        Buffer.concat([Buffer.from([0, 0, 0, OK_NV_PUBLIC.length]), OK_NV_PUBLIC, Buffer.from([0, 0, 0, 1])]),
      ),
    );
    const client = await TpmClient.tcp({ port });
    expect((await client.nvReadPublic(1).catch((e) => e)).message).toMatch(/acknowledged with 1/);
  });

  it('a Duplex stream (e.g. a device opened by the caller) carries raw commands', async () => {
    const wire = new PassThrough();
    const seen: Buffer[] = [];
    const duplex = new PassThrough();
    duplex._write = (chunk, _enc, cb) => {
      seen.push(chunk);
      wire.write(OK_NV_PUBLIC);
      cb();
    };
    wire.on('data', (d) => duplex.push(d));
    const client = new TpmClient(streamTransport(duplex, 'raw'));
    expect((await client.nvReadPublic(0x01400002)).index).toBe(0x01400002);
    expect(hex(seen[0]!)).toBe(hex(nvReadPublicCommand(0x01400002)));
  });

  it('a connection reset while idle does not throw; the next command fails cleanly', async () => {
    const sockets: Socket[] = [];
    const server = createServer((sock) => sockets.push(sock));
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const client = await TpmClient.tcp({ port: (server.address() as { port: number }).port });
    await new Promise((r) => setTimeout(r, 20));
    sockets[0]!.resetAndDestroy();
    await new Promise((r) => setTimeout(r, 50));
    expect((await client.nvReadPublic(1).catch((e) => e)).code).toBe('ERR_PROVIDER_FAILED');
  });

  it('an aborted command is ERR_ABORTED', async () => {
    const port = await fakeTpm(() => {});
    const client = await TpmClient.tcp({ port });
    const ac = new AbortController();
    const p = client.nvReadPublic(1, ac.signal).catch((e) => e);
    ac.abort();
    expect((await p).code).toBe('ERR_ABORTED');
  });
});
