// The column finder of the export form: a search that narrows every column picker, and the columns
// of the chosen segments with their CDM type and up to three sample values (masked by the API as
// preview samples are) — what a column holds, seen before it is mapped; each matching picker shows
// its chosen column's samples too. The list is folded for a wide folder until a search is typed.
import { h, replace } from '../../dom';
import { input } from '../../forms';

export interface Column {
  name: string;
  dataType?: string;
  samples?: unknown[];
}

/** Columns shown open at once; a wider folder opens the list when a search is typed. */
const OPEN_UP_TO = 12;

export class ColumnFinder {
  readonly search = input({ type: 'search', id: 'column-search', autocomplete: 'off', placeholder: 'e.g. mail, phone, id' });
  private readonly count = h('p', { class: 'hint' });
  private readonly body = h('tbody');
  private readonly summary = h('summary');
  private readonly list = h(
    'details',
    { class: 'column-list' },
    this.summary,
    h(
      'table',
      { class: 'cards' },
      h('caption', { class: 'sr-only' }, 'Columns, their types and sample values'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, 'Column'),
          h('th', { scope: 'col' }, 'Type'),
          h('th', { scope: 'col' }, 'Sample values'),
        ),
      ),
      this.body,
    ),
  );
  readonly element = h(
    'div',
    { class: 'field' },
    h('label', { for: 'column-search' }, 'Find a column'),
    this.search,
    this.count,
    this.list,
  );

  /** Narrows the pickers (a picker's chosen column always stays) and the list to the columns whose name has the search. */
  update(columns: Column[], pickers: HTMLSelectElement[]): void {
    const typed = this.search.value.trim();
    const q = typed.toLowerCase();
    for (const picker of pickers)
      for (const option of picker.options)
        option.hidden = Boolean(q && option.value && !option.selected && !option.value.toLowerCase().includes(q));
    const shown = columns.filter((c) => !q || c.name.toLowerCase().includes(q));
    replace(this.count, q ? `${shown.length} of ${columns.length} columns match “${typed}”.` : '');
    if (q || columns.length <= OPEN_UP_TO) this.list.open = true;
    replace(this.summary, `Columns: types and sample values (masked) — ${shown.length} of ${columns.length}`);
    replace(
      this.body,
      ...shown.map((c) =>
        h(
          'tr',
          {},
          h('td', {}, c.name),
          h('td', { 'data-label': 'Type' }, c.dataType ?? 'text (no model.json)'),
          h('td', { 'data-label': 'Samples' }, c.samples?.length ? c.samples.map(String).join(', ') : '—'),
        ),
      ),
    );
  }
}

/** Below a column picker's field: the chosen column's samples, as the person picks. */
export function withSamples(field: HTMLElement, columns: Column[]): HTMLElement {
  const select = field.querySelector('select')!;
  const hint = h('p', { class: 'hint', id: `${select.id}-samples` });
  const show = () => {
    const samples = columns.find((c) => c.name === select.value)?.samples ?? [];
    replace(hint, samples.length ? `Samples (masked): ${samples.map(String).join(', ')}` : '');
  };
  select.addEventListener('change', show);
  show();
  select.setAttribute('aria-describedby', `${select.getAttribute('aria-describedby') ?? ''} ${hint.id}`.trim());
  field.append(hint);
  return field;
}

/** The columns of `segments` by name, in first-seen order, their samples merged (three at most). */
export function mergeColumns(segments: { columns: Column[] }[]): Column[] {
  const byName = new Map<string, Column>();
  for (const c of segments.flatMap((s) => s.columns)) {
    const seen = byName.get(c.name);
    if (!seen) byName.set(c.name, { ...c, samples: [...(c.samples ?? [])] });
    else for (const v of c.samples ?? []) if (seen.samples!.length < 3 && !seen.samples!.includes(v)) seen.samples!.push(v);
  }
  return [...byName.values()];
}
