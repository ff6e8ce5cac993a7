// The export definition: what users send to POST/PATCH /api/exports, field names as in DESIGN.md §4.
import { z } from 'zod';
import { ncrontabError } from '../schedule';

const column = z.string().trim().min(1, 'must name a column').max(256);
/** Keys of an attributes object that say which profile it is, or how to treat it: never an attribute of ours. */
export const BRAZE_IDENTIFIER_KEYS = [
  'external_id',
  'user_alias',
  'braze_id',
  '_update_existing_only',
  'push_token_import',
  '_merge_objects',
];
/**
 * Standard profile fields of Braze's user attributes object (braze.com/docs/api/objects_filters/
 * user_attributes_object, "Braze user profile fields"). A mapped attribute may set one of them
 * (first_name, country…); the membership attribute must never be one: clearing it for a leaver
 * would clear the profile field.
 */
export const BRAZE_STANDARD_FIELDS = [
  'country',
  'current_location',
  'date_of_first_session',
  'date_of_last_session',
  'dob',
  'email',
  'email_subscribe',
  'email_open_tracking_disabled',
  'email_click_tracking_disabled',
  'facebook',
  'first_name',
  'gender',
  'home_city',
  'image_url',
  'language',
  'last_name',
  'marked_email_as_spam_at',
  'phone',
  'push_subscribe',
  'push_tokens',
  'time_zone',
  'twitter',
  'subscription_groups',
];
const RESERVED_ATTRIBUTES = [...BRAZE_IDENTIFIER_KEYS, 'email', 'phone', 'push_token'];

const brazeAttributeName = z
  .string()
  .trim()
  .min(1)
  .max(255)
  .refine((n) => !n.startsWith('$'), 'Braze attribute names cannot start with $');

export const MatchingSchema = z.strictObject({
  profileId: column.default('CustomerId'),
  email: column,
  brazeCustomerId: column,
  phone: column.optional(),
  attributes: z
    .record(brazeAttributeName, column)
    .default({})
    .refine((m) => Object.keys(m).length <= 100, 'at most 100 mapped attributes')
    .superRefine((m, ctx) => {
      for (const name of Object.keys(m)) {
        if (RESERVED_ATTRIBUTES.includes(name)) {
          ctx.addIssue({
            code: 'custom',
            path: [name],
            message: `"${name}" is set by the export itself; map it with matching.${name === 'phone' ? 'phone' : name === 'email' ? 'email' : 'brazeCustomerId'}`,
          });
        }
      }
    }),
  /** alias_label for profiles without a Braze customer ID (alias_name = the CI profile ID). */
  aliasLabel: z.string().trim().min(1).max(255).default('ci_customer_id'),
});

export const MembershipSchema = z.strictObject({
  /** List format: the attribute holding the sorted list of CI segments. Defaults to brazeSegmentApiId. */
  attribute: brazeAttributeName.optional(),
  format: z.enum(['list', 'boolean']).default('list'),
  /** Boolean format: one attribute per segment, named prefix + segment. */
  booleanPrefix: z.string().trim().max(200).default('ci_segment_'),
});

export const ScheduleSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Optional NCRONTAB (UTC): run only when it fires; otherwise on every scheduled refresh with new data. */
  cron: z
    .string()
    .trim()
    .superRefine((v, ctx) => {
      const err = ncrontabError(v);
      if (err) ctx.addIssue({ code: 'custom', message: err });
    })
    .optional(),
});

const limit = (schema: z.ZodNumber) => schema.min(0).nullable();

/**
 * What an unattended run may do before a person looks (DESIGN.md §1.6). A run past any of these
 * is held, with its figures, until it is approved or dismissed. null = no limit.
 */
export const GuardSchema = z.strictObject({
  /** Hold when more than this share (%) of the export's current members would lose a membership. */
  maxLeavingPercent: limit(z.number().max(100)).default(20),
  /** Hold when a segment that had rows in the last export has none now (CI deactivated it, or an upstream failure). */
  holdEmptiedSegment: z.boolean().default(true),
  /** Hold when more profiles than this would be new to Braze from this export (the monthly-active-user risk). */
  maxNewProfiles: limit(z.number().int()).default(50_000),
  /** Hold past this many Braze data points, or this many requests. */
  maxDataPoints: limit(z.number().int()).default(null),
  maxRequests: limit(z.number().int()).default(null),
  /** Hold when changed settings would send more than this share (%) of the current members again. */
  maxResendPercent: limit(z.number().max(100)).default(50),
  /** The first run (nothing sent yet) creates everything: held only past this many profiles; null = never. */
  firstRunMaxProfiles: limit(z.number().int()).default(null),
  /** Contributors (on a shared connection) may approve or dismiss held runs, besides Admins. */
  contributorsMayApprove: z.boolean().default(false),
});
export type Guard = z.output<typeof GuardSchema>;
/** A guard that never holds a run (every limit off). */
export const GUARD_OFF: Guard = {
  maxLeavingPercent: null,
  holdEmptiedSegment: false,
  maxNewProfiles: null,
  maxDataPoints: null,
  maxRequests: null,
  maxResendPercent: null,
  firstRunMaxProfiles: null,
  contributorsMayApprove: false,
};
/** The guard in effect (definitions saved before it existed have none: the defaults). */
export const guardOf = (d: { guard?: Guard }): Guard => d.guard ?? GuardSchema.parse({});

const containerName = z
  .string()
  .regex(
    /^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/,
    'must be a valid Azure Blob container name (3-63 lower-case letters, digits, hyphens)',
  );
/**
 * A partition's blob name is `<folder>/<segment>/<yyyy>/<MM>/<dd>/<HHmm>/<segment>_<n>.csv`, and
 * Azure refuses names over 1,024 characters: with segments of up to 256 characters, a folder of up
 * to 400 leaves every such name (≤ 400 + 1 + 256 + 17 + 256 + 16) within the limit.
 */
export const MAX_FOLDER_CHARS = 400;
const folder = z
  .string()
  .trim()
  .min(1)
  .max(
    MAX_FOLDER_CHARS,
    `must be at most ${MAX_FOLDER_CHARS} characters (with the segment names, blob names must fit Azure's 1,024)`,
  )
  .transform((f) => f.replace(/^\/+|\/+$/g, ''))
  .refine(
    (f) => f.length > 0 && !f.split('/').some((p) => p === '..' || p === '.' || p === ''),
    'must be a folder path without "." or ".." segments',
  )
  .refine((f) => !/[\\?#]/.test(f), 'must not contain \\, ? or #')
  // Blob names Azure Storage refuses (or answers with an error it cannot even describe).
  // eslint-disable-next-line no-control-regex
  .refine((f) => !/[\u0000-\u001f\u007f-\u009f]/.test(f), 'must not contain control characters');

export const SourceSchema = z.strictObject({ container: containerName, folder });

const segmentName = z
  .string()
  .trim()
  .min(1)
  .max(256)
  .regex(/^[^/\\]+$/, 'must be a CI segment (table) name');

const ExportDefinitionFields = z.strictObject({
  name: z.string().trim().min(1, 'must not be empty').max(256),
  connectionId: z.string().uuid('must be a connection id'),
  brazeSegmentApiId: z
    .string()
    .trim()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9_.-]+$/, 'must be a Braze segment API identifier'),
  source: SourceSchema,
  segments: z
    .array(segmentName)
    .min(1, 'must list at least one CI segment')
    .max(100)
    .refine((s) => new Set(s).size === s.length, 'must not repeat a segment'),
  matching: MatchingSchema,
  membership: MembershipSchema.default({ format: 'list', booleanPrefix: 'ci_segment_' }),
  schedule: ScheduleSchema.default({ enabled: true }),
  guard: GuardSchema.prefault({}),
  /**
   * The Braze segment verification reads back (POST /users/export/segment): one the customer made in
   * Braze with a filter on this export's membership attribute(s). Absent: the export is not verified.
   */
  proofSegmentId: z
    .string()
    .trim()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9_.-]+$/, 'must be a Braze segment API identifier')
    .optional(),
  /** Verify after every export run that delivered (needs proofSegmentId). */
  verifyAfterRun: z.boolean().optional(),
});

/**
 * Names never collide: the membership attribute(s) are never an identifier, a standard profile
 * field, a mapped attribute or each other — `membership.attribute: "email"` would otherwise make
 * every leaver's email null.
 */
export const ExportDefinitionSchema = ExportDefinitionFields.superRefine((d, ctx) => {
  if (d.verifyAfterRun && !d.proofSegmentId)
    ctx.addIssue({ code: 'custom', path: ['verifyAfterRun'], message: 'needs proofSegmentId: the Braze segment to verify' });
  const taken = new Map<string, string>(Object.keys(d.matching.attributes).map((name) => [name, `matching.attributes.${name}`]));
  const membership: { name: string; path: (string | number)[] }[] =
    d.membership.format === 'boolean'
      ? d.segments.map((s, i) => ({
          name: `${d.membership.booleanPrefix}${s}`,
          path: d.membership.booleanPrefix ? ['membership', 'booleanPrefix'] : ['segments', i],
        }))
      : [
          {
            name: d.membership.attribute ?? d.brazeSegmentApiId,
            path: d.membership.attribute ? ['membership', 'attribute'] : ['brazeSegmentApiId'],
          },
        ];
  for (const { name, path } of membership) {
    const what = BRAZE_IDENTIFIER_KEYS.includes(name)
      ? 'a Braze identifier'
      : BRAZE_STANDARD_FIELDS.includes(name)
        ? 'a standard Braze profile field'
        : taken.has(name)
          ? `also ${taken.get(name)}`
          : null;
    if (what) {
      ctx.addIssue({
        code: 'custom',
        path,
        message: `makes the membership attribute "${name}", which is ${what}; choose another name${path[0] === 'brazeSegmentApiId' ? ' (or set membership.attribute)' : ''}`,
      });
      return;
    }
    taken.set(name, path.join('.'));
  }
});

export type ExportDefinitionInput = z.input<typeof ExportDefinitionSchema>;
/** Stored definitions keep connectionId nullable: detach clears it. */
export type ExportDefinition = Omit<z.output<typeof ExportDefinitionSchema>, 'connectionId'> & { connectionId: string | null };

/** PATCH: any subset of the top-level fields; nested objects are replaced whole, then revalidated. */
export const ExportPatchSchema = z
  .strictObject({
    name: z.unknown(),
    connectionId: z.unknown(),
    brazeSegmentApiId: z.unknown(),
    source: z.unknown(),
    segments: z.unknown(),
    matching: z.unknown(),
    membership: z.unknown(),
    schedule: z.unknown(),
    guard: z.unknown(),
    proofSegmentId: z.unknown(),
    verifyAfterRun: z.unknown(),
  })
  .partial()
  .refine((p) => Object.keys(p).length > 0, 'must change at least one field');

/** The optional body of POST …/run and POST …/preview: `fullSync` resends (or previews resending) everything. */
export const RunOptionsSchema = z.strictObject({ fullSync: z.boolean().default(false) });
/** POST …/run also takes `approve`: approved up front, the run is not held by the export's guard. */
export const RunNowSchema = RunOptionsSchema.extend({ approve: z.boolean().default(false) });
