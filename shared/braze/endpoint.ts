// Which Braze REST endpoints a connection may point at: Braze's own REST hosts over HTTPS, by pattern
// (rest.<cluster>-<nn>.braze.com|eu), so new clusters work without a list going stale. Anything else
// — IPs, private names, other domains, paths, credentials — is refused, so the app can't be turned
// into a proxy that sends API keys elsewhere.

export const BRAZE_REST_HOST = /^rest\.[a-z]{2,6}-\d{2}\.braze\.(com|eu)$/;

export interface BrazeEndpoint {
  /** What users see and send: `rest.iad-03.braze.com` (or `http://127.0.0.1:4010` for local extras). */
  restEndpoint: string;
  /** Base URL requests go to. */
  baseUrl: string;
}

export class EndpointError extends Error {}

/**
 * Validates a REST endpoint given as a host (`rest.iad-03.braze.com`) or an origin URL
 * (`https://rest.iad-03.braze.com/`). `extraHosts` (local runs only) allows `host:port` or `host:*` over http.
 */
export function parseBrazeEndpoint(input: string, extraHosts: readonly string[] = []): BrazeEndpoint {
  const raw = input.trim();
  if (raw.length === 0 || raw.length > 253) throw new EndpointError('must be a Braze REST host such as rest.iad-03.braze.com');
  if (/[\s\\@?#%]/.test(raw))
    throw new EndpointError('must be a bare host or https origin: no credentials, query, fragment or escapes');
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `https://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new EndpointError('is not a valid host or URL');
  }
  if (url.pathname !== '/' || url.search || url.hash || url.username || url.password) {
    throw new EndpointError('must not contain a path, query or credentials');
  }
  // The raw text must not smuggle a path that URL parsing normalised away (e.g. `host/../x`).
  if (/^[a-z]+:\/\/[^/]+\/./i.test(withScheme)) throw new EndpointError('must not contain a path');

  const host = url.hostname.toLowerCase();
  if (url.protocol === 'https:' && BRAZE_REST_HOST.test(host) && (url.port === '' || url.port === '443')) {
    return { restEndpoint: host, baseUrl: `https://${host}` };
  }
  const hostPort = `${host}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
  const allowedExtra = extraHosts.some((e) => {
    const [h, p] = e.toLowerCase().split(':');
    return h === host && (p === '*' || `${h}:${p}` === hostPort);
  });
  if (allowedExtra && (url.protocol === 'http:' || url.protocol === 'https:')) {
    return { restEndpoint: url.origin, baseUrl: url.origin };
  }
  if (BRAZE_REST_HOST.test(host)) throw new EndpointError('must use HTTPS on the default port');
  throw new EndpointError('is not a Braze REST endpoint (expected rest.<instance>.braze.com or rest.<instance>.braze.eu)');
}
