/**
 * The TPM client and the verifiers against a real TPM (swtpm), provisioned as Azure's vTPM is:
 * AK at 0x81000003, NV 0x01400001 holding an HCL report around a simulated SNP report whose
 * runtime claims carry this AK, NV 0x01400002 for user data. Quotes made by our client and by
 * tpm2-tools' tpm2_quote are both verified by our verifier.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPORT_MEDIA_TYPES } from '../../src/channel/cmw.js';
import { attestedConnect } from '../../src/channel/connect.js';
import { encodeEvidence, encodeRequest, parseRequest } from '../../src/channel/frames.js';
import { createAttestedServer } from '../../src/channel/server.js';
import { startServe } from '../../src/cli/serve.js';
import { checkAzureBinding } from '../../src/evidence/azure/binding.js';
import { azureVtpm } from '../../src/evidence/providers/azure-vtpm.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { TpmClient } from '../../src/evidence/tpm/client.js';
import {
  AZURE_AK_HANDLE,
  AZURE_NV,
  nvReadCommand,
  nvReadPublicCommand,
  pcrReadCommand,
  quoteCommand,
  readPublicCommand,
  TPM_RH,
} from '../../src/evidence/tpm/commands.js';
import { TPM_ALG } from '../../src/evidence/tpm/marshal.js';
import { tpmName, tpmPublicToKey } from '../../src/evidence/tpm/public.js';
import { akSha256, verifyTpmQuote } from '../../src/evidence/tpm/quote.js';
import { verifyAzure, verifyEvidence } from '../../src/evidence/verify.js';
import { derToPem } from '../../src/evidence/x509/pem.js';
import { codeOf } from '../azure/fixtures.js';
import { buildHcl, reportDataFor, runtimeClaimsJson, tdreportOf } from '../azure/synthetic.js';
import { json, rawClient, rawServer } from '../channel/adversary.js';
import { listen } from '../channel/helpers.js';
import { haveSwtpm, provisionAk, recordingProxy, type Swtpm, startSwtpm } from './swtpm.js';

const ALL = [{ hash: TPM_ALG.SHA256, pcrs: [...Array(24).keys()] }];
// libtpms' MAX_NV_INDEX_SIZE is 2048 (Azure's vTPM holds 2600): the report is padded to 2048.
const HCL_SIZE = 2048;

describe.runIf(haveSwtpm())('against swtpm', () => {
  let tpm: Swtpm;
  let client: TpmClient;
  let hcl: Uint8Array;
  let snp: { vek: Uint8Array; chain: string };
  const options = { now: new Date(), offline: true, trustAnchors: simulated.trustAnchors() };

  /** swtpm serves one connection at a time: the client steps aside while a tpm2-tools program runs. */
  async function tool(name: string, args: string[]): Promise<string> {
    await client.close();
    try {
      const out = await tpm.tool(name, args);
      await tpm.flush();
      return out;
    } finally {
      client = await TpmClient.tcp({ port: tpm.port, timeoutMs: 20_000 });
    }
  }

  beforeAll(async () => {
    tpm = await startSwtpm();
    await provisionAk(tpm);
    client = await TpmClient.tcp({ port: tpm.port, timeoutMs: 20_000 });
    // What the paravisor does at boot: runtime claims with the AK, a hardware report over their hash.
    const ak = tpmPublicToKey((await client.readPublic()).public);
    const claims = runtimeClaimsJson(ak);
    const ev = await simulated.snp({ product: 'Genoa' }).getEvidence(reportDataFor(claims));
    snp = { vek: ev.vek!, chain: ev.chain as string };
    const report = buildHcl({ tee: 'sev-snp', hardwareReport: ev.report, claims, size: HCL_SIZE });
    expect(report.length).toBe(HCL_SIZE);
    await client.nvDefineSpace(AZURE_NV.HCL_REPORT, HCL_SIZE);
    await client.nvWrite(AZURE_NV.HCL_REPORT, report);
    await client.nvDefineSpace(AZURE_NV.USER_DATA, 64);
    hcl = report;
  }, 120_000);

  afterAll(async () => {
    await client?.close();
    await tpm?.stop();
  });

  it('ReadPublic: the AK and its name are what tpm2_readpublic says', async () => {
    const rp = await client.readPublic(AZURE_AK_HANDLE);
    const out = await tool('tpm2_readpublic', ['-c', '0x81000003']);
    const name = /^name: ([0-9a-f]+)$/m.exec(out)?.[1];
    const qualified = /^qualified name: ([0-9a-f]+)$/m.exec(out)?.[1];
    expect(Buffer.from(rp.name).toString('hex')).toBe(name);
    expect(Buffer.from(tpmName(rp.public)).toString('hex')).toBe(name);
    expect(Buffer.from(rp.qualifiedName).toString('hex')).toBe(qualified);
    expect(rp.public.type).toBe('rsa');
    expect(readFileSync(join(tpm.dir, 'ak.name'))).toEqual(Buffer.from(rp.name));
  });

  it('NV: the HCL report reads back in chunks, byte for byte, and tpm2_nvread agrees', async () => {
    const pub = await client.nvReadPublic(AZURE_NV.HCL_REPORT);
    expect(pub.dataSize).toBe(HCL_SIZE);
    expect(await client.nvRead(AZURE_NV.HCL_REPORT)).toEqual(hcl);
    await tool('tpm2_nvread', ['-C', 'o', '-s', String(HCL_SIZE), '-o', 'hcl.bin', '0x01400001']);
    expect(new Uint8Array(readFileSync(join(tpm.dir, 'hcl.bin')))).toEqual(hcl);
  });

  it('NV: user data written by the client is what tpm2_nvread reads', async () => {
    const data = createHash('sha512').update('binder').digest();
    await client.nvWrite(AZURE_NV.USER_DATA, data);
    await tool('tpm2_nvread', ['-C', 'o', '-s', '64', '-o', 'ud.bin', '0x01400002']);
    expect(readFileSync(join(tpm.dir, 'ud.bin'))).toEqual(data);
    expect(Buffer.from(await client.nvRead(AZURE_NV.USER_DATA))).toEqual(data);
  });

  it('a quote by our client verifies as Azure evidence, end to end', async () => {
    const nonce = createHash('sha384').update('binder').digest();
    const q = await client.quote(nonce, ALL);
    const pcrs = await client.pcrRead(ALL);
    expect(Object.keys(pcrs.sha256 ?? {})).toHaveLength(24);
    const report = await client.nvRead(AZURE_NV.HCL_REPORT);
    const claims = await verifyAzure(
      { report, ...snp, tpm: { quote: q.message, signature: q.signature, pcrs } },
      { ...options, expectedExtraData: nonce },
    );
    expect(claims.format).toBe('azure-sev-snp');
    expect(claims.tpm.extraData).toBe(nonce.toString('hex'));
    expect(claims.tpm.pcrs).toEqual(pcrs);
    expect(claims.tpm.akSha256).toBe(akSha256(tpmPublicToKey((await client.readPublic()).public)));
  });

  it('a quote by tpm2_quote verifies with our verifier', async () => {
    const nonce = 'c0ffee00112233445566778899aabbcc';
    await tool('tpm2_quote', [
      '-c',
      '0x81000003',
      '-l',
      `sha256:${[...Array(24).keys()].join(',')}`,
      '-q',
      nonce,
      '-m',
      'q.msg',
      '-s',
      'q.sig',
      '-g',
      'sha256',
    ]);
    const message = new Uint8Array(readFileSync(join(tpm.dir, 'q.msg')));
    const signature = new Uint8Array(readFileSync(join(tpm.dir, 'q.sig')));
    const pcrs = await client.pcrRead(ALL);
    const ak = tpmPublicToKey((await client.readPublic()).public);
    expect(verifyTpmQuote({ message, signature, pcrs }, ak).claims.extraData).toBe(nonce);
    const claims = await verifyAzure(
      { report: hcl, ...snp, tpm: { quote: message, signature, pcrs } },
      options,
    );
    expect(claims.tpm.extraData).toBe(nonce);
  });

  it('a quote over PCR values that have since changed, or over other PCRs, is refused', async () => {
    const q = await client.quote(new Uint8Array(8), ALL);
    const before = await client.pcrRead(ALL);
    await tool('tpm2_pcrextend', [`23:sha256=${'ab'.repeat(32)}`]);
    const after = await client.pcrRead(ALL);
    expect(after.sha256?.['23']).not.toBe(before.sha256?.['23']);
    const input = { report: hcl, ...snp, tpm: { quote: q.message, signature: q.signature, pcrs: after } };
    expect(await codeOf(verifyAzure(input, options))).toBe('ERR_EVIDENCE_SIGNATURE');
    input.tpm.pcrs = before;
    expect((await verifyAzure(input, options)).tpm.pcrs.sha256?.['23']).toBe(before.sha256?.['23']);
    // Only PCR 0-7 quoted: the claims carry those alone.
    const some = [{ hash: TPM_ALG.SHA256, pcrs: [0, 1, 2, 3, 4, 5, 6, 7] }];
    const q8 = await client.quote(new Uint8Array(8), some);
    const c8 = await verifyAzure(
      { ...input, tpm: { quote: q8.message, signature: q8.signature, pcrs: after } },
      options,
    );
    expect(Object.keys(c8.tpm.pcrs.sha256 ?? {})).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
  });

  it('TPM errors are ERR_PROVIDER_FAILED with the response code named', async () => {
    const e1 = await client.nvReadPublic(0x01400099).catch((e) => e);
    expect(e1.code).toBe('ERR_PROVIDER_FAILED');
    expect(e1.details.rcName).toBe('TPM_RC_HANDLE (handle 1)');
    const e2 = await client.quote(new Uint8Array(8), ALL, { handle: 0x81000099 }).catch((e) => e);
    expect(e2.code).toBe('ERR_PROVIDER_FAILED');
    expect(e2.message).toMatch(/TPM2_Quote failed: TPM_RC_/);
    const e3 = await client.nvDefineSpace(AZURE_NV.USER_DATA, 64).catch((e) => e);
    expect(e3.details.rcName).toBe('TPM_RC_NV_DEFINED');
    // The client still works after errors.
    expect((await client.nvReadPublic(AZURE_NV.USER_DATA)).dataSize).toBe(64);
  });

  it('our command bytes are the bytes tpm2-tools sends for the same commands', async () => {
    await client.close();
    const proxy = await recordingProxy(tpm.port);
    try {
      await tpm.tool('tpm2_pcrread', [`sha256:${[...Array(24).keys()].join(',')}`], proxy.port);
      await tpm.tool('tpm2_nvreadpublic', ['0x01400002'], proxy.port);
      await tpm.tool('tpm2_readpublic', ['-c', '0x81000003'], proxy.port);
      await tpm.tool('tpm2_nvread', ['-C', 'o', '-s', '64', '0x01400001'], proxy.port);
      await tpm.tool('tpm2_quote', ['-c', '0x81000003', '-l', 'sha256:0,1,2', '-q', 'abcd'], proxy.port);
      await tpm.flush();
    } finally {
      await proxy.close();
      client = await TpmClient.tcp({ port: tpm.port, timeoutMs: 20_000 });
    }
    const sent = proxy.commands().map((c) => Buffer.from(c).toString('hex'));
    for (const ours of [
      pcrReadCommand(ALL),
      nvReadPublicCommand(AZURE_NV.USER_DATA),
      readPublicCommand(AZURE_AK_HANDLE),
    ])
      expect(sent).toContain(Buffer.from(ours).toString('hex'));
    // tpm2-tools authorise with an HMAC session where we use the password session: the command
    // code, handles and parameters must still be the same bytes.
    const withoutAuth = (cmd: Uint8Array | string, handles: number) => {
      const b = typeof cmd === 'string' ? Buffer.from(cmd, 'hex') : Buffer.from(cmd);
      const authSize = b.readUInt32BE(10 + 4 * handles);
      return Buffer.concat([
        b.subarray(6, 10 + 4 * handles),
        b.subarray(14 + 4 * handles + authSize),
      ]).toString('hex');
    };
    const sessions = sent.filter((c) => c.startsWith('8002'));
    expect(sessions.map((c) => withoutAuth(c, 2))).toContain(
      withoutAuth(nvReadCommand(TPM_RH.OWNER, AZURE_NV.HCL_REPORT, 64, 0), 2),
    );
    const scheme = { alg: TPM_ALG.RSASSA, hash: TPM_ALG.SHA256 };
    const quote = quoteCommand(
      AZURE_AK_HANDLE,
      Buffer.from('abcd', 'hex'),
      [{ hash: TPM_ALG.SHA256, pcrs: [0, 1, 2] }],
      scheme,
    );
    expect(sessions.map((c) => withoutAuth(c, 1))).toContain(withoutAuth(quote, 1));
  });

  it('azureVtpm(): evidence from the vTPM and THIM verifies and binds the channel through the quote', async () => {
    const seen: string[] = [];
    const imds = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.metadata}`);
      if (req.url !== '/metadata/THIM/amd/certification' || req.headers.metadata !== 'true') {
        res.writeHead(404).end();
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ vcekCert: derToPem(snp.vek), certificateChain: snp.chain }));
    });
    await new Promise<void>((r) => imds.listen(0, '127.0.0.1', r));
    const imdsUrl = `http://127.0.0.1:${(imds.address() as { port: number }).port}`;
    await client.close();
    try {
      const binder = createHash('sha512').update('channel binder').digest();
      const ev = await azureVtpm({ tcp: { port: tpm.port }, imdsUrl }).getEvidence(binder);
      expect(seen).toEqual(['GET /metadata/THIM/amd/certification true']);
      const claims = await verifyAzure(ev, options);
      expect(checkAzureBinding(claims, binder)).toBe('tpm-quote');
      // Relay: the same evidence presented on another channel (another binder) is refused.
      const other = createHash('sha512').update('another channel').digest();
      expect(() => checkAzureBinding(claims, other)).toThrow(
        expect.objectContaining({ code: 'ERR_BINDING_MISMATCH' }),
      );
      // The boot-time HCL report does not carry this binder: report binding cannot be claimed.
      expect(() => checkAzureBinding(claims, binder, { requireReportBinding: true })).toThrow(
        expect.objectContaining({ code: 'ERR_BINDING_MISMATCH' }),
      );
      // With reportBinding the provider writes NV 0x01400002 and waits for a re-issued report;
      // swtpm has no paravisor, so the wait ends with a clear failure.
      const err = await azureVtpm({
        tcp: { port: tpm.port },
        imdsUrl,
        reportBinding: true,
        reportPollTimeoutMs: 300,
      })
        .getEvidence(binder)
        .catch((e) => e);
      expect(err.code).toBe('ERR_PROVIDER_FAILED');
      client = await TpmClient.tcp({ port: tpm.port });
      expect(Buffer.from(await client.nvRead(AZURE_NV.USER_DATA))).toEqual(binder);
      // Play the paravisor: re-issue the HCL report with user-data = the binder.
      const ak = tpmPublicToKey((await client.readPublic()).public);
      const claimsJson = runtimeClaimsJson(ak, { userData: binder.toString('hex').toUpperCase() });
      const hw = await simulated.snp({ product: 'Genoa' }).getEvidence(reportDataFor(claimsJson));
      const fresh = buildHcl({
        tee: 'sev-snp',
        hardwareReport: hw.report,
        claims: claimsJson,
        size: HCL_SIZE,
      });
      await client.nvWrite(AZURE_NV.HCL_REPORT, fresh);
      await client.close();
      const ev2 = await azureVtpm({ tcp: { port: tpm.port }, imdsUrl, reportBinding: true }).getEvidence(
        binder,
      );
      const claims2 = await verifyAzure({ ...ev2, vek: hw.vek!, chain: hw.chain as string }, options);
      expect(checkAzureBinding(claims2, binder, { requireReportBinding: true })).toBe('report');
      // A quote made for another binder with this bound report is still refused.
      expect(() => checkAzureBinding({ ...claims2, tpm: claims.tpm }, binder)).not.toThrow();
      expect(() =>
        checkAzureBinding({ ...claims2, tpm: { ...claims2.tpm, extraData: '00' } }, binder),
      ).toThrow(expect.objectContaining({ code: 'ERR_BINDING_MISMATCH' }));
    } finally {
      imds.close();
      client = await TpmClient.tcp({ port: tpm.port });
      await client.nvWrite(AZURE_NV.HCL_REPORT, hcl);
    }
  });

  it('azureVtpm() on a TDX VM: the TD quote of the TDREPORT comes from IMDS /acc/tdquote', async () => {
    const ak = tpmPublicToKey((await client.readPublic()).public);
    const claimsJson = runtimeClaimsJson(ak);
    const td = await simulated.tdx().getEvidence(reportDataFor(claimsJson));
    const tdClaims = await verifyEvidence(td, { ...options, policy: {} });
    const tdreport = tdreportOf(tdClaims as unknown as Record<string, unknown>);
    const tdxHcl = buildHcl({ tee: 'tdx', hardwareReport: tdreport, claims: claimsJson, size: HCL_SIZE });
    await client.nvWrite(AZURE_NV.HCL_REPORT, tdxHcl);
    const imds = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d) => chunks.push(d));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
        if (
          req.method !== 'POST' ||
          req.url !== '/acc/tdquote' ||
          req.headers.metadata !== 'true' ||
          req.headers['content-type'] !== 'application/json' ||
          body.report !== Buffer.from(tdreport).toString('base64url')
        ) {
          res.writeHead(415).end();
          return;
        }
        res.end(JSON.stringify({ quote: Buffer.from(td.report).toString('base64url') }));
      });
    });
    await new Promise<void>((r) => imds.listen(0, '127.0.0.1', r));
    const imdsUrl = `http://127.0.0.1:${(imds.address() as { port: number }).port}`;
    await client.close();
    try {
      const binder = createHash('sha512').update('tdx channel').digest();
      const ev = await azureVtpm({ tcp: { port: tpm.port }, imdsUrl }).getEvidence(binder);
      expect(ev.tdQuote).toEqual(td.report);
      const claims = await verifyAzure({ ...ev, collateral: td.collateral! }, options);
      expect(claims.format).toBe('azure-tdx');
      expect(checkAzureBinding(claims, binder)).toBe('tpm-quote');
    } finally {
      imds.close();
      client = await TpmClient.tcp({ port: tpm.port });
      await client.nvWrite(AZURE_NV.HCL_REPORT, hcl);
    }
  });

  it('azureVtpm(): IMDS failures are named', async () => {
    const imds = createServer((_req, res) => res.writeHead(500).end());
    await new Promise<void>((r) => imds.listen(0, '127.0.0.1', r));
    const port = (imds.address() as { port: number }).port;
    await client.close();
    try {
      const e500 = await azureVtpm({ tcp: { port: tpm.port }, imdsUrl: `http://127.0.0.1:${port}` })
        .getEvidence(new Uint8Array(64))
        .catch((e) => e);
      expect(e500.code).toBe('ERR_PROVIDER_FAILED');
      expect(e500.details.status).toBe(500);
      imds.close();
      await new Promise((r) => setTimeout(r, 20));
      const gone = await azureVtpm({ tcp: { port: tpm.port }, imdsUrl: `http://127.0.0.1:${port}` })
        .getEvidence(new Uint8Array(64))
        .catch((e) => e);
      expect(gone.code).toBe('ERR_PROVIDER_UNAVAILABLE');
    } finally {
      imds.close();
      client = await TpmClient.tcp({ port: tpm.port });
    }
  });

  it('a channel to an swtpm-backed Azure-like VM opens (binding "tpm-quote"); relayed evidence is refused', async () => {
    const imds = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ vcekCert: derToPem(snp.vek), certificateChain: snp.chain }));
    });
    await new Promise<void>((r) => imds.listen(0, '127.0.0.1', r));
    const imdsUrl = `http://127.0.0.1:${(imds.address() as { port: number }).port}`;
    await client.close();
    // swtpm serves one TPM connection at a time: the provider opens one per getEvidence().
    const server = createAttestedServer(
      { evidence: azureVtpm({ tcp: { port: tpm.port }, imdsUrl }) },
      (ch) => {
        ch.resume();
        ch.on('end', () => ch.end());
      },
    );
    const port = await listen(server);
    const verify = { policy: { azure: {} }, trustAnchors: options.trustAnchors };
    const relay = await rawServer(async (peer) => {
      const ctx = parseRequest((await peer.reader.next())!.payload).context;
      // Ask the genuine VM for evidence with our victim's context on another connection.
      const upstream = await rawClient(port);
      upstream.socket.write(encodeRequest(ctx, REPORT_MEDIA_TYPES));
      await upstream.reader.next();
      const evidence = json(await upstream.reader.next())['evidence'];
      upstream.socket.destroy();
      peer.socket.write(encodeRequest(new Uint8Array(32).fill(9), []));
      peer.socket.write(encodeEvidence(ctx, evidence));
      await peer.reader.rest();
    });
    try {
      const ch = await attestedConnect({ host: '127.0.0.1', port, verify });
      expect(ch.peer?.format).toBe('azure-sev-snp');
      expect(ch.peer && 'binding' in ch.peer ? ch.peer.binding : undefined).toBe('tpm-quote');
      ch.end();
      await once(ch, 'close');
      const err = await attestedConnect({ host: '127.0.0.1', port: relay.port, verify }).catch((e) => e);
      expect(err.code).toBe('ERR_BINDING_MISMATCH');
      // The boot-time report carries no binder: refused when report binding is required.
      const stale = await attestedConnect({
        host: '127.0.0.1',
        port,
        verify: { ...verify, policy: { azure: { requireReportBinding: true } } },
      }).catch((e) => e);
      expect(stale.code).toBe('ERR_BINDING_MISMATCH');
    } finally {
      await relay.close();
      await new Promise<void>((r) => server.close(() => r()));
      imds.close();
      client = await TpmClient.tcp({ port: tpm.port });
    }
  }, 60_000);

  it('serve --azure --tpm-tcp: the CLI serves this swtpm-backed VM, and a client opens a channel to it', async () => {
    const imds = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ vcekCert: derToPem(snp.vek), certificateChain: snp.chain }));
    });
    await new Promise<void>((r) => imds.listen(0, '127.0.0.1', r));
    const imdsUrl = `http://127.0.0.1:${(imds.address() as { port: number }).port}`;
    await client.close();
    let out = '';
    const served = await startServe(
      [
        '--listen',
        '127.0.0.1:0',
        '--forward',
        '127.0.0.1:9',
        '--azure',
        '--tpm-tcp',
        `127.0.0.1:${tpm.port}`,
        '--imds-url',
        imdsUrl,
      ],
      { out: (t) => (out += t), err: (t) => (out += t) },
    );
    try {
      expect(out).toContain('Azure vTPM');
      const ch = await attestedConnect({
        host: '127.0.0.1',
        port: served.address.port,
        verify: { policy: { azure: {} }, trustAnchors: options.trustAnchors },
      });
      expect(ch.peer?.format).toBe('azure-sev-snp');
      ch.destroy();
    } finally {
      await served.close();
      imds.close();
      client = await TpmClient.tcp({ port: tpm.port });
    }
  }, 60_000);

  it('azureVtpm(): no TPM device is ERR_PROVIDER_UNAVAILABLE', async () => {
    const err = await azureVtpm({ device: join(tpm.dir, 'no-tpmrm0') })
      .getEvidence(new Uint8Array(64))
      .catch((e) => e);
    expect(err.code).toBe('ERR_PROVIDER_UNAVAILABLE');
  });

  for (const [what, handle, args] of [
    ['RSAPSS-SHA256', 0x81000004, ['-G', 'rsa', '-g', 'sha256', '-s', 'rsapss']],
    ['RSASSA-SHA384', 0x81000005, ['-G', 'rsa', '-g', 'sha384', '-s', 'rsassa']],
    ['ECDSA P-256 SHA-256', 0x81000006, ['-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa']],
  ] as const) {
    it(`a real ${what} AK: quote by our client, verified with the key from its TPMT_PUBLIC`, async () => {
      await client.close();
      try {
        await tpm.tool('tpm2_createak', ['-C', 'ek.ctx', '-c', `ak${handle}.ctx`, ...args]);
        await tpm.flush();
        await tpm.tool('tpm2_evictcontrol', ['-C', 'o', '-c', `ak${handle}.ctx`, `0x${handle.toString(16)}`]);
        await tpm.flush();
      } finally {
        client = await TpmClient.tcp({ port: tpm.port, timeoutMs: 20_000 });
      }
      const rp = await client.readPublic(handle);
      const key = tpmPublicToKey(rp.public);
      const nonce = createHash('sha256').update(what).digest();
      const q = await client.quote(nonce, ALL, { handle });
      const pcrs = await client.pcrRead(ALL);
      const v = verifyTpmQuote({ message: q.message, signature: q.signature, pcrs }, key);
      expect(v.claims.extraData).toBe(nonce.toString('hex'));
      expect(Buffer.from(v.attest.qualifiedSigner)).toEqual(Buffer.from(rp.qualifiedName));
      const other = tpmPublicToKey((await client.readPublic(AZURE_AK_HANDLE)).public);
      expect(() => verifyTpmQuote({ message: q.message, signature: q.signature, pcrs }, other)).toThrow(
        expect.objectContaining({ code: 'ERR_EVIDENCE_SIGNATURE' }),
      );
    });
  }

  it('the raw framing works too', async () => {
    await client.close();
    client = await TpmClient.tcp({ port: tpm.port, framing: 'raw' });
    expect(await client.nvRead(AZURE_NV.HCL_REPORT)).toEqual(hcl);
  });

  it('a quote of this TPM with an HCL report that names no AK (or another) is refused', async () => {
    const other = runtimeClaimsJson(null);
    const q = await client.quote(new Uint8Array(8), ALL);
    const pcrs = await client.pcrRead(ALL);
    const ev = await simulated.snp({ product: 'Genoa' }).getEvidence(reportDataFor(other));
    const report = buildHcl({ tee: 'sev-snp', hardwareReport: ev.report, claims: other });
    expect(
      await codeOf(
        verifyAzure(
          {
            report,
            vek: ev.vek!,
            chain: ev.chain as string,
            tpm: { quote: q.message, signature: q.signature, pcrs },
          },
          options,
        ),
      ),
    ).toBe('ERR_EVIDENCE_CHAIN');
  });
});
