import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

export interface HttpSink {
  readonly url: string;
  readonly received: ReceivedRequest[];
  /** Resolves with the nth request (0-based) once it has arrived. */
  nth(index: number): Promise<ReceivedRequest>;
  close(): Promise<void>;
}

/** A local HTTP server that records every request and answers 200: a callback receiver. */
export async function startHttpSink(): Promise<HttpSink> {
  const received: ReceivedRequest[] = [];
  const waiters: Array<{ index: number; resolve: (r: ReceivedRequest) => void }> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const entry = { method: req.method ?? '', path: req.url ?? '', headers, body: Buffer.concat(chunks) };
      received.push(entry);
      for (const w of waiters.filter((w) => w.index === received.length - 1)) w.resolve(entry);
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    nth(index) {
      const ready = received[index];
      if (ready) return Promise.resolve(ready);
      return new Promise((resolve) => waiters.push({ index, resolve }));
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
