// The app's JSON API, from the page: same origin (Easy Auth's cookie signs the call in), JSON
// bodies declared as such (the API refuses other writes), errors with their field issues.
export interface FieldIssue {
  path: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly issues: FieldIssue[] = [],
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export async function api<T = any>(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<T> {
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: {
      Accept: 'application/json',
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: any;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!res.ok) {
    const error = parsed?.error ?? {};
    const { code: _code, message, issues, ...details } = error;
    throw new ApiError(res.status, message ?? `${res.status} ${res.statusText}`, Array.isArray(issues) ? issues : [], details);
  }
  return parsed as T;
}

export interface Me {
  name: string;
  role: 'Admin' | 'Contributor' | 'Viewer';
  canWrite: boolean;
  isAdmin: boolean;
}
