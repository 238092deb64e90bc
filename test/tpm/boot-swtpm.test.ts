/**
 * Measured boot against a real TPM (swtpm): PCRs extended as firmware and GRUB would from a
 * generated event log, quoted by tpmQuote(), verified, and the log replayed to the quoted values;
 * gceVtpm() with the AK derived from a template in NV and a certificate for it from a test CA.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCmw, encodeCmw } from '../../src/channel/cmw.js';
import { attestedConnect } from '../../src/channel/connect.js';
import { createAttestedServer } from '../../src/channel/server.js';
import { AttestationError } from '../../src/errors.js';
import { appraiseBoot, bootClaims } from '../../src/evidence/boot.js';
import { checkGceVtpmBinding, verifyGceVtpm } from '../../src/evidence/gce/vtpm.js';
import { parsePolicy } from '../../src/evidence/policy.js';
import { combine } from '../../src/evidence/providers/combine.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import { GCE_AK_NV, gceVtpm, tpmQuote } from '../../src/evidence/providers/tpm-quote.js';
import { TpmClient } from '../../src/evidence/tpm/client.js';
import { AZURE_AK_HANDLE } from '../../src/evidence/tpm/commands.js';
import { akFromTpmPublic, verifyTpmQuote } from '../../src/evidence/tpm/quote.js';
import type { SnpClaims } from '../../src/evidence/types.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { basicConstraints, buildCertificate, keyUsage } from '../../src/evidence/x509/build.js';
import { buildLog, SEPARATOR, type SyntheticEvent, text } from '../eventlog/fixtures.js';
import { thrownCode as code } from '../helpers/codes.js';
import { haveSwtpm, provisionAk, type Swtpm, startSwtpm } from './swtpm.js';

const CMDLINE = 'root=/dev/vda1 ro console=ttyS0';
const sha = (alg: string, d: Uint8Array) => new Uint8Array(createHash(alg).update(d).digest());
const BINDER = new Uint8Array(64).fill(0x5a);

/** A boot as firmware and GRUB log it: separators in PCR0-7, an EFI action in PCR4, GRUB's command line in PCR8. */
function bootEvents(cmdline = CMDLINE): SyntheticEvent[] {
  const line = text(`kernel_cmdline: ${cmdline}\0`);
  // Upstream GRUB measures the text after the prefix, without the NUL (test/fixtures/eventlog/README.md §2 rule 7).
  const measured = text(cmdline);
  return [
    ...[0, 1, 2, 3, 4, 5, 6, 7].map((pcr) => ({ pcr, type: 4, data: SEPARATOR })),
    { pcr: 4, type: 0x80000007, data: text('Calling EFI Application from Boot Option') },
    {
      pcr: 8,
      type: 0x0d,
      data: line,
      digests: { sha256: sha('sha256', measured), sha384: sha('sha384', measured) },
    },
  ];
}

/** The RSA restricted signing template Google's vTPM keeps for its AK (fixedTPM, fixedParent, sensitiveDataOrigin, userWithAuth, restricted, sign; RSASSA-SHA256, 2048 bits). */
const AK_TEMPLATE = new Uint8Array(Buffer.from('0001000b00050072000000100014000b0800000000000000', 'hex'));
const GCE_EXT = Buffer.from(
  '306A0C0D75732D63656E7472616C312D6102051B5A475C690C1C676F6F676C652E636F6D3A7775616C652D6763702D74657374696E6702085E53E3FBBF8306C50C08636F732D74657374A020301EA003020100A1030101FFA203010100A303010100A403010100A503010100',
  'hex',
);

describe.runIf(haveSwtpm())('measured boot against swtpm', () => {
  let tpm: Swtpm;
  let logPath: string;
  let log: Uint8Array;
  /** The test CA of the gceVtpm() test, used again by the channel test after it. */
  let vtpmRoots: { anchors: Uint8Array[]; intermediates: Uint8Array[] } | undefined;

  beforeAll(async () => {
    tpm = await startSwtpm();
    await provisionAk(tpm);
    log = buildLog(['sha256', 'sha384'], bootEvents());
    logPath = join(tpm.dir, 'binary_bios_measurements');
    writeFileSync(logPath, log);
    // Extend the PCRs exactly as the log says the boot did.
    for (const e of bootEvents()) {
      const d256 = Buffer.from(e.digests?.sha256 ?? sha('sha256', e.data)).toString('hex');
      const d384 = Buffer.from(e.digests?.sha384 ?? sha('sha384', e.data)).toString('hex');
      await tpm.tool('tpm2_pcrextend', [`${e.pcr}:sha256=${d256},sha384=${d384}`]);
    }
  }, 120_000);

  afterAll(async () => {
    await tpm?.stop();
  });

  it('tpmQuote(): the quote verifies, is bound to the binder, and the log replays to it', async () => {
    const ev = await tpmQuote({
      tcp: { port: tpm.port },
      akHandle: AZURE_AK_HANDLE,
      banks: ['sha256', 'sha384'],
      pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      eventLog: logPath,
    }).getEvidence(BINDER);
    const ak = akFromTpmPublic(ev.akPublic);
    const q = verifyTpmQuote({ message: ev.tpm.quote, signature: ev.tpm.signature, pcrs: ev.tpm.pcrs }, ak);
    expect(q.claims.extraData).toBe(createHash('sha384').update(BINDER).digest('hex'));
    const boot = bootClaims(ev.eventLog!, { pcrs: q.claims.pcrs });
    expect(boot.kernelCmdline).toBe(CMDLINE);
    expect(Object.keys(boot.pcrs!.sha256!)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8']);
    appraiseBoot(
      boot,
      parsePolicy({
        boot: { kernelCmdlines: [CMDLINE], pcrs: { sha384: { '8': [q.claims.pcrs.sha384!['8']!] } } },
      }).boot,
    );
    expect(() =>
      appraiseBoot(boot, parsePolicy({ boot: { kernelCmdlines: ['root=/dev/vda1 rw'] } }).boot),
    ).toThrow(AttestationError);

    // A tampered log: another command line (its digest and data changed together) does not replay.
    const tampered = buildLog(['sha256', 'sha384'], bootEvents('root=/dev/vda1 ro init=/bin/sh'));
    expect(code(() => bootClaims({ log: tampered }, { pcrs: q.claims.pcrs }))).toBe('ERR_EVENTLOG_MISMATCH');
    // The log without the EFI action in PCR4 does not either.
    const events = bootEvents();
    const short = buildLog(['sha256', 'sha384'], [...events.slice(0, 8), events[9]!]);
    expect(code(() => bootClaims({ log: short }, { pcrs: q.claims.pcrs }))).toBe('ERR_EVENTLOG_MISMATCH');
    // Without the command-line event the log says nothing of PCR8: unexplained, and no command line is read.
    const noLine = bootClaims(
      { log: buildLog(['sha256', 'sha384'], events.slice(0, -1)) },
      { pcrs: q.claims.pcrs },
    );
    expect(noLine.unexplained).toContain('sha256:PCR8');
    expect(noLine.kernelCmdline).toBeNull();
  });

  it('tpmQuote(): an explicit log path that does not exist is ERR_PROVIDER_UNAVAILABLE; false sends none', async () => {
    const p = (eventLog: string | false) =>
      tpmQuote({ tcp: { port: tpm.port }, akHandle: AZURE_AK_HANDLE, eventLog }).getEvidence(BINDER);
    await expect(p(join(tpm.dir, 'missing'))).rejects.toMatchObject({ code: 'ERR_PROVIDER_UNAVAILABLE' });
    expect((await p(false)).eventLog).toBeUndefined();
  });

  it('gceVtpm(): AK from the NV template, its certificate from NV, verified under the given roots', async () => {
    const client = await TpmClient.tcp({ port: tpm.port, timeoutMs: 20_000 });
    let akCert: Uint8Array;
    const now = new Date();
    const ca = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const mid = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const rootName: Array<['CN' | 'O', string]> = [
      ['O', 'test'],
      ['CN', 'test vTPM root'],
    ];
    const midName: Array<['CN' | 'O', string]> = [
      ['O', 'test'],
      ['CN', 'test vTPM intermediate'],
    ];
    const year = 365 * 86_400_000;
    const window = { notBefore: new Date(now.getTime() - year), notAfter: new Date(now.getTime() + year) };
    const root = buildCertificate({
      subject: rootName,
      issuer: rootName,
      serial: Uint8Array.of(1),
      ...window,
      publicKey: ca.publicKey,
      signingKey: ca.privateKey,
      algorithm: 'ecdsa-sha256',
      extensions: [
        { oid: '2.5.29.19', value: basicConstraints(true), critical: true },
        { oid: '2.5.29.15', value: keyUsage([5, 6]), critical: true },
      ],
    });
    const intermediate = buildCertificate({
      subject: midName,
      issuer: rootName,
      serial: Uint8Array.of(2),
      ...window,
      publicKey: mid.publicKey,
      signingKey: ca.privateKey,
      algorithm: 'ecdsa-sha256',
      extensions: [
        { oid: '2.5.29.19', value: basicConstraints(true), critical: true },
        { oid: '2.5.29.15', value: keyUsage([5, 6]), critical: true },
      ],
    });
    try {
      await client.nvDefineSpace(GCE_AK_NV.RSA_TEMPLATE, AK_TEMPLATE.length);
      await client.nvWrite(GCE_AK_NV.RSA_TEMPLATE, AK_TEMPLATE);
      // The key the template gives, as Google's CA certifies it.
      const primary = await client.createPrimary(AK_TEMPLATE);
      await client.flushContext(primary.handle);
      akCert = buildCertificate({
        subject: [['CN', 'ak']],
        issuer: midName,
        serial: Uint8Array.of(3),
        ...window,
        publicKey: akFromTpmPublic(primary.publicArea),
        signingKey: mid.privateKey,
        algorithm: 'ecdsa-sha256',
        extensions: [
          { oid: '2.5.29.19', value: basicConstraints(false), critical: true },
          { oid: '2.5.29.15', value: keyUsage([0]), critical: true },
          { oid: '1.3.6.1.4.1.11129.2.1.21', value: new Uint8Array(GCE_EXT) },
        ],
      });
      await client.nvDefineSpace(GCE_AK_NV.RSA_CERT, akCert.length);
      await client.nvWrite(GCE_AK_NV.RSA_CERT, akCert);
    } finally {
      await client.close();
    }
    const ev = await gceVtpm({
      tcp: { port: tpm.port },
      pcrs: [...Array(10).keys()],
      eventLog: logPath,
    }).getEvidence(BINDER);
    expect(Buffer.from(ev.akCert!).equals(Buffer.from(akCert))).toBe(true);
    const roots = { anchors: [root], intermediates: [intermediate] };
    vtpmRoots = roots;
    const claims = verifyGceVtpm(
      { ...ev, akCert: ev.akCert! },
      { now, roots, policy: { gce: { zones: ['us-central1-a'] } } },
    );
    checkGceVtpmBinding(claims, BINDER);
    expect(claims.gce.instanceName).toBe('cos-test');
    expect(claims.boot!.kernelCmdline).toBe(CMDLINE);
    // Under Google's pinned roots this test CA is nobody.
    expect(code(() => verifyGceVtpm({ ...ev, akCert: ev.akCert! }, { now }))).toBe('ERR_EVIDENCE_CHAIN');
    // A tampered log is refused.
    const tampered = buildLog(['sha256', 'sha384'], bootEvents('single'));
    expect(
      code(() => verifyGceVtpm({ ...ev, akCert: ev.akCert!, eventLog: { log: tampered } }, { now, roots })),
    ).toBe('ERR_EVENTLOG_MISMATCH');
  });

  it('combine(SNP, gceVtpm()) over an attested channel: both verified, both bound to the binder', async () => {
    expect(vtpmRoots).toBeDefined();
    const provider = combine(
      simulated.snp(),
      gceVtpm({ tcp: { port: tpm.port }, pcrs: [...Array(10).keys()], eventLog: logPath }),
    );
    const server = createAttestedServer({ evidence: provider }, (ch) => ch.pipe(ch));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const policy = { boot: { kernelCmdlines: [CMDLINE] }, gce: { instanceIds: ['6797026933021542085'] } };
      const ch = await attestedConnect({
        host: '127.0.0.1',
        port,
        verify: { policy, trustAnchors: simulated.trustAnchors(), vtpmRoots: vtpmRoots! },
      });
      const peer = ch.peer as SnpClaims;
      expect(peer.vtpm?.gce.instanceName).toBe('cos-test');
      expect(peer.vtpm?.boot?.kernelCmdline).toBe(CMDLINE);
      expect(peer.workloadPinned).toBe(true);
      ch.end();
      // The same evidence under a policy naming another command line is refused.
      await expect(
        attestedConnect({
          host: '127.0.0.1',
          port,
          verify: {
            policy: { boot: { kernelCmdlines: ['x'] } },
            trustAnchors: simulated.trustAnchors(),
            vtpmRoots: vtpmRoots!,
          },
        }),
      ).rejects.toMatchObject({ code: 'ERR_EVIDENCE_POLICY' });
    } finally {
      await new Promise((r) => server.close(r));
    }
    // A vTPM quote made for another binder (replayed from another connection) is refused.
    const real = gceVtpm({ tcp: { port: tpm.port }, pcrs: [...Array(10).keys()], eventLog: logPath });
    const stale = combine(simulated.snp(), {
      format: 'tpm',
      getEvidence: () => real.getEvidence(new Uint8Array(64)),
    });
    const replaying = createAttestedServer({ evidence: stale }, (ch) => ch.pipe(ch));
    await new Promise<void>((r) => replaying.listen(0, '127.0.0.1', r));
    try {
      await expect(
        attestedConnect({
          host: '127.0.0.1',
          port: (replaying.address() as { port: number }).port,
          verify: { trustAnchors: simulated.trustAnchors(), vtpmRoots: vtpmRoots! },
        }),
      ).rejects.toMatchObject({ code: 'ERR_BINDING_MISMATCH' });
    } finally {
      await new Promise((r) => replaying.close(r));
    }
  });

  it('the vTPM records survive the CMW round trip, and a quote not bound to the binder is refused', async () => {
    const binder = new Uint8Array(64).fill(9);
    const ev = await combine(
      simulated.snp(),
      gceVtpm({ tcp: { port: tpm.port }, pcrs: [...Array(10).keys()], eventLog: logPath }),
    ).getEvidence(binder);
    const decoded = decodeCmw(encodeCmw(ev, 'sev-snp'), ['application/vnd.amd.sev-snp.report']);
    expect(Buffer.from(decoded.input.vtpm!.tpm.quote).equals(Buffer.from(ev.vtpm!.tpm.quote))).toBe(true);
    const claims = await verifyEvidence(decoded.input, {
      trustAnchors: simulated.trustAnchors(),
      vtpmRoots: vtpmRoots!,
    });
    checkGceVtpmBinding(claims.vtpm!, binder);
    expect(code(() => checkGceVtpmBinding(claims.vtpm!, new Uint8Array(64).fill(8)))).toBe(
      'ERR_BINDING_MISMATCH',
    );
  });
});
