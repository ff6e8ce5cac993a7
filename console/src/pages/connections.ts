// Connections: Braze workspaces and their keys. Admins create, test, rotate and delete them;
// contributors see the shared ones by name only.
import { api, ApiError, type Me } from '../api';
import { h, notice, replace, say, statusLine, when } from '../dom';
import { busy, checkbox, FormErrors, input, required } from '../forms';
import { HOURLY_CAP_HINT, hourlyCapCheck, hourlyCapValue, limitsCell, limitsForm } from './connection-limits';

/** Braze's REST endpoints by instance (braze.com/docs/user_guide/administer/personal/sdk_endpoints). */
const BRAZE_CLUSTERS = [
  ...[1, 2, 3, 4, 5, 6, 7, 8].map((n) => `rest.iad-0${n}.braze.com`),
  'rest.us-10.braze.com',
  'rest.fra-01.braze.eu',
  'rest.fra-02.braze.eu',
  'rest.au-01.braze.com',
];

export const CONSENT_TEXT =
  'I agree that profile data from Customer Insights (identifiers, e-mail addresses, phone numbers and the mapped attributes) is sent to this Braze workspace, which is outside this Azure subscription, and that my organisation is responsible for that transfer.';

export async function connectionsPage(main: HTMLElement, me: Me): Promise<void> {
  const list: any[] = (await api('GET', '/api/connections')).value;
  const status = h('div');
  const rows = list.map((c) => connectionRow(c, me, status));
  replace(
    main,
    h('h1', { tabindex: '-1' }, 'Connections'),
    statusLine,
    status,
    list.length === 0
      ? h(
          'p',
          {},
          me.isAdmin
            ? 'No connection yet: create one below. A connection is one Braze workspace: its REST endpoint and an API key with users.track (and users.export.segment, segments.list for the extras).'
            : 'No connection is shared with contributors: ask an administrator to create one and share it.',
        )
      : h(
          'table',
          { class: 'cards' },
          h('caption', { class: 'sr-only' }, 'Braze connections'),
          h(
            'thead',
            {},
            h('tr', {}, ...(me.isAdmin ? ADMIN_COLUMNS : ['Name', 'Type']).map((t) => h('th', { scope: 'col' }, t))),
          ),
          h('tbody', {}, ...rows),
        ),
    me.isAdmin ? createForm() : null,
  );
}

function connectionRow(c: any, me: Me, status: HTMLElement): HTMLElement {
  if (!me.isAdmin) return h('tr', {}, h('td', {}, c.displayName), h('td', {}, c.type));
  const check = c.keyCheck ? `${c.keyCheck.result} (${when(c.keyCheck.checkedAt)})` : 'not checked';
  const testButton = h('button', { type: 'button' }, 'Test key');
  testButton.addEventListener('click', () =>
    busy(testButton, async () => {
      try {
        const result = await api('POST', `/api/connections/${c.id}/test`, {});
        replace(status);
        say(`${c.displayName}: ${result.result} — ${result.detail}`);
      } catch (e) {
        replace(status, notice(`${c.displayName}: ${(e as Error).message}`, 'error'));
      }
    }),
  );
  const rotateSlot = h('div');
  const rotateButton = toggle('Rotate key', rotateSlot, () => rotateForm(c));
  const limitsButton = toggle('Limits', rotateSlot, () => limitsForm(c));
  const deleteButton = h('button', { type: 'button', class: 'danger' }, 'Delete');
  deleteButton.addEventListener('click', () =>
    busy(deleteButton, async () => {
      if (!confirm(`Delete the connection "${c.displayName}"?`)) return;
      try {
        await api('DELETE', `/api/connections/${c.id}`);
        location.reload();
      } catch (e) {
        const blocking = (e instanceof ApiError && Array.isArray(e.details.exports) ? e.details.exports : []) as {
          id: string;
          name: string;
        }[];
        replace(
          status,
          h(
            'div',
            { class: 'notice error', role: 'alert' },
            h('p', {}, (e as Error).message),
            blocking.length
              ? h('ul', {}, ...blocking.map((x) => h('li', {}, h('a', { href: `#/exports/${x.id}` }, x.name))))
              : null,
          ),
        );
      }
    }),
  );
  const td = (i: number, ...children: (Node | string)[]) => h('td', { 'data-label': ADMIN_COLUMNS[i]! }, ...children);
  return h(
    'tr',
    {},
    td(0, c.displayName),
    td(1, c.restEndpoint),
    td(2, c.allowContributors ? 'Yes' : 'No'),
    td(3, keyText(c.apiKey)),
    td(4, check),
    td(5, limitsCell(c)),
    h(
      'td',
      { class: 'actions', 'data-label': ADMIN_COLUMNS[6]! },
      testButton,
      rotateButton,
      limitsButton,
      deleteButton,
      rotateSlot,
    ),
  );
}

function rotateForm(c: any): HTMLElement {
  const errors = new FormErrors();
  const key = input({ type: 'password', autocomplete: 'new-password', required: true });
  const form = h(
    'form',
    { class: 'inline-form' },
    errors.summary,
    errors.field(`New REST API key for ${c.displayName}`, key, 'apiKey'),
    h('button', { type: 'submit' }, 'Save key'),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await api('PATCH', `/api/connections/${c.id}`, { apiKey: key.value });
      say(`${c.displayName}: key replaced`);
      key.value = '';
    } catch (e) {
      if (e instanceof ApiError) errors.show(e);
      else throw e;
    }
  });
  return form;
}

const ADMIN_COLUMNS = ['Name', 'REST endpoint', 'Shared', 'Key', 'Last key check', 'Limits', 'Actions'];

/** A button that opens (and closes) a form in `slot`; the other buttons' forms make way. */
function toggle(label: string, slot: HTMLElement, form: () => HTMLElement): HTMLButtonElement {
  const button = h('button', { type: 'button', 'aria-expanded': 'false' }, label);
  button.addEventListener('click', () => {
    const open = button.getAttribute('aria-expanded') === 'true';
    for (const other of slot.parentElement?.querySelectorAll('button[aria-expanded]') ?? [])
      other.setAttribute('aria-expanded', 'false');
    button.setAttribute('aria-expanded', String(!open));
    replace(slot, open ? null : form());
  });
  return button;
}

/** The key as the API hints it ("…abcd"; "…" alone when the key is too short to hint). */
function keyText(k: { source?: string; hint?: string | null } | undefined): string {
  if (!k) return '';
  if (k.hint && k.hint !== '…') return `ends in ${k.hint.replace(/^…/, '')}`;
  return k.source === 'keyVaultReference' ? 'your Key Vault secret' : 'set (not shown)';
}

function createForm(): HTMLElement {
  const errors = new FormErrors();
  const name = input({ required: true, autocomplete: 'off' });
  const endpoint = input({ list: 'braze-clusters', required: true, placeholder: 'rest.iad-03.braze.com', autocomplete: 'off' });
  const key = input({ type: 'password', autocomplete: 'new-password', required: true });
  const share = checkbox('Contributors may create exports on this connection', false);
  const cap = input({ inputmode: 'numeric', autocomplete: 'off' });
  const container = input({ autocomplete: 'off', spellcheck: 'false' });
  const consent = checkbox(CONSENT_TEXT, false);
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'new-connection', novalidate: true },
    h('h2', { id: 'new-connection' }, 'New connection'),
    errors.summary,
    errors.field('Display name', name, 'displayName', undefined, required(name, 'A display name')),
    errors.field('REST endpoint', endpoint, 'restEndpoint', "Pick your Braze instance's REST endpoint, or type it", () =>
      !endpoint.value.trim()
        ? "The REST endpoint is required: your Braze instance's, e.g. rest.iad-03.braze.com."
        : /\s/.test(endpoint.value.trim())
          ? 'An endpoint has no spaces, e.g. rest.iad-03.braze.com.'
          : null,
    ),
    h('datalist', { id: 'braze-clusters' }, ...BRAZE_CLUSTERS.map((c) => h('option', { value: c }))),
    errors.field(
      'REST API key (users.track permission)',
      key,
      'apiKey',
      'Stored in Key Vault; never shown again',
      required(key, 'The REST API key'),
    ),
    share.row,
    errors.field('Hourly request cap (optional)', cap, 'hourlyRequestCap', HOURLY_CAP_HINT, hourlyCapCheck(cap)),
    errors.field('Braze export container (optional)', container, 'exportContainer', EXPORT_CONTAINER_HINT, () =>
      containerCheck(container.value.trim()),
    ),
    errors.field('Consent', consentGroup(consent.row), 'consent', undefined, () =>
      consent.box.checked ? null : 'Tick the consent to send profile data to Braze.',
    ),
    h('button', { type: 'submit' }, 'Create connection'),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!errors.checkAll()) return;
    try {
      await api('POST', '/api/connections', {
        displayName: name.value,
        restEndpoint: endpoint.value,
        apiKey: key.value,
        allowContributors: share.box.checked,
        hourlyRequestCap: hourlyCapValue(cap),
        exportContainer: container.value.trim() ? { container: container.value.trim() } : null,
        consent: consent.box.checked,
      });
      location.reload();
    } catch (e) {
      if (e instanceof ApiError) errors.show(e);
      else throw e;
    }
  });
  return form;
}

/** Braze proof reads Braze's user exports from here when the workspace writes them to Azure. */
const EXPORT_CONTAINER_HINT =
  'Only when your Braze workspace has Azure Blob storage credentials: the container (in the CI storage account) Braze writes user exports to. Empty: Braze gives a download link';

const containerCheck = (v: string) =>
  !v || /^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(v)
    ? null
    : 'A container name is 3 to 63 lowercase letters, digits and single hyphens, e.g. braze-exports.';

function consentGroup(row: HTMLElement): HTMLFieldSetElement {
  return h('fieldset', {}, h('legend', {}, 'Data-privacy consent'), row);
}
