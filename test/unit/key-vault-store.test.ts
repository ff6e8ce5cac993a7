// The Key Vault secret store against a stand-in for Key Vault's soft delete (no vault is reachable
// from here): a name whose secret was deleted is held until it is recovered or purged.
import { describe, expect, it } from 'vitest';
import { KeyVaultSecretStore, type SecretClientLike } from '../../shared/secrets';

/** Key Vault's rules for names, in memory: set, soft delete, recover. */
function softDeletingVault() {
  const live = new Map<string, string>();
  const deleted = new Map<string, string>();
  const calls: string[] = [];
  const poller = (done: () => void) => ({ pollUntilDone: async () => done() });
  const client = {
    async setSecret(name: string, value: string) {
      calls.push(`set ${name}`);
      if (deleted.has(name)) {
        throw Object.assign(
          new Error(
            `Secret ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.`,
          ),
          { statusCode: 409, code: 'Conflict' },
        );
      }
      live.set(name, value);
      return {
        name,
        value,
        properties: { id: `https://app-kv.vault.azure.net/secrets/${name}/0123456789abcdef0123456789abcdef` },
      };
    },
    async beginDeleteSecret(name: string) {
      calls.push(`delete ${name}`);
      deleted.set(name, live.get(name)!);
      live.delete(name);
      return poller(() => undefined);
    },
    async beginRecoverDeletedSecret(name: string) {
      calls.push(`recover ${name}`);
      return poller(() => {
        live.set(name, deleted.get(name)!);
        deleted.delete(name);
      });
    },
  } as unknown as SecretClientLike;
  return { client, live, calls };
}

describe('Key Vault secret store', () => {
  it('a key stored again after the connection used a Key Vault reference recovers the soft-deleted secret instead of failing for 90 days', async () => {
    const vault = softDeletingVault();
    const store = new KeyVaultSecretStore('https://app-kv.vault.azure.net', undefined, () => vault.client);
    const first = await store.put('braze-connection-1', 'key-one');
    await store.remove(first); // the connection switched to a reference in the customer's vault
    const again = await store.put('braze-connection-1', 'key-two');
    expect(again).toMatch(/\/secrets\/braze-connection-1\//);
    expect(vault.live.get('braze-connection-1')).toBe('key-two');
    expect(vault.calls).toEqual([
      'set braze-connection-1',
      'delete braze-connection-1',
      'set braze-connection-1',
      'recover braze-connection-1',
      'set braze-connection-1',
    ]);
  });

  it('other errors are not swallowed', async () => {
    const client = {
      setSecret: async () => Promise.reject(Object.assign(new Error('Forbidden'), { statusCode: 403 })),
    } as unknown as SecretClientLike;
    const store = new KeyVaultSecretStore('https://app-kv.vault.azure.net', undefined, () => client);
    await expect(store.put('braze-connection-2', 'k')).rejects.toThrow(/Forbidden/);
  });
});
