// The export's mapping checked against a table's columns: a table without the profile ID column, or
// a mapped column no exported segment has, stops the run before anything is sent.
import type { ExportDefinition } from '../../exports/schema';
import { RowMapper } from '../profile/row-mapper';

/** The run cannot go on (bad mapping…): the message is for the user. */
export class PartitionAborted extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PartitionAborted';
  }
}

/** Mapping fields some table has a column for, and those some table lacks (field → column). */
export interface ColumnsSeen {
  found: Set<string>;
  missing: Map<string, string>;
}

/** A table's row mapper; a table without the profile ID column stops the run. */
export function checkedMapper(
  def: ExportDefinition,
  segment: string,
  segIndex: number,
  columns: { name: string; dataType?: string }[],
  seen: ColumnsSeen,
): RowMapper {
  const mapper = new RowMapper(def, segIndex, columns);
  if (mapper.problems.some((p) => p.field === 'matching.profileId')) {
    throw new PartitionAborted(
      `Segment "${segment}" has no column "${def.matching.profileId}" (matching.profileId); its columns are: ${columns.map((c) => c.name).join(', ')}`,
    );
  }
  for (const p of mapper.problems) seen.missing.set(p.field, p.column);
  for (const f of mapper.mappedFields) seen.found.add(f);
  return mapper;
}

/** Mapped columns no exported segment has: the run cannot go on. */
export function checkMappedColumns(seen: ColumnsSeen): void {
  const unknown = [...seen.missing].filter(([field]) => !seen.found.has(field));
  if (unknown.length) {
    throw new PartitionAborted(
      `Unknown column(s) in the mapping: ${unknown.map(([f, c]) => `${f} → "${c}"`).join(', ')}; no exported segment has them`,
    );
  }
}
