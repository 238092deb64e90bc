/**
 * The key broker end to end: a real broker on 127.0.0.1 over attested channels, simulated VMs as
 * clients, and the audit log read back after each attack.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AuditEntry } from '../examples/key-broker/audit.js';
import { type Broker, decide, startBroker } from '../examples/key-broker/broker.js';
import { main as clientMain, fetchSecret, writeSecretFile } from '../examples/key-broker/client.js';
import { type BrokerConfig, parseConfig } from '../examples/key-broker/config.js';
import { AttestationError } from '../src/errors.js';
import { simulated } from '../src/evidence/providers/simulated.js';
import type { EvidenceInput, EvidenceProvider } from '../src/evidence/types.js';
import { verifyEvidence } from '../src/evidence/verify.js';

const GOOD = 'a1'.repeat(48);
const OTHER = 'b2'.repeat(48);
const DEBUG_POLICY = 0x30000 | (1 << 19);
// Raw random bytes, so any encoding of them in the log (raw, hex, base64) can be searched for.
const DISK_KEY = randomBytes(32);
const TDX_KEY = randomBytes(24);

let dir: string;
let config: BrokerConfig;
let broker: Broker;
let port: number;
const goodVm = simulated.snp({ measurement: GOOD });

async function ask(name: string, evidence: EvidenceProvider, timeout = 60_000) {
  return fetchSecret({ host: '127.0.0.1', port, name, evidence, timeout });
}

async function auditEntries(): Promise<AuditEntry[]> {
  const text = await readFile(config.auditLog, 'utf8');
  return text
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as AuditEntry);
}

/** Waits until the broker has recorded an entry matching `pred` (channel refusals are logged asynchronously). */
async function waitForEntry(pred: (e: AuditEntry) => boolean): Promise<AuditEntry> {
  for (let i = 0; i < 200; i++) {
    const hit = (await auditEntries()).find(pred);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('audit entry never appeared');
}

function json(body: Uint8Array): Record<string, unknown> {
  return JSON.parse(Buffer.from(body).toString('utf8'));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'key-broker-'));
  await writeFile(join(dir, 'disk.key'), DISK_KEY);
  await writeFile(join(dir, 'tdx.key'), TDX_KEY);
  config = parseConfig(
    {
      auditLog: 'audit.log',
      listen: { host: '127.0.0.1', port: 0 },
      trust: 'simulated',
      secrets: {
        'disk-key': { source: { file: 'disk.key' }, policy: { snp: { measurements: [GOOD] } } },
        'td-key': { source: { file: 'tdx.key' }, policy: { tdx: { mrTd: [simulated.defaults.tdxMrTd] } } },
      },
    },
    dir,
    {},
  );
  broker = await startBroker({ config, trustAnchors: simulated.trustAnchors() });
  port = (await broker.listen()).port;
});

afterAll(async () => {
  await broker?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('key broker', () => {
  it('releases the key to a VM with the allowed measurement; the client writes it with mode 0600', async () => {
    const res = await ask('disk-key', goodVm);
    expect(res.status).toBe(200);
    expect(Buffer.from(res.body).equals(DISK_KEY)).toBe(true);
    const out = join(dir, 'written.key');
    await writeFile(out, 'stale, world-readable', { mode: 0o644 });
    await writeSecretFile(out, res.body);
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    expect((await readFile(out)).equals(DISK_KEY)).toBe(true);
    const entry = await waitForEntry((e) => e.decision === 'released' && e.secret === 'disk-key');
    expect(entry.peer?.measurement).toBe(GOOD);
    expect(entry.peer?.chipId).toMatch(/^[0-9a-f]{128}$/);
  });

  it('the client checks that it can write --out before it asks for the secret', async () => {
    const released = async () =>
      (await auditEntries()).filter((e) => e.decision === 'released' && e.secret === 'disk-key').length;
    const errors: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      errors.push(String(chunk));
      return true;
    });
    const args = [
      '--broker',
      `127.0.0.1:${port}`,
      '--secret',
      'disk-key',
      '--simulate',
      'snp',
      '--measurement',
      GOOD,
    ];
    try {
      const before = await released();
      expect(await clientMain([...args, '--out', join(dir, 'no-such-folder', 'k')])).toBe(1);
      expect(errors.join('')).toMatch(/cannot write --out .*no-such-folder.*ENOENT/);
      expect(await clientMain([...args, '--out', dir])).toBe(1);
      expect(errors.join('')).toMatch(/is a folder; name a file in it/);
      // Nothing was asked for, so nothing was released.
      await new Promise((r) => setTimeout(r, 200));
      expect(await released()).toBe(before);
    } finally {
      spy.mockRestore();
    }
    const out = join(dir, 'by-main.key');
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      expect(await clientMain([...args, '--out', out])).toBe(0);
    } finally {
      stdout.mockRestore();
    }
    expect((await readFile(out)).equals(DISK_KEY)).toBe(true);
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    // No temporary file is left beside it.
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses another measurement with 403; the audit log names snp.measurements', async () => {
    const res = await ask('disk-key', simulated.snp({ measurement: OTHER }));
    expect(res.status).toBe(403);
    expect(json(res.body)).toEqual({ error: 'forbidden' });
    const entry = await waitForEntry((e) => e.decision === 'denied' && e.peer?.measurement === OTHER);
    expect(entry).toMatchObject({
      secret: 'disk-key',
      field: 'snp.measurements',
      code: 'ERR_EVIDENCE_POLICY',
    });
  });

  it('refuses a debug guest of the allowed image with 403; the audit log names snp.allowDebug', async () => {
    const res = await ask('disk-key', simulated.snp({ measurement: GOOD, policy: DEBUG_POLICY }));
    expect(res.status).toBe(403);
    expect(json(res.body)).toEqual({ error: 'forbidden' });
    await waitForEntry((e) => e.decision === 'denied' && e.field === 'snp.allowDebug');
  });

  it('refuses a TD a key whose policy names only SNP, and gives it its own key', async () => {
    const td = simulated.tdx();
    const denied = await ask('disk-key', td);
    expect(denied.status).toBe(403);
    expect(json(denied.body)).toEqual({ error: 'forbidden' });
    await waitForEntry((e) => e.decision === 'denied' && e.field === 'format' && e.peer?.format === 'tdx');
    const granted = await ask('td-key', td);
    expect(granted.status).toBe(200);
    expect(Buffer.from(granted.body).equals(TDX_KEY)).toBe(true);
    await waitForEntry((e) => e.decision === 'released' && e.secret === 'td-key' && e.peer?.format === 'tdx');
  });

  it('the client refuses a broker policy that pins no workload, before it connects', async () => {
    const anchors = simulated.trustAnchors();
    for (const policy of [{}, { snp: { allowDebug: false } }, { snp: { measurements: [GOOD] }, tdx: {} }]) {
      const before = (await auditEntries()).length;
      const err = await fetchSecret({
        host: '127.0.0.1',
        port,
        name: 'disk-key',
        evidence: goodVm,
        brokerVerify: { policy, trustAnchors: anchors },
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AttestationError);
      expect((err as AttestationError).code).toBe('ERR_POLICY_INVALID');
      expect((err as AttestationError).message).toMatch(/pins no workload/);
      expect((await auditEntries()).length).toBe(before);
    }
  });

  it('answers an unknown name exactly as a refused policy (403, same body), so names cannot be listed', async () => {
    const unknown = await ask('no-such-key', goodVm);
    const invalid = await ask('not a valid name!', goodVm);
    const refused = await ask('td-key', goodVm);
    expect(refused.status).toBe(403);
    for (const res of [unknown, invalid]) {
      expect(res.status).toBe(refused.status);
      expect(Buffer.from(res.body).equals(Buffer.from(refused.body))).toBe(true);
    }
    await waitForEntry((e) => e.decision === 'not_found' && e.secret === 'no-such-key');
  });

  it('gives an unattested client nothing: plain HTTP over TLS is refused at the channel and logged', async () => {
    let from = '';
    const received = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      const sock = tlsConnect({
        host: '127.0.0.1',
        port,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.3',
        ALPNProtocols: ['attested-channel/1'],
      });
      sock.on('secureConnect', () => {
        from = `127.0.0.1:${sock.localPort}`;
        sock.write('GET /v1/secrets/disk-key HTTP/1.1\r\nHost: x\r\n\r\n');
      });
      sock.on('data', (c: Buffer) => chunks.push(c));
      sock.on('error', () => {});
      sock.on('close', () => resolve(Buffer.concat(chunks)));
    });
    expect(received.includes(DISK_KEY)).toBe(false);
    expect(received.toString('latin1')).not.toContain('HTTP/1.1');
    const entry = await waitForEntry(
      (e) => e.event === 'channel' && e.decision === 'refused' && e.code === 'ERR_PROTOCOL',
    );
    // The refused client's address, from the server's attestationError.
    expect(entry.remote).toBe(from);
  });

  it('gives a plain TCP client nothing', async () => {
    const received = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      const sock = netConnect({ host: '127.0.0.1', port }, () =>
        sock.write('GET /v1/secrets/disk-key HTTP/1.1\r\nHost: x\r\n\r\n'),
      );
      sock.on('data', (c: Buffer) => chunks.push(c));
      sock.on('error', () => {});
      sock.on('close', () => resolve(Buffer.concat(chunks)));
    });
    expect(received.includes(DISK_KEY)).toBe(false);
    expect(received.toString('latin1')).not.toContain('HTTP/1.1 200');
  });

  it('gives nothing to a client relaying evidence from another live connection, while the honest VM is served', async () => {
    let hand: (ev: EvidenceInput) => void = () => {};
    const relayed = new Promise<EvidenceInput>((resolve) => {
      hand = resolve;
    });
    const honest: EvidenceProvider = {
      format: 'sev-snp',
      async getEvidence(reportData, opts) {
        const ev = await goodVm.getEvidence(reportData, opts);
        hand(ev);
        return ev;
      },
    };
    // The attacker has no access to the VM's hardware: it answers its own REQUEST with the
    // evidence the real VM produced for the real VM's connection.
    const attacker: EvidenceProvider = { format: 'sev-snp', getEvidence: () => relayed };
    const attack = ask('disk-key', attacker);
    const victim = ask('disk-key', honest);
    const [a, v] = await Promise.allSettled([attack, victim]);
    expect(a.status).toBe('rejected');
    const err = (a as PromiseRejectedResult).reason;
    expect(err).toBeInstanceOf(AttestationError);
    // Our own client refuses to send evidence whose REPORT_DATA is not its binder
    // (ERR_PROVIDER_FAILED); a hand-built client would be refused by the broker instead
    // (ERR_PEER_REJECTED / ERR_BINDING_MISMATCH). Either way no HTTP exchange happens.
    expect(['ERR_PROVIDER_FAILED', 'ERR_PEER_REJECTED']).toContain(err.code);
    expect(v.status).toBe('fulfilled');
    expect(Buffer.from((v as PromiseFulfilledResult<{ body: Uint8Array }>).value.body).equals(DISK_KEY)).toBe(
      true,
    );
    const entries = await auditEntries();
    expect(
      entries.filter((e) => e.event === 'request' && e.decision === 'released' && e.secret === 'disk-key')
        .length,
    ).toBeGreaterThanOrEqual(2);
  });

  it('answers 200 concurrent VMs correctly', async () => {
    const vms = Array.from({ length: 200 }, (_, i) => ({
      allowed: i % 2 === 0,
      // A handful of hosts, many VMs each (as in a real fleet), so chip certificates repeat.
      vm: simulated.snp({ measurement: i % 2 === 0 ? GOOD : OTHER, chipId: Buffer.alloc(64, 1 + (i % 4)) }),
    }));
    const before = (await auditEntries()).length;
    // Generous timeout: 200 handshakes at once on a shared 2-core CI machine.
    const results = await Promise.all(vms.map(({ vm }) => ask('disk-key', vm, 200_000)));
    results.forEach((res, i) => {
      if (vms[i]!.allowed) {
        expect(res.status).toBe(200);
        expect(Buffer.from(res.body).equals(DISK_KEY)).toBe(true);
      } else {
        expect(res.status).toBe(403);
        expect(Buffer.from(res.body).includes(DISK_KEY)).toBe(false);
      }
    });
    const entries = (await auditEntries()).slice(before).filter((e) => e.event === 'request');
    expect(entries.filter((e) => e.decision === 'released')).toHaveLength(100);
    expect(entries.filter((e) => e.decision === 'denied')).toHaveLength(100);
  }, 240_000);

  it('never writes secret material to the audit log', async () => {
    const log = await readFile(config.auditLog);
    for (const secret of [DISK_KEY, TDX_KEY]) {
      expect(log.includes(secret)).toBe(false);
      expect(log.includes(Buffer.from(secret.toString('hex')))).toBe(false);
      expect(log.includes(Buffer.from(secret.toString('base64')))).toBe(false);
      expect(log.includes(Buffer.from(secret.toString('base64url')))).toBe(false);
    }
    // And it did record every kind of decision made above.
    const kinds = new Set((await auditEntries()).map((e) => `${e.event}:${e.decision}`));
    expect(kinds).toEqual(
      new Set(['request:released', 'request:denied', 'request:not_found', 'channel:refused']),
    );
  });
});

/** The secret a URL names, as an independent reading of the route (undefined when none). */
function nameOf(url: string): string | undefined {
  const m = /^\/v1\/secrets\/([^/?]*)(\?.*)?$/.exec(url);
  if (!m) return undefined;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return m[1];
  }
}

describe('decide()', () => {
  it('property: for any method and path it never throws and releases only GET of a known name whose policy passes', async () => {
    const good = await verifyEvidence(await goodVm.getEvidence(new Uint8Array(64)), {
      trustAnchors: simulated.trustAnchors(),
    });
    const bad = await verifyEvidence(
      await simulated.snp({ measurement: OTHER }).getEvidence(new Uint8Array(64)),
      { trustAnchors: simulated.trustAnchors() },
    );
    const path = fc.oneof(
      fc.string(),
      fc.constantFrom(
        '/v1/secrets/disk-key',
        '/v1/secrets/td-key',
        '/v1/secrets/%ZZ',
        '/v1/secrets/disk-key?x=1',
      ),
      fc.string().map((s) => `/v1/secrets/${s}`),
    );
    fc.assert(
      fc.property(
        fc.constantFrom('GET', 'POST', 'HEAD', 'DELETE', ''),
        path,
        fc.constantFrom(good, bad, undefined),
        (method, url, claims) => {
          const v = decide(config, method, url, claims);
          const released = v.status === 200;
          expect(released).toBe(method === 'GET' && claims === good && nameOf(url) === 'disk-key');
          expect(v.audit.decision === 'released').toBe(released);
          if (!released) expect(v.body instanceof Uint8Array).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });
});
