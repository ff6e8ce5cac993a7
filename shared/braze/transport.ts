// One HTTPS POST on a kept-alive connection. node:http(s) with an Agent rather than global fetch:
// measured here at ~0.5 ms of CPU per 75-object request against ~2 ms for fetch, and sending
// 13,000+ requests per million profiles is the engine's busiest loop.
import http from 'node:http';
import https from 'node:https';

export interface TransportResponse {
  status: number;
  /** Header lookup by name, case-insensitive (Node lower-cases incoming names). */
  header(name: string): string | null;
  text: string;
}

export class Transport {
  private readonly agent: http.Agent;
  private readonly url: URL;
  private readonly client: typeof http | typeof https;

  constructor(url: string, maxSockets: number) {
    this.url = new URL(url);
    this.client = this.url.protocol === 'https:' ? https : http;
    const options = { keepAlive: true, keepAliveMsecs: 10_000, maxSockets, scheduling: 'lifo' as const };
    this.agent = this.url.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
  }

  post(body: string, headers: Record<string, string>, timeoutMs: number): Promise<TransportResponse> {
    return new Promise((resolve, reject) => {
      const req = this.client.request(
        this.url,
        { method: 'POST', agent: this.agent, headers: { ...headers, 'Content-Length': Buffer.byteLength(body) } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              header: (name) => {
                const v = res.headers[name.toLowerCase()];
                return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
              },
              text,
            }),
          );
          res.on('error', reject);
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
