// CDM data types (model.json) → the JSON values Braze gets. Empty text means "no value".
export type CdmType = string;

export type Coerced = { ok: true; value: string | number | boolean | null } | { ok: false; reason: string };

const TRUE = new Set(['true', '1', 'yes', 'y']);
const FALSE = new Set(['false', '0', 'no', 'n']);

export function coerce(raw: string, dataType: CdmType | undefined): Coerced {
  return coercerFor(dataType)(raw);
}

const NOT_TEXT = new Set([
  'int64',
  'int32',
  'integer',
  'double',
  'decimal',
  'float',
  'boolean',
  'datetime',
  'datetimeoffset',
  'date',
]);

/** Columns of this type are sent as their (trimmed) text. */
export const isTextType = (dataType: CdmType | undefined) => !NOT_TEXT.has((dataType ?? 'string').toLowerCase());

/** Whether columns of this type are sent as JSON numbers: whole ones (`integer`), any (`decimal`), or not (null). */
export function numberKind(dataType: CdmType | undefined): 'integer' | 'decimal' | null {
  const type = (dataType ?? 'string').toLowerCase();
  if (type === 'int64' || type === 'int32' || type === 'integer') return 'integer';
  return type === 'double' || type === 'decimal' || type === 'float' ? 'decimal' : null;
}

/** The coercion for one column's type, chosen once per column rather than once per value. */
export function coercerFor(dataType: CdmType | undefined): (raw: string) => Coerced {
  const type = (dataType ?? 'string').toLowerCase();
  return (raw) => {
    const text = raw.trim();
    return text === '' ? { ok: true, value: null } : coerceText(text, type);
  };
}

function coerceText(text: string, type: string): Coerced {
  switch (type) {
    case 'int64':
    case 'int32':
    case 'integer': {
      if (!/^[-+]?\d+$/.test(text)) return { ok: false, reason: `"${text.slice(0, 40)}" is not an integer` };
      const n = Number(text);
      return Number.isSafeInteger(n) ? { ok: true, value: n } : { ok: false, reason: 'integer is too large for a JSON number' };
    }
    case 'double':
    case 'decimal':
    case 'float': {
      const n = Number(text);
      return Number.isFinite(n) && /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)
        ? { ok: true, value: n }
        : { ok: false, reason: `"${text.slice(0, 40)}" is not a number` };
    }
    case 'boolean': {
      const t = text.toLowerCase();
      if (TRUE.has(t)) return { ok: true, value: true };
      if (FALSE.has(t)) return { ok: true, value: false };
      return { ok: false, reason: `"${text.slice(0, 40)}" is not a boolean` };
    }
    case 'datetime':
    case 'datetimeoffset':
    case 'date': {
      // ISO 8601; some writers put a space instead of `T`. No zone means UTC.
      let iso = text.replace(/^(\d{4}-\d{2}-\d{2}) (\d)/, '$1T$2');
      if (/T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(iso)) iso += 'Z';
      const ms = Date.parse(iso);
      return Number.isNaN(ms) || !/^\d{4}-\d{2}-\d{2}/.test(iso)
        ? { ok: false, reason: `"${text.slice(0, 40)}" is not an ISO 8601 date/time` }
        : { ok: true, value: new Date(ms).toISOString() };
    }
    default:
      return { ok: true, value: text };
  }
}
