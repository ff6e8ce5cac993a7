import { app } from '@azure/functions';
import { notFound } from '../shared/errors';
import { api } from '../shared/http';

/** GET /api/runs/{runId}/rejected: the rejected-rows report (CSV: segment, partition, line, profileId, reason). */
export const runRejectedReport = api(async ({ request, app: { runs, storage } }) => {
  const run = await runs.get(request.params.runId!);
  if (!run.rejectedReport) throw notFound('Rejected-rows report');
  const [container, ...name] = run.rejectedReport.split('/');
  const body = await storage.appBlobs.getContainerClient(container!).getBlobClient(name.join('/')).downloadToBuffer();
  return {
    status: 200,
    body,
    headers: {
      'Content-Type': 'text/csv; charset=utf-8',
      'Content-Disposition': `attachment; filename="rejected-${run.id}.csv"`,
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-store',
    },
  };
});

app.http('runRejectedReport', {
  methods: ['GET'],
  route: 'api/runs/{runId}/rejected',
  authLevel: 'anonymous',
  handler: runRejectedReport,
});
