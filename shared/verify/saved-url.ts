// Braze's signed download URL for a verification's export grants access to the users' data: it is
// kept in the app's own storage (never on the run row, in a response or in a log) while the run
// waits for the files, and deleted when the run ends — however it ends: compared, failed, cancelled,
// given up after too many troubled attempts, stalled or poisoned (RunsService.finish calls forget).
import type { ContainerClient } from '@azure/storage-blob';
import { runFolder } from '../runs/pinned-snapshot';

const nameOf = (runId: string) => `${runFolder(runId)}/braze-export.json`;

export async function saveUrl(reports: ContainerClient, runId: string, url: string | null | undefined): Promise<void> {
  const text = JSON.stringify({ url });
  await reports.getBlockBlobClient(nameOf(runId)).upload(text, Buffer.byteLength(text));
}

export async function savedUrl(reports: ContainerClient, runId: string): Promise<string> {
  const saved = await reports.getBlobClient(nameOf(runId)).downloadToBuffer();
  return (JSON.parse(saved.toString('utf8')) as { url: string }).url;
}

/** Deletes the saved URL, if any. Never throws: the run's outcome stands either way. */
export async function forgetUrl(reports: ContainerClient, runId: string): Promise<void> {
  await reports
    .getBlobClient(nameOf(runId))
    .deleteIfExists()
    .catch(() => undefined);
}
