#!/usr/bin/env bash
# The Entra app registration the Function App signs people in with: the app roles
# (infra/app-roles.json), ID tokens for browser sign-in, the API scope user_impersonation with v2
# access tokens (what the template's Easy Auth issuer expects), the Azure CLI pre-authorized for that
# scope (so `az account get-access-token` works in scripts), a service principal, and you as its
# first Admin.
#
#   infra/register-app.sh [--redirect-uri <https://<app>/.auth/login/aad/callback>] [display name]
#
# Safe to run again: it finds the registration by its display name and only adds what is missing.
# The client ID is printed (on stderr) as soon as the registration exists, and alone on the last line
# of stdout at the end. The usual order (infra/deploy.sh follows it): register without a redirect URI
# → deploy with authClientId → run this again with --redirect-uri set to the template's redirectUri
# output.
#
# Needs: az, logged in as someone who may register applications (the Entra role Application
# Developer, or Application Administrator / Cloud Application Administrator, or "Users can register
# applications" left on), and node (for a UUID). In tenants where users may not consent to apps, an
# administrator grants consent once: Enterprise applications > <display name> > Permissions > Grant
# admin consent (or: az ad app permission admin-consent --id <client id>).
set -euo pipefail

redirect_uri=""
if [ "${1:-}" = "--redirect-uri" ]; then
  [ $# -ge 2 ] || { echo "usage: $0 [--redirect-uri <url>] [display name]" >&2; exit 2; }
  redirect_uri="$2"
  shift 2
fi
name="${1:-Customer Insights to Braze export}"
here="$(cd "$(dirname "$0")" && pwd)"
azure_cli_app_id=04b07795-8ddb-461a-bbee-02f9e1bf7b46
say() { echo "register-app: $*" >&2; }

# Entra replicates new objects for a while: a call that names one just made may answer 404/400.
retry() {
  local attempt
  for attempt in 1 2 3 4 5 6 7 8; do
    if "$@"; then return 0; fi
    [ "$attempt" -lt 8 ] || break
    say "not there yet (directory replication); trying again in $((attempt * ${REGISTER_RETRY_SECONDS:-5})) s"
    sleep $((attempt * ${REGISTER_RETRY_SECONDS:-5}))
  done
  return 1
}

# 1. The registration: found by name, or made (without a redirect URI: the app's host name may not exist yet).
ids=$(az ad app list --display-name "$name" --query "[].appId" -o tsv)
count=$(printf '%s' "$ids" | grep -c . || true)
if [ "$count" -gt 1 ]; then
  say "more than one app registration is named \"$name\": $(echo "$ids" | tr '\n' ' ')- pass a display name of its own, or delete the extras"
  exit 1
elif [ "$count" -eq 1 ]; then
  app_id="$ids"
  say "found the registration \"$name\""
else
  app_id=$(az ad app create --display-name "$name" --sign-in-audience AzureADMyOrg --enable-id-token-issuance true \
    --app-roles "@$here/app-roles.json" --query appId -o tsv)
  say "created the registration \"$name\""
fi
say "Application (client) ID: $app_id   (authClientId)"

object_id=$(retry az ad app show --id "$app_id" --query id -o tsv)
retry az ad app update --id "$app_id" --identifier-uris "api://$app_id"

# 2. The API scope (kept when it exists: its id is what the pre-authorization names), then the Azure CLI pre-authorized for it.
scope_id=$(az ad app show --id "$app_id" --query "api.oauth2PermissionScopes[?value=='user_impersonation'].id | [0]" -o tsv)
[ -n "$scope_id" ] && [ "$scope_id" != "None" ] || scope_id=$(node -e 'console.log(require("node:crypto").randomUUID())')
scope="{\"id\":\"$scope_id\",\"value\":\"user_impersonation\",\"type\":\"User\",\"isEnabled\":true,\"adminConsentDisplayName\":\"Use the Customer Insights to Braze export API\",\"adminConsentDescription\":\"Lets the app call the export API as the signed-in user, with their app role.\",\"userConsentDisplayName\":\"Use the Customer Insights to Braze export API\",\"userConsentDescription\":\"Lets the app call the export API as you, with your app role.\"}"
graph="https://graph.microsoft.com/v1.0/applications/$object_id"
# The scope must exist before anything is pre-authorized for it: two requests.
az rest --method PATCH --uri "$graph" --headers Content-Type=application/json \
  --body "{\"api\":{\"requestedAccessTokenVersion\":2,\"oauth2PermissionScopes\":[$scope]}}"
az rest --method PATCH --uri "$graph" --headers Content-Type=application/json \
  --body "{\"api\":{\"requestedAccessTokenVersion\":2,\"oauth2PermissionScopes\":[$scope],\"preAuthorizedApplications\":[{\"appId\":\"$azure_cli_app_id\",\"delegatedPermissionIds\":[\"$scope_id\"]}]}}"

# 3. The service principal (Enterprise application): the step replication delays most often.
sp_id=$(az ad sp show --id "$app_id" --query id -o tsv 2>/dev/null || true)
if [ -z "$sp_id" ]; then
  create_sp() { sp_id=$(az ad sp create --id "$app_id" --query id -o tsv); }
  retry create_sp
fi

# 4. You, as the first Admin (once).
me=$(az ad signed-in-user show --query id -o tsv)
admin_role=$(az ad app show --id "$app_id" --query "appRoles[?value=='Admin'].id | [0]" -o tsv)
assigned=$(az rest --method GET --uri "https://graph.microsoft.com/v1.0/servicePrincipals/$sp_id/appRoleAssignedTo" \
  --query "length(value[?principalId=='$me' && appRoleId=='$admin_role'])" -o tsv 2>/dev/null || echo 0)
if [ "$assigned" = "0" ]; then
  assign_admin() {
    az rest --method POST --uri "https://graph.microsoft.com/v1.0/servicePrincipals/$sp_id/appRoleAssignedTo" \
      --headers Content-Type=application/json \
      --body "{\"principalId\":\"$me\",\"resourceId\":\"$sp_id\",\"appRoleId\":\"$admin_role\"}" >/dev/null
  }
  retry assign_admin
  say "you are an Admin of the app"
fi

# 5. The browser's redirect URI, once the app's host name is known (the template's redirectUri output).
if [ -n "$redirect_uri" ]; then
  az ad app update --id "$app_id" --web-redirect-uris "$redirect_uri" --enable-id-token-issuance true
  say "redirect URI set: $redirect_uri"
fi

echo "$app_id"
