import { app } from '@azure/functions';
import { notFound } from '../shared/errors';
import { api, csvDownload } from '../shared/http';

/** GET /api/runs/{runId}/rejected: the rejected-rows report (CSV: segment, partition, line, profileId, reason). */
export const runRejectedReport = api(async ({ request, app: { runs, storage } }) => {
  const run = await runs.get(request.params.runId!);
  const report = run.rejectedReport;
  if (!report) throw notFound('Rejected-rows report');
  return csvDownload(storage.appBlobs, report, `rejected-${run.id}.csv`);
});

app.http('runRejectedReport', {
  methods: ['GET'],
  route: 'api/runs/{runId}/rejected',
  authLevel: 'anonymous',
  handler: runRejectedReport,
});
