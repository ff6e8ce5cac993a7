import { defineConfig } from 'vitest/config';

// Three speeds: test/unit (no Azurite, no processes), test/integration (Azurite and the Braze
// sandbox), test/e2e (the local host, a browser, kills, resumes, time boxes, the deployment zip). `npm run test:unit`
// is the fast loop; `npm test` (scripts/test-all.ts) runs the e2e project beside the other two, then
// the early-send resume and time-box files on their own (`npm run test:resume`: their resend bounds
// and time boxes are wall-time windows that a busy machine stretches).
//
// Integration and end-to-end files share one Azurite per run, each file with a storage account of
// its own (test/helpers/shared-azurite.ts). Files share worker processes (`isolate: false`: the
// modules a file imports are loaded once per worker, not once per file): a file's settings are
// restored when it ends (test/helpers/app.ts), the app's services are rebuilt for each file, and
// each browser file's world (test/helpers/console-world.ts) is set up afresh.
const azurite = ['test/helpers/shared-azurite.ts'];

export default defineConfig({
  test: {
    pool: 'forks',
    // Most files wait on Azurite, the sandbox or a child process more than they compute: three at a
    // time on two cores (vitest's default would be one at a time here).
    maxWorkers: 3,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], isolate: false } },
      {
        extends: true,
        test: { name: 'integration', include: ['test/integration/**/*.test.ts'], isolate: false, globalSetup: azurite },
      },
      { extends: true, test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], isolate: false, globalSetup: azurite } },
    ],
  },
});
