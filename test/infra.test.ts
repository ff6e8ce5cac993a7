// The deployment templates: valid, complete, least-privilege, and free of secrets.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOCAL_ONLY_SETTINGS, REQUIRED_ONE_OF, SETTING_NAMES } from '../shared/config';

const INFRA = path.join(__dirname, '..', 'infra');
const template = JSON.parse(readFileSync(path.join(INFRA, 'azuredeploy.json'), 'utf8'));
const uiDefinition = JSON.parse(readFileSync(path.join(INFRA, 'createUiDefinition.json'), 'utf8'));
const roles = template.variables.roles as Record<string, string>;

type Resource = { type: string; apiVersion?: string; name: string; properties?: any; resources?: Resource[]; scope?: string };

/** Every resource, nested deployments' inner templates included. */
function allResources(t: { resources: Resource[] }): Resource[] {
  return t.resources.flatMap((r) => [r, ...(r.type === 'Microsoft.Resources/deployments' && r.properties?.template ? allResources(r.properties.template) : [])]);
}

const site = template.resources.find((r: Resource) => r.type === 'Microsoft.Web/sites');
const appSettings: { name: string; value: string }[] = site.properties.siteConfig.appSettings;
const settingNames = appSettings.map((s) => s.name);
const PLATFORM_SETTINGS = ['AzureWebJobsStorage__credential', 'AZURE_CLIENT_ID', 'FUNCTIONS_NODE_BLOCK_ON_ENTRY_POINT_ERROR', 'APPLICATIONINSIGHTS_CONNECTION_STRING', 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'];

describe('infra/azuredeploy.json', () => {
  it('is an ARM deployment template whose resources all name an API version', () => {
    expect(template.$schema).toMatch(/deploymentTemplate\.json#$/);
    for (const r of allResources(template)) expect(r.apiVersion, r.type).toMatch(/^\d{4}-\d{2}-\d{2}(-preview)?$/);
  });

  it('puts the app on Flex Consumption with Node 20+', () => {
    const plan = template.resources.find((r: Resource) => r.type === 'Microsoft.Web/serverfarms');
    expect(plan.sku).toEqual({ name: 'FC1', tier: 'FlexConsumption' });
    expect(site.kind).toBe('functionapp,linux');
    expect(site.properties.functionAppConfig.runtime.name).toBe('node');
    expect(Number(site.properties.functionAppConfig.runtime.version)).toBeGreaterThanOrEqual(20);
    expect(site.properties.functionAppConfig.deployment.storage.authentication.type).toBe('UserAssignedIdentity');
  });

  it('sets every app setting the config schema requires, with names the code reads, and no local-only ones', () => {
    for (const group of REQUIRED_ONE_OF) expect(group.some((n) => settingNames.includes(n)), group.join(' | ')).toBe(true);
    for (const name of settingNames) expect([...SETTING_NAMES, ...PLATFORM_SETTINGS], name).toContain(name);
    for (const name of LOCAL_ONLY_SETTINGS) expect(settingNames).not.toContain(name);
    expect(settingNames).toContain('SCHEDULED_REFRESH_SCHEDULE');
    // Identity-based host storage.
    expect(settingNames).toEqual(expect.arrayContaining(['AzureWebJobsStorage__accountName', 'AzureWebJobsStorage__credential', 'AzureWebJobsStorage__clientId']));
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
    for (const id of ['8e3af657-a8ff-443c-a75c-2fe8c4bcb635', 'b24988ac-6180-42a0-ab88-20f7382dd24c', '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9']) {
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
    for (const [name, p] of Object.entries<any>(template.parameters)) expect(String(p.metadata?.description ?? '').length, name).toBeGreaterThan(20);
  });
});

describe('infra/createUiDefinition.json', () => {
  it('outputs exactly parameters the template has, covering every parameter without a default', () => {
    const outputs = Object.keys(uiDefinition.parameters.outputs);
    const params = Object.keys(template.parameters);
    for (const o of outputs) expect(params).toContain(o);
    for (const [name, p] of Object.entries<any>(template.parameters)) if (p.defaultValue === undefined) expect(outputs).toContain(name);
  });
});
