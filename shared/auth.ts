// Caller identity from App Service Authentication (Easy Auth) → the app role that governs access.
import { forbidden, unauthorized } from './errors';

export type Role = 'Admin' | 'Contributor' | 'Viewer';

export interface Caller {
  role: Role;
  name: string;
  /** Entra object id and tenant of the signed-in principal (absent for the local anonymous Admin). */
  objectId?: string;
  tenantId?: string;
}

/** Who did something, as audit fields keep it: a display name can change or repeat, the object id and tenant do not. */
export interface Principal {
  name: string;
  objectId: string | null;
  tenantId: string | null;
}

export const principalOf = (caller: Caller): Principal => ({
  name: caller.name,
  objectId: caller.objectId ?? null,
  tenantId: caller.tenantId ?? null,
});

export interface AuthPolicy {
  /** Easy Auth is on (App Service strips and sets x-ms-client-principal itself). */
  easyAuthEnabled: boolean;
  /** Local runs only: trust the header although Easy Auth is not in front of us. */
  trustPrincipalHeaderLocally: boolean;
  /** Local runs only: a call without a principal acts as Admin. */
  anonymousAdmin: boolean;
}

const ROLE_RANK: Record<Role, number> = { Viewer: 1, Contributor: 2, Admin: 3 };
const ROLE_CLAIM_TYPES = ['roles', 'role', 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role'];
const NAME_CLAIM_TYPES = ['name', 'preferred_username', 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name'];
const OBJECT_ID_CLAIM_TYPES = ['http://schemas.microsoft.com/identity/claims/objectidentifier', 'oid'];
const TENANT_CLAIM_TYPES = ['http://schemas.microsoft.com/identity/claims/tenantid', 'tid'];

interface ClientPrincipal {
  auth_typ?: string;
  name_typ?: string;
  role_typ?: string;
  claims?: { typ?: unknown; val?: unknown }[];
}

function decodePrincipal(header: string): ClientPrincipal {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(header, 'base64').toString('utf8'));
  } catch {
    throw unauthorized('x-ms-client-principal is not base64-encoded JSON');
  }
  if (!parsed || typeof parsed !== 'object' || !Array.isArray((parsed as ClientPrincipal).claims)) {
    throw unauthorized('x-ms-client-principal has no claims');
  }
  return parsed as ClientPrincipal;
}

/** App roles arrive as claims of type `roles` and/or of the principal's `role_typ`: read both. */
export function rolesOf(principal: ClientPrincipal): string[] {
  const roleTypes = new Set([...ROLE_CLAIM_TYPES, principal.role_typ].filter(Boolean));
  return (principal.claims ?? [])
    .filter((c) => typeof c.typ === 'string' && roleTypes.has(c.typ) && typeof c.val === 'string')
    .map((c) => c.val as string);
}

function claimOf(principal: ClientPrincipal, types: string[]): string | undefined {
  const claim = (principal.claims ?? []).find(
    (c) => typeof c.typ === 'string' && types.includes(c.typ) && typeof c.val === 'string',
  );
  return claim?.val as string | undefined;
}

function nameOf(principal: ClientPrincipal, fallback: string): string {
  const nameTypes = new Set([...NAME_CLAIM_TYPES, principal.name_typ].filter(Boolean));
  const claim = (principal.claims ?? []).find((c) => typeof c.typ === 'string' && nameTypes.has(c.typ));
  return typeof claim?.val === 'string' ? claim.val : fallback;
}

/** Resolves the caller from request headers, or throws 401/403. */
export function authenticate(headers: { get(name: string): string | null }, policy: AuthPolicy): Caller {
  const header = headers.get('x-ms-client-principal');
  const trusted = policy.easyAuthEnabled || policy.trustPrincipalHeaderLocally;
  if (!header) {
    if (policy.anonymousAdmin && !policy.easyAuthEnabled) return { role: 'Admin', name: 'local-admin' };
    throw unauthorized('Sign-in required: no x-ms-client-principal (enable App Service Authentication in front of this app)');
  }
  if (!trusted) {
    throw unauthorized(
      'x-ms-client-principal is not trusted because App Service Authentication (Easy Auth) is not enabled; refusing a header anyone could forge',
    );
  }
  const principal = decodePrincipal(header);
  // Own properties only: a role claim named "constructor" or "toString" is no role.
  const roles = rolesOf(principal).filter((r): r is Role => Object.hasOwn(ROLE_RANK, r));
  if (roles.length === 0) throw forbidden('Your account has no role in this app (Admin, Contributor or Viewer)');
  const role = roles.reduce((a, b) => (ROLE_RANK[b] > ROLE_RANK[a] ? b : a));
  return {
    role,
    name: nameOf(principal, headers.get('x-ms-client-principal-name') ?? 'unknown'),
    objectId: claimOf(principal, OBJECT_ID_CLAIM_TYPES) ?? headers.get('x-ms-client-principal-id') ?? undefined,
    tenantId: claimOf(principal, TENANT_CLAIM_TYPES),
  };
}

export function requireRole(caller: Caller, ...allowed: Role[]): void {
  if (!allowed.includes(caller.role)) {
    throw forbidden(`This action needs the ${allowed.join(' or ')} role; you are ${caller.role}`);
  }
}

export const canWrite = (caller: Caller) => caller.role === 'Admin' || caller.role === 'Contributor';

/** Builds a principal header value, as Easy Auth would: for tests, the demo and local tooling. */
export function encodePrincipal(
  role: string,
  name = `${role.toLowerCase()}@example.com`,
  ids: { objectId?: string; tenantId?: string } = {},
): string {
  const principal = {
    auth_typ: 'aad',
    name_typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name',
    role_typ: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role',
    claims: [
      { typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name', val: name },
      { typ: 'roles', val: role },
      ...(ids.objectId ? [{ typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: ids.objectId }] : []),
      ...(ids.tenantId ? [{ typ: 'http://schemas.microsoft.com/identity/claims/tenantid', val: ids.tenantId }] : []),
    ],
  };
  return Buffer.from(JSON.stringify(principal)).toString('base64');
}
