// The sandbox's side of reading users back, as Braze documents it (braze.com/docs/api/endpoints/
// export/user_data/post_users_segment and post_users_identifier; ../shared/reference/braze-users-track.md):
//
//   POST /users/export/segment   { segment_id, fields_to_export (required), output_format zip|gzip,
//                                 callback_endpoint? } → { message: "success", object_prefix, url? }.
//                                 Needs users.export.segment. One export per segment at a time (a second
//                                 gets 429 "…already in progress…"). Without cloud storage the answer
//                                 carries a URL that answers 404 until the export is ready (after
//                                 `readyAfterMs`); with an Azure container configured the files (≤ 5,000
//                                 users each, .zip or .gz) are written to
//                                 segment-export/<SEGMENT_ID>/<YYYY-MM-dd>/<object_prefix>/<n>.zip and no URL
//                                 is given. The callback, when given, is POSTed the URL once ready.
//   POST /users/export/ids       { external_ids ≤ 50, user_aliases, braze_id, email_address, phone,
//                                 fields_to_export } → { message, users, invalid_user_ids }. Needs
//                                 users.export.ids; 40 requests/s with fields_to_export, 250/min without.
//   GET  /sandbox/downloads/<t>  the archive behind a URL (404 until ready)
//   POST /sandbox/segments       { id, name?, filters: [{ attribute, includes } | { attribute, isTrue: true }],
//                                 match?: "any" | "all" }: a Braze segment defined by custom-attribute filters
//   POST /sandbox/users/edit     { user: "external_id:u1" | "alias:<label>:<name>", set?: {…}, unset?: [...],
//                                 create?: true }: a change behind the app's back (a person in the dashboard,
//                                 another tool); users are deleted with POST /users/delete
//   POST /sandbox/exports        { readyAfterMs?, neverReady?, blob?: { connectionString, container } | null }
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { BlobServiceClient } from '@azure/storage-blob';
import { ZipFile } from 'yazl';

/** A stored user as the sandbox keeps it (braze-sandbox.ts imports it from here: the two files stay acyclic). */
export interface SandboxProfile {
  identifier: {
    external_id?: string;
    user_alias?: { alias_name: string; alias_label: string };
    braze_id?: string;
    email?: string;
  };
  attributes: Record<string, unknown>;
  updates: number;
}

export type SegmentFilter = { attribute: string; includes: string } | { attribute: string; isTrue: true };
export interface SandboxSegment {
  id: string;
  name?: string;
  filters: SegmentFilter[];
  match?: 'any' | 'all';
}

export interface ExportSettings {
  /** How long Braze takes to make an export (the URL answers 404 until then). */
  readyAfterMs?: number;
  /** The export never becomes ready (Braze failed it and only e-mailed the admins). */
  neverReady?: boolean;
  /** The workspace's Azure Blob storage (an Azurite connection string here): files go there, no URL. */
  blob?: { connectionString: string; container: string } | null;
  /** Users per file (Braze: about 5,000). */
  usersPerFile?: number;
}

/** Profile fields Braze exports at the top level of a user object; every other attribute is under custom_attributes. */
const STANDARD = ['email', 'phone', 'first_name', 'last_name', 'country', 'dob', 'gender', 'home_city', 'language', 'time_zone'];
/** Standard profile fields /users/track takes that Braze's exports never return (not even under custom_attributes). */
const NEVER_EXPORTED = [
  'current_location',
  'date_of_first_session',
  'date_of_last_session',
  'email_click_tracking_disabled',
  'email_open_tracking_disabled',
  'facebook',
  'image_url',
  'marked_email_as_spam_at',
  'subscription_groups',
  'twitter',
];
const IDS_PER_REQUEST = 50;

interface Access {
  grant(req: IncomingMessage, permission: 'usersExportSegment' | 'usersExportIds'): { status: number; message: string } | null;
  reply(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void;
  readJson(req: IncomingMessage): Promise<Record<string, unknown> | null>;
  profiles: Map<string, SandboxProfile>;
  url: () => string;
}

interface PendingExport {
  segmentId: string;
  readyAt: number;
  body: Buffer | null;
  format: 'zip' | 'gzip';
  /** Made (in the container, or behind the URL). */
  done: boolean;
}

/** A stable braze_id for a sandbox profile (24 hex characters, as Braze's look). */
export const brazeIdOf = (userKey: string) => createHash('sha1').update(userKey).digest('hex').slice(0, 24);

export class SandboxUserExports {
  readonly segments = new Map<string, SandboxSegment>();
  settings: ExportSettings = {};
  private readonly downloads = new Map<string, PendingExport>();
  private readonly idsWindow = { fast: [] as number[], slow: [] as number[] };
  exportsRequested = 0;

  constructor(private readonly access: Access) {}

  reset(): void {
    this.segments.clear();
    this.downloads.clear();
    this.settings = {};
    this.exportsRequested = 0;
  }

  /** Routes this module answers; false when the request is not one of them. */
  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
    const post = req.method === 'POST';
    if (path === '/users/export/segment' && post) await this.exportSegment(req, res);
    else if (path === '/users/export/ids' && post) await this.exportIds(req, res);
    else if (path.startsWith('/sandbox/downloads/') && req.method === 'GET') this.download(res, path.slice(19));
    else if (path === '/sandbox/segments' && post) await this.defineSegment(req, res);
    else if (path === '/sandbox/users/edit' && post) await this.editUser(req, res);
    else if (path === '/sandbox/exports' && post) {
      const body = await this.access.readJson(req);
      this.settings = { ...this.settings, ...(body as ExportSettings) };
      this.access.reply(res, 200, { settings: { ...this.settings, blob: this.settings.blob ? '(set)' : null } });
    } else return false;
    return true;
  }

  /** A Braze segment defined by filters (in Braze, made in the dashboard; there is no API for it). */
  define(segment: SandboxSegment): void {
    this.segments.set(segment.id, segment);
  }

  private async defineSegment(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const s = (await this.access.readJson(req)) as unknown as SandboxSegment | null;
    if (!s || typeof s.id !== 'string' || !Array.isArray(s.filters))
      return this.access.reply(res, 400, { message: 'give { id, filters: [...] }' });
    this.define(s);
    this.access.reply(res, 200, { segment: s });
  }

  /** Whether a profile is in a segment: its filters on custom attributes, any or all of them. */
  inSegment(segment: SandboxSegment, p: SandboxProfile): boolean {
    const test = (f: SegmentFilter) => {
      const v = p.attributes[f.attribute];
      return 'isTrue' in f ? v === true : Array.isArray(v) ? v.includes(f.includes) : v === f.includes;
    };
    return segment.match === 'all' ? segment.filters.every(test) : segment.filters.some(test);
  }

  /** A user as Braze exports it, with only the fields asked for. */
  exported(key: string, p: SandboxProfile, fields: Set<string>): Record<string, unknown> {
    const u: Record<string, unknown> = {};
    if (fields.has('braze_id')) u.braze_id = brazeIdOf(key);
    if (fields.has('external_id') && p.identifier.external_id) u.external_id = p.identifier.external_id;
    if (fields.has('user_aliases') && p.identifier.user_alias) u.user_aliases = [p.identifier.user_alias];
    const custom: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(p.attributes)) {
      if (NEVER_EXPORTED.includes(name)) continue;
      if (STANDARD.includes(name)) {
        if (fields.has(name)) u[name] = value;
      } else custom[name] = value;
    }
    if (fields.has('email') && p.identifier.email && u.email === undefined) u.email = p.identifier.email;
    if (fields.has('custom_attributes') && Object.keys(custom).length) u.custom_attributes = custom;
    return u;
  }

  private async exportSegment(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await this.access.readJson(req);
    const refused = this.access.grant(req, 'usersExportSegment');
    if (refused) return this.access.reply(res, refused.status, { message: refused.message });
    const segmentId = body?.segment_id;
    const fields = body?.fields_to_export;
    const format = body?.output_format ?? 'zip';
    if (typeof segmentId !== 'string' || !segmentId) return this.access.reply(res, 400, { message: "'segment_id' is required" });
    if (!Array.isArray(fields) || fields.length === 0)
      return this.access.reply(res, 400, { message: "'fields_to_export' is required" });
    if (format !== 'zip' && format !== 'gzip')
      return this.access.reply(res, 400, { message: "'output_format' must be 'zip' or 'gzip'" });
    const segment = this.segments.get(segmentId);
    if (!segment) return this.access.reply(res, 404, { message: `Segment ${segmentId} not found` });
    const now = Date.now();
    for (const d of this.downloads.values()) {
      if (d.segmentId === segmentId && !d.done)
        return this.access.reply(res, 429, {
          message:
            'An export of this segment is already in progress for your company; wait for it to complete before trying again',
        });
    }
    this.exportsRequested++;
    const objectPrefix = `${randomUUID()}-${Math.floor(now / 1000)}`;
    const delay = this.settings.readyAfterMs ?? 50;
    const pending: PendingExport = {
      segmentId,
      readyAt: this.settings.neverReady ? Infinity : now + delay,
      body: null,
      format,
      done: false,
    };
    this.downloads.set(objectPrefix, pending);
    const blob = this.settings.blob;
    // As Braze: the answer comes at once, the export is made afterwards (a million users take seconds here).
    const finish = async () => {
      const users = [...this.access.profiles]
        .filter(([, p]) => this.inSegment(segment, p))
        .map(([key, p]) => JSON.stringify(this.exported(key, p, new Set(fields as string[]))));
      const files = chunk(users, this.settings.usersPerFile ?? 5000);
      if (blob) await this.writeToContainer(blob, segmentId, objectPrefix, files, format);
      else pending.body = format === 'zip' ? await zipOf(files) : gzipSync(`${users.join('\n')}\n`);
      pending.readyAt = Date.now();
      pending.done = true;
      const callback = body?.callback_endpoint;
      if (typeof callback === 'string' && callback.startsWith('http://127.0.0.1'))
        await fetch(callback, { method: 'POST', body: JSON.stringify({ url: this.urlOf(objectPrefix) }) }).catch(() => undefined);
    };
    if (!this.settings.neverReady) setTimeout(() => void finish().catch(() => undefined), delay).unref();
    this.access.reply(res, 201, {
      message: 'success',
      object_prefix: objectPrefix,
      ...(blob ? {} : { url: this.urlOf(objectPrefix) }),
    });
  }

  private urlOf(objectPrefix: string): string {
    return `${this.access.url()}/sandbox/downloads/${objectPrefix}`;
  }

  private async writeToContainer(
    blob: { connectionString: string; container: string },
    segmentId: string,
    objectPrefix: string,
    files: string[][],
    format: 'zip' | 'gzip',
  ): Promise<void> {
    const container = BlobServiceClient.fromConnectionString(blob.connectionString).getContainerClient(blob.container);
    await container.createIfNotExists();
    const day = new Date().toISOString().slice(0, 10);
    for (let i = 0; i < files.length; i++) {
      const bytes = format === 'zip' ? await zipOf([files[i]!]) : gzipSync(`${files[i]!.join('\n')}\n`);
      const name = `segment-export/${segmentId}/${day}/${objectPrefix}/${createHash('md5').update(`${objectPrefix}${i}`).digest('hex')}.${format === 'zip' ? 'zip' : 'gz'}`;
      await container.getBlockBlobClient(name).upload(bytes, bytes.length);
    }
  }

  private download(res: ServerResponse, objectPrefix: string): void {
    const d = this.downloads.get(objectPrefix);
    if (!d || !d.body || Date.now() < d.readyAt) return this.access.reply(res, 404, { message: 'Not Found' });
    res.writeHead(200, {
      'Content-Type': d.format === 'zip' ? 'application/zip' : 'application/gzip',
      'Content-Length': d.body.length,
    });
    res.end(d.body);
  }

  /** POST /users/export/ids with its limits: 40 requests/s with fields_to_export, 250 a minute without. */
  private async exportIds(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await this.access.readJson(req);
    const refused = this.access.grant(req, 'usersExportIds');
    if (refused) return this.access.reply(res, refused.status, { message: refused.message });
    const fields = Array.isArray(body?.fields_to_export) ? (body.fields_to_export as string[]) : null;
    const now = Date.now();
    const window = fields ? this.idsWindow.fast : this.idsWindow.slow;
    const span = fields ? 1000 : 60_000;
    while (window.length && now - window[0]! >= span) window.shift();
    if (window.length >= (fields ? 40 : 250)) {
      const reset = Math.ceil((window[0]! + span) / 1000);
      return this.access.reply(
        res,
        429,
        { message: 'Rate limit exceeded' },
        { 'X-RateLimit-Reset': String(reset), 'X-RateLimit-Retry-After': String(Math.max(1, reset - Math.floor(now / 1000))) },
      );
    }
    window.push(now);
    const keys = idKeysOf(body ?? {});
    if (keys.length === 0 || keys.length > IDS_PER_REQUEST)
      return this.access.reply(res, 400, { message: `Between 1 and ${IDS_PER_REQUEST} identifiers per request` });
    const wanted = new Set(
      fields ?? ['external_id', 'user_aliases', 'braze_id', 'email', 'phone', 'custom_attributes', ...STANDARD],
    );
    const users: Record<string, unknown>[] = [];
    const invalid: string[] = [];
    for (const { key, asGiven } of keys) {
      const p = this.access.profiles.get(key);
      if (p) users.push(this.exported(key, p, wanted));
      else invalid.push(asGiven);
    }
    this.access.reply(res, 201, { message: 'success', users, ...(invalid.length ? { invalid_user_ids: invalid } : {}) });
  }

  /** A change behind the app's back: set or unset attributes of a user (created with `create`). */
  private async editUser(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await this.access.readJson(req);
    const user = body?.user;
    if (typeof user !== 'string')
      return this.access.reply(res, 400, { message: 'give { user: "external_id:<id>", set, unset }' });
    const edited = this.edit(user, (body?.set ?? {}) as Record<string, unknown>, (body?.unset ?? []) as string[], !!body?.create);
    if (!edited) return this.access.reply(res, 404, { message: `No user ${user}` });
    this.access.reply(res, 200, { profile: edited });
  }

  /** Edits a stored user in place (a stranger is created with `create`); null when there is no such user. */
  edit(user: string, set: Record<string, unknown>, unset: string[] = [], create = false): SandboxProfile | null {
    let p = this.access.profiles.get(user);
    if (!p && !create) return null;
    if (!p) {
      p = { identifier: identifierOf(user), attributes: {}, updates: 0 };
      this.access.profiles.set(user, p);
    }
    Object.assign(p.attributes, set);
    for (const name of unset) delete p.attributes[name];
    return p;
  }
}

function identifierOf(user: string): SandboxProfile['identifier'] {
  if (user.startsWith('external_id:')) return { external_id: user.slice(12) };
  if (user.startsWith('alias:')) {
    const [, label, ...name] = user.split(':');
    return { user_alias: { alias_label: label!, alias_name: name.join(':') } };
  }
  return { braze_id: user.replace(/^braze_id:/, '') };
}

/** The sandbox's user keys for the identifiers of a /users/export/ids request. */
function idKeysOf(body: Record<string, unknown>): { key: string; asGiven: string }[] {
  const list = (v: unknown) => (Array.isArray(v) ? (v as unknown[]) : []);
  return [
    ...list(body.external_ids).map((id) => ({ key: `external_id:${String(id)}`, asGiven: String(id) })),
    ...list(body.user_aliases).map((a) => {
      const alias = (a ?? {}) as { alias_name?: unknown; alias_label?: unknown };
      return { key: `alias:${String(alias.alias_label)}:${String(alias.alias_name)}`, asGiven: String(alias.alias_name) };
    }),
    ...(typeof body.braze_id === 'string' ? [{ key: `braze_id:${body.braze_id}`, asGiven: body.braze_id }] : []),
  ];
}

function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out.length ? out : [[]];
}

/** A zip with one JSON-lines file per chunk of users, as Braze's archives hold them. */
function zipOf(files: string[][]): Promise<Buffer> {
  const zip = new ZipFile();
  files.forEach((lines, i) => zip.addBuffer(Buffer.from(lines.length ? `${lines.join('\n')}\n` : ''), `${i}.txt`));
  zip.end();
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    zip.outputStream.on('error', reject);
  });
}
