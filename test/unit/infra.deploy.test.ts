// What issue 28's first try from the portal needs of the templates: a form that works in an empty
// subscription, a deployer told up front what rights are missing, a Key Vault that redeploys, every
// failure alerting, and endpoints from the cloud the template runs in.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config';
import { createStorageClients } from '../../shared/store/clients';

const INFRA = path.join(__dirname, '..', '..', 'infra');
const template = JSON.parse(readFileSync(path.join(INFRA, 'azuredeploy.json'), 'utf8'));
const ui = JSON.parse(readFileSync(path.join(INFRA, 'createUiDefinition.json'), 'utf8'));

type Resource = {
  type: string;
  name: string;
  condition?: string;
  kind?: string;
  properties: any;
  tags?: any;
  dependsOn?: string[];
};
const resource = (type: string): Resource => template.resources.find((r: Resource) => r.type === type);
const uiElements = (step: string) =>
  ui.parameters.steps.find((s: { name: string }) => s.name === step).elements as { name: string; [k: string]: any }[];
const site = resource('Microsoft.Web/sites');
const setting = (name: string) =>
  site.properties.siteConfig.appSettings.find((s: { name: string }) => s.name === name)?.value as string | undefined;

describe('the portal form in an empty subscription', () => {
  const elements = uiElements('customerInsights');

  it('lists CI storage accounts of every subscription and region, or takes a pasted resource ID', () => {
    const picker = elements.find((e) => e.name === 'ciStorageAccount')!;
    expect(picker.type).toBe('Microsoft.Solutions.ResourceSelector');
    expect(picker.options.filter).toEqual({ subscription: 'all', location: 'all' });
    const source = elements.find((e) => e.name === 'ciAccountSource')!;
    expect(source.constraints.allowedValues.map((v: { value: string }) => v.value)).toEqual(['pick', 'paste']);
    const pasted = elements.find((e) => e.name === 'ciStorageAccountId')!;
    expect(pasted.visible).toBe("[equals(steps('customerInsights').ciAccountSource, 'paste')]");
    expect(picker.visible).toBe("[equals(steps('customerInsights').ciAccountSource, 'pick')]");
    const id = new RegExp(pasted.constraints.validations[0].regex);
    expect(
      id.test(
        '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ci-rg/providers/Microsoft.Storage/storageAccounts/contosoci',
      ),
    ).toBe(true);
    expect(id.test('contosoci')).toBe(false);
    expect(id.test('/subscriptions/x/resourceGroups/ci-rg/providers/Microsoft.KeyVault/vaults/kv')).toBe(false);
    expect(ui.parameters.outputs.ciStorageAccountResourceId).toBe(
      "[if(equals(steps('customerInsights').ciAccountSource, 'paste'), steps('customerInsights').ciStorageAccountId, steps('customerInsights').ciStorageAccount.id)]",
    );
  });

  it('checks on Basics that the deployer may assign roles, and says what is missing and who can grant it', () => {
    const validations = ui.parameters.config.basics.resourceGroup.constraints.validations as {
      permission?: string;
      message: string;
    }[];
    const check = validations.find((v) => v.permission === 'Microsoft.Authorization/roleAssignments/write')!;
    expect(check).toBeDefined();
    expect(check.message).toMatch(/roleAssignments\/write/);
    expect(check.message).toMatch(/Contributor alone is not enough/);
    expect(check.message).toMatch(/Owner|User Access Administrator|Role Based Access Control Administrator/);
    // The template does assign roles in this resource group: the check is not for show.
    expect(
      template.resources.filter((r: Resource) => r.type === 'Microsoft.Authorization/roleAssignments').length,
    ).toBeGreaterThan(0);
  });

  it('asks nothing the template does not take, and offers the package URL a release fills in', () => {
    const pkg = uiElements('access').find((e) => e.name === 'packageUri')!;
    expect(pkg.defaultValue).toBe(template.parameters.packageUri.defaultValue);
    expect(ui.parameters.outputs.packageUri).toBe("[steps('access').packageUri]");
  });
});

describe('redeploying', () => {
  it('keeps Key Vault soft-delete retention at 90 days whatever the purge-protection box says (Key Vault refuses a change)', () => {
    const kv = resource('Microsoft.KeyVault/vaults');
    expect(kv.properties.softDeleteRetentionInDays).toBe(90);
    expect(kv.properties.enableSoftDelete).toBe(true);
    // Protection is still the box's (never an explicit false).
    expect(kv.properties.enablePurgeProtection).toBe("[if(parameters('keyVaultPurgeProtection'), true(), null())]");
  });
});

describe('the cloud the template runs in', () => {
  it('takes every storage endpoint from environment(), never a hard-coded core.windows.net', () => {
    expect(JSON.stringify(template)).not.toContain('core.windows.net');
    for (const svc of ['blob', 'queue', 'table'])
      expect(setting(`AzureWebJobsStorage__${svc}ServiceUri`)).toBe(
        `[concat('https://', variables('storageName'), '.${svc}.', environment().suffixes.storage)]`,
      );
    expect(setting('CI_EXPORT_STORAGE_BLOB_URL')).toContain('environment().suffixes.storage');
    expect(setting('KEY_VAULT_URI')).toContain('environment().suffixes.keyvaultDns');
    // The account name too, as Microsoft's Flex Consumption azd module sets it beside the endpoints (the endpoints win).
    expect(setting('AzureWebJobsStorage__accountName')).toBe("[variables('storageName')]");
  });

  it('the app builds its storage clients from those endpoints', () => {
    const config = loadConfig({
      AzureWebJobsStorage__accountName: 'stcibraze',
      AzureWebJobsStorage__blobServiceUri: 'https://stcibraze.blob.core.chinacloudapi.cn',
      AzureWebJobsStorage__queueServiceUri: 'https://stcibraze.queue.core.chinacloudapi.cn',
      AzureWebJobsStorage__tableServiceUri: 'https://stcibraze.table.core.chinacloudapi.cn/',
      AzureWebJobsStorage__clientId: '6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f',
      CI_EXPORT_STORAGE_BLOB_URL: 'https://ci.blob.core.chinacloudapi.cn',
      KEY_VAULT_URI: 'https://kv.vault.azure.cn',
    });
    const clients = createStorageClients(config);
    expect(clients.appBlobs.url).toMatch(/^https:\/\/stcibraze\.blob\.core\.chinacloudapi\.cn\/?$/);
    expect(clients.runQueue.url).toBe('https://stcibraze.queue.core.chinacloudapi.cn/export-runs');
    expect(clients.table('runs').url).toMatch(/^https:\/\/stcibraze\.table\.core\.chinacloudapi\.cn\/?/);
    // All three endpoints or none.
    expect(() =>
      loadConfig({
        AzureWebJobsStorage__blobServiceUri: 'https://st.blob.core.windows.net',
        CI_EXPORT_STORAGE_BLOB_URL: 'https://ci.blob.core.windows.net',
        KEY_VAULT_URI: 'https://kv.vault.azure.net',
      }),
    ).toThrow(/together/);
  });

  it('sets no siteConfig.ftpsState: no Flex Consumption sample does, and Flex deploys from its blob container only', () => {
    expect(site.properties.siteConfig.ftpsState).toBeUndefined();
    expect(site.properties.httpsOnly).toBe(true);
  });
});

describe('every failure alerts', () => {
  const rule = resource('Microsoft.Insights/scheduledQueryRules');
  const query: string = rule.properties.criteria.allOf[0].query;

  it('looks back two days (the run before can be long ago) and fires on rows ingested since the last evaluation only', () => {
    expect(rule.properties.evaluationFrequency).toBe('PT15M');
    expect(rule.properties.windowSize).toBe('PT15M');
    expect(rule.properties.overrideQueryTimeRange).toBe('P2D');
    expect(query).toMatch(/^AppTraces\n\| extend ingested = ingestion_time\(\)/);
    expect(query).toContain('| where ingested > ago(15m)');
    // prev() sees the whole look-back: the new-rows filter comes after it.
    expect(query.indexOf('prev(status)')).toBeLessThan(query.indexOf('ingested > ago(15m)'));
    expect(query).toMatch(
      /status == "partially_succeeded" and previous == "partially_succeeded" and previousExport == exportId and exportId != "-"/,
    );
    expect(rule.properties.scopes).toEqual([
      "[resourceId('Microsoft.OperationalInsights/workspaces', variables('logAnalyticsName'))]",
    ]);
    expect(rule.properties.autoMitigate).toBe(false);
  });

  it('tests GET /api/health from three locations with a standard availability test, and mails when two fail', () => {
    const test = resource('Microsoft.Insights/webtests');
    expect(test.kind).toBe('standard');
    expect(test.properties.Kind).toBe('standard');
    expect(test.properties.Request.RequestUrl).toMatch(/defaultHostName, '\/api\/health'\)\]$/);
    expect(test.properties.Request.HttpVerb).toBe('GET');
    expect(test.properties.ValidationRules.ExpectedHttpStatusCode).toBe(200);
    expect(test.properties.Locations).toHaveLength(3);
    expect(Object.keys(test.tags)[0]).toBe(
      "[concat('hidden-link:', resourceId('Microsoft.Insights/components', variables('appInsightsName')))]",
    );
    const down = resource('Microsoft.Insights/metricAlerts');
    expect(down.properties.criteria['odata.type']).toBe('Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria');
    expect(down.properties.criteria.failedLocationCount).toBe(2);
    expect(down.properties.actions[0].actionGroupId).toContain('actionGroups');
    // Billed per test run: only with someone to tell.
    for (const r of [test, down, rule]) expect(r.condition).toBe("[not(empty(parameters('alertEmail')))]");
  });
});

describe('sized for the platform, and said so', () => {
  const docs = readFileSync(path.join(__dirname, '..', '..', 'docs', 'deploy.md'), 'utf8');
  const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
  const performance = readFileSync(path.join(__dirname, '..', '..', 'docs', 'performance.md'), 'utf8');

  it('defaults to 2048 MB instances (1 vCPU: 51-56 % of the GB-seconds of 2 vCPU, which ends a run only 0.3-1.7 s sooner) and names the figures', () => {
    expect(template.parameters.instanceMemoryMB).toMatchObject({ defaultValue: 2048, allowedValues: [512, 2048, 4096] });
    expect(template.parameters.instanceMemoryMB.metadata.description).toMatch(
      /0\.25 vCPU at 512 MB, 1 vCPU at 2048 MB and 2 vCPU at 4096 MB/,
    );
    expect(template.parameters.instanceMemoryMB.metadata.description).toMatch(/0\.8 GB of temporary storage/);
    // The README and the performance figures name the same default as the template.
    expect(readme).toContain('2048 (the default)');
    expect(performance).toContain("the template's default is 2,048 MB");
    // The two-core gain the template states is the one the docs measured.
    expect(template.parameters.instanceMemoryMB.metadata.description).toContain('0.3-1.7 s (median 0.6 s, 4 %) sooner');
    for (const text of [readme, performance, docs]) expect(text).toMatch(/0\.3–1\.7 s \(median\s+0\.6 s, 4 %\)/);
    expect(template.parameters.instanceMemoryMB.metadata.description).toContain('about half (51-56 %)');
    for (const text of [readme, performance, docs]) expect(text).toMatch(/about\s+half\s+\(51–56 %\)/);
  });

  it("docs/deploy.md cites Microsoft for vCPU and temporary storage per instance, and the README's Deploy section walks both paths in at most 35 lines", () => {
    expect(docs).toContain('https://learn.microsoft.com/en-us/azure/azure-functions/flex-consumption-plan#instance-sizes');
    expect(docs).toContain('https://learn.microsoft.com/en-us/azure/azure-functions/functions-scale#service-limits');
    expect(docs).toMatch(/\| 2048 MB \(this template's default\)\s+\| 1\s+\| 0\.8 GB/);
    const excerpt = /\n## Deploy to Azure\n([\s\S]*?)\n## /.exec(readme)![1]!.trim().split('\n');
    expect(excerpt.length).toBeLessThanOrEqual(35);
    for (const topic of ['Deploy to Azure', 'infra/deploy.sh', 'Rights', 'Cloud Shell', 'admin', 'Limits', 'Alerts'])
      expect(excerpt.join('\n'), topic).toContain(topic);
  });
});
