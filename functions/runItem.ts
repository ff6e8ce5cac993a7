import { app } from '@azure/functions';
import { api, json } from '../shared/http';
import { runView } from '../shared/runs/view';

/** GET /api/runs/{runId}: live progress and outcome (all roles). */
export const runItem = api(async ({ request, app: { runs } }) => json(200, runView(await runs.get(request.params.runId!))));

app.http('runItem', { methods: ['GET'], route: 'api/runs/{runId}', authLevel: 'anonymous', handler: runItem });
