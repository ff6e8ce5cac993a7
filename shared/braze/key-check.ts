// Is this REST API key good for users.track? Asked without changing any profile or spending a data
// point: POST /users/track with nothing in it. Braze checks the key and its permission before the
// body: 401 = unknown or revoked key, 403 = the key lacks users.track, and a valid key gets 400
// ("Valid data must be provided…") for the empty request. The sandbox answers the same way.
import { Transport } from './transport';

export type KeyCheckResult = 'valid' | 'invalid' | 'missing_permission' | 'unverified';

export interface KeyCheck {
  result: KeyCheckResult;
  /** What Braze said, for a person (never the key). */
  detail: string;
  checkedAt: string;
  /**
   * The permissions verification uses (true / false; null when Braze's answer did not tell): asked
   * with empty requests, refused before anything is exported (403 without the permission, 400 with it).
   */
  exportPermissions?: { 'users.export.segment': boolean | null; 'users.export.ids': boolean | null };
}

/** Whether the key has the permission of `path`: an empty body is refused 403 without it, 400 (or 2xx) with it. */
async function probe(baseUrl: string, apiKey: string, path: string, timeoutMs: number): Promise<boolean | null> {
  const transport = new Transport(`${baseUrl.replace(/\/$/, '')}${path}`, 1);
  try {
    const res = await transport.post(
      Buffer.from('{}'),
      { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
      timeoutMs,
    );
    return res.status === 403 ? false : res.status === 400 || (res.status >= 200 && res.status < 300) ? true : null;
  } catch {
    return null;
  } finally {
    transport.close();
  }
}

/** The export permissions of a key Braze accepted for users.track (see KeyCheck.exportPermissions). */
export async function checkExportPermissions(
  baseUrl: string,
  apiKey: string,
  timeoutMs = 10_000,
): Promise<NonNullable<KeyCheck['exportPermissions']>> {
  const [segment, ids] = await Promise.all([
    probe(baseUrl, apiKey, '/users/export/segment', timeoutMs),
    probe(baseUrl, apiKey, '/users/export/ids', timeoutMs),
  ]);
  return { 'users.export.segment': segment, 'users.export.ids': ids };
}

const EMPTY_REQUEST = Buffer.from('{"attributes":[]}');

export async function checkBrazeKey(baseUrl: string, apiKey: string, timeoutMs = 10_000): Promise<KeyCheck> {
  const url = `${baseUrl.replace(/\/$/, '')}/users/track`;
  const transport = new Transport(url, 1);
  const checkedAt = new Date().toISOString();
  const answer = (result: KeyCheckResult, detail: string): KeyCheck => ({ result, detail, checkedAt });
  try {
    const res = await transport.post(
      EMPTY_REQUEST,
      { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
      timeoutMs,
    );
    if (res.status === 401)
      return answer('invalid', 'Braze rejected the key (401): it is unknown in this workspace or was revoked');
    if (res.status === 403)
      return answer(
        'missing_permission',
        'Braze refused the key (403): it lacks the users.track permission (Braze: Settings > APIs and Identifiers > API Keys)',
      );
    if (res.status === 400 || (res.status >= 200 && res.status < 300)) {
      const exportPermissions = await checkExportPermissions(baseUrl, apiKey, timeoutMs);
      const lacking = Object.entries(exportPermissions)
        .filter(([, has]) => has === false)
        .map(([p]) => p);
      const note = lacking.length ? `; it lacks ${lacking.join(' and ')} (verification needs users.export.segment)` : '';
      return { ...answer('valid', `Braze accepted the key for users.track (nothing was written)${note}`), exportPermissions };
    }
    if (res.status === 404)
      return answer('unverified', `Braze answered 404 for ${new URL(url).host}/users/track: check the REST endpoint`);
    if (res.status === 429)
      return answer('unverified', 'Braze is rate limiting this workspace right now (429); the key was not checked');
    return answer('unverified', `Braze answered HTTP ${res.status}; the key was not checked`);
  } catch (e) {
    const err = e as { code?: string; message?: string };
    return answer(
      'unverified',
      `Braze could not be reached (${err.code ?? err.message ?? 'network error'}); the key was not checked`,
    );
  } finally {
    transport.close();
  }
}
