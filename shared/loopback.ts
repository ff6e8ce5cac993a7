// The rule for local-only trust settings (anonymous Admin, trusted principal headers): they answer
// only requests addressed to a loopback host. Core Tools does not check the Host header and may
// listen on every interface, so the shared HTTP edge enforces this itself; a web page elsewhere
// cannot reach the API by DNS rebinding either (its Host names the page's domain).
import type { HttpRequest } from '@azure/functions';
import { AppError } from './errors';

/** Whether a Host header (name[:port]) names a loopback host. */
export function isLoopbackHost(host: string | undefined | null): boolean {
  if (!host) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
  return ['localhost', '127.0.0.1', '[::1]'].includes(name.toLowerCase()) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/** Whether a request is addressed to a loopback host: by its Host header, else by its URL. */
export function isLoopbackRequest(headers: { get(name: string): string | null }, url?: string): boolean {
  let host = headers.get('host');
  if (!host && url) {
    try {
      host = new URL(url).host;
    } catch {
      host = null;
    }
  }
  return isLoopbackHost(host);
}

/** 421 unless the request is addressed to a loopback host. */
export function requireLoopback(request: HttpRequest): void {
  if (!isLoopbackRequest(request.headers, request.url))
    throw new AppError(
      421,
      'misdirected_request',
      'Local-only settings are on (LOCAL_ANONYMOUS_ADMIN / LOCAL_TRUST_PRINCIPAL_HEADER): the API answers only requests addressed to localhost or 127.0.0.1',
    );
}
