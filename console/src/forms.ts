// Form fields with their labels and error slots. An API 400 lists issues by path
// (`matching.email`, `segments.0`…): each shows next to the field whose path is its longest
// prefix; one that matches no field shows at the top of the form.
import type { ApiError, FieldIssue } from './api';
import { h, replace, uid, type Child } from './dom';

type Control = HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement | HTMLFieldSetElement;

export class FormErrors {
  private readonly fields = new Map<string, { control: Control; error: HTMLElement }>();
  readonly summary = h('div', { class: 'form-errors', role: 'alert' });

  /** A labelled field; `path` is the API field it edits. */
  field(label: string, control: Control, path: string, hint?: string): HTMLElement {
    const id = control.id || (control.id = uid('f'));
    const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
    const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
    control.setAttribute('aria-describedby', [hintEl?.id, error.id].filter(Boolean).join(' '));
    this.fields.set(path, { control, error });
    const labelEl = control instanceof HTMLFieldSetElement ? null : h('label', { for: id }, label);
    return h('div', { class: 'field', 'data-path': path }, labelEl, control, hintEl, error);
  }

  clear(): void {
    replace(this.summary);
    for (const { control, error } of this.fields.values()) {
      control.removeAttribute('aria-invalid');
      error.hidden = true;
      replace(error);
    }
  }

  /** Shows an API error: its issues by field, anything else in the summary. */
  show(error: ApiError): void {
    this.clear();
    const unplaced: FieldIssue[] = [];
    for (const issue of error.issues) {
      const target = this.fieldFor(issue.path);
      if (!target) {
        unplaced.push(issue);
        continue;
      }
      target.control.setAttribute('aria-invalid', 'true');
      target.error.hidden = false;
      target.error.append(document.createTextNode(`${target.error.textContent ? ' ' : ''}${issue.message}`));
    }
    if (error.issues.length === 0 || unplaced.length > 0) {
      replace(this.summary, h('p', {}, error.message), ...unplaced.map((i) => h('p', {}, `${i.path}: ${i.message}`)));
    }
    const first = [...this.fields.values()].find((f) => f.control.getAttribute('aria-invalid'));
    (first?.control ?? this.summary).focus?.();
  }

  private fieldFor(path: string) {
    for (let p = path; p; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
      const f = this.fields.get(p);
      if (f) return f;
    }
    return undefined;
  }
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
