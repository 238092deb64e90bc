#!/usr/bin/env node
/**
 * `npm run check:package`: packs the package as `npm publish` would and checks the tarball, not the
 * work tree, because users get the tarball. Offline: npm runs with --offline, attw without
 * DefinitelyTyped look-ups, publint on the local file. Expects `npm run build` to have run (npm
 * test builds first; packing does not build again).
 *
 * - publint (strict): package.json fields against the files that ship;
 * - @arethetypeswrong/cli, esm-only profile: the types resolve under node16/nodenext and bundler
 *   resolution for this ESM-only package;
 * - the file list: LICENSE, README and docs ship, no source maps (src/ does not ship), nothing
 *   from test/; dist/index.d.ts references Node's types;
 * - every relative link in the shipped Markdown and every path in the CLI's --help texts names a
 *   file that ships (the rest of the repository is not there for a user of the package);
 * - a consumer: the unpacked tarball in an empty ESM project, importing both entry points
 *   (`attested-channel` and `attested-channel/simulated`), compiles with this repository's
 *   TypeScript and no `types` setting (TypeScript 6+ then loads no @types by itself: the
 *   declarations must reference Node's types themselves: else AttestedChannel is no Duplex).
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const env = {
  ...process.env,
  npm_config_offline: 'true',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
};
const failures = [];
const fail = (message) => failures.push(message);

if (!existsSync(join(root, 'dist', 'index.js'))) {
  console.error('check:package: dist/ is missing; run `npm run build` first');
  process.exit(1);
}

const out = mkdtempSync(join(tmpdir(), 'ac-pack-'));
try {
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', out], {
      cwd: root,
      env,
      encoding: 'utf8',
    }),
  )[0];
  const tarball = join(out, packed.filename);
  const files = new Set(packed.files.map((f) => f.path));

  for (const need of [
    'LICENSE',
    'README.md',
    'package.json',
    'dist/index.js',
    'dist/index.d.ts',
    'dist/simulated.js',
    'dist/simulated.d.ts',
    'dist/cli/bin.js',
  ])
    if (!files.has(need)) fail(`the tarball lacks ${need}`);
  for (const f of files) {
    if (f.endsWith('.map')) fail(`${f}: source maps ship without their sources`);
    if (/^(src|test|bench|examples|scripts)\//.test(f)) fail(`${f} is not meant to ship`);
  }
  for (const entry of ['index.d.ts', 'simulated.d.ts']) {
    const dts = readFileSync(join(root, 'dist', entry), 'utf8');
    if (!dts.startsWith('/// <reference types="node"'))
      fail(`dist/${entry} does not reference Node's types (\`/// <reference types="node" />\`)`);
  }

  // Relative links in the shipped Markdown must land on shipped files.
  for (const doc of [...files].filter((f) => f.endsWith('.md'))) {
    const text = readFileSync(join(root, doc), 'utf8');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1];
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue;
      const path = normalize(join(dirname(doc), target.split('#')[0]))
        .replace(/\\/g, '/')
        .replace(/\/$/, '');
      if (!files.has(path)) fail(`${doc}: the link ${target} points at ${path}, which does not ship`);
    }
  }

  // The CLI's help texts, as a user of the installed package reads them.
  for (const command of ['inspect', 'verify', 'demo', 'serve', 'tunnel']) {
    const help = execFileSync(process.execPath, [join(root, 'dist', 'cli', 'bin.js'), command, '--help'], {
      encoding: 'utf8',
    });
    for (const m of help.matchAll(/\b(?:test|examples|src|bench|scripts|docs)\/[\w./-]*\w/g))
      if (!files.has(m[0])) fail(`${command} --help names ${m[0]}, which does not ship`);
  }

  // A consumer project: the package from the tarball, everything else linked from here (offline).
  const consumer = join(out, 'consumer');
  const modules = join(consumer, 'node_modules');
  mkdirSync(modules, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', out]);
  renameSync(join(out, 'package'), join(modules, 'attested-channel'));
  for (const entry of readdirSync(join(root, 'node_modules'))) {
    if (entry.startsWith('.') || entry === 'attested-channel') continue;
    symlinkSync(join(root, 'node_modules', entry), join(modules, entry));
  }
  writeFileSync(
    join(consumer, 'package.json'),
    '{ "name": "consumer", "private": true, "type": "module" }\n',
  );
  writeFileSync(
    join(consumer, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'nodenext',
        target: 'es2022',
        strict: true,
        noEmit: true,
        skipLibCheck: true,
      },
      files: ['index.ts'],
    }),
  );
  writeFileSync(
    join(consumer, 'index.ts'),
    [
      "import { attestedConnect, type Claims, verifyEvidence } from 'attested-channel';",
      "import { type SimulatedSnpOptions, simulated } from 'attested-channel/simulated';",
      "const options: SimulatedSnpOptions = { product: 'Genoa' };",
      'const evidence = await simulated.snp(options).getEvidence(new Uint8Array(64));',
      'await verifyEvidence(evidence, { trustAnchors: simulated.trustAnchors(), offline: true });',
      'const claims: Claims = await verifyEvidence({ report: new Uint8Array(1184) });',
      'const checked: boolean = claims.revocation.checked;',
      "const channel = await attestedConnect({ host: 'cvm.example', port: 1, verify: { policy: {} } });",
      'const remote: string | undefined = channel.socket.remoteAddress;',
      "channel.end('bye');",
      'export { checked, remote, evidence };',
      '',
    ].join('\n'),
  );
  try {
    execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', consumer], {
      encoding: 'utf8',
    });
  } catch (err) {
    fail(`a TypeScript consumer without a types setting does not compile:\n${err.stdout}${err.stderr}`);
  }

  const run = (what, cmd, args) => {
    try {
      execFileSync(cmd, args, { cwd: root, env, stdio: 'inherit' });
    } catch {
      fail(`${what} failed (see above)`);
    }
  };
  run('publint', bin('publint'), ['run', tarball, '--strict', '--pack', 'false']);
  run('attw', bin('attw'), [
    tarball,
    '--profile',
    'esm-only',
    '--no-definitely-typed',
    '--format',
    'table-flipped',
  ]);

  if (failures.length) {
    for (const f of failures) console.error(`check:package: ${f}`);
    process.exitCode = 1;
  } else {
    console.log(`check:package: ${packed.filename} (${files.size} files, ${packed.size} bytes) is fine`);
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
