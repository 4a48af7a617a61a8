import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../src/persistence/fs-store.ts';
import { AsyncStageCaller } from '../src/transport/async-transport.ts';
import { CallbackInbox, callbackToken, type CallbackAddress } from '../src/transport/callbacks.ts';
import type { StageRequest } from '../src/transport/contract.ts';
import { StageResponseTooLarge } from '../src/transport/transport.ts';
import { closeAfterTest, closeNodeServer } from './support/cleanup.ts';
import { until } from './support/until.ts';

/**
 * Queueing an async call (`POST /async-function/{name}`) as the gateway sees it, and the bounds
 * it is held to: the same as a synchronous call's (answer size, abort, time to answer).
 */

const SECRET = 'enqueue-test-secret-0123456789';
const REQUEST: StageRequest = { request_id: 'enq', stage: 'ffmpeg-0', input_uri: 's3://b/k', output_hint: null, config: {}, fanout: {} };
const ADDRESS: CallbackAddress = { request_id: 'enq', task_id: 'ffmpeg0', run: 0, attempt: 1 };

interface Seen {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

let dir: string;
let gatewayUrl: string;
let stopGateway: () => Promise<void>;
const seen: Seen[] = [];
/** Answers held open (the "silent" function), closed when the test ends. */
const held: ServerResponse[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fave-enqueue-'));
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const name = (req.url ?? '').split('/').pop();
      if (name === 'queued') return res.writeHead(202, { 'x-call-id': 'call-1' }).end();
      if (name === 'busy') return res.writeHead(429, { 'content-type': 'text/plain' }).end('queue full');
      if (name === 'huge') return res.writeHead(202).end('x'.repeat(64 * 1024));
      held.push(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  gatewayUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  stopGateway = () => closeNodeServer(server);
});

afterAll(async () => {
  for (const res of held) res.destroy();
  await stopGateway?.();
  await rm(dir, { recursive: true, force: true });
});

function caller(options: { auth?: { user: string; password: string }; maxResponseBytes?: number } = {}): AsyncStageCaller {
  const inbox = new CallbackInbox({ store: new FsStore(join(dir, 'data'), 'fave-artifacts'), bucket: 'fave-artifacts', pollMs: 60_000 });
  return closeAfterTest(new AsyncStageCaller({ gatewayUrl, callback: { baseUrl: 'http://127.0.0.1:1', secret: SECRET }, inbox, ...options }));
}

describe('AsyncStageCaller.enqueue', () => {
  it('posts the stage request with its callback address and the gateway credentials, and returns the 202 with its call id', async () => {
    const before = seen.length;
    const answer = await caller({ auth: { user: 'admin', password: 'pw' } }).enqueue('queued', REQUEST, ADDRESS, new AbortController().signal, 5_000);
    expect(answer).toMatchObject({ status: 202, headers: { 'x-call-id': 'call-1' }, body: '' });
    const request = seen[before]!;
    expect(request.path).toBe('/async-function/queued');
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.headers.authorization).toBe(`Basic ${Buffer.from('admin:pw').toString('base64')}`);
    expect(JSON.parse(request.body)).toEqual(REQUEST);
    const callback = new URL(String(request.headers['x-callback-url']));
    expect(callback.pathname).toBe('/callbacks/enq');
    expect(Object.fromEntries(callback.searchParams)).toEqual({ task: 'ffmpeg0', run: '0', attempt: '1', token: callbackToken(SECRET, ADDRESS) });
  });

  it('returns a refusal as the gateway answered it, for the classification of a synchronous answer', async () => {
    const answer = await caller().enqueue('busy', REQUEST, ADDRESS, new AbortController().signal, 5_000);
    expect(answer).toMatchObject({ status: 429, headers: { 'content-type': 'text/plain' }, body: 'queue full' });
  });

  it('stops reading an answer larger than the limit', async () => {
    await expect(caller({ maxResponseBytes: 1024 }).enqueue('huge', REQUEST, ADDRESS, new AbortController().signal, 5_000)).rejects.toBeInstanceOf(StageResponseTooLarge);
  });

  it('gives up on a gateway that does not answer: at the abort of the request, or at the call timeout', async () => {
    const queue = caller();
    const abort = new AbortController();
    const before = held.length;
    const aborted = queue.enqueue('silent', REQUEST, ADDRESS, abort.signal, 60_000);
    const settled = aborted.then(
      () => 'answered',
      (err: unknown) => err,
    );
    await until(() => held.length > before);
    abort.abort();
    // What the caller classifies is the aborted signal (CANCELLED), whatever the error says.
    expect(await settled).toBeInstanceOf(Error);
    await expect(queue.enqueue('silent', REQUEST, ADDRESS, new AbortController().signal, 200)).rejects.toMatchObject({ code: 'UND_ERR_HEADERS_TIMEOUT' });
    await expect(queue.enqueue('silent', REQUEST, ADDRESS, abort.signal, 60_000)).rejects.toBeInstanceOf(Error);
  });
});
