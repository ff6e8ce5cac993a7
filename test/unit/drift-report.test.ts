// The drift report's temp files: a failure of the disk under them is the run's error, never the
// process's (a write stream's error without a listener ends Node, and every run on the instance).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ContainerClient } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { DriftReport } from '../../shared/verify/drift-report';

const row = { kind: 'stale' as const, identity: 'e:u1', key: 'c1', segments: ['A'], fields: ['first_name'] };
/** Never reached: the upload fails before it sends anything. */
const nowhere = new ContainerClient('http://127.0.0.1:9/devstoreaccount1/reports');
const tick = () => new Promise((r) => setTimeout(r, 50));

describe('drift report', () => {
  it('its temp folder removed under it: the upload fails naming the file, the process goes on', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'drift-report-'));
    const report = new DriftReport(dir);
    rmSync(dir, { recursive: true, force: true });
    report.add(row);
    await tick();
    await expect(report.upload(nowhere, 'runs/r1')).rejects.toThrow(/ENOENT.*drift\.(csv|jsonl)/);
  });

  it('discarded after its folder is gone (a run that failed before comparing): nothing is thrown', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'drift-report-'));
    const report = new DriftReport(dir);
    rmSync(dir, { recursive: true, force: true });
    await expect(report.discard()).resolves.toBeUndefined();
    await expect(report.discard()).resolves.toBeUndefined();
    await tick();
  });
});
