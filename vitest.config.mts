import { defineConfig } from 'vitest/config';

// Three speeds: test/unit (no Azurite, no processes), test/integration (Azurite and the Braze
// sandbox), test/e2e (the local host, a browser, kills and resumes). `npm run test:unit` is the fast loop.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // Most files wait on Azurite, the sandbox or a child process more than they compute: three at a
    // time on two cores (vitest's default would run one file at a time here).
    maxWorkers: 3,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
