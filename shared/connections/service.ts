// Connection use cases: who may do what, validation beyond the schema, and the key's safe handling.
import { randomUUID } from 'node:crypto';
import { canWrite, principalOf, requireRole, type Caller, type Principal } from '../auth';
import { EndpointError, parseBrazeEndpoint } from '../braze/endpoint';
import { checkBrazeKey, type KeyCheck } from '../braze/key-check';
import { listBrazeSegments, type BrazeSegments } from '../braze/segments';
import { conflict, fieldError, firstLine, forbidden, notFound } from '../errors';
import { keyHint, type SecretStore } from '../secrets';
import type { ConnectionRecord, ConnectionsRepo, Stored } from '../store/connections';
import type { ExportsRepo } from '../store/exports';
import { ConnectionCreateSchema, ConnectionPatchSchema } from './schema';
import { limitsView, type ConnectionLimitsView } from './limits-view';
import { parseInput } from '../validation';

export interface ConnectionView extends Partial<ConnectionLimitsView> {
  id: string;
  displayName: string;
  type: 'Braze';
  restEndpoint?: string;
  allowContributors?: boolean;
  requestBudget?: number;
  apiKey?: { source: string; hint: string | null; secretUri?: string };
  consent?: { agreedAt: string; agreedBy: string; agreedByPrincipal?: Principal };
  createdAt?: string;
  createdBy?: string;
  createdByPrincipal?: Principal;
  updatedAt?: string;
  updatedBy?: string;
  updatedByPrincipal?: Principal;
}

export class ConnectionsService {
  constructor(
    private readonly repo: ConnectionsRepo,
    private readonly exports: ExportsRepo,
    private readonly secrets: SecretStore,
    private readonly extraBrazeHosts: readonly string[],
    /** Check keys against Braze when they are saved (off only for local tests with made-up keys). */
    private readonly checkKeys = true,
  ) {}

  /**
   * Checks the key a connection is about to be saved with. A key Braze refuses (unknown, revoked,
   * without users.track) is a 400 on the field that gave it, and nothing is saved; a key that could
   * not be checked (Braze unreachable, rate limited) is saved, with the check's outcome on the record.
   */
  private async checkedKey(baseUrl: string, key: { apiKey?: string; apiKeySecretUri?: string }): Promise<KeyCheck | undefined> {
    if (!this.checkKeys) return undefined;
    const field = key.apiKey ? 'apiKey' : 'apiKeySecretUri';
    const check = key.apiKey ? await checkBrazeKey(baseUrl, key.apiKey) : await this.checkKeyAt(baseUrl, key.apiKeySecretUri!);
    if (check.result === 'invalid' || check.result === 'missing_permission') throw fieldError(field, check.detail);
    return check;
  }

  /** The key a secret reference holds, checked against Braze; unverified when the secret cannot be read. */
  private async checkKeyAt(baseUrl: string, reference: string): Promise<KeyCheck> {
    let key: string;
    try {
      key = await this.secrets.get(reference);
    } catch (e) {
      return {
        result: 'unverified',
        detail: `The secret could not be read (${firstLine(e, 200)}); grant the app's identity Key Vault Secrets User on it`,
        checkedAt: new Date().toISOString(),
      };
    }
    return checkBrazeKey(baseUrl, key);
  }

  /** GET /api/connections/{id}/segments: the workspace's Braze segments, where the key may list them (Admin; Contributor on a shared connection). */
  async brazeSegments(caller: Caller, id: string): Promise<BrazeSegments> {
    requireRole(caller, 'Admin', 'Contributor');
    const record = (await this.get(caller, id)).value;
    let key: string;
    try {
      key = await this.secrets.get(record.apiKey.reference);
    } catch {
      return { available: false, reason: "The connection's key could not be read" };
    }
    return listBrazeSegments(record.baseUrl, key);
  }

  /** POST /api/connections/{id}/test: the stored key against Braze, changing no profile; kept on the connection. */
  async test(caller: Caller, id: string): Promise<KeyCheck> {
    requireRole(caller, 'Admin');
    const current = await this.repo.get(id);
    const check = await this.checkKeyAt(current.value.baseUrl, current.value.apiKey.reference);
    // Kept for the console; a concurrent edit wins (its save checked the key itself).
    await this.repo.update(current.value, { ...current.value, keyCheck: check }, current.etag).catch(() => undefined);
    return check;
  }

  /**
   * Admins see everything but the key, with Braze's reported limits and the hourly cap's use;
   * contributors see shared connections as {id, displayName, type}.
   */
  async view(record: ConnectionRecord, caller: Caller): Promise<ConnectionView> {
    if (caller.role !== 'Admin') return { id: record.id, displayName: record.displayName, type: record.type };
    const { apiKey, baseUrl: _baseUrl, ...rest } = record;
    // Best-effort: the limits rows are a report beside the connection; a read that fails (or a
    // malformed row) must not turn a committed create or PATCH, or a GET, into a 500.
    const [observed, usage] = await Promise.all([
      this.repo.limits.observed(record.id).catch(() => null),
      record.hourlyRequestCap ? this.repo.limits.usage(record.id).catch(() => null) : null,
    ]);
    return {
      ...rest,
      ...limitsView(record, observed, usage),
      apiKey: {
        source: apiKey.source,
        hint: apiKey.hint,
        ...(apiKey.source === 'keyVaultReference' ? { secretUri: apiKey.reference } : {}),
      },
    };
  }

  async list(caller: Caller): Promise<ConnectionView[]> {
    requireRole(caller, 'Admin', 'Contributor');
    const all = await this.repo.list();
    return Promise.all(
      all.filter((c) => caller.role === 'Admin' || c.value.allowContributors).map((c) => this.view(c.value, caller)),
    );
  }

  /** Whether the caller can use any connection: an Admin, or a Contributor with one shared. */
  async anyUsableBy(caller: Caller): Promise<boolean> {
    if (caller.role === 'Admin') return true;
    if (caller.role !== 'Contributor') return false;
    return (await this.repo.list()).some((c) => c.value.allowContributors);
  }

  /** A connection as this caller may see it; unshared ones do not exist for contributors. */
  async get(caller: Caller, id: string): Promise<Stored<ConnectionRecord>> {
    requireRole(caller, 'Admin', 'Contributor');
    const stored = await this.repo.get(id);
    if (caller.role !== 'Admin' && !stored.value.allowContributors) throw notFound('Connection');
    return stored;
  }

  /** The connection an export may use: must exist and, for contributors, be shared. */
  async usableBy(caller: Caller, id: string, field = 'connectionId'): Promise<ConnectionRecord> {
    if (!canWrite(caller)) throw fieldError(field, 'cannot be used by a Viewer');
    let stored: Stored<ConnectionRecord>;
    try {
      stored = await this.repo.get(id);
    } catch {
      throw fieldError(field, `names no connection (${id})`);
    }
    if (caller.role === 'Contributor' && !stored.value.allowContributors) {
      throw fieldError(field, 'names a connection that is not shared with contributors');
    }
    return stored.value;
  }

  /** Managing or running an export: Admins always; Contributors only on a shared (or no) connection. */
  async assertMayWorkWith(caller: Caller, connectionId: string | null): Promise<void> {
    requireRole(caller, 'Admin', 'Contributor');
    if (caller.role === 'Admin' || connectionId === null) return;
    try {
      await this.usableBy(caller, connectionId);
    } catch {
      throw forbidden('This export uses a connection that is not shared with contributors');
    }
  }

  private endpoint(input: string) {
    try {
      return parseBrazeEndpoint(input, this.extraBrazeHosts);
    } catch (e) {
      if (e instanceof EndpointError) throw fieldError('restEndpoint', e.message);
      throw e;
    }
  }

  async create(caller: Caller, body: unknown): Promise<Stored<ConnectionRecord>> {
    requireRole(caller, 'Admin');
    const input = parseInput(ConnectionCreateSchema, body);
    const endpoint = this.endpoint(input.restEndpoint);
    const keyCheck = await this.checkedKey(endpoint.baseUrl, input);
    const id = randomUUID();
    const now = new Date().toISOString();
    const apiKey = input.apiKey
      ? {
          source: 'stored' as const,
          reference: await this.secrets.put(`braze-connection-${id}`, input.apiKey),
          hint: keyHint(input.apiKey),
        }
      : { source: 'keyVaultReference' as const, reference: input.apiKeySecretUri!, hint: null };
    const record: ConnectionRecord = {
      id,
      displayName: input.displayName,
      type: 'Braze',
      restEndpoint: endpoint.restEndpoint,
      baseUrl: endpoint.baseUrl,
      allowContributors: input.allowContributors,
      requestBudget: input.requestBudget,
      rateLimitGroup: input.rateLimitGroup,
      hourlyRequestCap: input.hourlyRequestCap,
      exportContainer: input.exportContainer,
      apiKey,
      ...(keyCheck ? { keyCheck } : {}),
      consent: { agreedAt: now, agreedBy: caller.name, agreedByPrincipal: principalOf(caller) },
      createdAt: now,
      createdBy: caller.name,
      createdByPrincipal: principalOf(caller),
      updatedAt: now,
      updatedBy: caller.name,
      updatedByPrincipal: principalOf(caller),
    };
    try {
      return await this.repo.create(record);
    } catch (e) {
      if (apiKey.source === 'stored') await this.secrets.remove(apiKey.reference).catch(() => undefined);
      throw e;
    }
  }

  async update(caller: Caller, id: string, body: unknown, ifMatch: string | null): Promise<Stored<ConnectionRecord>> {
    requireRole(caller, 'Admin');
    const patch = parseInput(ConnectionPatchSchema, body);
    const current = await this.repo.get(id);
    const before = current.value;
    const after: ConnectionRecord = {
      ...before,
      updatedAt: new Date().toISOString(),
      updatedBy: caller.name,
      updatedByPrincipal: principalOf(caller),
    };
    if (patch.displayName !== undefined) after.displayName = patch.displayName;
    if (patch.allowContributors !== undefined) after.allowContributors = patch.allowContributors;
    if (patch.requestBudget !== undefined) after.requestBudget = patch.requestBudget;
    if (patch.rateLimitGroup !== undefined) after.rateLimitGroup = patch.rateLimitGroup;
    if (patch.hourlyRequestCap !== undefined) after.hourlyRequestCap = patch.hourlyRequestCap;
    if (patch.exportContainer !== undefined) after.exportContainer = patch.exportContainer;
    if (patch.restEndpoint !== undefined) Object.assign(after, this.endpoint(patch.restEndpoint));
    if (patch.apiKey || patch.apiKeySecretUri || patch.restEndpoint !== undefined) {
      // A new key, or the old one at a new endpoint: check what the connection will use.
      const key =
        patch.apiKey || patch.apiKeySecretUri
          ? patch
          : before.apiKey.source === 'keyVaultReference'
            ? { apiKeySecretUri: before.apiKey.reference }
            : { apiKey: await this.secrets.get(before.apiKey.reference) };
      const keyCheck = await this.checkedKey(after.baseUrl, key);
      if (keyCheck) after.keyCheck = keyCheck;
    }
    if (patch.apiKey) {
      after.apiKey = {
        source: 'stored',
        reference: await this.secrets.put(`braze-connection-${id}`, patch.apiKey),
        hint: keyHint(patch.apiKey),
      };
    } else if (patch.apiKeySecretUri) {
      after.apiKey = { source: 'keyVaultReference', reference: patch.apiKeySecretUri, hint: null };
    }
    const saved = await this.repo.update(before, after, ifMatch ?? current.etag);
    // Key Vault keeps versions under one name: only a switch to the customer's own secret frees ours.
    if (before.apiKey.source === 'stored' && after.apiKey.source === 'keyVaultReference') {
      await this.secrets.remove(before.apiKey.reference).catch(() => undefined);
    }
    return saved;
  }

  async delete(caller: Caller, id: string, ifMatch: string | null): Promise<void> {
    requireRole(caller, 'Admin');
    const current = await this.repo.get(id);
    const users = await this.exports.list({ connectionId: id });
    if (users.length > 0) {
      const names = users.map((e) => `"${e.value.name}"`).join(', ');
      throw conflict(`Connection is used by ${users.length} export(s): ${names}. Delete or detach them first.`, {
        exports: users.map((e) => ({ id: e.value.id, name: e.value.name })),
      });
    }
    await this.repo.delete(current.value, ifMatch ?? current.etag);
    await this.repo.limits.forget(id).catch(() => undefined);
    if (current.value.apiKey.source === 'stored')
      await this.secrets.remove(current.value.apiKey.reference).catch(() => undefined);
  }
}
