// infra/register-app.sh and infra/deploy.sh, run against a fake `az` that keeps the directory's state
// in a folder: a second run finds what the first made, the client ID shows as soon as it exists, and
// a service principal that is "not there yet" (directory replication) is retried, not fatal.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const INFRA = path.join(__dirname, '..', '..', 'infra');

/** A stand-in for the Azure CLI's `ad` and `rest` commands, enough for register-app.sh. */
const FAKE_AZ = String.raw`#!/usr/bin/env bash
s="$FAKE_AZ_STATE"
echo "$*" >> "$s/calls"
q=""; prev=""
for a in "$@"; do [ "$prev" = "--query" ] && q="$a"; prev="$a"; done
case "$1 $2 $3" in
  "ad app list") cat "$s/apps" 2>/dev/null; exit 0 ;;
  "ad app create") echo 11111111-2222-3333-4444-555555555555 >> "$s/apps"; echo 11111111-2222-3333-4444-555555555555; exit 0 ;;
  "ad app update") exit 0 ;;
  "ad app show")
    case "$q" in
      id) echo aaaaaaaa-0000-0000-0000-000000000001 ;;
      api.oauth2PermissionScopes*) cat "$s/scope" 2>/dev/null || echo None ;;
      appRoles*) echo bbbbbbbb-0000-0000-0000-000000000002 ;;
    esac
    exit 0 ;;
  "ad sp show") [ -f "$s/sp" ] && cat "$s/sp" && exit 0; echo "not found" >&2; exit 3 ;;
  "ad sp create")
    n=$(cat "$s/sp-tries" 2>/dev/null || echo 0); echo $((n + 1)) > "$s/sp-tries"
    if [ "$n" -lt "${'$'}{FAKE_SP_FAILURES:-0}" ]; then echo "application not found (replication)" >&2; exit 1; fi
    echo cccccccc-0000-0000-0000-000000000003 | tee "$s/sp"; exit 0 ;;
  "ad signed-in-user show") echo dddddddd-0000-0000-0000-000000000004; exit 0 ;;
esac
if [ "$1" = "rest" ]; then
  case "$*" in
    *"--method PATCH"*) body="${'$'}{*##*--body }"; id=$(echo "$body" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | head -1); echo "$id" > "$s/scope"; exit 0 ;;
    *"--method GET"*) [ -f "$s/admin" ] && echo 1 || echo 0; exit 0 ;;
    *"--method POST"*) touch "$s/admin"; exit 0 ;;
  esac
fi
echo "fake az: unexpected: $*" >&2; exit 9
`;

function fakeAz(): { env: NodeJS.ProcessEnv; state: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fake-az-'));
  const bin = path.join(dir, 'bin');
  execFileSync('mkdir', ['-p', bin, path.join(dir, 'state')]);
  writeFileSync(path.join(bin, 'az'), FAKE_AZ);
  chmodSync(path.join(bin, 'az'), 0o755);
  const state = path.join(dir, 'state');
  return {
    state,
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, FAKE_AZ_STATE: state, REGISTER_RETRY_SECONDS: '0' },
  };
}

const register = (env: NodeJS.ProcessEnv, ...args: string[]) =>
  spawnSync('bash', [path.join(INFRA, 'register-app.sh'), ...args], { env, encoding: 'utf8' });

describe('infra/register-app.sh', () => {
  it('makes the registration once, names its client ID at once, retries the service principal, and changes nothing the second time', () => {
    const { env, state } = fakeAz();
    const first = register({ ...env, FAKE_SP_FAILURES: '2' }, 'Test app');
    expect(first.status, first.stderr).toBe(0);
    const id = '11111111-2222-3333-4444-555555555555';
    expect(first.stdout.trim().split('\n').at(-1)).toBe(id);
    // The ID is on stderr before the service-principal step, so a failure there still leaves it in view.
    expect(first.stderr.indexOf(`Application (client) ID: ${id}`)).toBeLessThan(first.stderr.indexOf('replication'));
    expect(readFileSync(path.join(state, 'sp-tries'), 'utf8').trim()).toBe('3');
    expect(existsSync(path.join(state, 'admin'))).toBe(true);
    const scope = readFileSync(path.join(state, 'scope'), 'utf8').trim();

    const second = register(env, 'Test app');
    expect(second.status, second.stderr).toBe(0);
    expect(second.stdout.trim()).toBe(id);
    expect(second.stderr).toContain('found the registration');
    const calls = readFileSync(path.join(state, 'calls'), 'utf8');
    expect(calls.match(/^ad app create/gm)).toHaveLength(1);
    expect(calls.match(/^ad sp create/gm)).toHaveLength(3); // the two refused, the one that worked; none the second time
    expect(calls.match(/--method POST/g)).toHaveLength(1); // Admin assigned once
    expect(readFileSync(path.join(state, 'scope'), 'utf8').trim()).toBe(scope); // the same scope id kept
    expect(calls).not.toContain('--web-redirect-uris'); // no redirect URI until it is asked for
  });

  it('sets the redirect URI when given one, and refuses a name two registrations share', () => {
    const { env, state } = fakeAz();
    const run = register(env, '--redirect-uri', 'https://app.azurewebsites.net/.auth/login/aad/callback', 'Test app');
    expect(run.status, run.stderr).toBe(0);
    expect(readFileSync(path.join(state, 'calls'), 'utf8')).toContain(
      'ad app update --id 11111111-2222-3333-4444-555555555555 --web-redirect-uris https://app.azurewebsites.net/.auth/login/aad/callback',
    );
    writeFileSync(path.join(state, 'apps'), 'one\ntwo\n');
    const twice = register(env, 'Test app');
    expect(twice.status).toBe(1);
    expect(twice.stderr).toMatch(/more than one app registration is named "Test app"/);
  });
});

describe('infra/deploy.sh', () => {
  const script = readFileSync(path.join(INFRA, 'deploy.sh'), 'utf8');

  it('parses, and goes package → group → registration → template with authClientId → redirect URI → code → smoke check', () => {
    execFileSync('bash', ['-n', path.join(INFRA, 'deploy.sh')]);
    const order = [
      'npm run package',
      'az group create',
      '"$root/infra/register-app.sh" "$display"',
      'authClientId="$client_id"',
      '--redirect-uri "$(out redirectUri)"',
      'config-zip',
      'dist/scripts/smoke.js',
    ].map((s) => script.indexOf(s));
    expect(order.every((i) => i > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it('retries the zip deploy while roles propagate, and trusts the health endpoint over a config-zip error', () => {
    expect(script).toMatch(/for attempt in 1 2 3 4 5 6; do\n\s+if az functionapp deployment source config-zip/);
    expect(script).toContain('"$code" = "200"');
    expect(script).toContain('https://shell.azure.com');
  });

  it('refuses to start without its required arguments, before calling anything', () => {
    const { env, state } = fakeAz();
    const run = spawnSync('bash', [path.join(INFRA, 'deploy.sh'), '-g', 'rg'], { env, encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/^usage: infra\/deploy\.sh/);
    expect(existsSync(path.join(state, 'calls'))).toBe(false);
  });
});
