// Text pushed chunk by chunk into the CSV reader, parsed synchronously on each push: what a worker
// thread needs when its input arrives as messages rather than as a Node stream. It offers just
// what Papa Parse and readCsv use of a Readable (Papa recognises a stream by `readable`, `read`
// and `on`).
import type { Readable } from 'node:stream';

type Listener = (arg?: unknown) => void;

export class CsvFeed {
  private readonly listeners = new Map<string, Listener[]>();

  readonly stream = {
    readable: true,
    read: () => null,
    on: (event: string, listener: Listener) => {
      this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
      return this.stream;
    },
    removeListener: (event: string, listener: Listener) => {
      this.listeners.set(
        event,
        (this.listeners.get(event) ?? []).filter((l) => l !== listener),
      );
      return this.stream;
    },
    // Input arrives only when the sender sends it: pausing is the sender's business.
    pause: () => this.stream,
    resume: () => this.stream,
    destroy: () => this.stream,
  } as unknown as Readable;

  push(text: string): void {
    for (const l of this.listeners.get('data') ?? []) l(text);
  }

  end(): void {
    for (const l of this.listeners.get('end') ?? []) l();
  }
}
