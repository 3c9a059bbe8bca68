import path from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Tests import the sources; the CLIs they spawn run the build (global setup keeps it fresh).
  resolve: {
    alias: [
      { find: /^@trellis\/core$/, replacement: path.resolve(import.meta.dirname, 'packages/core/src/index.ts') },
      { find: /^@trellis\/core\/(store|shell)$/, replacement: path.resolve(import.meta.dirname, 'packages/core/src/$1/index.ts') },
    ],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'tests/**/*.test.ts'],
    globalSetup: ['tests/helpers/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two files at once: most tests wait on the processes they spawn, so one worker leaves a core idle (TRELLIS_TEST_WORKERS overrides).
    maxWorkers: Number(process.env.TRELLIS_TEST_WORKERS ?? 2),
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
