// App settings, parsed once with zod. A missing or malformed setting fails start-up with its name.
import { z } from 'zod';

const flag = z
  .enum(['true', 'false', 'True', 'False', 'TRUE', 'FALSE', '1', '0'])
  .optional()
  .transform((v) => v !== undefined && ['true', '1'].includes(v.toLowerCase()));

const ncrontab = z
  .string()
  .trim()
  .refine((v) => v.split(/\s+/).length === 6, 'must be an NCRONTAB expression with 6 fields (seconds first)');

/**
 * Settings the platform sets on Azure workers, any one of which means "running in Azure": App
 * Service and Premium set WEBSITE_INSTANCE_ID, but Flex Consumption and Linux Consumption workers
 * do not (the Functions host itself tells them apart by WEBSITE_SKU and WEBSITE_POD_NAME; they
 * also carry WEBSITE_SITE_NAME). Left out: WEBSITE_HOSTNAME, which Core Tools sets locally, and
 * CONTAINER_NAME alone, which many development and CI containers set (this project's CI does).
 */
export const AZURE_PLATFORM_SIGNALS = [
  'WEBSITE_INSTANCE_ID',
  'WEBSITE_SITE_NAME',
  'WEBSITE_SKU',
  'WEBSITE_OWNER_NAME',
  'WEBSITE_RESOURCE_GROUP',
  'WEBSITE_POD_NAME',
  'LEGION_SERVICE_HOST',
] as const;

const SettingsSchema = z
  .object({
    // App storage: tables (connections, exports, runs), blobs (state, reports, leases), the run queue.
    AzureWebJobsStorage: z.string().min(1).optional(),
    AzureWebJobsStorage__accountName: z
      .string()
      .regex(/^[a-z0-9]{3,24}$/)
      .optional(),
    AzureWebJobsStorage__clientId: z.string().uuid().optional(),
    // The same account by its endpoints (what the template sets: the cloud's own storage suffix, so
    // sovereign clouds work too). All three, or none; without them the account name means *.core.windows.net.
    AzureWebJobsStorage__blobServiceUri: z.url({ protocol: /^https$/ }).optional(),
    AzureWebJobsStorage__queueServiceUri: z.url({ protocol: /^https$/ }).optional(),
    AzureWebJobsStorage__tableServiceUri: z.url({ protocol: /^https$/ }).optional(),
    // Where Customer Insights writes its blob exports.
    CI_EXPORT_STORAGE_CONNECTION_STRING: z.string().min(1).optional(),
    CI_EXPORT_STORAGE_BLOB_URL: z.url({ protocol: /^https$/ }).optional(),
    // Braze API keys: Key Vault in Azure; locally, AES-256-GCM with this key (base64, 32 bytes).
    KEY_VAULT_URI: z.url({ protocol: /^https$/ }).optional(),
    LOCAL_SECRET_KEY: z
      .string()
      .refine((v) => Buffer.from(v, 'base64').length === 32, 'must be 32 bytes, base64-encoded')
      .optional(),
    SCHEDULED_REFRESH_SCHEDULE: ncrontab.default('0 */5 * * * *'),
    WORKER_TIME_BUDGET_SECONDS: z.coerce.number().int().min(1).max(86_400).default(1500),
    // Verification: how often Braze's export is looked for, and how long Braze may take to make it.
    VERIFY_POLL_SECONDS: z.coerce.number().min(0.05).max(600).default(15),
    VERIFY_MAX_WAIT_MINUTES: z.coerce
      .number()
      .min(0.05)
      .max(24 * 60)
      .default(120),
    // Container delivery: how long Braze's file listing must stay unchanged before the export is taken as complete.
    VERIFY_STABLE_LISTING_SECONDS: z.coerce.number().min(0).max(3600).default(120),
    // How often a first run checkpoints what it sent early: a killed worker's successor resends at most this much sending.
    EARLY_CHECKPOINT_SECONDS: z.coerce.number().min(0.2).max(3600).default(30),
    // Snapshot bytes per sync-state bucket: bounds the engine's memory per bucket.
    SYNC_BUCKET_TARGET_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .max(1024 ** 3)
      .default(4 * 1024 * 1024),
    // Platform: App Service sets this when Easy Auth is on.
    WEBSITE_AUTH_ENABLED: flag,
    ...Object.fromEntries(AZURE_PLATFORM_SIGNALS.map((name) => [name, z.string().optional()])),
    // Local runs and tests only (refused in Azure).
    LOCAL_TRUST_PRINCIPAL_HEADER: flag,
    LOCAL_ANONYMOUS_ADMIN: flag,
    // Local tests with made-up keys and hosts only: save connections without checking their key.
    LOCAL_SKIP_KEY_CHECK: flag,
    LOCAL_EXTRA_BRAZE_HOSTS: z
      .string()
      .optional()
      .transform((v) =>
        (v ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      )
      .pipe(z.array(z.string().regex(/^[a-z0-9.-]+:(\d{1,5}|\*)$/i, 'entries must be host:port or host:*'))),
  })
  .superRefine((s, ctx) => {
    const serviceUris = [
      s.AzureWebJobsStorage__blobServiceUri,
      s.AzureWebJobsStorage__queueServiceUri,
      s.AzureWebJobsStorage__tableServiceUri,
    ];
    if (serviceUris.some(Boolean) && !serviceUris.every(Boolean)) {
      ctx.addIssue({
        code: 'custom',
        path: ['AzureWebJobsStorage__blobServiceUri'],
        message: 'set AzureWebJobsStorage__blobServiceUri, __queueServiceUri and __tableServiceUri together',
      });
    }
    if (!s.AzureWebJobsStorage && !s.AzureWebJobsStorage__accountName && !serviceUris.every(Boolean)) {
      ctx.addIssue({
        code: 'custom',
        path: ['AzureWebJobsStorage'],
        message: 'set AzureWebJobsStorage, AzureWebJobsStorage__accountName, or the three AzureWebJobsStorage__*ServiceUri',
      });
    }
    if (!s.CI_EXPORT_STORAGE_CONNECTION_STRING && !s.CI_EXPORT_STORAGE_BLOB_URL) {
      ctx.addIssue({
        code: 'custom',
        path: ['CI_EXPORT_STORAGE_CONNECTION_STRING'],
        message: 'set CI_EXPORT_STORAGE_CONNECTION_STRING or CI_EXPORT_STORAGE_BLOB_URL',
      });
    }
    if (!s.KEY_VAULT_URI && !s.LOCAL_SECRET_KEY) {
      ctx.addIssue({
        code: 'custom',
        path: ['KEY_VAULT_URI'],
        message: 'set KEY_VAULT_URI (Azure) or LOCAL_SECRET_KEY (local runs)',
      });
    }
    const inAzure = AZURE_PLATFORM_SIGNALS.some((name) => !!(s as Record<string, unknown>)[name]);
    if (inAzure) {
      for (const name of [
        'LOCAL_TRUST_PRINCIPAL_HEADER',
        'LOCAL_ANONYMOUS_ADMIN',
        'LOCAL_SECRET_KEY',
        'LOCAL_SKIP_KEY_CHECK',
      ] as const) {
        if (s[name])
          ctx.addIssue({ code: 'custom', path: [name], message: 'is for local runs only and must not be set in Azure' });
      }
      if (s.LOCAL_EXTRA_BRAZE_HOSTS.length > 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['LOCAL_EXTRA_BRAZE_HOSTS'],
          message: 'is for local runs only and must not be set in Azure',
        });
      }
    }
  });

export type Settings = z.output<typeof SettingsSchema>;

/** WEBSITE_AUTH_ENABLED on its own: all that can be believed about Easy Auth when other settings are broken. */
export const easyAuthEnabledIn = (env: Record<string, string | undefined> = process.env): boolean =>
  flag.safeParse(env.WEBSITE_AUTH_ENABLED).data ?? false;

/** Every setting the app reads, and the groups of which one must be set (for the infra tests). */
export const SETTING_NAMES = Object.keys(SettingsSchema.shape);
export const REQUIRED_ONE_OF = [
  ['AzureWebJobsStorage', 'AzureWebJobsStorage__accountName', 'AzureWebJobsStorage__blobServiceUri'],
  ['CI_EXPORT_STORAGE_CONNECTION_STRING', 'CI_EXPORT_STORAGE_BLOB_URL'],
  ['KEY_VAULT_URI', 'LOCAL_SECRET_KEY'],
];
export const LOCAL_ONLY_SETTINGS = [
  'LOCAL_TRUST_PRINCIPAL_HEADER',
  'LOCAL_ANONYMOUS_ADMIN',
  'LOCAL_SECRET_KEY',
  'LOCAL_EXTRA_BRAZE_HOSTS',
  'LOCAL_SKIP_KEY_CHECK',
];

export interface AppConfig {
  appStorage:
    | { connectionString: string }
    | { accountName: string; clientId?: string }
    | { blobServiceUri: string; queueServiceUri: string; tableServiceUri: string; clientId?: string };
  ciStorage: { connectionString: string } | { blobUrl: string };
  secrets: { keyVaultUri: string } | { localKey: Buffer };
  scheduledRefreshSchedule: string;
  workerTimeBudgetMs: number;
  verifyTiming: { pollMs: number; maxWaitMs: number; stableListingMs?: number };
  earlyCheckpointMs: number;
  bucketTargetBytes: number;
  easyAuthEnabled: boolean;
  trustPrincipalHeaderLocally: boolean;
  anonymousAdmin: boolean;
  extraBrazeHosts: string[];
  checkKeys: boolean;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Parses app settings; throws a ConfigError naming each bad setting. */
export function loadConfig(env: Record<string, string | undefined> = process.env): AppConfig {
  const parsed = SettingsSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${String(i.path[0] ?? '(settings)')}: ${i.message}`);
    throw new ConfigError(`Invalid app settings:\n${lines.join('\n')}`);
  }
  const s = parsed.data;
  return {
    appStorage: s.AzureWebJobsStorage
      ? { connectionString: s.AzureWebJobsStorage }
      : s.AzureWebJobsStorage__blobServiceUri
        ? {
            blobServiceUri: s.AzureWebJobsStorage__blobServiceUri,
            queueServiceUri: s.AzureWebJobsStorage__queueServiceUri!,
            tableServiceUri: s.AzureWebJobsStorage__tableServiceUri!,
            clientId: s.AzureWebJobsStorage__clientId,
          }
        : { accountName: s.AzureWebJobsStorage__accountName!, clientId: s.AzureWebJobsStorage__clientId },
    ciStorage: s.CI_EXPORT_STORAGE_CONNECTION_STRING
      ? { connectionString: s.CI_EXPORT_STORAGE_CONNECTION_STRING }
      : { blobUrl: s.CI_EXPORT_STORAGE_BLOB_URL! },
    secrets: s.KEY_VAULT_URI ? { keyVaultUri: s.KEY_VAULT_URI } : { localKey: Buffer.from(s.LOCAL_SECRET_KEY!, 'base64') },
    scheduledRefreshSchedule: s.SCHEDULED_REFRESH_SCHEDULE,
    workerTimeBudgetMs: s.WORKER_TIME_BUDGET_SECONDS * 1000,
    verifyTiming: {
      pollMs: s.VERIFY_POLL_SECONDS * 1000,
      maxWaitMs: s.VERIFY_MAX_WAIT_MINUTES * 60_000,
      stableListingMs: s.VERIFY_STABLE_LISTING_SECONDS * 1000,
    },
    earlyCheckpointMs: s.EARLY_CHECKPOINT_SECONDS * 1000,
    bucketTargetBytes: s.SYNC_BUCKET_TARGET_BYTES,
    easyAuthEnabled: s.WEBSITE_AUTH_ENABLED,
    trustPrincipalHeaderLocally: s.LOCAL_TRUST_PRINCIPAL_HEADER,
    anonymousAdmin: s.LOCAL_ANONYMOUS_ADMIN,
    extraBrazeHosts: s.LOCAL_EXTRA_BRAZE_HOSTS,
    checkKeys: !s.LOCAL_SKIP_KEY_CHECK,
  };
}
