// Partials of one profile merged across the export's segments: one profile, one attributes object.
import type { PartialProfile } from './row-mapper';

export interface MergedProfile {
  key: string;
  ext?: string;
  alias?: string;
  email?: string;
  phone?: string;
  attrs: Record<string, string | number | boolean>;
  segments: number[];
  omitted: Record<string, string>;
}

/** Merges a profile's partials: first value wins in the export's segment order, then row order. */
export function mergePartials(partials: PartialProfile[]): MergedProfile {
  if (partials.length === 1) {
    // Most profiles come from one row: no merging to do.
    const p = partials[0]!;
    return {
      key: p.key,
      ext: p.ext,
      alias: p.ext ? undefined : p.alias,
      email: p.email,
      phone: p.phone,
      attrs: p.attrs,
      segments: [p.seg],
      omitted: p.omitted ?? {},
    };
  }
  let ordered = true;
  for (let i = 1; i < partials.length; i++) if (partials[i]!.seg < partials[i - 1]!.seg) ordered = false;
  const sorted = ordered ? partials : [...partials].sort((a, b) => a.seg - b.seg); // stable: row order stays
  const first = sorted[0]!;
  const merged: MergedProfile = { key: first.key, attrs: {}, segments: [], omitted: {} };
  let anyOmitted = false;
  for (const p of sorted) {
    if (!merged.segments.includes(p.seg)) merged.segments.push(p.seg);
    if (merged.ext === undefined && p.ext) merged.ext = p.ext;
    if (merged.email === undefined && p.email) merged.email = p.email;
    if (merged.phone === undefined && p.phone) merged.phone = p.phone;
    for (const k in p.attrs) if (!(k in merged.attrs)) merged.attrs[k] = p.attrs[k]!;
    if (p.omitted) {
      anyOmitted = true;
      for (const k in p.omitted) if (!(k in merged.omitted)) merged.omitted[k] = p.omitted[k]!;
    }
  }
  // A value found in any row wins over "invalid" in another.
  if (anyOmitted) {
    for (const k of Object.keys(merged.omitted)) {
      if (k in merged.attrs || (k === 'email' && merged.email) || (k === 'phone' && merged.phone)) delete merged.omitted[k];
    }
  }
  if (!merged.ext) merged.alias = first.alias ?? sorted.find((p) => p.alias)?.alias;
  return merged;
}

/** How a profile is addressed in Braze, as kept in the sync state: `e:<external_id>` or `a:<alias_name>`. */
export const identityOf = (p: { ext?: string; alias?: string }) => (p.ext ? `e:${p.ext}` : `a:${p.alias}`);
