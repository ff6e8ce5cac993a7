// What an engine thread loads when it starts: every module it reaches is compiled again in each
// thread, so the main thread's libraries (the Braze client, the Azure SDK, zod, cron-parser) stay out
// of it. The dependency rule engine-thread-lean checks the app's own imports; this checks what the
// built thread actually loads, type-only imports and all (which the rule cannot tell apart).
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { threadFile } from '../../shared/engine/run/thread-sizing';

/** The files the engine thread's entry point loads, as a thread of its own loads them. */
function modulesLoadedBy(file: string): Promise<string[]> {
  const code = `
    const { parentPort } = require('node:worker_threads');
    require(${JSON.stringify(file)});
    parentPort.postMessage(Object.keys(require.cache));
  `;
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true });
    worker.once('message', (loaded: string[]) => {
      void worker.terminate();
      resolve(loaded);
    });
    worker.once('error', reject);
  });
}

describe('the engine thread', () => {
  it('loads neither the Braze client nor the Azure SDK, zod or cron-parser', async () => {
    const loaded = (await modulesLoadedBy(threadFile())).map((f) => f.replaceAll('\\', '/'));
    expect(loaded.some((f) => f.endsWith('/dist/shared/engine/run/engine-thread.js'))).toBe(true);
    expect(loaded.some((f) => f.endsWith('/dist/shared/braze/batch.js'))).toBe(true);
    const unwanted = loaded.filter((f) =>
      /\/node_modules\/(@azure|zod|cron-parser)\/|\/dist\/shared\/braze\/(client|transport|request-budget)\.js$/.test(f),
    );
    expect(unwanted).toEqual([]);
  });
});
