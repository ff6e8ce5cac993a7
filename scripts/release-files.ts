// The files a GitHub release carries, made for that release by .github/workflows/release.yml:
//   node dist/scripts/release-files.js --repo <owner/name> --tag <vX.Y.Z> --out <folder>
// writes into <folder> the two templates with `packageUri` defaulting to the release's own zip
// (template and form alike), and notes.md with a Deploy to Azure button for them.
//
// The button cannot point at the release's assets: GitHub serves them without CORS headers, and the
// portal downloads a template from the browser ("Ensure that the template is publicly accessible and
// that the publisher has enabled CORS policy"). So the workflow also pushes the stamped templates as
// one commit under the tag `deploy-<tag>`, and the button reads them from raw.githubusercontent.com,
// which allows any origin. The assets are the same bytes, for the CLI and for download.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { appRoot } from '../shared/app-root';
import { PACKAGE_NAME } from './package';

export const TEMPLATE_NAME = 'azuredeploy.json';
export const UI_DEFINITION_NAME = 'createUiDefinition.json';
/** What a release attaches, in this order: the two templates, then the package `npm run package` builds. */
export const RELEASE_ASSETS = [TEMPLATE_NAME, UI_DEFINITION_NAME, PACKAGE_NAME] as const;

/** Version tags only: v1.2.3 (and v1.2.3-rc.1). */
export const RELEASE_TAG = /^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/;
const REPOSITORY = /^[A-Za-z0-9][A-Za-z0-9-]{0,38}\/[A-Za-z0-9._-]{1,100}$/;

export const releaseAssetUrl = (repo: string, tag: string, asset: string) =>
  `https://github.com/${repo}/releases/download/${tag}/${asset}`;
export const deployRef = (tag: string) => `deploy-${tag}`;
export const rawUrl = (repo: string, ref: string, file: string) => `https://raw.githubusercontent.com/${repo}/${ref}/${file}`;

/** The portal link: the template and its form, both URL-encoded (Microsoft Learn, "Deploy to Azure button"). */
export function deployButtonUrl(repo: string, tag: string): string {
  const ref = deployRef(tag);
  return (
    'https://portal.azure.com/#create/Microsoft.Template/uri/' +
    encodeURIComponent(rawUrl(repo, ref, `infra/${TEMPLATE_NAME}`)) +
    '/createUIDefinitionUri/' +
    encodeURIComponent(rawUrl(repo, ref, `infra/${UI_DEFINITION_NAME}`))
  );
}

export interface ReleaseFiles {
  template: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- ARM JSON
  uiDefinition: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- createUiDefinition JSON
  notes: string;
}

/** The templates with packageUri set to the release's zip, and the release notes. */
export function releaseFiles(repo: string, tag: string, infraDir = path.join(appRoot, 'infra')): ReleaseFiles {
  if (!REPOSITORY.test(repo)) throw new Error(`not a GitHub repository (owner/name): ${repo}`);
  if (!RELEASE_TAG.test(tag)) throw new Error(`not a version tag (v1.2.3): ${tag}`);
  const packageUrl = releaseAssetUrl(repo, tag, PACKAGE_NAME);
  const template = JSON.parse(readFileSync(path.join(infraDir, TEMPLATE_NAME), 'utf8'));
  template.parameters.packageUri.defaultValue = packageUrl;
  const uiDefinition = JSON.parse(readFileSync(path.join(infraDir, UI_DEFINITION_NAME), 'utf8'));
  const steps = uiDefinition.parameters.steps as { elements: { name: string; defaultValue?: unknown }[] }[];
  const field = steps.flatMap((s) => s.elements).find((e) => e.name === 'packageUri');
  if (!field) throw new Error(`${UI_DEFINITION_NAME} has no packageUri field`);
  field.defaultValue = packageUrl;
  const notes = [
    `## Deploy ${tag}`,
    '',
    `[![Deploy to Azure](https://aka.ms/deploytoazurebutton)](${deployButtonUrl(repo, tag)})`,
    '',
    `The button opens the Azure portal with this release's template and form; the app's code is this`,
    `release's \`${PACKAGE_NAME}\` (the template's \`packageUri\`), so no local tools are needed.`,
    `Before you start: you need Owner (or User Access Administrator, or Role Based Access Control`,
    `Administrator, with Contributor) on the resource group: the deployment assigns roles.`,
    '',
    `The CLI path, from a clone at \`${tag}\`: \`infra/deploy.sh\` (see docs/deploy.md).`,
    '',
    `Assets: \`${RELEASE_ASSETS.join('`, `')}\`.`,
    '',
  ].join('\n');
  return { template, uiDefinition, notes };
}

export function writeReleaseFiles(repo: string, tag: string, out: string): void {
  const files = releaseFiles(repo, tag);
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, TEMPLATE_NAME), `${JSON.stringify(files.template, null, 2)}\n`);
  writeFileSync(path.join(out, UI_DEFINITION_NAME), `${JSON.stringify(files.uiDefinition, null, 2)}\n`);
  writeFileSync(path.join(out, 'notes.md'), files.notes);
}

if (require.main === module) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const [repo, tag, out] = [arg('repo'), arg('tag'), arg('out')];
  if (!repo || !tag || !out) {
    console.error('usage: node dist/scripts/release-files.js --repo <owner/name> --tag <vX.Y.Z> --out <folder>');
    process.exit(2);
  }
  try {
    writeReleaseFiles(repo, tag, path.resolve(out));
    console.log(`Release files for ${repo} ${tag} written to ${out}`);
  } catch (e) {
    console.error(`release-files: ${(e as Error).message}`);
    process.exit(1);
  }
}
