// Where Braze API keys live. Tables only ever hold a reference: a Key Vault secret URI (the app's
// vault or the customer's own), or locally an AES-256-GCM ciphertext under a key from settings.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';

export interface SecretStore {
  /** Stores a connection's key; returns the reference to keep in the table. */
  put(name: string, value: string): Promise<string>;
  /** Reads a key by reference (also a customer Key Vault secret URI). */
  get(reference: string): Promise<string>;
  /** Forgets a key this store created. References to customer secrets are left alone. */
  remove(reference: string): Promise<void>;
  /** For /api/health: throws when the store cannot be reached or used. */
  check(): Promise<string>;
}

export const KEY_VAULT_SECRET_URI =
  /^https:\/\/([a-z0-9-]{3,24})\.vault\.(azure\.net|azure\.cn|usgovcloudapi\.net|microsoftazure\.de)\/secrets\/([A-Za-z0-9-]{1,127})(\/[0-9a-f]{32})?\/?$/;

function parseSecretUri(uri: string): { vaultUrl: string; name: string; version?: string } {
  const m = KEY_VAULT_SECRET_URI.exec(uri);
  if (!m) throw new Error('not a Key Vault secret URI');
  return { vaultUrl: `https://${m[1]}.vault.${m[2]}`, name: m[3]!, version: m[4]?.slice(1) };
}

const LOCAL_PREFIX = 'local-v1:';

/** Local runs and tests: AES-256-GCM, reference = ciphertext. Not for Azure (config refuses the key there). */
export class LocalEncryptedSecretStore implements SecretStore {
  constructor(private readonly key: Buffer) {}

  async put(_name: string, value: string): Promise<string> {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const ct = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    return LOCAL_PREFIX + Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64');
  }

  async get(reference: string): Promise<string> {
    if (!reference.startsWith(LOCAL_PREFIX)) throw new Error('secret reference needs Key Vault, which is not configured');
    const raw = Buffer.from(reference.slice(LOCAL_PREFIX.length), 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  }

  async remove(): Promise<void> {
    // The ciphertext lives in the connection row; deleting the row deletes the key.
  }

  async check(): Promise<string> {
    return 'local encryption (not for Azure)';
  }
}

/** What this store uses of the Key Vault SDK's SecretClient. */
export type SecretClientLike = Pick<
  SecretClient,
  'setSecret' | 'getSecret' | 'beginDeleteSecret' | 'beginRecoverDeletedSecret' | 'listPropertiesOfSecrets'
>;

/** Key Vault's answer when a name belongs to a soft-deleted secret (kept 7–90 days). */
const isDeletedButRecoverable = (e: unknown) => {
  const err = e as { statusCode?: number; message?: string };
  return err?.statusCode === 409 && /deleted but recoverable/i.test(err.message ?? '');
};

/** Azure: the app's vault, through its managed identity; customer secret URIs read from their vault. */
export class KeyVaultSecretStore implements SecretStore {
  private readonly clients = new Map<string, SecretClientLike>();

  constructor(
    private readonly vaultUrl: string,
    private readonly credential: TokenCredential = new DefaultAzureCredential(),
    private readonly newClient: (vaultUrl: string) => SecretClientLike = (url) => new SecretClient(url, this.credential),
  ) {}

  private client(vaultUrl: string): SecretClientLike {
    let c = this.clients.get(vaultUrl);
    if (!c) this.clients.set(vaultUrl, (c = this.newClient(vaultUrl)));
    return c;
  }

  async put(name: string, value: string): Promise<string> {
    const client = this.client(this.vaultUrl);
    const set = () => client.setSecret(name, value, { contentType: 'Braze REST API key' });
    let secret;
    try {
      secret = await set();
    } catch (e) {
      // The connection's earlier key was deleted (say, when it moved to a Key Vault reference) and
      // its name is held for the retention period: recover it, then write the new value over it.
      if (!isDeletedButRecoverable(e)) throw e;
      await (await client.beginRecoverDeletedSecret(name)).pollUntilDone();
      secret = await set();
    }
    return secret.properties.id ?? `${this.vaultUrl}/secrets/${name}`;
  }

  async get(reference: string): Promise<string> {
    const { vaultUrl, name, version } = parseSecretUri(reference);
    const secret = await this.client(vaultUrl).getSecret(name, { version });
    if (!secret.value) throw new Error('the Key Vault secret is empty');
    return secret.value;
  }

  async remove(reference: string): Promise<void> {
    const { vaultUrl, name } = parseSecretUri(reference);
    if (vaultUrl !== this.vaultUrl.replace(/\/$/, '')) return; // a customer's secret: never ours to delete
    await this.client(vaultUrl).beginDeleteSecret(name);
  }

  async check(): Promise<string> {
    // Listing one page proves both reachability and the identity's access.
    await this.client(this.vaultUrl).listPropertiesOfSecrets().byPage({ maxPageSize: 1 }).next();
    return `Key Vault ${new URL(this.vaultUrl).host}`;
  }
}

/** Last four characters, for the UI to tell keys apart; nothing more is ever shown. */
export const keyHint = (key: string) => (key.length >= 12 ? `…${key.slice(-4)}` : '…');
