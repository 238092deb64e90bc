/**
 * Starts the key broker.
 *
 *   npx tsx examples/key-broker/server.ts --config examples/key-broker/config.example.json
 *   npx tsx examples/key-broker/server.ts --demo      # broker + simulated VMs, then exit
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { AttestationError } from '../../src/errors.js';
import type { EvidenceProvider, TrustAnchors } from '../../src/evidence/types.js';
import { configfsTsm } from '../../src/index.js';
import { startBroker } from './broker.js';
import { fetchSecret, loadSimulated, providerFor, writeSecretFile } from './client.js';
import { type BrokerConfig, loadConfig } from './config.js';

const EXAMPLE_CONFIG = fileURLToPath(new URL('./config.example.json', import.meta.url));
const DEMO_MEASUREMENT =
  'ed23397c11beab746d09f9e12888cdedebe71dd4a84713e89a2f7db8b41f5b5890bdadc33a06f117e8d6c48ce426d426';

const USAGE = `usage: server.ts --config FILE      run the broker
       server.ts --demo [--config FILE]  run the broker and simulated VMs against it, then exit
`;

export async function brokerEvidence(config: BrokerConfig): Promise<EvidenceProvider | undefined> {
  switch (config.evidence) {
    case 'none':
      return undefined;
    case 'configfs':
      return configfsTsm();
    case 'simulated-snp':
      return (await loadSimulated()).snp();
    case 'simulated-tdx':
      return (await loadSimulated()).tdx();
  }
}

export async function brokerTrust(config: BrokerConfig): Promise<TrustAnchors | undefined> {
  return config.trust === 'simulated' ? (await loadSimulated()).trustAnchors() : undefined;
}

async function serve(configPath: string): Promise<number> {
  const config = loadConfig(configPath);
  const broker = await startBroker({
    config,
    ...withDefined('evidence', await brokerEvidence(config)),
    ...withDefined('trustAnchors', await brokerTrust(config)),
  });
  const addr = await broker.listen();
  const names = [...config.secrets.keys()].join(', ');
  console.log(
    `key broker listening on ${addr.address}:${addr.port} (attested-channel/1, clients must attest)`,
  );
  console.log(`secrets: ${names}`);
  console.log(
    `trust: ${config.trust === 'simulated' ? 'SIMULATED platform (demo only)' : 'AMD and Intel roots'}`,
  );
  console.log(`audit log: ${config.auditLog}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await broker.close();
  return 0;
}

function withDefined<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** What a client that cannot attest would try: HTTPS straight to the broker's port. */
export function plainHttps(port: number, path: string): Promise<{ status: number; body: Uint8Array }> {
  return new Promise((resolve, reject) => {
    // https.request passes TLS options such as ALPN through to tls.connect.
    const options: RequestOptions & ConnectionOptions = {
      host: '127.0.0.1',
      port,
      path,
      agent: false,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
      ALPNProtocols: ['attested-channel/1'],
      timeout: 10_000,
    };
    const req = httpsRequest(options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: new Uint8Array(Buffer.concat(chunks)) }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** The broker on an ephemeral port and a throw-away audit log, with simulated VMs asking it for secrets. */
async function demo(configPath: string): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'key-broker-demo-'));
  try {
    const loaded = loadConfig(configPath);
    if (loaded.trust !== 'simulated')
      throw new AttestationError('ERR_INVALID_ARGUMENT', 'the demo needs "trust": "simulated"');
    const config: BrokerConfig = {
      ...loaded,
      auditLog: join(dir, 'audit.log'),
      listen: { host: '127.0.0.1', port: 0 },
    };
    const broker = await startBroker({
      config,
      ...withDefined('evidence', await brokerEvidence(config)),
      ...withDefined('trustAnchors', await brokerTrust(config)),
    });
    const { port } = await broker.listen();
    console.log(`broker on 127.0.0.1:${port}; secrets: ${[...config.secrets.keys()].join(', ')}\n`);
    const other = 'ab'.repeat(48);
    const cases: Array<{
      title: string;
      name: string;
      /** 'plain-https': a client that does not attest and just speaks HTTPS to the port. */
      evidence: EvidenceProvider | 'plain-https';
      expect: number | string;
    }> = [
      {
        title: 'the demo VM asks for disk-key',
        name: 'disk-key',
        evidence: await providerFor('snp', DEMO_MEASUREMENT),
        expect: 200,
      },
      {
        title: 'a VM with another measurement',
        name: 'disk-key',
        evidence: await providerFor('snp', other),
        expect: 403,
      },
      {
        title: 'the demo image booted with DEBUG',
        name: 'disk-key',
        evidence: await providerFor('snp', DEMO_MEASUREMENT, true),
        expect: 403,
      },
      {
        title: 'the demo TD asks for api-token',
        name: 'api-token',
        evidence: await providerFor('tdx'),
        expect: 200,
      },
      {
        title: 'a TDX VM asks for the SNP-only disk-key',
        name: 'disk-key',
        evidence: await providerFor('tdx'),
        expect: 403,
      },
      {
        title: 'the demo VM asks for an unknown name (answered as a refusal)',
        name: 'root-password',
        evidence: await providerFor('snp', DEMO_MEASUREMENT),
        expect: 403,
      },
      {
        title: 'a client that does not attest (plain HTTPS)',
        name: 'disk-key',
        evidence: 'plain-https',
        expect: 'refused',
      },
    ];
    let failures = 0;
    for (const c of cases) {
      let outcome: string;
      let ok: boolean;
      try {
        const res =
          c.evidence === 'plain-https'
            ? await plainHttps(port, `/v1/secrets/${c.name}`)
            : await fetchSecret({
                host: '127.0.0.1',
                port,
                name: c.name,
                evidence: c.evidence,
                timeout: 10_000,
              });
        ok = res.status === c.expect;
        if (res.status === 200) {
          const out = join(dir, c.name);
          await writeSecretFile(out, res.body);
          outcome = `200, ${res.body.length} bytes written to ${out} (mode 0600)`;
        } else outcome = `${res.status} ${Buffer.from(res.body).toString('utf8').trim()}`;
      } catch (err) {
        ok = c.expect === 'refused';
        const why =
          err instanceof AttestationError ? err.code : ((err as NodeJS.ErrnoException).code ?? String(err));
        outcome = `channel refused: ${why}`;
      }
      if (!ok) failures++;
      console.log(`${ok ? 'ok  ' : 'FAIL'} ${c.title}\n     -> ${outcome}`);
    }
    await broker.close();
    console.log(`\naudit log (${config.auditLog}):`);
    console.log((await readFile(config.auditLog, 'utf8')).trimEnd());
    console.log(
      failures === 0 ? '\ndemo: every case answered as expected' : `\ndemo: ${failures} case(s) FAILED`,
    );
    return failures === 0 ? 0 : 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function main(argv: string[]): Promise<number> {
  let values: { config?: string | undefined; demo?: boolean | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        demo: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    if (values.demo) return await demo(values.config ?? EXAMPLE_CONFIG);
    if (!values.config) {
      process.stderr.write(USAGE);
      return 2;
    }
    return await serve(values.config);
  } catch (err) {
    const code = err instanceof AttestationError ? `${err.code}: ` : '';
    process.stderr.write(`key broker: ${code}${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
