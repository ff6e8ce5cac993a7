#!/usr/bin/env bash
# The whole CLI path in one command, safe to run again (each step finds what an earlier run made):
#   1. package the app (npm ci, npm run package → released-package.zip, production dependencies only)
#   2. the resource group
#   3. the Entra app registration (infra/register-app.sh: found by name, or made)
#   4. the template, with authClientId (one deployment: sign-in is on from the start)
#   5. the registration's redirect URI, from the template's redirectUri output
#   6. the code (zip deploy), retried while the new role assignments propagate
#   7. the smoke check (npm run smoke)
#
#   infra/deploy.sh -g <resource group> -l <region> -p <name prefix> --ci-account <storage account resource ID>
#                   [--no-ci-grant] [--alert-email <address>] [--purge-protection] [--app-display-name <name>]
#                   [--no-sign-in] [--export <export id to preview>]
#
# Needs: bash, az (logged in: az login), node 20+ and npm. On Windows, use Azure Cloud Shell (Bash),
# which has all three: https://shell.azure.com. Rights: Owner on the resource group (or Contributor
# plus Role Based Access Control Administrator / User Access Administrator), and the right to
# register Entra applications (see docs/deploy.md, "Rights you need").
set -euo pipefail

case "$(uname -s)" in
  MINGW* | MSYS* | CYGWIN*)
    echo "deploy.sh: this looks like Git Bash/MSYS on Windows; run it in Azure Cloud Shell (Bash) instead: https://shell.azure.com" >&2
    exit 2
    ;;
esac

usage() {
  cat >&2 <<'EOF'
usage: infra/deploy.sh -g <resource group> -l <region> -p <name prefix> --ci-account <storage account resource ID>
                       [--no-ci-grant] [--alert-email <address>] [--purge-protection] [--app-display-name <name>]
                       [--no-sign-in] [--export <export id to preview>]
EOF
  exit 2
}
group="" location="" prefix="" ci_account="" grant=true alert_email="" purge=false display="" sign_in=true export_id=""
while [ $# -gt 0 ]; do
  case "$1" in
    -g | --resource-group) group="$2"; shift 2 ;;
    -l | --location) location="$2"; shift 2 ;;
    -p | --prefix) prefix="$2"; shift 2 ;;
    --ci-account) ci_account="$2"; shift 2 ;;
    --no-ci-grant) grant=false; shift ;;
    --alert-email) alert_email="$2"; shift 2 ;;
    --purge-protection) purge=true; shift ;;
    --app-display-name) display="$2"; shift 2 ;;
    --no-sign-in) sign_in=false; shift ;;
    --export) export_id="$2"; shift 2 ;;
    *) usage ;;
  esac
done
[ -n "$group" ] && [ -n "$location" ] && [ -n "$prefix" ] && [ -n "$ci_account" ] || usage
display="${display:-Customer Insights to Braze export ($prefix)}"
root="$(cd "$(dirname "$0")/.." && pwd)"
step() { echo; echo "== $*" >&2; }
fail() { echo "deploy.sh: $*" >&2; exit 1; }

for tool in az node npm; do command -v "$tool" >/dev/null || fail "$tool is missing (Azure Cloud Shell has az, node and npm)"; done
az account show --query id -o tsv >/dev/null 2>&1 || fail "not logged in: run az login (and az account set -s <subscription>)"

step "1/7 Package"
(cd "$root" && npm ci --no-audit --no-fund && npm run package)
zip="$root/released-package.zip"

step "2/7 Resource group $group ($location)"
az group create -n "$group" -l "$location" -o none

client_id=""
if $sign_in; then
  step "3/7 App registration \"$display\""
  client_id=$("$root/infra/register-app.sh" "$display" | tail -n 1)
else
  step "3/7 App registration: skipped (--no-sign-in; the API refuses every call until Authentication is on)"
fi

step "4/7 Template"
outputs=$(az deployment group create -g "$group" -n ci-braze -f "$root/infra/azuredeploy.json" \
  -p appName="$prefix" location="$location" ciStorageAccountResourceId="$ci_account" grantCiReader="$grant" \
  authClientId="$client_id" alertEmail="$alert_email" keyVaultPurgeProtection="$purge" packageUri="" \
  --query properties.outputs -o json) || fail "the deployment failed: see docs/deploy.md, \"When a step fails\" (az deployment operation group list -g $group -n ci-braze)"
out() { node -e 'const o = JSON.parse(process.argv[1]); console.log(o[process.argv[2]].value)' "$outputs" "$1"; }
app=$(out functionAppName)
console=$(out consoleUrl)
echo "Function App: $app" >&2

if $sign_in; then
  step "5/7 Redirect URI"
  "$root/infra/register-app.sh" --redirect-uri "$(out redirectUri)" "$display" >/dev/null
else
  step "5/7 Redirect URI: skipped"
fi

step "6/7 Code (zip deploy of released-package.zip)"
# The app's identity was just given its roles on the deployment container; until they propagate
# (minutes) the upload can answer 403. On Flex, config-zip may also report an error after a
# successful upload (it then checks the host with a master key): so after a failure, the app's
# health endpoint decides whether the code is there.
health="${console%/}/api/health"
deployed=false
for attempt in 1 2 3 4 5 6; do
  if az functionapp deployment source config-zip -g "$group" -n "$app" --src "$zip" -o none; then deployed=true; break; fi
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$health" || true)
  if [ "$code" = "200" ] || [ "$code" = "503" ]; then
    echo "config-zip reported an error, but the app answers $health with $code: the package is deployed" >&2
    deployed=true
    break
  fi
  echo "zip deploy failed (attempt $attempt; role assignments may still be propagating); trying again in $((attempt * 30)) s" >&2
  sleep $((attempt * 30))
done
$deployed || fail "the code could not be deployed: see docs/deploy.md, \"When a step fails\""

step "7/7 Smoke check"
smoke=(--app "${console%/}" --resource-group "$group" --name "$app")
[ -n "$client_id" ] && smoke+=(--client-id "$client_id")
[ -n "$export_id" ] && smoke+=(--export "$export_id")
(cd "$root" && node dist/scripts/smoke.js "${smoke[@]}") || echo "The smoke check found problems (above); the deployment itself is done. Run it again with: npm run smoke -- ${smoke[*]}" >&2

echo
echo "Console: $console"
[ -n "$client_id" ] && echo "Sign-in app registration (authClientId): $client_id"
echo "Run this script again at any time: it updates what exists and adds what is missing."
