import { defineConfig } from 'vitest/config';

// Three speeds: test/unit (no Azurite, no processes), test/integration (Azurite and the Braze
// sandbox), test/e2e (the local host, a browser, kills, resumes and time boxes). `npm run test:unit`
// is the fast loop; `npm test` runs unit and integration files three at a time, then the end-to-end
// ones two at a time, and last, alone, the kill-and-resume and time-box tests (they bound what a
// kill costs in resent profiles, and a busy machine stretches those windows).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // Most files wait on Azurite, the sandbox or a child process more than they compute: three at a
    // time on two cores (vitest's default would be one at a time here).
    maxWorkers: 3,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
