/**
 * The in-VM side of the key broker: attest to the broker, fetch one secret, write it to a file
 * only this user can read.
 *
 *   npx tsx examples/key-broker/client.ts --broker 10.0.0.5:8443 --secret disk-key --out /run/keys/disk-key
 *
 * --out is opened (a new 0600 file beside it) before the broker is asked, so an --out that cannot
 * be written fails without a secret being released.
 *
 * Evidence comes from configfs-tsm (Linux 6.7+ guest on SEV-SNP or TDX), or with --simulate snp|tdx
 * from the simulated platform (demo only: a broker trusts it only with "trust": "simulated").
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, lstat, open, readFile, rename, unlink } from 'node:fs/promises';
import { request } from 'node:http';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { AttestationError } from '../../src/errors.js';
import { unpinnedFormats } from '../../src/evidence/appraise.js';
import { parsePolicy } from '../../src/evidence/policy.js';
import type { Claims, EvidenceProvider, TrustAnchors } from '../../src/evidence/types.js';
import { attestedAgent } from '../../src/http/agent.js';
import { peerClaims } from '../../src/http/server.js';
import { configfsTsm } from '../../src/index.js';

// The simulated platform (attested-channel/simulated) is loaded only when asked for: it carries
// published private keys, and a broker client on real hardware never needs it.
export const loadSimulated = async () => (await import('../../src/simulated.js')).simulated;

export interface FetchSecretOptions {
  host: string;
  port: number;
  name: string;
  /** This VM's evidence. */
  evidence: EvidenceProvider;
  /** When set, the broker must attest too and satisfy this (it then cannot be impersonated). */
  brokerVerify?: { policy: unknown; trustAnchors?: TrustAnchors };
  timeout?: number;
}

export interface FetchSecretResult {
  status: number;
  /** The secret on 200; the broker's JSON explanation otherwise. */
  body: Uint8Array;
  /** The broker's verified claims when brokerVerify was given. */
  broker?: Claims;
}

/** One request over a fresh attested channel. Rejects with an AttestationError when the channel fails. */
export async function fetchSecret(options: FetchSecretOptions): Promise<FetchSecretResult> {
  // A broker policy that pins no workload would hand this VM's evidence, and its request, to any
  // genuine VM of a format the policy admits: require a pin, as the broker does of its secrets.
  const brokerPolicy = options.brokerVerify ? parsePolicy(options.brokerVerify.policy) : undefined;
  if (brokerPolicy && unpinnedFormats(brokerPolicy).length > 0)
    throw new AttestationError(
      'ERR_POLICY_INVALID',
      `the broker policy pins no workload for ${unpinnedFormats(brokerPolicy).join(' and ')} (any genuine VM would pass as the broker)`,
    );
  const agent = attestedAgent(
    {
      evidence: options.evidence,
      ...(options.timeout ? { timeout: options.timeout } : {}),
      ...(options.brokerVerify
        ? {
            verify: {
              policy: brokerPolicy,
              ...(options.brokerVerify.trustAnchors
                ? { trustAnchors: options.brokerVerify.trustAnchors }
                : {}),
            },
          }
        : {}),
    },
    { keepAlive: false },
  );
  try {
    return await new Promise<FetchSecretResult>((resolve, reject) => {
      const req = request(
        {
          host: options.host,
          port: options.port,
          method: 'GET',
          path: `/v1/secrets/${encodeURIComponent(options.name)}`,
          agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const broker = peerClaims(res);
            resolve({
              status: res.statusCode ?? 0,
              body: new Uint8Array(Buffer.concat(chunks)),
              ...(broker ? { broker } : {}),
            });
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
  } finally {
    agent.destroy();
  }
}

/** A secret file opened before the secret is asked for: write() puts it in place, discard() drops it. */
export interface SecretFile {
  write(data: Uint8Array): Promise<void>;
  discard(): Promise<void>;
}

/**
 * Opens the file a secret will go to, before the broker is asked for it: a folder that does not
 * exist or cannot be written, or a target that is a folder, fails here, so no secret is released
 * (and logged as released) only to be lost. What is opened is a new file with mode 0600 next to
 * the target (O_EXCL, never following a symlink), renamed over the target by write(), so a
 * pre-existing file with looser permissions is replaced rather than reused.
 */
export async function openSecretFile(path: string): Promise<SecretFile> {
  const existing = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (existing?.isDirectory())
    throw new AttestationError('ERR_INVALID_ARGUMENT', `--out ${path} is a folder; name a file in it`);
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: FileHandle;
  try {
    handle = await open(
      tmp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
  } catch (err) {
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      `cannot write --out ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} in ${dirname(path)}`,
      { cause: err },
    );
  }
  let settled = false;
  const discard = async () => {
    if (settled) return;
    settled = true;
    await handle.close().catch(() => {});
    await unlink(tmp).catch(() => {});
  };
  return {
    discard,
    async write(data) {
      if (settled) throw new Error('the secret file was already written or discarded');
      try {
        // The umask can only remove bits, but be explicit: the mode is part of the contract.
        await handle.chmod(0o600);
        await handle.writeFile(data);
        await handle.sync();
        await handle.close();
        await rename(tmp, path);
        settled = true;
      } catch (err) {
        await discard();
        throw err;
      }
    },
  };
}

/** Writes `data` so that no other user can ever read it (see openSecretFile). */
export async function writeSecretFile(path: string, data: Uint8Array): Promise<void> {
  await (await openSecretFile(path)).write(data);
}

const USAGE = `usage: client.ts --broker HOST:PORT --secret NAME --out FILE
                 [--simulate snp|tdx [--measurement HEX] [--debug]]
                 [--broker-policy FILE [--trust simulated]]

  --simulate snp|tdx  use the simulated platform instead of configfs-tsm (demo only)
  --measurement HEX   simulated SNP measurement (96 hex) or TDX MRTD (96 hex)
  --debug             simulate a guest launched with debugging allowed
  --broker-policy F   require the broker to attest and satisfy this policy file
  --trust simulated   accept the broker's simulated evidence (demo only)
`;

export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port < 1 || port > 65535)
    throw new AttestationError(
      'ERR_INVALID_ARGUMENT',
      `--broker must be HOST:PORT, got ${JSON.stringify(text)}`,
    );
  return { host: (m[1] ?? m[2])!, port };
}

/** Builds the evidence provider named on the command line. */
export async function providerFor(
  kind: string | undefined,
  measurement?: string,
  debug = false,
): Promise<EvidenceProvider> {
  // configfs-tsm resolves once it knows whether the kernel speaks SEV-SNP or TDX.
  if (kind === undefined) return configfsTsm();
  if (kind === 'snp')
    return (await loadSimulated()).snp({
      ...(measurement ? { measurement } : {}),
      // Guest POLICY bit 19 is DEBUG; bit 17 is reserved-must-be-one, bit 16 allows SMT.
      policy: debug ? 0x30000 | (1 << 19) : 0x30000,
    });
  if (kind === 'tdx')
    return (await loadSimulated()).tdx({
      ...(measurement ? { mrTd: measurement } : {}),
      // TDATTRIBUTES (little-endian): bit 0 DEBUG, bit 28 SEPT_VE_DISABLE.
      tdAttributes: debug ? '0100001000000000' : '0000001000000000',
    });
  throw new AttestationError('ERR_INVALID_ARGUMENT', '--simulate must be "snp" or "tdx"');
}

export async function main(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        broker: { type: 'string' },
        secret: { type: 'string' },
        out: { type: 'string' },
        simulate: { type: 'string' },
        measurement: { type: 'string' },
        debug: { type: 'boolean' },
        'broker-policy': { type: 'string' },
        trust: { type: 'string' },
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
  if (
    typeof values.broker !== 'string' ||
    typeof values.secret !== 'string' ||
    typeof values.out !== 'string'
  ) {
    process.stderr.write(USAGE);
    return 2;
  }
  try {
    const target = parseHostPort(values.broker);
    const evidence = await providerFor(
      values.simulate as string | undefined,
      values.measurement as string | undefined,
      values.debug === true,
    );
    let brokerVerify: FetchSecretOptions['brokerVerify'];
    if (typeof values['broker-policy'] === 'string') {
      const policy = JSON.parse(await readFile(values['broker-policy'], 'utf8'));
      if (values.trust !== undefined && values.trust !== 'simulated')
        throw new AttestationError('ERR_INVALID_ARGUMENT', '--trust must be "simulated"');
      brokerVerify = {
        policy,
        ...(values.trust === 'simulated' ? { trustAnchors: (await loadSimulated()).trustAnchors() } : {}),
      };
    }
    // Before the secret is asked for: a secret released into an --out that cannot be written would
    // be lost, and the broker's audit log would still say it was released.
    const file = await openSecretFile(values.out);
    try {
      const result = await fetchSecret({
        ...target,
        name: values.secret,
        evidence,
        ...(brokerVerify ? { brokerVerify } : {}),
      });
      if (result.status !== 200) {
        process.stderr.write(
          `broker refused (${result.status}): ${Buffer.from(result.body).toString('utf8').trim()}\n`,
        );
        return 1;
      }
      await file.write(result.body);
      process.stdout.write(`wrote ${result.body.length} bytes to ${values.out} (mode 0600)\n`);
      return 0;
    } finally {
      await file.discard();
    }
  } catch (err) {
    const code = err instanceof AttestationError ? `${err.code}: ` : '';
    process.stderr.write(`failed: ${code}${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
