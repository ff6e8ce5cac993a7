// Runs waiting for a Braze rate limit another run holds. A run that finds the limit's lease taken
// writes its id here; the run that lets the lease go queues every waiter at once, so the next one
// starts within seconds, on any instance. The list is a small blob beside the lease, changed with
// conditional (ETag) writes. A waiter the wake-up misses (its holder was killed) still looks again
// on its own a little later.
import type { ContainerClient } from '@azure/storage-blob';
import type { ConnectionRecord } from '../store/connections';
import { statusOf } from '../store/table-errors';
import type { Attempt, Log } from './attempt';
import { acquireLease } from './leases';

/**
 * A run waiting for another run on the same Braze rate limit is queued again by that run as soon
 * as it lets the limit go; it also looks again this often on its own, should that run have been killed.
 */
export const LIMIT_BUSY_RETRY_SECONDS = 10;

/**
 * The lease shared by every run that draws on one Braze rate limit: the connection's own, or the
 * group an Admin put several connections in (newer Braze contracts share the limit across a
 * company's workspaces). One run at a time per limit, each at its connection's budget: the budget
 * is the bottleneck, so runs one after another finish as soon as they would sharing it, and the
 * limit holds across instances with nothing more than a lease.
 */
export const rateLimitLeaseName = (connection: { id: string; rateLimitGroup?: string | null }) =>
  connection.rateLimitGroup
    ? `limit-group-${encodeURIComponent(connection.rateLimitGroup.toLowerCase())}`
    : `limit-connection-${connection.id}`;

/** Whose turn it is on a Braze rate limit: the run holding its lease; the others wait, and are queued when it ends. */
export class RateLimitTurns {
  private readonly waiters: LimitWaiters;

  constructor(
    private readonly leases: ContainerClient,
    private readonly enqueue: (runId: string, delaySeconds?: number) => Promise<void>,
  ) {
    this.waiters = new LimitWaiters(leases);
  }

  /**
   * Takes the connection's rate limit for the attempt, or leaves the run queued, waiting for it: on
   * the limit's list of waiters (the run that holds it queues them when it ends), and looking again shortly.
   */
  async take(attempt: Attempt, connection: ConnectionRecord): Promise<boolean> {
    const name = rateLimitLeaseName(connection);
    attempt.limitLease = await acquireLease(this.leases, name);
    if (attempt.limitLease) return true;
    await this.waiters.add(name, attempt.run.id);
    // The holder may have let go between the two: look once more, now that it would wake this run.
    attempt.limitLease = await acquireLease(this.leases, name);
    if (attempt.limitLease) {
      await this.waiters.remove(name, attempt.run.id);
      return true;
    }
    attempt.run = {
      ...attempt.run,
      waitingFor: "another run on the same Braze connection's rate limit",
      heartbeatAt: new Date().toISOString(),
    };
    await attempt.writer.write(attempt.run);
    attempt.requeueIn = LIMIT_BUSY_RETRY_SECONDS;
    attempt.log(`run ${attempt.run.id}: waiting for another run on the same Braze rate limit`);
    return false;
  }

  /** Queues every run that waited for the limit `limitName` (the one that gets it goes first; the others wait again). */
  async wake(limitName: string, log: Log): Promise<void> {
    try {
      for (const runId of await this.waiters.takeAll(limitName)) {
        await this.enqueue(runId);
        log(`run ${runId}: the Braze rate limit it waited for is free; queued`);
      }
    } catch (e) {
      log(`could not queue the runs waiting for ${limitName} (${(e as Error).message}); they look again on their own`);
    }
  }
}

/** A limit has few runs waiting on it (one per export at most); more are dropped from the list, not from the queue. */
const MAX_WAITERS = 500;

export class LimitWaiters {
  constructor(private readonly leases: ContainerClient) {}

  /** Adds `runId` to the runs waiting for the limit `limitName` (a lease name). */
  add(limitName: string, runId: string): Promise<void> {
    return this.change(limitName, (ids) => (ids.includes(runId) ? null : [...ids, runId].slice(-MAX_WAITERS)));
  }

  /** Takes `runId` off the list (it holds the limit now). */
  remove(limitName: string, runId: string): Promise<void> {
    return this.change(limitName, (ids) => (ids.includes(runId) ? ids.filter((id) => id !== runId) : null));
  }

  /** Empties the list and returns who was on it, for the run that frees the limit to queue them. */
  async takeAll(limitName: string): Promise<string[]> {
    let taken: string[] = [];
    await this.change(limitName, (ids) => {
      taken = ids;
      return ids.length ? [] : null;
    });
    return taken;
  }

  private blob(limitName: string) {
    return this.leases.getBlockBlobClient(`${limitName}.waiting.json`);
  }

  /** Read-modify-write on the list; `next` returns null when nothing changes. */
  private async change(limitName: string, next: (ids: string[]) => string[] | null): Promise<void> {
    const blob = this.blob(limitName);
    for (let attempt = 0; ; attempt++) {
      let ids: string[] = [];
      let etag: string | undefined;
      try {
        const read = await blob.download();
        etag = read.etag;
        ids = parseIds(await textOf(read.readableStreamBody));
      } catch (e) {
        if (statusOf(e) !== 404) throw e;
      }
      const changed = next(ids);
      if (!changed) return;
      const text = JSON.stringify(changed);
      try {
        await blob.upload(text, Buffer.byteLength(text), {
          conditions: etag ? { ifMatch: etag } : { ifNoneMatch: '*' },
        });
        return;
      } catch (e) {
        const status = statusOf(e);
        if ((status === 412 || status === 409) && attempt < 10) continue; // another worker changed it: again
        throw e;
      }
    }
  }
}

async function textOf(stream: NodeJS.ReadableStream | undefined): Promise<string> {
  if (!stream) return '';
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

/** The stored list; anything unreadable counts as empty (it is rewritten whole on the next change). */
function parseIds(text: string): string[] {
  try {
    const parsed: unknown = JSON.parse(text || '[]');
    return Array.isArray(parsed) ? parsed.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}
