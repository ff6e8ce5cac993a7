import { defineConfig } from 'vitest/config';

// Three speeds: test/unit (no Azurite, no processes), test/integration (Azurite and the Braze
// sandbox), test/e2e (the local host, a browser, kills and resumes). `npm run test:unit` is the fast loop.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
