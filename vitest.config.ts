import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Reports, in one line, the tests that did not run for want of a system program (requireTool).
    globalSetup: ['test/helpers/system-tools-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // CI machines have 2 cores; most suites wait on loopback sockets, so both stay busy.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
