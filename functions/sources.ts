import { app } from '@azure/functions';
import { z } from 'zod';
import { requireRole } from '../shared/auth';
import { SourceSchema } from '../shared/exports/schema';
import { api, json } from '../shared/http';
import { describeExportFolder, listExportFolders } from '../shared/snapshot/discover';
import { parseInput } from '../shared/validation';

const ListQuery = z.strictObject({ container: SourceSchema.shape.container.optional() });

/**
 * GET /api/sources[?container=] (Admin, Contributor): the CI export folders holding a model.json,
 * `{folders: [{container, folder, modifiedTime}], truncated}`, bounded.
 */
export const sourcesList = api(async ({ request, caller, app: { storage } }) => {
  requireRole(caller, 'Admin', 'Contributor');
  const query = parseInput(ListQuery, Object.fromEntries(request.query));
  return json(200, await listExportFolders(storage.ciBlobs, query.container));
});

/**
 * GET /api/sources/segments?container=&folder= (Admin, Contributor): the folder's segments with
 * their columns, CDM types, partition count and size (from model.json, or the header rows). Column
 * samples only for a caller who can export data somewhere: an Admin, or a Contributor with a
 * connection shared; others get each column with `samples: []`.
 */
export const sourceSegments = api(async ({ request, caller, app: { storage, connections } }) => {
  requireRole(caller, 'Admin', 'Contributor');
  const source = parseInput(SourceSchema, Object.fromEntries(request.query));
  const samples = await connections.anyUsableBy(caller);
  return json(200, { ...source, ...(await describeExportFolder(storage.ciBlobs, source.container, source.folder, { samples })) });
});

app.http('sourcesList', { methods: ['GET'], route: 'api/sources', authLevel: 'anonymous', handler: sourcesList });
app.http('sourceSegments', { methods: ['GET'], route: 'api/sources/segments', authLevel: 'anonymous', handler: sourceSegments });
