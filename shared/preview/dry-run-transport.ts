// A /users/track "transport" that sends nothing: it answers every batch as Braze does when it takes
// all of it, and tallies what Braze would have received (objects, data points, a few samples).
// The preview runs the real Braze client and engine over it, so its counts are a run's counts.
import type { PostTransport, TransportResponse } from '../braze/transport';
import { dataPointsOf, maskObject } from './data-points';

export const MAX_SAMPLES = 10;

export class DryRunTransport implements PostTransport {
  objects = 0;
  dataPoints = 0;
  readonly samples: Record<string, unknown>[] = [];

  /** `membership`: the attribute names whose values (CI segment names) samples show as they are. */
  constructor(private readonly membership: ReadonlySet<string> = new Set()) {}

  async post(body: Buffer): Promise<TransportResponse> {
    const { attributes } = JSON.parse(body.toString('utf8')) as { attributes: Record<string, unknown>[] };
    for (const object of attributes) {
      this.objects++;
      this.dataPoints += dataPointsOf(object);
      if (this.samples.length < MAX_SAMPLES) this.samples.push(maskObject(object, this.membership));
    }
    const text = JSON.stringify({ message: 'success', attributes_processed: attributes.length });
    return { status: 201, header: () => null, text };
  }

  close(): void {}
}
