// What users send to POST/PATCH /api/connections (DESIGN.md §4).
import { z } from 'zod';
import { KEY_VAULT_SECRET_URI } from '../secrets';

const displayName = z.string().trim().min(1, 'must not be empty').max(128);
const apiKey = z
  .string()
  .min(1, 'must not be empty')
  .max(512, 'is longer than any Braze REST API key (512 characters at most)')
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');
const apiKeySecretUri = z
  .string()
  .regex(KEY_VAULT_SECRET_URI, 'must be a Key Vault secret URI: https://<vault>.vault.azure.net/secrets/<name>[/<version>]');
/** Requests per 3 seconds; Braze's default workspace limit is 3,000 and is shared with other integrations. */
const requestBudget = z.number().int().min(1).max(250_000);

export const DEFAULT_REQUEST_BUDGET = 1000;

/**
 * Requests per clock hour that every run on the connection may send together (newer Braze
 * contracts set hourly limits shared with the company's other integrations); null = no cap.
 */
const hourlyRequestCap = z
  .number()
  .int('must be a whole number of requests')
  .min(1, 'must be at least 1 request an hour (or null for no cap)')
  .max(100_000_000)
  .nullable();

/**
 * Connections in one group draw on one Braze rate limit (newer Braze contracts share the burst
 * limit across a company's workspaces): their runs go one at a time. null = the connection's own.
 */
const rateLimitGroup = z
  .string()
  .trim()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9._-]+$/, 'must be letters, digits, ".", "_" or "-"')
  .nullable();

/**
 * Where Braze writes user exports when the workspace has Azure Blob storage credentials (Braze's
 * "default data export destination"): a container in the CI storage account, or at `accountUrl`,
 * read with the app's identity. null/absent = Braze answers with a download URL instead.
 */
const exportContainer = z
  .strictObject({
    container: z.string().regex(/^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/, 'must be a valid Azure Blob container name'),
    accountUrl: z
      .string()
      .regex(
        // Azure Storage's own domains only: the app's identity sends its token there.
        /^https:\/\/[a-z0-9]{3,24}\.blob\.core\.(windows\.net|usgovcloudapi\.net|chinacloudapi\.cn)\/?$/,
        'must be https://<account>.blob.core.windows.net (or the sovereign cloud equivalent)',
      )
      .optional(),
  })
  .nullable();

export const ConnectionCreateSchema = z
  .strictObject({
    displayName,
    restEndpoint: z.string().max(300),
    apiKey: apiKey.optional(),
    apiKeySecretUri: apiKeySecretUri.optional(),
    allowContributors: z.boolean().default(false),
    requestBudget: requestBudget.default(DEFAULT_REQUEST_BUDGET),
    rateLimitGroup: rateLimitGroup.default(null),
    hourlyRequestCap: hourlyRequestCap.default(null),
    exportContainer: exportContainer.default(null),
    consent: z.literal(true, { error: 'must be true: agree to share data with Braze' }),
  })
  .superRefine((c, ctx) => {
    if (!c.apiKey === !c.apiKeySecretUri) {
      ctx.addIssue({ code: 'custom', path: ['apiKey'], message: 'give exactly one of apiKey or apiKeySecretUri' });
    }
  });

export const ConnectionPatchSchema = z
  .strictObject({
    displayName: displayName.optional(),
    restEndpoint: z.string().max(300).optional(),
    apiKey: apiKey.optional(),
    apiKeySecretUri: apiKeySecretUri.optional(),
    allowContributors: z.boolean().optional(),
    requestBudget: requestBudget.optional(),
    rateLimitGroup: rateLimitGroup.optional(),
    hourlyRequestCap: hourlyRequestCap.optional(),
    exportContainer: exportContainer.optional(),
  })
  .superRefine((c, ctx) => {
    if (Object.keys(c).length === 0) ctx.addIssue({ code: 'custom', message: 'must change at least one field' });
    if (c.apiKey && c.apiKeySecretUri) {
      ctx.addIssue({ code: 'custom', path: ['apiKey'], message: 'give at most one of apiKey or apiKeySecretUri' });
    }
  });

export type ConnectionCreate = z.output<typeof ConnectionCreateSchema>;
export type ConnectionPatch = z.output<typeof ConnectionPatchSchema>;
