// The export form's controls built from the data alone: the Braze connection, the CI export folder,
// the Braze segment (a list where the key may list the workspace's segments, a free-text identifier
// otherwise), the membership settings, the matching pickers' fields, the collision warning's text,
// and the notice shown while there is no connection.
import { type Me } from '../../api';
import { h, replace } from '../../dom';
import { input, select, type FormErrors } from '../../forms';
import { membershipAttributes } from './in-braze';

export const NONE = '';

/** The Braze connection; a detached export stays detached unless a connection is picked on purpose. */
export function connectionPicker(connections: any[], e: any | null, detached: boolean): HTMLSelectElement {
  return select(
    [
      { value: NONE, label: detached ? 'None (detached)' : '— choose —' },
      ...connections.map((c) => ({ value: c.id, label: c.displayName })),
    ],
    e ? (e.connectionId ?? NONE) : connections[0]?.id,
    { required: true },
  );
}

/** The CI export folder; the export's own folder stays a choice even when it is no longer listed. */
export function folderPicker(folders: { container: string; folder: string }[], e: any | null): HTMLSelectElement {
  const folderOptions = folders.map((x) => ({
    value: JSON.stringify([x.container, x.folder]),
    label: `${x.container} / ${x.folder}`,
  }));
  const current = e ? JSON.stringify([e.source.container, e.source.folder]) : undefined;
  if (current && !folderOptions.some((o) => o.value === current))
    folderOptions.unshift({ value: current, label: `${e.source.container} / ${e.source.folder}` });
  return select(
    [{ value: NONE, label: folders.length ? '— choose —' : 'No CI export folder found' }, ...folderOptions],
    current ?? folderOptions[0]?.value,
    { required: true },
  );
}

/** What the connection says about listing the workspace's Braze segments. */
export interface Listed {
  available: boolean;
  segments?: { id: string; name: string }[];
  reason?: string;
}

/**
 * Draws the Braze segment field into its slot: a picker of the listed segments, or a text field
 * for the identifier. Returns how to read the chosen identifier.
 */
export function brazeSegmentField(
  slot: HTMLElement,
  f: FormErrors,
  listed: Listed,
  current: string,
  changed: () => void,
): () => string {
  if (listed.available && listed.segments!.length > 0) {
    const options = listed.segments!.map((s) => ({ value: s.id, label: `${s.name} (${s.id})` }));
    if (current && !options.some((o) => o.value === current))
      options.unshift({ value: current, label: `${current} (not in this workspace's list)` });
    const picker = select([{ value: NONE, label: '— choose a Braze segment —' }, ...options], current);
    const chosen = h('p', { class: 'hint', 'aria-live': 'polite' });
    const show = () => replace(chosen, picker.value ? `Chosen: ${picker.selectedOptions[0]?.textContent ?? ''}` : '');
    picker.addEventListener('change', show);
    picker.addEventListener('change', changed);
    show();
    replace(
      slot,
      f.field('Braze segment', picker, 'brazeSegmentApiId', undefined, () => (picker.value ? null : 'Choose the Braze segment.')),
      chosen,
    );
    return () => picker.value;
  }
  const text = input({ value: current, placeholder: '0000-0000-0000', autocomplete: 'off' });
  text.addEventListener('input', changed);
  replace(
    slot,
    f.field(
      'Braze segment API identifier',
      text,
      'brazeSegmentApiId',
      `Type it from Braze (Segments → the segment → API identifier). ${listed.reason ?? ''}`.trim(),
      () =>
        !text.value.trim()
          ? 'Type the Braze segment API identifier.'
          : /^[A-Za-z0-9_.-]+$/.test(text.value.trim())
            ? null
            : 'Use letters, digits, dots, dashes and underscores only, as Braze shows the identifier.',
    ),
  );
  return () => text.value;
}

/** How the export writes segment membership in Braze: the format, the list attribute, the boolean prefix. */
export function membershipControls(e: any | null): {
  format: HTMLSelectElement;
  attribute: HTMLInputElement;
  prefix: HTMLInputElement;
} {
  const format = select(
    [
      { value: 'list', label: 'List: one attribute holding the segment names' },
      { value: 'boolean', label: 'Boolean: one true/false attribute per segment' },
    ],
    e?.membership?.format ?? 'list',
  );
  const attribute = input({
    value: e?.membership?.attribute ?? '',
    placeholder: 'defaults to the Braze segment API identifier',
    autocomplete: 'off',
  });
  const prefix = input({ value: e?.membership?.booleanPrefix ?? 'ci_segment_', autocomplete: 'off' });
  return { format, attribute, prefix };
}

/** The matching pickers' fields: CI profile ID, e-mail, Braze customer ID (each required) and phone. */
export function matchingPickers(f: FormErrors, selects: Record<string, HTMLSelectElement>): HTMLElement[] {
  const pick = (key: string, what: string) => () => (selects[key]?.value ? null : `Choose the ${what} column.`);
  return [
    f.field(
      'CI profile ID column',
      selects.profileId!,
      'matching.profileId',
      'Identifies a profile across segments; the Braze user alias when there is no Braze customer ID',
      pick('profileId', 'CI profile ID'),
    ),
    f.field('E-mail column', selects.email!, 'matching.email', undefined, pick('email', 'e-mail')),
    f.field(
      'Braze customer ID (external_id) column',
      selects.brazeCustomerId!,
      'matching.brazeCustomerId',
      undefined,
      pick('brazeCustomerId', 'Braze customer ID'),
    ),
    f.field('Phone column', selects.phone!, 'matching.phone'),
  ];
}

/**
 * Two exports writing one membership attribute in one workspace overwrite each other: the warning
 * naming the other exports on this connection that write one of `mine` ('' when none does).
 */
export function collisionMessage(others: any[], connectionId: string, mine: Set<string>): string {
  const clashes = others
    .filter((o) => o.connectionId && o.connectionId === connectionId)
    .flatMap((o) =>
      membershipAttributes(o)
        .filter((a) => mine.has(a))
        .map((a) => `“${a}” is also written by “${o.name}”`),
    );
  return clashes.length
    ? `${clashes.slice(0, 3).join('; ')}${clashes.length > 3 ? ` (and ${clashes.length - 3} more)` : ''} on this connection: two exports writing one attribute overwrite each other's membership. Set another attribute name under “Segment membership in Braze”.`
    : '';
}

/** Said above the form while there is no Braze connection to send through. */
export function noConnectionYet(me: Me): HTMLElement {
  return h(
    'p',
    { class: 'notice' },
    'No Braze connection yet: ',
    me.isAdmin
      ? h('a', { href: '#/connections' }, 'create one under Connections')
      : 'ask an administrator to create one and share it with contributors',
    ' first; the export sends through it.',
  );
}
