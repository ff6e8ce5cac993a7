// Building the page: every text goes in as a text node (never as HTML), so a segment or display
// name like `<img src=x onerror=…>` shows as those characters and runs nothing.
export type Child = Node | string | number | null | undefined | false;
type Props = Record<string, string | number | boolean | null | undefined | ((event: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function') el.addEventListener(key.replace(/^on/, '').toLowerCase(), value);
    else if (key === 'value' && 'value' in el) (el as HTMLInputElement).value = String(value);
    else if (key === 'checked' && el instanceof HTMLInputElement) el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

let ids = 0;
export const uid = (prefix: string) => `${prefix}-${++ids}`;

export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export const num = (n: number | null | undefined) => (n ?? 0).toLocaleString();

/** A duration in words: "45 s", "3 min 20 s", "2 h 5 min". */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (seconds < 1) return 'under a second';
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

/** Seconds between two ISO times (to now when the end is missing). */
export const between = (from?: string | null, to?: string | null) =>
  from ? ((to ? Date.parse(to) : Date.now()) - Date.parse(from)) / 1000 : null;

export function bytes(n: number | null): string {
  if (n === null) return 'size unknown';
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 ** 2).toFixed(1)} MB`;
}

/** A status as a labelled badge (the word is always there; colour only adds to it). */
export const badge = (status: string) =>
  h('span', { class: `badge status-${status.replace(/[^a-z_]/g, '')}` }, status.replace(/_/g, ' '));

/** A message on the page. Errors are alerts; anything else is announced through the status line. */
export function notice(text: string, kind: 'info' | 'error' = 'info'): HTMLElement {
  return h('p', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : null }, text);
}

/**
 * The page's one polite status line: pages place it once, and every change worth hearing (a run
 * queued, a figure that moved a phase, an outcome) goes through `say`.
 */
export const statusLine = h('p', { id: 'status-line', class: 'status-line', role: 'status', 'aria-live': 'polite' });
export function say(text: string, shown = true): void {
  // Heard but not shown when the page shows the same words elsewhere.
  statusLine.classList.toggle('sr-only', !shown);
  if (statusLine.textContent !== text) statusLine.textContent = text;
}

/** A message the next page says (the list, after a delete). */
let flash = '';
export const setFlash = (text: string) => void (flash = text);
export function takeFlash(): string {
  const f = flash;
  flash = '';
  return f;
}

/**
 * A modal question (a native <dialog>: focus is trapped and Escape cancels). Resolves with the
 * chosen button's value, or null when cancelled.
 */
export function ask(
  title: string,
  body: Child[],
  buttons: { label: string; value: string; danger?: boolean }[],
): Promise<string | null> {
  const titleId = uid('dlg');
  const dialog = h('dialog', { 'aria-labelledby': titleId, class: 'dialog' });
  const opener = document.activeElement as HTMLElement | null;
  return new Promise((resolve) => {
    const close = (value: string | null) => {
      dialog.close();
      dialog.remove();
      if (opener?.isConnected) opener.focus();
      resolve(value);
    };
    append(dialog, [
      h('h2', { id: titleId }, title),
      ...body,
      h(
        'div',
        { class: 'buttons' },
        ...buttons.map((b) =>
          h('button', { type: 'button', class: b.danger ? 'danger' : 'primary', onclick: () => close(b.value) }, b.label),
        ),
        h('button', { type: 'button', onclick: () => close(null) }, 'Cancel'),
      ),
    ]);
    dialog.addEventListener('cancel', (e) => {
      e.preventDefault();
      close(null);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** A button that copies a text, saying so in the status line. */
export function copyButton(label: string, text: () => string): HTMLButtonElement {
  return h(
    'button',
    {
      type: 'button',
      onclick: () =>
        void navigator.clipboard.writeText(text()).then(
          () => say('Copied to the clipboard.'),
          () => say('Could not copy: select the text and copy it.'),
        ),
    },
    label,
  );
}
