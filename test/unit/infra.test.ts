// The deployment templates: valid, complete, least-privilege, and free of secrets.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOCAL_ONLY_SETTINGS, REQUIRED_ONE_OF, SETTING_NAMES } from '../../shared/config';

const INFRA = path.join(__dirname, '..', '..', 'infra');
const template = JSON.parse(readFileSync(path.join(INFRA, 'azuredeploy.json'), 'utf8'));
const uiDefinition = JSON.parse(readFileSync(path.join(INFRA, 'createUiDefinition.json'), 'utf8'));
const roles = template.variables.roles as Record<string, string>;

type Resource = { type: string; apiVersion?: string; name: string; properties?: any; resources?: Resource[]; scope?: string };

/** Every resource, nested deployments' inner templates included. */
function allResources(t: { resources: Resource[] }): Resource[] {
  return t.resources.flatMap((r) => [
    r,
    ...(r.type === 'Microsoft.Resources/deployments' && r.properties?.template ? allResources(r.properties.template) : []),
  ]);
}

const site = template.resources.find((r: Resource) => r.type === 'Microsoft.Web/sites');
const appSettings: { name: string; value: string }[] = site.properties.siteConfig.appSettings;
const settingNames = appSettings.map((s) => s.name);
const PLATFORM_SETTINGS = [
  'AzureWebJobsStorage__credential',
  'AZURE_CLIENT_ID',
  'FUNCTIONS_NODE_BLOCK_ON_ENTRY_POINT_ERROR',
  'APPLICATIONINSIGHTS_CONNECTION_STRING',
  'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
  'AzureWebJobsDisableHomepage',
];

describe('infra/azuredeploy.json', () => {
  it('is an ARM deployment template whose resources all name an API version', () => {
    expect(template.$schema).toMatch(/deploymentTemplate\.json#$/);
    for (const r of allResources(template)) expect(r.apiVersion, r.type).toMatch(/^\d{4}-\d{2}-\d{2}(-preview)?$/);
  });

  it('derives the global names (storage, Key Vault, Function App) from uniqueString, so a second deployment never clashes', () => {
    const unique = String(template.variables.unique);
    expect(unique).toMatch(/^\[uniqueString\(subscription\(\)\.id, resourceGroup\(\)\.id/);
    for (const name of ['storageName', 'keyVaultName', 'functionAppName'])
      expect(String(template.variables[name]), name).toContain("variables('unique')");
    // A prefix of at most 11 characters plus the 13 of uniqueString fit a storage account's 24.
    expect(template.parameters.appName.maxLength).toBeLessThanOrEqual(11);
  });

  it('restricts the region to Flex Consumption regions, in the template and the form alike', () => {
    const regions: string[] = template.parameters.location.allowedValues;
    expect(regions.length).toBeGreaterThan(10);
    expect(regions).toEqual(expect.arrayContaining(['eastus', 'westeurope', 'northeurope', 'swedencentral']));
    expect(regions).not.toContain('eastus2euap'); // a canary region customers cannot use
    expect(uiDefinition.parameters.config.basics.location.allowedValues).toEqual(regions);
  });

  it('makes Key Vault purge protection a parameter (never an explicit false, which Key Vault refuses)', () => {
    expect(template.parameters.keyVaultPurgeProtection).toMatchObject({ type: 'bool', defaultValue: false });
    const kv = template.resources.find((r: Resource) => r.type === 'Microsoft.KeyVault/vaults');
    expect(kv.properties.enablePurgeProtection).toBe("[if(parameters('keyVaultPurgeProtection'), true(), null())]");
  });

  it('makes the grant on the CI account optional, with the one command a CI admin runs instead in the outputs', () => {
    expect(template.parameters.grantCiReader).toMatchObject({ type: 'bool', defaultValue: true });
    expect(template.parameters.grantCiReader.metadata.description).toMatch(/Microsoft\.Resources\/deployments\/write/);
    const ci = template.resources.find((r: Resource) => r.type === 'Microsoft.Resources/deployments');
    expect(ci.condition).toBe("[parameters('grantCiReader')]");
    expect(template.outputs.ciReaderGrantCommand.value).toMatch(
      /az role assignment create --assignee-object-id \{0\} --assignee-principal-type ServicePrincipal --role \\?"Storage Blob Data Reader\\?" --scope \{1\}/,
    );
  });

  it('starts the site only after every role assignment in its resource group (its first calls need them)', () => {
    const local = template.resources.filter((r: Resource) => r.type === 'Microsoft.Authorization/roleAssignments');
    expect(local.length).toBeGreaterThanOrEqual(5);
    for (const a of local)
      expect(
        site.dependsOn.some((d: string) => d.includes('roleAssignments') && d.includes(a.name.slice(1, -1))),
        a.name,
      ).toBe(true);
  });

  it('sets no app setting Flex Consumption forbids', () => {
    // Flex sets these itself (runtime and scale live in functionAppConfig) and refuses them as app settings.
    for (const forbidden of [
      'FUNCTIONS_WORKER_RUNTIME',
      'FUNCTIONS_EXTENSION_VERSION',
      'WEBSITE_NODE_DEFAULT_VERSION',
      'WEBSITE_RUN_FROM_PACKAGE',
      'WEBSITE_CONTENTSHARE',
      'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING',
      'SCM_DO_BUILD_DURING_DEPLOYMENT',
      'WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT',
    ]) {
      expect(settingNames).not.toContain(forbidden);
    }
  });

  it("serves the console at the site root, not the host's default home page", () => {
    const host = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'host.json'), 'utf8'));
    expect(host.extensions.http.routePrefix).toBe('');
    expect(appSettings.find((s: { name: string }) => s.name === 'AzureWebJobsDisableHomepage')?.value).toBe('true');
  });

  it('puts the app on Flex Consumption with Node 22 (Node 20 reached end of life in April 2026)', () => {
    const plan = template.resources.find((r: Resource) => r.type === 'Microsoft.Web/serverfarms');
    expect(plan.sku).toEqual({ name: 'FC1', tier: 'FlexConsumption' });
    expect(site.kind).toBe('functionapp,linux');
    expect(site.properties.functionAppConfig.runtime.name).toBe('node');
    expect(site.properties.functionAppConfig.runtime.version).toBe('22');
    expect(site.properties.functionAppConfig.deployment.storage.authentication.type).toBe('UserAssignedIdentity');
  });

  it('sets every app setting the config schema requires, with names the code reads, and no local-only ones', () => {
    for (const group of REQUIRED_ONE_OF)
      expect(
        group.some((n) => settingNames.includes(n)),
        group.join(' | '),
      ).toBe(true);
    for (const name of settingNames) expect([...SETTING_NAMES, ...PLATFORM_SETTINGS], name).toContain(name);
    for (const name of LOCAL_ONLY_SETTINGS) expect(settingNames).not.toContain(name);
    expect(settingNames).toContain('SCHEDULED_REFRESH_SCHEDULE');
    // Identity-based host storage, by its endpoints (the cloud's own suffix: see infra.deploy.test.ts).
    expect(settingNames).toEqual(
      expect.arrayContaining([
        'AzureWebJobsStorage__accountName',
        'AzureWebJobsStorage__blobServiceUri',
        'AzureWebJobsStorage__queueServiceUri',
        'AzureWebJobsStorage__tableServiceUri',
        'AzureWebJobsStorage__credential',
        'AzureWebJobsStorage__clientId',
      ]),
    );
    expect(settingNames).not.toContain('AzureWebJobsStorage');
  });

  it('grants the managed identity a role on each data plane the code touches, and no more', () => {
    const assignments = allResources(template).filter((r) => r.type === 'Microsoft.Authorization/roleAssignments');
    const byRole = (key: string) => assignments.filter((a) => a.properties.roleDefinitionId.includes(`roles').${key}`));
    for (const key of ['storageBlobDataOwner', 'storageQueueDataContributor', 'storageTableDataContributor']) {
      expect(byRole(key), key).toHaveLength(1);
      expect(byRole(key)[0]!.scope, key).toMatch(/Microsoft\.Storage\/storageAccounts/);
    }
    expect(byRole('keyVaultSecretsOfficer')[0]!.scope).toMatch(/Microsoft\.KeyVault\/vaults/);
    // Storage Blob Data Reader on the customer's CI export account, through a deployment into its resource group.
    const ci = template.resources.find((r: Resource) => r.type === 'Microsoft.Resources/deployments');
    expect(ci.resourceGroup).toContain('ciResourceGroup');
    expect(ci.properties.parameters.roleId.value).toContain('storageBlobDataReader');
    expect(roles.storageBlobDataReader).toBe('2a2b9908-6ea1-4ae2-8e65-a410df84e7d1');
    // Nobody gets Owner, Contributor or User Access Administrator.
    for (const id of [
      '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
      'b24988ac-6180-42a0-ab88-20f7382dd24c',
      '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9',
    ]) {
      expect(JSON.stringify(template)).not.toContain(id);
    }
  });

  it('uses Key Vault with RBAC, storage without shared keys, and Application Insights on Log Analytics', () => {
    const kv = template.resources.find((r: Resource) => r.type === 'Microsoft.KeyVault/vaults');
    expect(kv.properties.enableRbacAuthorization).toBe(true);
    const st = template.resources.find((r: Resource) => r.type === 'Microsoft.Storage/storageAccounts');
    expect(st.properties.allowSharedKeyAccess).toBe(false);
    const ai = template.resources.find((r: Resource) => r.type === 'Microsoft.Insights/components');
    expect(ai.properties.WorkspaceResourceId).toContain('Microsoft.OperationalInsights/workspaces');
  });

  it('has no secret in parameter defaults or outputs, and never lists keys', () => {
    const text = JSON.stringify(template);
    expect(text).not.toMatch(/listKeys|listSecrets|AccountKey=|SharedAccessSignature/i);
    for (const [name, p] of Object.entries<any>(template.parameters)) {
      // ARM type names are case-insensitive: secureString, securestring, SECURESTRING are all one type.
      expect(String(p.type).toLowerCase(), name).not.toBe('securestring');
      expect(String(p.defaultValue ?? ''), name).not.toMatch(/key|secret|password/i);
    }
    for (const [name, o] of Object.entries<any>(template.outputs)) {
      expect(name).not.toMatch(/key$|secret|password|connectionString/i);
      expect(JSON.stringify(o.value)).not.toMatch(/ConnectionString|InstrumentationKey/);
    }
  });

  it('describes every parameter', () => {
    for (const [name, p] of Object.entries<any>(template.parameters))
      expect(String(p.metadata?.description ?? '').length, name).toBeGreaterThan(20);
  });
});

describe('sign-in, for people in a browser and for scripts', () => {
  const auth = template.resources.find((r: Resource) => r.type === 'Microsoft.Web/sites/config');
  const register = readFileSync(path.join(INFRA, 'register-app.sh'), 'utf8');

  it('Easy Auth lets anyone reach the app and signs in whoever brings a session or a token; the app itself refuses API calls without one (401, never a redirect)', () => {
    expect(auth.condition).toBe("[not(empty(parameters('authClientId')))]");
    expect(auth.properties.globalValidation.unauthenticatedClientAction).toBe('AllowAnonymous');
    const aad = auth.properties.identityProviders.azureActiveDirectory;
    expect(aad.registration.openIdIssuer).toMatch(/\/v2\.0'\)\]$/); // v2 tokens: the registration asks for them
    expect(aad.validation.allowedAudiences).toEqual([
      "[concat('api://', parameters('authClientId'))]",
      "[parameters('authClientId')]",
    ]);
    expect(template.outputs.redirectUri.value).toMatch(/\/\.auth\/login\/aad\/callback'\)\]$/);
    expect(template.outputs.signInUrl.value).toMatch(/\/\.auth\/login\/aad'\)\]$/);
    // The console is the site's root page.
    expect(template.outputs.consoleUrl.value).toMatch(/defaultHostName, '\/'\)\]$/);
  });

  it('ships the app roles the code knows, and a registration script that asks for what the template expects', () => {
    const appRoles = JSON.parse(readFileSync(path.join(INFRA, 'app-roles.json'), 'utf8')) as {
      value: string;
      allowedMemberTypes: string[];
      isEnabled: boolean;
    }[];
    expect(appRoles.map((r) => r.value).sort()).toEqual(['Admin', 'Contributor', 'Viewer']);
    for (const r of appRoles) expect(r).toMatchObject({ isEnabled: true, allowedMemberTypes: expect.arrayContaining(['User']) });
    execFileSync('bash', ['-n', path.join(INFRA, 'register-app.sh')]); // it parses
    expect(register).toContain('--app-roles "@$here/app-roles.json"');
    // The redirect URI comes last, from the template's redirectUri output (the host name exists by then).
    expect(register).toContain('--web-redirect-uris "$redirect_uri" --enable-id-token-issuance true');
    expect(register).toContain('--identifier-uris "api://$app_id"');
    expect(register).toContain('\\"requestedAccessTokenVersion\\":2');
    expect(register).toContain('04b07795-8ddb-461a-bbee-02f9e1bf7b46'); // the Azure CLI, pre-authorized
    expect(register).toContain('user_impersonation');
  });
});

describe('operating on Flex Consumption', () => {
  it('starts a queued run within seconds on a running instance: the queue listener polls every 2 s at most, not every minute', () => {
    const host = JSON.parse(readFileSync(path.join(INFRA, '..', 'host.json'), 'utf8'));
    const [h, m, s] = String(host.extensions.queues.maxPollingInterval).split(':').map(Number);
    const seconds = h! * 3600 + m! * 60 + s!;
    expect(seconds).toBeGreaterThanOrEqual(0.1); // the Functions host's minimum
    expect(seconds).toBeLessThanOrEqual(2);
  });

  it('keeps every trace (run lines) out of sampling, so the README query finds them all', () => {
    const host = JSON.parse(readFileSync(path.join(INFRA, '..', 'host.json'), 'utf8'));
    expect(host.logging.applicationInsights.samplingSettings.excludedTypes.split(';')).toContain('Trace');
  });

  it('has a .funcignore that keeps sources, tests and local settings out of a publish', () => {
    const ignore = readFileSync(path.join(INFRA, '..', '.funcignore'), 'utf8').split('\n');
    for (const entry of ['test/', 'local.settings.json', 'scripts/', '*.ts']) expect(ignore).toContain(entry);
  });

  it('offers an alert e-mail: an action group and a log alert on failed (or twice partially succeeded) runs, only when asked', () => {
    expect(template.parameters.alertEmail).toMatchObject({ type: 'string', defaultValue: '' });
    const group = template.resources.find((r: Resource) => r.type === 'Microsoft.Insights/actionGroups');
    const rule = template.resources.find((r: Resource) => r.type === 'Microsoft.Insights/scheduledQueryRules');
    for (const r of [group, rule]) expect(r.condition).toBe("[not(empty(parameters('alertEmail')))]");
    expect(group.properties.emailReceivers[0].emailAddress).toBe("[parameters('alertEmail')]");
    const query: string = rule.properties.criteria.allOf[0].query;
    expect(query).toMatch(/status == "failed"/);
    expect(query).toMatch(/status == "partially_succeeded" and previous == "partially_succeeded" and previousExport == exportId/);
    expect(rule.properties.actions.actionGroups[0]).toContain('actionGroups');
  });
});

describe('infra/createUiDefinition.json', () => {
  it('carries no constant default for the name prefix (the template adds the unique suffix)', () => {
    const appName = uiDefinition.parameters.basics.find((b: { name: string }) => b.name === 'appName');
    expect(appName.defaultValue).toBeUndefined();
    expect(appName.constraints.required).toBe(true);
  });

  it('asks every required template parameter, and nothing the template does not take', () => {
    const outputs = Object.keys(uiDefinition.parameters.outputs);
    for (const [name, p] of Object.entries<any>(template.parameters))
      if (p.defaultValue === undefined) expect(outputs, name).toContain(name);
    for (const o of outputs) expect(Object.keys(template.parameters), o).toContain(o);
    expect(outputs).toEqual(expect.arrayContaining(['grantCiReader', 'keyVaultPurgeProtection']));
  });

  it('outputs exactly parameters the template has, covering every parameter without a default', () => {
    const outputs = Object.keys(uiDefinition.parameters.outputs);
    const params = Object.keys(template.parameters);
    for (const o of outputs) expect(params).toContain(o);
    for (const [name, p] of Object.entries<any>(template.parameters))
      if (p.defaultValue === undefined) expect(outputs).toContain(name);
  });
});
