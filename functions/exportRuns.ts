import { app } from '@azure/functions';
import { api, json } from '../shared/http';
import { runView } from '../shared/runs/view';

/** GET /api/exports/{id}/runs: the export's runs, newest first (all roles). */
export const exportRuns = api(async ({ request, app: { runs } }) =>
  json(200, { value: (await runs.listForExport(request.params.id!)).map(runView) }),
);

app.http('exportRuns', { methods: ['GET'], route: 'api/exports/{id}/runs', authLevel: 'anonymous', handler: exportRuns });
