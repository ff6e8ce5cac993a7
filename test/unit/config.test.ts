import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config';

const valid = {
  AzureWebJobsStorage: 'UseDevelopmentStorage=true',
  CI_EXPORT_STORAGE_CONNECTION_STRING: 'UseDevelopmentStorage=true',
  LOCAL_SECRET_KEY: Buffer.alloc(32, 1).toString('base64'),
};

describe('app settings', () => {
  it('parses a working local configuration with defaults', () => {
    const c = loadConfig(valid);
    expect(c.scheduledRefreshSchedule).toBe('0 */5 * * * *');
    expect(c.anonymousAdmin).toBe(false);
    expect(c.easyAuthEnabled).toBe(false);
  });

  it('reads the committed local.settings.sample.json as valid', async () => {
    const sample = (await import('../../local.settings.sample.json')).default as { Values: Record<string, string> };
    expect(() => loadConfig(sample.Values)).not.toThrow();
  });

  it.each([
    [{ ...valid, AzureWebJobsStorage: undefined }, 'AzureWebJobsStorage'],
    [{ ...valid, CI_EXPORT_STORAGE_CONNECTION_STRING: undefined }, 'CI_EXPORT_STORAGE_CONNECTION_STRING'],
    [{ ...valid, LOCAL_SECRET_KEY: 'c2hvcnQ=' }, 'LOCAL_SECRET_KEY'],
    [{ ...valid, LOCAL_SECRET_KEY: undefined }, 'KEY_VAULT_URI'],
    [{ ...valid, SCHEDULED_REFRESH_SCHEDULE: '*/5 * * * *' }, 'SCHEDULED_REFRESH_SCHEDULE'],
    [{ ...valid, LOCAL_ANONYMOUS_ADMIN: 'yes' }, 'LOCAL_ANONYMOUS_ADMIN'],
    [{ ...valid, KEY_VAULT_URI: 'http://kv.example' }, 'KEY_VAULT_URI'],
    [{ ...valid, LOCAL_EXTRA_BRAZE_HOSTS: 'http://127.0.0.1:80' }, 'LOCAL_EXTRA_BRAZE_HOSTS'],
  ])('a missing or malformed setting fails naming it (%#)', (env, name) => {
    expect(() => loadConfig(env)).toThrow(new RegExp(`${name}:`));
  });

  it('refuses local-only settings when running in Azure', () => {
    const inAzure = {
      ...valid,
      LOCAL_SECRET_KEY: undefined,
      KEY_VAULT_URI: 'https://kv1.vault.azure.net',
      WEBSITE_INSTANCE_ID: 'abc',
    };
    expect(() => loadConfig(inAzure)).not.toThrow();
    expect(() => loadConfig({ ...inAzure, LOCAL_ANONYMOUS_ADMIN: 'true' })).toThrow(
      /LOCAL_ANONYMOUS_ADMIN: is for local runs only/,
    );
    expect(() => loadConfig({ ...inAzure, LOCAL_TRUST_PRINCIPAL_HEADER: 'true' })).toThrow(/LOCAL_TRUST_PRINCIPAL_HEADER/);
    expect(() => loadConfig({ ...inAzure, LOCAL_EXTRA_BRAZE_HOSTS: '127.0.0.1:*' })).toThrow(/LOCAL_EXTRA_BRAZE_HOSTS/);
  });

  it.each([
    ['App Service / Premium', { WEBSITE_INSTANCE_ID: 'abc' }],
    [
      'Flex Consumption',
      { WEBSITE_SITE_NAME: 'cibraze-func', WEBSITE_SKU: 'FlexConsumption', CONTAINER_NAME: 'cibraze-func_1a2b' },
    ],
    ['Flex Consumption (pod only)', { WEBSITE_POD_NAME: 'cibraze-func-7d9f' }],
    ['Linux Consumption', { CONTAINER_NAME: 'cibraze-func_ab12', WEBSITE_SITE_NAME: 'cibraze-func', WEBSITE_SKU: 'Dynamic' }],
  ])('treats %s as Azure: local-only settings refused', (_plan, platform) => {
    const env = { ...valid, LOCAL_SECRET_KEY: undefined, KEY_VAULT_URI: 'https://kv1.vault.azure.net', ...platform };
    expect(() => loadConfig(env)).not.toThrow();
    for (const name of ['LOCAL_ANONYMOUS_ADMIN', 'LOCAL_TRUST_PRINCIPAL_HEADER'])
      expect(() => loadConfig({ ...env, [name]: 'true' })).toThrow(new RegExp(`${name}: is for local runs only`));
    expect(() => loadConfig({ ...env, LOCAL_EXTRA_BRAZE_HOSTS: '127.0.0.1:*' })).toThrow(
      /LOCAL_EXTRA_BRAZE_HOSTS: is for local runs only/,
    );
    expect(() => loadConfig({ ...env, LOCAL_SECRET_KEY: valid.LOCAL_SECRET_KEY })).toThrow(
      /LOCAL_SECRET_KEY: is for local runs only/,
    );
  });

  it('Core Tools on a laptop (WEBSITE_HOSTNAME=localhost) or a dev container (CONTAINER_NAME) is not Azure', () => {
    expect(() => loadConfig({ ...valid, WEBSITE_HOSTNAME: 'localhost:7071', LOCAL_ANONYMOUS_ADMIN: 'true' })).not.toThrow();
    expect(() => loadConfig({ ...valid, CONTAINER_NAME: 'ci-runner-7', LOCAL_ANONYMOUS_ADMIN: 'true' })).not.toThrow();
  });

  it('understands identity-based storage', () => {
    const c = loadConfig({ ...valid, AzureWebJobsStorage: undefined, AzureWebJobsStorage__accountName: 'myappstore' });
    expect(c.appStorage).toEqual({ accountName: 'myappstore', clientId: undefined });
  });
});
