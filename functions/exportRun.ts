import { app } from '@azure/functions';
import { api } from '../shared/http';
import { AppError } from '../shared/errors';

/** POST /api/exports/{id}/run: queue a run (the export engine answers this). */
export const exportRun = api(async () => {
  throw new AppError(501, 'not_implemented', 'Runs come with the export engine');
});

app.http('exportRun', { methods: ['POST'], route: 'exports/{id}/run', authLevel: 'anonymous', handler: exportRun });
