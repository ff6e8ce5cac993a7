import { describe, expect, it } from 'vitest';
import { authenticate, encodePrincipal, type AuthPolicy } from '../../shared/auth';

const headers = (h: Record<string, string>) => ({ get: (n: string) => h[n.toLowerCase()] ?? null });
const easyAuth: AuthPolicy = { easyAuthEnabled: true, trustPrincipalHeaderLocally: false, anonymousAdmin: false };
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64');

describe('Easy Auth principal', () => {
  it('reads app roles from `roles` claims and picks the strongest', () => {
    const p = b64({
      claims: [
        { typ: 'roles', val: 'Viewer' },
        { typ: 'roles', val: 'Contributor' },
        { typ: 'name', val: 'ann' },
      ],
    });
    expect(authenticate(headers({ 'x-ms-client-principal': p }), easyAuth)).toEqual({ role: 'Contributor', name: 'ann' });
  });

  it("reads app roles from the principal's role_typ claim type", () => {
    const p = b64({ role_typ: 'urn:custom:role', claims: [{ typ: 'urn:custom:role', val: 'Admin' }] });
    expect(authenticate(headers({ 'x-ms-client-principal': p }), easyAuth).role).toBe('Admin');
  });

  it('round-trips the helper encoding', () => {
    expect(authenticate(headers({ 'x-ms-client-principal': encodePrincipal('Viewer', 'v@x') }), easyAuth)).toEqual({
      role: 'Viewer',
      name: 'v@x',
    });
  });

  it('401 without a principal, 403 without a known role', () => {
    expect(() => authenticate(headers({}), easyAuth)).toThrow(/Sign-in required/);
    const p = b64({ claims: [{ typ: 'roles', val: 'Reader' }] });
    expect(() => authenticate(headers({ 'x-ms-client-principal': p }), easyAuth)).toThrow(/no role/);
  });

  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])('a role claim named %s is no role (403)', (role) => {
    const p = b64({ claims: [{ typ: 'roles', val: role }] });
    expect(() => authenticate(headers({ 'x-ms-client-principal': p }), easyAuth)).toThrow(/no role/);
  });

  it("keeps the principal's Entra object id and tenant, not only a display name", () => {
    const p = encodePrincipal('Admin', 'Ann', {
      objectId: '6f1c1f2a-0000-4000-8000-000000000001',
      tenantId: '72f988bf-0000-4000-8000-000000000002',
    });
    expect(authenticate(headers({ 'x-ms-client-principal': p }), easyAuth)).toEqual({
      role: 'Admin',
      name: 'Ann',
      objectId: '6f1c1f2a-0000-4000-8000-000000000001',
      tenantId: '72f988bf-0000-4000-8000-000000000002',
    });
    // Easy Auth also puts the object id in its own header.
    const bare = b64({ claims: [{ typ: 'roles', val: 'Viewer' }] });
    expect(
      authenticate(headers({ 'x-ms-client-principal': bare, 'x-ms-client-principal-id': 'oid-from-header' }), easyAuth).objectId,
    ).toBe('oid-from-header');
  });

  it('refuses a principal header when Easy Auth is off (anyone could forge it)', () => {
    const off: AuthPolicy = { easyAuthEnabled: false, trustPrincipalHeaderLocally: false, anonymousAdmin: true };
    expect(() => authenticate(headers({ 'x-ms-client-principal': encodePrincipal('Admin') }), off)).toThrow(/not trusted/);
  });

  it('local anonymous admin applies only to calls without a principal', () => {
    const local: AuthPolicy = { easyAuthEnabled: false, trustPrincipalHeaderLocally: true, anonymousAdmin: true };
    expect(authenticate(headers({}), local).role).toBe('Admin');
    expect(authenticate(headers({ 'x-ms-client-principal': encodePrincipal('Viewer') }), local).role).toBe('Viewer');
  });
});
