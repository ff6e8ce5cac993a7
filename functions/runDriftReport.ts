import { app } from '@azure/functions';
import { notFound } from '../shared/errors';
import { api } from '../shared/http';

/** GET /api/runs/{runId}/drift: a verification's drift (CSV: kind, identifier type, identifier, profileId, segments, fields). */
export const runDriftReport = api(async ({ request, app: { runs, storage } }) => {
  const run = await runs.get(request.params.runId!);
  const report = run.verify?.driftReport;
  if (!report) throw notFound('Drift report');
  const [container, ...name] = report.split('/');
  const body = await storage.appBlobs.getContainerClient(container!).getBlobClient(name.join('/')).downloadToBuffer();
  return {
    status: 200,
    body,
    headers: {
      'Content-Type': 'text/csv; charset=utf-8',
      'Content-Disposition': `attachment; filename="drift-${run.id}.csv"`,
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-store',
    },
  };
});

app.http('runDriftReport', {
  methods: ['GET'],
  route: 'api/runs/{runId}/drift',
  authLevel: 'anonymous',
  handler: runDriftReport,
});
