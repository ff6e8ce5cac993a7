import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { health } from '../../functions/health';
import { resetServices } from '../../shared/services';
import { call, useAzurite } from '../helpers/app';

const { azurite } = useAzurite();

describe('GET /api/health', () => {
  it('answers anonymous callers 200 with the status only', async () => {
    const res = await call(health, { method: 'GET', path: 'health', as: 'anonymous' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'healthy' });
    expect((await call(health, { method: 'GET', path: 'health', as: 'Viewer' })).body).toEqual({ status: 'healthy' });
  });

  it('shows an Admin the version, the checks, whether Easy Auth is on and the cores the instance gives', async () => {
    const res = await call(health, { method: 'GET', path: 'health', as: 'Admin' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'healthy',
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      easyAuthDetected: false,
      cores: os.availableParallelism(),
    });
    expect(Object.keys(res.body.checks).sort()).toEqual(['config', 'keyVault', 'storage']);
  });

  it('runs its checks at most once per 30 s, however often it is called', async () => {
    const first = (await call(health, { method: 'GET', path: 'health', as: 'Admin' })).body.checkedAt;
    for (let i = 0; i < 20; i++) await call(health, { method: 'GET', path: 'health', as: 'anonymous' });
    expect((await call(health, { method: 'GET', path: 'health', as: 'Admin' })).body.checkedAt).toBe(first);
  });

  it('answers 503 naming the check that failed when storage is unreachable', async () => {
    const connectionString = azurite().connectionString;
    const unreachable = connectionString.replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:9');
    process.env.AzureWebJobsStorage = unreachable;
    resetServices();
    try {
      const anonymous = await call(health, { method: 'GET', path: 'health', as: 'anonymous' });
      expect(anonymous.status).toBe(503);
      expect(anonymous.body).toEqual({ status: 'unhealthy' });
      const res = await call(health, { method: 'GET', path: 'health', as: 'Admin' });
      expect(res.status).toBe(503);
      expect(res.body.checks.storage.ok).toBe(false);
      expect(res.body.checks.keyVault.ok).toBe(true);
      expect(JSON.stringify(res.body)).not.toContain('AccountKey');
    } finally {
      process.env.AzureWebJobsStorage = connectionString;
      resetServices();
    }
  }, 60_000);

  it('answers 503 naming a malformed setting', async () => {
    const key = process.env.LOCAL_SECRET_KEY;
    process.env.LOCAL_SECRET_KEY = 'short';
    resetServices();
    try {
      // Settings that cannot be read cannot say whom to trust: callers get the status, the log the reason.
      const res = await call(health, { method: 'GET', path: 'health', as: 'Admin' });
      expect(res.status).toBe(503);
      expect(res.body).toEqual({ status: 'unhealthy' });
      expect(res.logs.join('\n')).toMatch(/LOCAL_SECRET_KEY/);
      expect(res.logs.join('\n')).not.toContain('short');
    } finally {
      process.env.LOCAL_SECRET_KEY = key;
      resetServices();
    }
  });
});
