// Previews cannot take an instance down: at most two at once per instance (one while a run executes
// here), 429 with Retry-After beyond; a preview past its deadline is stopped (the engine's stop
// signal) and answered, well below the HTTP front end's 230 s. On Azurite.
import { afterEach, describe, expect, it } from 'vitest';
import { exportPreview } from '../../functions/exportPreview';
import { ExportPreview } from '../../shared/preview/preview-export';
import { PREVIEW_LIMITS, runExecuting, takePreviewSlot } from '../../shared/preview/preview-slots';
import { services } from '../../shared/services';
import { call, useAzurite } from '../helpers/app';
import { MATCHING, rows, writeCiExport } from '../helpers/ci-export';
import { ADMIN, createConnection, createExport, useSandbox } from '../helpers/engine';

useAzurite();
const sandbox = useSandbox();
const release: (() => void)[] = [];
afterEach(() => release.splice(0).forEach((r) => r()));

async function exportOf(profiles: number) {
  const app = services();
  const source = await writeCiExport(app.storage.ciBlobs, [{ segment: 'S', partitions: [rows(profiles)] }]);
  const conn = await createConnection(sandbox().url);
  return createExport(conn.id, { source, segments: ['S'], matching: MATCHING });
}

function expectFreeSlot() {
  const slot = takePreviewSlot();
  expect(slot).not.toBeNull();
  release.push(slot!);
}

const preview = (id: string) => call(exportPreview, { method: 'POST', path: 'x', params: { id }, body: {}, as: 'Admin' });

describe('preview limits', () => {
  it('two previews at once per instance; a third is told to come back (429, Retry-After)', async () => {
    const exp = await exportOf(5);
    for (let i = 0; i < PREVIEW_LIMITS.perInstance; i++) release.push(takePreviewSlot()!);
    const refused = await preview(exp.id);
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe(String(PREVIEW_LIMITS.retryAfterSeconds));
    expect(refused.body.error).toMatchObject({ code: 'too_many_requests', retryAfterSeconds: PREVIEW_LIMITS.retryAfterSeconds });
    release.pop()!();
    expect((await preview(exp.id)).status).toBe(200);
    // The slot a preview took is given back, whatever its answer.
    expectFreeSlot();
  });

  it('while a run executes on the instance, only one preview', async () => {
    const exp = await exportOf(5);
    release.push(runExecuting());
    release.push(takePreviewSlot()!);
    expect((await preview(exp.id)).status).toBe(429);
  });

  it('a preview past its deadline is stopped and answered 503 at once', async () => {
    const exp = await exportOf(3000);
    const deps = (services().preview as unknown as { deps: ConstructorParameters<typeof ExportPreview>[0] }).deps;
    const started = Date.now();
    await expect(new ExportPreview({ ...deps, deadlineMs: 0 }).preview(ADMIN, exp.id, false)).rejects.toMatchObject({
      status: 503,
      code: 'preview_deadline',
    });
    expect(Date.now() - started).toBeLessThan(5000);
    expectFreeSlot();
  });
});
