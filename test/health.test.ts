import { describe, expect, it } from 'vitest';
import { health } from '../functions/health';
import { resetServices } from '../shared/services';
import { call, useAzurite } from './helpers/app';

const { azurite } = useAzurite();

describe('GET /api/health', () => {
  it('answers 200 with version and checks when storage and the key store answer, without sign-in', async () => {
    const res = await call(health, { method: 'GET', path: 'health', as: 'anonymous' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'healthy', version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
    expect(Object.keys(res.body.checks).sort()).toEqual(['config', 'keyVault', 'storage']);
  });

  it('answers 503 naming the check that failed when storage is unreachable', async () => {
    const connectionString = azurite().connectionString;
    const unreachable = connectionString.replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:9');
    process.env.AzureWebJobsStorage = unreachable;
    resetServices();
    try {
      const res = await call(health, { method: 'GET', path: 'health', as: 'anonymous' });
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
      const res = await call(health, { method: 'GET', path: 'health', as: 'anonymous' });
      expect(res.status).toBe(503);
      expect(res.body.checks.config.detail).toMatch(/LOCAL_SECRET_KEY/);
      expect(res.body.checks.config.detail).not.toContain('short');
    } finally {
      process.env.LOCAL_SECRET_KEY = key;
      resetServices();
    }
  });
});
