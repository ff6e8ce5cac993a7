import { app } from '@azure/functions';
import { api, json } from '../shared/http';

/** POST /api/exports/run-all: queue every export whose schedule is on; lists what was skipped and why. */
export const exportsRunAll = api(async ({ caller, app: { runs } }) => json(202, await runs.runAll(caller)));

app.http('exportsRunAll', { methods: ['POST'], route: 'api/exports/run-all', authLevel: 'anonymous', handler: exportsRunAll });
