import { app } from '@azure/functions';
import { z } from 'zod';
import { api, json } from '../shared/http';
import { runView } from '../shared/runs/view';
import { parseInput } from '../shared/validation';

/** Table Storage's continuation token, as the previous page's nextLink carried it. */
const PageQuery = z.strictObject({ continuationToken: z.string().min(1).max(2048).optional() });

/** GET /api/exports/{id}/runs[?continuationToken=…]: the export's runs, newest first, 50 a page, with `nextLink` to the next (all roles). */
export const exportRuns = api(async ({ request, app: { runs } }) => {
  const { continuationToken } = parseInput(PageQuery, Object.fromEntries(request.query.entries()));
  const id = request.params.id!;
  const page = await runs.pageForExport(id, continuationToken);
  const nextLink = page.next ? `/api/exports/${id}/runs?continuationToken=${encodeURIComponent(page.next)}` : undefined;
  return json(200, { value: page.runs.map(runView), ...(nextLink ? { nextLink } : {}) });
});

app.http('exportRuns', { methods: ['GET'], route: 'api/exports/{id}/runs', authLevel: 'anonymous', handler: exportRuns });
