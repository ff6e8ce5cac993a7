// Reading users back from Braze: POST /users/export/segment (the whole Braze segment, delivered as
// files later) as Braze documents it (../shared/reference/braze-users-track.md, "Reading an export's
// members back"). One request, no retries here: a verification run that cannot ask ends with the reason.
import { Transport } from './transport';

export interface SegmentExportRequest {
  segment_id: string;
  fields_to_export: string[];
  output_format: 'zip' | 'gzip';
}

/** Braze's answer: the files' prefix, and a URL to poll unless the workspace has cloud storage (then none). */
export interface SegmentExportAnswer {
  objectPrefix: string;
  url: string | null;
}

/** Braze refused the request; `retryable` when asking again later may work (429, 5xx, the network). */
export class BrazeExportRefused extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/** What Braze's status means for a person (never the key). */
function refusal(status: number, what: string, permission: string, message: string): BrazeExportRefused {
  if (status === 401) return new BrazeExportRefused(`Braze rejected the connection's key (401) for ${what}`, false);
  if (status === 403)
    return new BrazeExportRefused(
      `The connection's Braze key lacks the ${permission} permission (403): add it to the key in Braze (Settings > APIs and Identifiers > API Keys)`,
      false,
    );
  if (status === 404) return new BrazeExportRefused(`Braze answered 404 for ${what}: ${message || 'not found'}`, false);
  if (status === 429) return new BrazeExportRefused(`Braze refused ${what} for now (429): ${message || 'rate limited'}`, true);
  return new BrazeExportRefused(`Braze answered HTTP ${status} for ${what}: ${message || 'no message'}`, status >= 500);
}

const messageOf = (text: string) => {
  try {
    const m = (JSON.parse(text) as { message?: unknown }).message;
    return typeof m === 'string' ? m.slice(0, 300) : '';
  } catch {
    return '';
  }
};

/** One POST of a JSON body to a Braze export endpoint: its answer, or BrazeExportRefused (retryable) when Braze cannot be reached. */
async function postExport(baseUrl: string, path: string, apiKey: string, body: unknown, what: string, timeoutMs: number) {
  const transport = new Transport(`${baseUrl.replace(/\/$/, '')}${path}`, 1);
  try {
    return await transport
      .post(
        Buffer.from(JSON.stringify(body)),
        { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
        timeoutMs,
      )
      .catch((e: Error & { code?: string }) => {
        throw new BrazeExportRefused(`Braze could not be reached for ${what} (${e.code ?? e.message})`, true);
      });
  } finally {
    transport.close();
  }
}

/** POST /users/export/segment: the key needs users.export.segment. */
export async function requestSegmentExport(
  baseUrl: string,
  apiKey: string,
  body: SegmentExportRequest,
  timeoutMs = 30_000,
): Promise<SegmentExportAnswer> {
  const what = `the export of Braze segment ${body.segment_id}`;
  const res = await postExport(baseUrl, '/users/export/segment', apiKey, body, what, timeoutMs);
  if (res.status < 200 || res.status >= 300) throw refusal(res.status, what, 'users.export.segment', messageOf(res.text));
  const answer = JSON.parse(res.text) as { message?: string; object_prefix?: unknown; url?: unknown };
  if (answer.message !== 'success' || typeof answer.object_prefix !== 'string' || !answer.object_prefix)
    throw new BrazeExportRefused(`Braze's answer to ${what} had no object_prefix: ${messageOf(res.text)}`, false);
  return { objectPrefix: answer.object_prefix, url: typeof answer.url === 'string' && answer.url ? answer.url : null };
}

export interface IdsExportRequest {
  external_ids?: string[];
  user_aliases?: { alias_name: string; alias_label: string }[];
  fields_to_export: string[];
}

/** POST /users/export/ids (≤ 50 identifiers; the key needs users.export.ids): the users, or how long Braze asks to wait (429). */
export async function exportUsersByIds(
  baseUrl: string,
  apiKey: string,
  body: IdsExportRequest,
  timeoutMs = 30_000,
): Promise<{ users: Record<string, unknown>[] } | { retryAfterMs: number }> {
  const what = 'reading users back by id';
  const res = await postExport(baseUrl, '/users/export/ids', apiKey, body, what, timeoutMs);
  if (res.status === 429) {
    const after = Number(res.header('x-ratelimit-retry-after') ?? '1');
    return { retryAfterMs: Math.max(0.1, Number.isFinite(after) ? after : 1) * 1000 };
  }
  if (res.status < 200 || res.status >= 300) throw refusal(res.status, what, 'users.export.ids', messageOf(res.text));
  const answer = JSON.parse(res.text) as { users?: unknown };
  return { users: Array.isArray(answer.users) ? (answer.users as Record<string, unknown>[]) : [] };
}
