import { app } from '@azure/functions';
import { notFound } from '../shared/errors';
import { api, csvDownload } from '../shared/http';

/** GET /api/runs/{runId}/drift: a verification's drift (CSV: kind, identifier type, identifier, profileId, segments, fields). */
export const runDriftReport = api(async ({ request, app: { runs, storage } }) => {
  const run = await runs.get(request.params.runId!);
  const report = run.verify?.driftReport;
  if (!report) throw notFound('Drift report');
  return csvDownload(storage.appBlobs, report, `drift-${run.id}.csv`);
});

app.http('runDriftReport', {
  methods: ['GET'],
  route: 'api/runs/{runId}/drift',
  authLevel: 'anonymous',
  handler: runDriftReport,
});
