// A profile of the bucket merged from its spilled rows, each row mapped and typed as its segment's
// table is (the columns model.json gives).
import type { ExportDefinition } from '../../exports/schema';
import type { LineObjectWriter } from '../profile/line-object';
import type { ObjectBytes } from '../thread/object-bytes';
import { mergePartials, type MergedProfile } from '../profile/merge';
import { spilledRowTyping, type PartialProfile, type RowMapper, type TableColumns } from '../profile/row-mapper';
import { decodeRow } from '../spill/spill-codec';
import type { SpilledProfiles } from '../spill/spilled-profiles';

export class SpilledMerge {
  /** Per segment index: how its spilled rows are mapped. */
  private readonly mappers: RowMapper[];
  /** Per segment index: its mapped columns' types (segments with the same map the same tokens alike). */
  private readonly typing: string[];
  /** Seeds each profile's rows digest with the columns' types: a type model.json changes makes the rows new. */
  readonly digestSeed: number;

  constructor(def: ExportDefinition, tableColumns: TableColumns) {
    ({ mappers: this.mappers, typing: this.typing, digestSeed: this.digestSeed } = spilledRowTyping(def, tableColumns));
  }

  /**
   * Writes profile p's object straight from its first row's bytes (with `lines`, as the next of
   * `objects`), when its rows all hold the same fields under one column typing and that row needs
   * nothing mapping from strings would change: false otherwise (then mergedOf).
   */
  writeAlike(rows: SpilledProfiles, p: number, lines: LineObjectWriter, objects: ObjectBytes): boolean {
    const alike = rows.segmentsIfAlike(p);
    if (alike === null || alike.some((s) => this.typing[s] !== this.typing[alike[0]!])) return false;
    return lines.writeInto(objects, rows.bytes, rows.firstRowStart(p), rows.firstRowEnd(p), this.mappers[alike[0]!]!, alike);
  }

  /**
   * Profile p merged from its spilled rows. When they all hold the same fields, under the same
   * column types, only the first is mapped: the others add nothing but their segments.
   */
  mergedOf(rows: SpilledProfiles, p: number): MergedProfile {
    const alike = rows.segmentsIfAlike(p);
    if (alike === null || alike.some((s) => this.typing[s] !== this.typing[alike[0]!]))
      return mergePartials(this.partialsOf(rows, p));
    const row = decodeRow(rows.firstRowOf(p));
    const merged = mergePartials([this.mappers[row.seg]!.partialOf(row.fields)]);
    merged.segments = alike;
    return merged;
  }

  /** Profile p's spilled rows, mapped and typed as its segments' tables are. */
  partialsOf(rows: SpilledProfiles, p: number): PartialProfile[] {
    return rows.rowsOf(p).map((line) => {
      const row = decodeRow(line);
      return this.mappers[row.seg]!.partialOf(row.fields);
    });
  }
}
