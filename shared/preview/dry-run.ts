// The engine over a snapshot with nothing leaving the app: Braze is a DryRunTransport and the sync
// state read-only (nothing is written, no run is recorded). What the preview answers, and what the
// guard weighs before an unattended run sends anything.
import type { BlobServiceClient } from '@azure/storage-blob';
import { BrazeClient } from '../braze/client';
import { RequestBudget } from '../braze/request-budget';
import { membershipNamesOf, runExport, type EngineResult } from '../engine';
import type { ExportDefinition } from '../exports/schema';
import type { Snapshot } from '../snapshot/locate';
import { CONTAINERS } from '../store/clients';
import { DryRunTransport } from './dry-run-transport';
import { ReadOnlySyncState } from './read-only-state';

/** Nothing paces a dry run: it is bounded by the engine's CPU work, not by Braze's limit. */
const UNPACED_REQUESTS_PER_WINDOW = 1e9;

export interface DryRunDeps {
  ciBlobs: BlobServiceClient;
  appBlobs: BlobServiceClient;
  bucketTargetBytes?: number;
}

export interface DryRun extends EngineResult {
  /** What would have gone to Braze: objects, data points, masked samples. */
  transport: DryRunTransport;
}

export async function dryRunExport(
  deps: DryRunDeps,
  record: ExportDefinition & { id: string },
  baseUrl: string,
  snapshot: Snapshot,
  fullSync: boolean,
  /** Asked as a run's cancel is: true stops the engine (a preview's deadline). */
  shouldStop: (() => boolean) | undefined,
  /** The pace Braze will take the real run's requests at (connectionPace): the run's path depends on it. */
  pace: number,
): Promise<DryRun> {
  // The membership attributes are shown as they are in samples; every value mapped from CI is masked.
  const transport = new DryRunTransport(new Set(membershipNamesOf(record)));
  const braze = new BrazeClient({
    baseUrl,
    apiKey: 'dry-run',
    budget: new RequestBudget({ requestsPerWindow: UNPACED_REQUESTS_PER_WINDOW }),
    transport,
  });
  const result = await runExport({
    shouldStop,
    definition: record,
    snapshot,
    ciBlobs: deps.ciBlobs,
    state: new ReadOnlySyncState(deps.appBlobs.getContainerClient(CONTAINERS.state), record.id),
    braze,
    fullSync,
    // As the next run's first attempt, at its pace: the same path, so the same requests.
    firstAttempt: true,
    pace,
    bucketTargetBytes: deps.bucketTargetBytes,
  });
  return { ...result, transport };
}
