/**
 * Tests that need a program of the operating system (sshd, swtpm, …) call requireTool() at the
 * top of their file and run their suite with `describe.runIf(found)`:
 *
 *   const sshd = requireTool('sshd', 'openssh-server');
 *   describe.runIf(sshd)('a real sshd', () => { … spawn(sshd!, …) … });
 *
 * - installed: the absolute path is returned and the tests run, everywhere;
 * - missing under CI (env CI=true): requireTool throws, so the file fails: CI must install what
 *   the tests need (.ci/run's apt-get line);
 * - missing elsewhere: undefined is returned, so the suite does not run, and the global setup
 *   (system-tools-setup.ts) prints ONE line after the run naming every missing program and the
 *   Debian packages that bring them.
 * This is the only sanctioned way for a test not to run; nothing else skips.
 */
import { accessSync, constants, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Folder where workers note the programs they missed (one file per program). */
    missingToolsDir: string;
  }
}

/** sshd and friends live in sbin, which is not on every user's PATH. */
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** The absolute path of `binary` on PATH (or an sbin folder), if it is an executable file. */
export function findTool(binary: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function inCi(): boolean {
  const v = process.env.CI;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

/**
 * The path of `binary`, or (outside CI) undefined after noting it as missing. `debianPackage`
 * is what `apt-get install -y` needs to bring it.
 */
export function requireTool(binary: string, debianPackage: string): string | undefined {
  if (!/^[\w.+-]+$/.test(binary) || !/^[\w.+-]+$/.test(debianPackage))
    throw new Error(`requireTool: bad name ${binary} / ${debianPackage}`);
  const found = findTool(binary);
  if (found) return found;
  if (inCi())
    throw new Error(
      `${binary} is not installed, and CI (CI=true) must run every test: apt-get install -y ${debianPackage}`,
    );
  let dir: string | undefined;
  try {
    dir = inject('missingToolsDir');
  } catch {
    dir = undefined;
  }
  if (dir) writeFileSync(join(dir, binary), debianPackage);
  else console.warn(`not run: tests that need ${binary} (apt-get install -y ${debianPackage})`);
  return undefined;
}
