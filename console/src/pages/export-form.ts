// Creating or editing an export. Source discovery fills the choices: pick the CI export folder,
// and its segments and their columns (from model.json, or the header rows) become checkboxes and
// dropdowns, each column shown with its type and masked sample values. The Braze segment is picked
// from the workspace where the key may list segments. "Preview draft" previews it before saving.
import { api, ApiError, type Me } from '../api';
import { bytes, h, notice, replace, statusLine } from '../dom';
import { checkbox, FormErrors, input, required, select } from '../forms';
import {
  brazeSegmentField,
  collisionMessage,
  connectionPicker,
  folderPicker,
  matchingPickers,
  noConnectionYet,
  membershipControls,
  NONE,
  type Listed,
} from './export/form-controls';
import { ColumnFinder, mergeColumns, withSamples, type Column } from './export/column-list';
import { draftPreviewButton } from './export/draft-preview';

interface Segment {
  name: string;
  columns: Column[];
  partitions: number;
  sizeBytes: number | null;
}

export async function exportFormPage(main: HTMLElement, me: Me, id?: string): Promise<void> {
  const [connections, sources, existing, others] = await Promise.all([
    api('GET', '/api/connections').then((r) => r.value as any[]),
    api('GET', '/api/sources').then((r) => r as { folders: { container: string; folder: string }[]; truncated: boolean }),
    id ? api('GET', `/api/exports/${id}`) : Promise.resolve(null),
    api('GET', '/api/exports').then((r) => (r.value as any[]).filter((x) => x.id !== id)),
  ]);
  const form = new ExportForm(connections, sources.folders, existing, others);
  // Segments, columns and Braze segments first: a form shown half-loaded could be saved half-empty.
  await form.start();
  replace(
    main,
    h('h1', { tabindex: '-1' }, existing ? `Edit ${existing.name}` : 'New export'),
    sources.truncated ? notice('Only the first CI export folders are listed.') : null,
    connections.length === 0 ? noConnectionYet(me) : null,
    form.element,
    statusLine,
    form.previewSlot,
  );
}

class ExportForm {
  readonly element: HTMLFormElement;
  private readonly errors = new FormErrors();
  private readonly name: HTMLInputElement;
  private readonly connection: HTMLSelectElement;
  private readonly folder: HTMLSelectElement;
  private readonly segmentsBox = h('fieldset', { class: 'segments' }, h('legend', {}, 'CI segments'));
  private readonly mappingBox = h('div', { class: 'mapping' });
  private readonly columnFinder = new ColumnFinder();
  /** Where "Preview draft" shows what the definition would do. */
  readonly previewSlot = h('div');
  private readonly brazeSegmentSlot = h('div');
  private readonly membershipFormat: HTMLSelectElement;
  private readonly membershipAttribute: HTMLInputElement;
  private readonly booleanPrefix: HTMLInputElement;
  private readonly scheduled: ReturnType<typeof checkbox>;
  private readonly cron: HTMLInputElement;
  private segments: Segment[] = [];
  private loads = 0;
  private segmentBoxes: { name: string; box: HTMLInputElement; row: HTMLElement }[] = [];
  private mappingSelects: Record<string, HTMLSelectElement> = {};
  private attributeRows: { name: HTMLInputElement; column: HTMLSelectElement; row: HTMLElement }[] = [];
  private readonly attributeList = h('div', { class: 'attributes' });
  private brazeSegment: () => string = () => '';
  private readonly collision = h('p', { class: 'warning', hidden: true });

  constructor(
    private readonly connections: any[],
    private readonly folders: { container: string; folder: string }[],
    private readonly existing: any | null,
    private readonly others: any[],
  ) {
    const e = existing;
    const detached = Boolean(e && !e.connectionId);
    this.name = input({ required: true, value: e?.name ?? '', autocomplete: 'off' });
    this.connection = connectionPicker(connections, e, detached);
    this.folder = folderPicker(folders, e);
    ({ format: this.membershipFormat, attribute: this.membershipAttribute, prefix: this.booleanPrefix } = membershipControls(e));
    this.scheduled = checkbox('Run on every scheduled refresh that finds a newer snapshot', e?.schedule?.enabled ?? true);
    this.cron = input({
      value: e?.schedule?.cron ?? '',
      placeholder: 'optional NCRONTAB, UTC, e.g. 0 0 6 * * *',
      autocomplete: 'off',
    });
    this.listen();
    const addAttribute = h('button', { type: 'button' }, 'Add attribute');
    addAttribute.addEventListener('click', () => this.addAttributeRow('', ''));
    this.element = h(
      'form',
      { class: 'card', novalidate: true },
      this.errors.summary,
      ...this.sourceFields(detached),
      ...this.matchingFields(addAttribute),
      ...this.membershipAndSchedule(),
    );
    this.element.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.save();
    });
  }

  /** Keeps the collision warning, the Braze segments, the CI segments and the column filter up to date. */
  private listen(): void {
    this.connection.addEventListener('change', () => void this.loadBrazeSegments().then(() => this.checkCollision()));
    for (const control of [this.membershipFormat, this.membershipAttribute, this.booleanPrefix])
      control.addEventListener('input', () => this.checkCollision());
    this.membershipFormat.addEventListener('change', () => this.checkCollision());
    this.segmentsBox.addEventListener('change', () => this.checkCollision());
    this.folder.addEventListener('change', () => void this.loadSegments());
    this.columnFinder.search.addEventListener('input', () => this.filterColumns());
  }

  /** Name, connection, Braze segment, CI export folder and CI segments. */
  private sourceFields(detached: boolean): HTMLElement[] {
    const f = this.errors;
    return [
      f.field('Export name', this.name, 'name', undefined, required(this.name, 'A name')),
      f.field(
        'Braze connection',
        this.connection,
        'connectionId',
        detached ? 'Detached: it stays so unless you pick a connection, which attaches it again (active).' : undefined,
        () =>
          this.connection.value
            ? null
            : detached
              ? 'This export is detached: its changes can only be saved by attaching it to a connection. Pick one to attach it, or cancel to leave it detached.'
              : 'Choose the Braze connection to send to.',
      ),
      this.brazeSegmentSlot,
      f.field(
        'CI export folder (holds model.json)',
        this.folder,
        'source',
        this.folders.length
          ? undefined
          : 'None found yet. Customer Insights writes one per export: in CI, Data → Exports → add an Azure Blob Storage export of your segments to the storage account this app reads; after its next refresh the folder (with model.json) shows here.',
        () => (this.folder.value ? null : 'Choose the CI export folder (where CI writes model.json).'),
      ),
      f.field('CI segments', this.segmentsBox, 'segments', undefined, () =>
        this.segmentBoxes.some((b) => b.box.checked) ? null : 'Pick at least one CI segment.',
      ),
    ];
  }

  /** The column finder, the matching pickers and the extra attributes. */
  private matchingFields(addAttribute: HTMLElement): HTMLElement[] {
    return [
      h('h2', {}, 'Data matching'),
      this.columnFinder.element,
      this.mappingBox,
      this.errors.field(
        'Extra attributes',
        h('fieldset', {}, h('legend', {}, 'Braze attribute ← CI column'), this.attributeList, addAttribute),
        'matching.attributes',
      ),
    ];
  }

  /** Segment membership in Braze, the schedule, and the submit / cancel buttons. */
  private membershipAndSchedule(): HTMLElement[] {
    const f = this.errors;
    return [
      h('h2', {}, 'Segment membership in Braze'),
      f.field('Format', this.membershipFormat, 'membership.format'),
      f.field('Attribute (list format)', this.membershipAttribute, 'membership.attribute'),
      f.field('Attribute prefix (boolean format)', this.booleanPrefix, 'membership.booleanPrefix'),
      this.collision,
      h('h2', {}, 'Schedule'),
      this.scheduled.row,
      f.field('Only at these times', this.cron, 'schedule.cron'),
      h(
        'div',
        { class: 'buttons' },
        h('button', { type: 'submit' }, this.existing ? 'Save changes' : 'Create export'),
        draftPreviewButton(this.errors, () => this.body(), this.existing?.id ?? null, this.previewSlot, this.existing?.etag),
        h('a', { href: this.existing ? `#/exports/${this.existing.id}` : '#/exports' }, 'Cancel'),
      ),
    ];
  }

  async start(): Promise<void> {
    await Promise.all([this.loadSegments(), this.loadBrazeSegments()]);
    this.checkCollision();
  }

  private async loadSegments(): Promise<void> {
    // Only the newest folder choice answers; until it does, the segments listed (and boxes checked) stay.
    const load = ++this.loads;
    let segments: Segment[] = [];
    if (this.folder.value) {
      const [container, folder] = JSON.parse(this.folder.value) as [string, string];
      try {
        const query = `container=${encodeURIComponent(container)}&folder=${encodeURIComponent(folder)}`;
        segments = (await api('GET', `/api/sources/segments?${query}`)).segments;
      } catch (e) {
        if (load !== this.loads) return;
        [this.segments, this.segmentBoxes] = [[], []];
        replace(this.segmentsBox, h('legend', {}, 'CI segments'), notice((e as Error).message, 'error'));
        return;
      }
    }
    if (load !== this.loads) return;
    this.segments = segments;
    // Checked names carry over only where the new folder has them; none there: the default.
    const checked = this.segmentBoxes.filter((b) => b.box.checked && segments.some((s) => s.name === b.name)).map((b) => b.name);
    const chosen = new Set<string>(
      checked.length ? checked : (this.existing?.segments ?? (segments.length === 1 ? [segments[0]!.name] : [])),
    );
    this.segmentBoxes = this.segments.map((s) => {
      const c = checkbox(
        `${s.name} — ${s.columns.length} columns, ${s.partitions} partition(s), ${bytes(s.sizeBytes)}`,
        chosen.has(s.name),
        { value: s.name },
      );
      c.box.addEventListener('change', () => this.renderMapping());
      return { name: s.name, box: c.box, row: c.row };
    });
    replace(
      this.segmentsBox,
      h('legend', {}, 'CI segments'),
      ...(this.segments.length
        ? this.segmentBoxes.map((b) => b.row)
        : [h('p', {}, 'Pick a CI export folder to list its segments.')]),
    );
    this.renderMapping();
  }

  /** A column as the pickers show it: its name and CDM type. */
  private columnLabel(name: string): string {
    const type = this.segments.flatMap((s) => s.columns).find((c) => c.name === name)?.dataType;
    return type ? `${name} · ${type}` : name;
  }

  /** Narrows every column picker to the columns whose name has the text (a picker's chosen column always stays). */
  private filterColumns(): void {
    this.columnFinder.update(this.columnInfo(), [
      ...Object.values(this.mappingSelects),
      ...this.attributeRows.map((r) => r.column),
    ]);
  }

  /** Columns of the chosen segments (all of them while none is chosen), in first-seen order, with types and samples. */
  private columnInfo(): Column[] {
    const picked = this.segmentBoxes.filter((b) => b.box.checked).map((b) => b.name);
    return mergeColumns(this.segments.filter((s) => picked.length === 0 || picked.includes(s.name)));
  }

  private readonly columns = (): string[] => this.columnInfo().map((c) => c.name);

  private renderMapping(): void {
    const m = this.existing?.matching ?? {};
    const previous = Object.fromEntries(Object.entries(this.mappingSelects).map(([k, s]) => [k, s.value]));
    const columns = this.columns();
    const options = (optional: boolean) => [
      ...(optional ? [{ value: NONE, label: '— none —' }] : [{ value: NONE, label: '— choose a column —' }]),
      ...columns.map((c) => ({ value: c, label: this.columnLabel(c) })),
    ];
    const guess = (key: string, pattern: RegExp) => previous[key] || m[key] || columns.find((c) => pattern.test(c)) || NONE;
    this.mappingSelects = {
      profileId: select(options(false), guess('profileId', /^customerid$/i)),
      email: select(options(false), guess('email', /email/i)),
      brazeCustomerId: select(options(false), guess('brazeCustomerId', /braze|external/i)),
      phone: select(options(true), guess('phone', /phone/i)),
    };
    const info = this.columnInfo();
    replace(this.mappingBox, ...matchingPickers(this.errors, this.mappingSelects).map((f) => withSamples(f, info)));
    const rows = this.attributeRows.length
      ? this.attributeRows.map((r) => [r.name.value, r.column.value] as const)
      : Object.entries((m.attributes ?? {}) as Record<string, string>);
    this.attributeRows = [];
    replace(this.attributeList);
    for (const [name, column] of rows) this.addAttributeRow(name, column);
    this.filterColumns();
  }

  private addAttributeRow(name: string, column: string): void {
    const nameInput = input({
      value: name,
      'aria-label': 'Braze attribute name',
      placeholder: 'Braze attribute, e.g. first_name',
      autocomplete: 'off',
    });
    const columnSelect = select(
      [{ value: NONE, label: '— choose a column —' }, ...this.columns().map((c) => ({ value: c, label: this.columnLabel(c) }))],
      column,
      { 'aria-label': 'CI column' },
    );
    const remove = h('button', { type: 'button', 'aria-label': 'Remove this attribute' }, 'Remove');
    const row = h('div', { class: 'attribute-row' }, nameInput, h('span', { 'aria-hidden': 'true' }, '←'), columnSelect, remove);
    const entry = { name: nameInput, column: columnSelect, row };
    remove.addEventListener('click', () => {
      this.attributeRows = this.attributeRows.filter((r) => r !== entry);
      row.remove();
    });
    this.attributeRows.push(entry);
    this.attributeList.append(row);
  }

  /** The workspace's segments where the key may list them; a free-text identifier otherwise. */
  private async loadBrazeSegments(): Promise<void> {
    const current = this.brazeSegment() || this.existing?.brazeSegmentApiId || '';
    let listed: Listed = {
      available: false,
      reason: 'Choose a connection first.',
    };
    if (this.connection.value) {
      try {
        listed = await api('GET', `/api/connections/${this.connection.value}/segments`);
      } catch (e) {
        listed = { available: false, reason: (e as Error).message };
      }
    }
    this.brazeSegment = brazeSegmentField(this.brazeSegmentSlot, this.errors, listed, current, () => this.checkCollision());
  }

  private body(): Record<string, unknown> {
    const [container, folder] = this.folder.value ? (JSON.parse(this.folder.value) as [string, string]) : ['', ''];
    const pick = (key: string) => this.mappingSelects[key]?.value || undefined;
    const attributes = Object.fromEntries(
      this.attributeRows.filter((r) => r.name.value.trim() || r.column.value).map((r) => [r.name.value.trim(), r.column.value]),
    );
    return {
      name: this.name.value,
      // A detached export left without a connection is not attached behind the person's back.
      ...(this.connection.value ? { connectionId: this.connection.value } : {}),
      brazeSegmentApiId: this.brazeSegment(),
      source: { container, folder },
      segments: this.segmentBoxes.filter((b) => b.box.checked).map((b) => b.name),
      matching: {
        profileId: pick('profileId') ?? '',
        email: pick('email') ?? '',
        brazeCustomerId: pick('brazeCustomerId') ?? '',
        ...(pick('phone') ? { phone: pick('phone') } : {}),
        attributes,
      },
      membership: {
        format: this.membershipFormat.value,
        booleanPrefix: this.booleanPrefix.value,
        ...(this.membershipAttribute.value.trim() ? { attribute: this.membershipAttribute.value.trim() } : {}),
      },
      schedule: { enabled: this.scheduled.box.checked, ...(this.cron.value.trim() ? { cron: this.cron.value.trim() } : {}) },
    };
  }

  /** The membership attribute(s) this form would write. */
  private attributes(): string[] {
    if (this.membershipFormat.value === 'boolean')
      return this.segmentBoxes.filter((b) => b.box.checked).map((b) => `${this.booleanPrefix.value.trim()}${b.name}`);
    const a = this.membershipAttribute.value.trim() || this.brazeSegment().trim();
    return a ? [a] : [];
  }

  /** Two exports writing one membership attribute in one workspace overwrite each other: say so. */
  private checkCollision(): void {
    const mine = new Set(this.attributes());
    const message = collisionMessage(this.others, this.connection.value, mine);
    this.collision.hidden = message === '';
    replace(this.collision, message);
  }

  private async save(): Promise<void> {
    if (!this.errors.checkAll()) return;
    try {
      const saved = this.existing
        ? await api('PATCH', `/api/exports/${this.existing.id}`, this.body(), { 'If-Match': this.existing.etag })
        : await api('POST', '/api/exports', this.body());
      location.hash = `#/exports/${saved.id}`;
    } catch (e) {
      if (e instanceof ApiError && e.status === 412)
        this.errors.show(
          new ApiError(
            412,
            'This export changed since you opened it (someone saved it meanwhile), so your changes were not saved. Reload the page to see the current version, then make your changes again.',
          ),
        );
      else if (e instanceof ApiError) this.errors.show(e);
      else this.errors.show(new ApiError(0, (e as Error).message));
    }
  }
}
