#!/usr/bin/env bash
# The Entra app registration the Function App signs people in with, in one step: the app roles
# (infra/app-roles.json), the browser redirect URI with ID tokens, the API scope user_impersonation
# with v2 access tokens (what the template's Easy Auth issuer expects), the Azure CLI
# pre-authorized for that scope (so `az account get-access-token` works in scripts), a service
# principal, and you as its first Admin. Prints the application (client) ID for authClientId.
#
#   infra/register-app.sh <functionAppName> [display name]
#
# Needs: az (logged in, allowed to register applications), node (for a UUID).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 <functionAppName> [display name]" >&2; exit 2; }
host="$1.azurewebsites.net"
name="${2:-Customer Insights to Braze export}"
here="$(cd "$(dirname "$0")" && pwd)"
azure_cli_app_id=04b07795-8ddb-461a-bbee-02f9e1bf7b46

app_id=$(az ad app create --display-name "$name" --sign-in-audience AzureADMyOrg \
  --web-redirect-uris "https://$host/.auth/login/aad/callback" --enable-id-token-issuance true \
  --app-roles "@$here/app-roles.json" --query appId -o tsv)
object_id=$(az ad app show --id "$app_id" --query id -o tsv)
az ad app update --id "$app_id" --identifier-uris "api://$app_id"

scope_id=$(node -e 'console.log(require("node:crypto").randomUUID())')
scope="{\"id\":\"$scope_id\",\"value\":\"user_impersonation\",\"type\":\"User\",\"isEnabled\":true,\"adminConsentDisplayName\":\"Use the Customer Insights to Braze export API\",\"adminConsentDescription\":\"Lets the app call the export API as the signed-in user, with their app role.\",\"userConsentDisplayName\":\"Use the Customer Insights to Braze export API\",\"userConsentDescription\":\"Lets the app call the export API as you, with your app role.\"}"
graph="https://graph.microsoft.com/v1.0/applications/$object_id"
# The scope must exist before anything is pre-authorized for it: two requests.
az rest --method PATCH --uri "$graph" --headers Content-Type=application/json \
  --body "{\"api\":{\"requestedAccessTokenVersion\":2,\"oauth2PermissionScopes\":[$scope]}}"
az rest --method PATCH --uri "$graph" --headers Content-Type=application/json \
  --body "{\"api\":{\"requestedAccessTokenVersion\":2,\"oauth2PermissionScopes\":[$scope],\"preAuthorizedApplications\":[{\"appId\":\"$azure_cli_app_id\",\"delegatedPermissionIds\":[\"$scope_id\"]}]}}"

sp_id=$(az ad sp create --id "$app_id" --query id -o tsv)
me=$(az ad signed-in-user show --query id -o tsv)
admin_role=$(az ad app show --id "$app_id" --query "appRoles[?value=='Admin'].id | [0]" -o tsv)
az rest --method POST --uri "https://graph.microsoft.com/v1.0/servicePrincipals/$sp_id/appRoleAssignedTo" --headers Content-Type=application/json \
  --body "{\"principalId\":\"$me\",\"resourceId\":\"$sp_id\",\"appRoleId\":\"$admin_role\"}" >/dev/null

echo "$app_id"
