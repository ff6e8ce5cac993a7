// Blob leases that make one worker the only one: per export (one run at a time) and per Braze
// rate limit (one run at a time per connection, or per group of connections sharing a limit).
// Short leases, renewed in the background: a killed worker's lease frees within seconds. A lease
// that could not be renewed is lost for good; the worker must stop writing.
import type { BlobLeaseClient, ContainerClient } from '@azure/storage-blob';
import { StateTakenOver } from '../engine';
import { statusOf } from '../store/table-errors';

export const LEASE_SECONDS = 15;
const RENEW_EVERY_MS = 2000;

export class HeldLease {
  private lostReason: string | null = null;
  private readonly renewing: NodeJS.Timeout;

  constructor(
    private readonly lease: BlobLeaseClient,
    readonly name: string,
  ) {
    // Renewed every 2 s: a worker whose lease was taken notices within about that long and stops sending.
    this.renewing = setInterval(() => void this.renew().catch(() => undefined), RENEW_EVERY_MS);
    this.renewing.unref();
  }

  /** Lost: another worker broke or took it (or it expired while this process stalled). */
  get lost(): boolean {
    return this.lostReason !== null;
  }

  /** Renews now; throws StateTakenOver once the lease is gone. Called before every checkpoint. */
  async assertHeld(): Promise<void> {
    await this.renew();
    if (this.lostReason) throw new StateTakenOver(this.lostReason);
  }

  async release(): Promise<void> {
    clearInterval(this.renewing);
    if (!this.lostReason) await this.lease.releaseLease().catch(() => undefined);
  }

  private async renew(): Promise<void> {
    if (this.lostReason) return;
    try {
      await this.lease.renewLease();
    } catch (e) {
      const status = statusOf(e);
      // 409: another lease holds the blob, or ours was broken; 412: lease id mismatch. Anything else
      // (a storage hiccup) is tried again at the next renewal, well before the lease runs out.
      if (status === 409 || status === 412) this.lostReason = `the lease on ${this.name} was lost (another worker took it over)`;
      else throw e;
    }
  }
}

/**
 * Takes the named lease, or null when another worker holds it. The lease's blob is made the first
 * time the lease is asked for (then asked for again, once), not before every take: each attempt of
 * a run takes two leases before it reads a row, and against Azure Storage a request is a round trip.
 */
export async function acquireLease(container: ContainerClient, name: string): Promise<HeldLease | null> {
  const blob = container.getBlockBlobClient(name);
  const lease = blob.getBlobLeaseClient();
  for (let made = false; ; made = true) {
    try {
      await lease.acquireLease(LEASE_SECONDS);
      return new HeldLease(lease, name);
    } catch (e) {
      const status = statusOf(e);
      if (status === 409) return null;
      if (status !== 404 || made) throw e;
      // Another worker may make it at the same moment (409/412 here): either way it is there to lease.
      await blob.upload('', 0, { conditions: { ifNoneMatch: '*' } }).catch((u: unknown) => {
        if (statusOf(u) !== 409 && statusOf(u) !== 412) throw u;
      });
    }
  }
}
