// The leases that make one worker the only one (per export, per Braze limit), against real Azurite:
// what taking one asks of storage, since each attempt of a run takes two before it reads a row.
import { describe, expect, it } from 'vitest';
import { acquireLease } from '../../shared/runs/leases';
import { useAzurite } from '../helpers/app';
import { useCountingStorage } from '../helpers/counting-storage';

const { azurite } = useAzurite();
const countingClient = useCountingStorage(() => azurite().connectionString);

describe('a lease', () => {
  it('is made the first time it is taken, then taken in one request; held, it is refused in one', async () => {
    const { blobs, traffic } = await countingClient();
    const container = blobs.getContainerClient(`leases-${Date.now()}`);
    await container.create();
    traffic.requests.splice(0);
    const name = 'export-1';
    const first = await acquireLease(container, name);
    expect(first).not.toBeNull();
    // Asked for, not there (404), made, asked for again.
    expect(traffic.requests.splice(0)).toEqual(['PUT blob', 'PUT blob', 'PUT blob']);
    expect(await acquireLease(container, name)).toBeNull();
    expect(traffic.requests.splice(0)).toEqual(['PUT blob']);
    await first!.release();
    traffic.requests.splice(0);
    const again = await acquireLease(container, name);
    expect(again).not.toBeNull();
    expect(traffic.requests).toEqual(['PUT blob']);
    await again!.release();
  });

  it('asked for by two workers at once, the first time, goes to exactly one of them', async () => {
    const { blobs } = await countingClient();
    const container = blobs.getContainerClient(`leases-race-${Date.now()}`);
    await container.create();
    const taken = await Promise.all([acquireLease(container, 'export-2'), acquireLease(container, 'export-2')]);
    expect(taken.filter((t) => t !== null)).toHaveLength(1);
    await Promise.all(taken.map((t) => t?.release()));
  });

  it('in a container that does not exist is an error, not a lease taken', async () => {
    const { blobs } = await countingClient();
    const missing = blobs.getContainerClient(`no-leases-${Date.now()}`);
    await expect(acquireLease(missing, 'export-1')).rejects.toMatchObject({ statusCode: 404 });
  });
});
