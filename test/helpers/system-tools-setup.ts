/**
 * Vitest global setup for requireTool() (system-tools.ts): hands the workers a folder to note the
 * programs they missed, and after the run prints one line naming them with the packages to
 * install. Nothing is printed when every program was there.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'ac-missing-tools-'));
  project.provide('missingToolsDir', dir);
  return () => {
    const missing = readdirSync(dir).sort();
    const packages = [...new Set(missing.map((b) => readFileSync(join(dir, b), 'utf8')))].sort();
    rmSync(dir, { recursive: true, force: true });
    if (missing.length)
      console.log(
        `NOT RUN: the tests that need ${missing.join(', ')} (not installed); to run them: apt-get install -y ${packages.join(' ')}`,
      );
  };
}
