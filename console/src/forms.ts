// Form fields with their labels and error slots. An API 400 lists issues by path
// (`matching.email`, `segments.0`…): each shows next to the field whose path is its longest
// prefix; one that matches no field shows at the top of the form. Checks run in the page too, so
// every missing field is named in one round, and a field's message goes as soon as it is fixed.
import type { ApiError, FieldIssue } from './api';
import { h, replace, uid, type Child } from './dom';

type Control = HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement | HTMLFieldSetElement;
/** A check run in the page: a human message when the value is not right, else null. */
export type Check = () => string | null;

export class FormErrors {
  private readonly fields = new Map<string, { control: Control; error: HTMLElement; check?: Check }>();
  readonly summary = h('div', { class: 'form-errors', role: 'alert' });

  /** A labelled field; `path` is the API field it edits; `check` runs as the person types and on submit. */
  field(label: string, control: Control, path: string, hint?: string, check?: Check): HTMLElement {
    const id = control.id || (control.id = uid('f'));
    const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
    const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
    const described = [hintEl?.id, error.id].filter(Boolean).join(' ');
    control.setAttribute('aria-describedby', described);
    this.fields.set(path, { control, error, check });
    // Fixing a field clears its message (or shows the page's own check, as you type).
    const recheck = () => {
      if (!control.getAttribute('aria-invalid')) return;
      this.set(path, check?.() ?? null);
    };
    control.addEventListener('input', recheck);
    control.addEventListener('change', recheck);
    // Leaving a filled-in field checks its format at once (an empty one waits for submit).
    control.addEventListener('focusout', () => {
      const value = 'value' in control ? control.value : '';
      if (check && value.trim() && !control.getAttribute('aria-invalid')) this.set(path, check());
    });
    const labelEl = control instanceof HTMLFieldSetElement ? null : h('label', { for: id }, label);
    return h('div', { class: 'field', 'data-path': path }, labelEl, control, hintEl, error);
  }

  /** Shows (or, with null, clears) one field's message. */
  set(path: string, message: string | null): void {
    const f = this.fields.get(path);
    if (!f) return;
    if (message) f.control.setAttribute('aria-invalid', 'true');
    else f.control.removeAttribute('aria-invalid');
    f.error.hidden = !message;
    replace(f.error, message);
  }

  clear(): void {
    replace(this.summary);
    for (const path of this.fields.keys()) this.set(path, null);
  }

  /** Runs every field's own check; shows all messages at once and focuses the first. True when all pass. */
  checkAll(): boolean {
    this.clear();
    let ok = true;
    for (const [path, f] of this.fields) {
      const message = f.check?.() ?? null;
      if (message) {
        ok = false;
        this.set(path, message);
      }
    }
    if (!ok) this.focusFirst();
    return ok;
  }

  /** Shows an API error: its issues by field, anything else in the summary. */
  show(error: ApiError): void {
    this.clear();
    const unplaced: FieldIssue[] = [];
    const byField = new Map<string, string[]>();
    for (const issue of error.issues) {
      const target = this.pathFor(issue.path);
      if (!target) unplaced.push(issue);
      else byField.set(target, [...(byField.get(target) ?? []), human(issue)]);
    }
    for (const [path, messages] of byField) this.set(path, messages.join(' '));
    if (error.issues.length === 0 || unplaced.length > 0) {
      replace(this.summary, h('p', {}, error.message), ...unplaced.map((i) => h('p', {}, `${i.path}: ${human(i)}`)));
    }
    this.focusFirst();
  }

  /** Focus on the first field in error (a fieldset's first control), else the summary. */
  private focusFirst(): void {
    const first = [...this.fields.values()].find((f) => f.control.getAttribute('aria-invalid'));
    let target: HTMLElement | null | undefined = first?.control;
    if (target instanceof HTMLFieldSetElement) target = target.querySelector<HTMLElement>('input, select, textarea, button');
    if (target) target.focus();
    else {
      this.summary.tabIndex = -1;
      this.summary.focus();
    }
  }

  private pathFor(path: string) {
    for (let p = path; p; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') if (this.fields.has(p)) return p;
    return undefined;
  }
}

/** Validation text as people read it ("Required", not "Invalid input: expected string, received undefined"). */
function human(issue: FieldIssue): string {
  const m = issue.message;
  if (/expected string, received undefined|received undefined/i.test(m)) return 'Required.';
  if (/too small|at least 1 character|must not be empty/i.test(m) && !/segment/i.test(m)) return 'Required.';
  return m.charAt(0).toUpperCase() + m.slice(1);
}

export const input = (props: Record<string, string | boolean | undefined> = {}) => h('input', { type: 'text', ...props });

export function select(
  options: { value: string; label: string }[],
  selected: string | undefined,
  props: Record<string, string | boolean | undefined> = {},
): HTMLSelectElement {
  return h('select', props, ...options.map((o) => h('option', { value: o.value, selected: o.value === selected }, o.label)));
}

export function checkbox(
  label: Child,
  checked: boolean,
  props: Record<string, string | boolean | undefined> = {},
): { box: HTMLInputElement; row: HTMLElement } {
  const box = h('input', { type: 'checkbox', id: uid('c'), checked, ...props });
  return { box, row: h('div', { class: 'check' }, box, h('label', { for: box.id }, label)) };
}

/** Runs an action from a button: disabled while it runs, errors shown where the caller says. */
export async function busy<T>(button: HTMLButtonElement, action: () => Promise<T>): Promise<T | undefined> {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

/** Required-field check. */
export const required =
  (control: { value: string }, what: string): Check =>
  () =>
    control.value.trim() ? null : `${what} is required.`;
