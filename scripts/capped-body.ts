// A request's body up to a size, for the local servers (the local host, the Braze sandbox). A body
// too large is read to its end and dropped, not cut off: a client still writing it would otherwise
// meet a broken pipe instead of the refusal.
import type { IncomingMessage } from 'node:http';

/** The body, or null when it is longer than `maxBytes`. */
export function readCappedBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) chunks.push(chunk);
      else chunks.length = 0;
    });
    req.on('end', () => resolve(size > maxBytes ? null : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
