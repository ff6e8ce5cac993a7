// The Braze workspace's segments (GET /segments/list), for the export form: pick the segment API
// identifier instead of typing it, and see its name. Only where the connection's key may call it
// (the segments.list permission); otherwise the answer says why and the field stays free text.
export type BrazeSegments =
  { available: true; segments: { id: string; name: string }[]; truncated: boolean } | { available: false; reason: string };

/** Pages of 100 at most this many: a workspace with more is cut (and says so). */
const MAX_PAGES = 10;

export async function listBrazeSegments(baseUrl: string, apiKey: string, timeoutMs = 10_000): Promise<BrazeSegments> {
  const segments: { id: string; name: string }[] = [];
  for (let page = 0; page < MAX_PAGES; page++) {
    let res: Response;
    try {
      res = await fetch(`${baseUrl.replace(/\/$/, '')}/segments/list?page=${page}&sort_direction=desc`, {
        headers: { Authorization: `Bearer ${apiKey}` },
        // A redirect would carry the key to wherever it points: refused, as the users.track client does.
        redirect: 'error',
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      return {
        available: false,
        reason: `Braze could not be reached (${(e as Error).message}); type the segment API identifier`,
      };
    }
    if (res.status === 401) return { available: false, reason: 'Braze rejected the connection key (401)' };
    if (res.status === 403)
      return {
        available: false,
        reason:
          'The connection key lacks the segments.list permission: type the segment API identifier (Braze: Segments > the segment > API identifier), or add the permission to the key',
      };
    if (!res.ok) return { available: false, reason: `Braze answered HTTP ${res.status} for /segments/list` };
    const body = (await res.json().catch(() => null)) as { segments?: unknown } | null;
    const pageSegments = Array.isArray(body?.segments) ? (body!.segments as { id?: unknown; name?: unknown }[]) : [];
    for (const s of pageSegments)
      if (typeof s.id === 'string' && typeof s.name === 'string') segments.push({ id: s.id, name: s.name });
    if (pageSegments.length < 100) return { available: true, segments, truncated: false };
  }
  return { available: true, segments, truncated: true };
}
