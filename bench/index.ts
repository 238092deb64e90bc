/**
 * `npm run bench`: every section in order, then one markdown table of all figures.
 * `npm run bench -- snp tdx` runs only the named sections.
 */
import { cpus, totalmem } from 'node:os';
import { markdownTable } from './harness.js';

const SECTIONS: Record<string, () => Promise<{ run: () => Promise<void> }>> = {
  snp: () => import('./snp.js'),
  tdx: () => import('./tdx.js'),
  channel: () => import('./channel.js'),
  broker: () => import('./broker.js'),
  tunnel: () => import('./tunnel.js'),
  measure: () => import('./measure.js'),
  eventlog: () => import('./eventlog.js'),
  azure: () => import('./azure.js'),
  verifier: () => import('./verifier.js'),
  rates: () => import('./rates.js'),
  floor: () => import('./floor.js'),
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
for (const name of Object.keys(SECTIONS)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  const mod = await SECTIONS[name]!();
  console.log(`\n== ${name}`);
  await mod.run();
}
console.log(
  `\nMachine: ${cpus()[0]?.model ?? 'unknown'} × ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}\n`,
);
console.log(markdownTable());
