import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { StageRequest } from '../src/transport/contract.ts';
import { type FaveFailure } from '../src/domain/errors.ts';
import { FsStore } from '../src/persistence/fs-store.ts';
import { importInput } from '../src/input/import.ts';
import { HttpTransport } from '../src/transport/http-transport.ts';
import { StageResponseTooLarge, StageTimeout } from '../src/transport/transport.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { closeNodeServer } from './support/cleanup.ts';

let servers: Server[] = [];
let timers: NodeJS.Timeout[] = [];
let h: Harness | null = null;
let dir: string | null = null;

afterEach(async () => {
  for (const t of timers) clearInterval(t);
  for (const s of servers) await closeNodeServer(s);
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  servers = [];
  timers = [];
  h = null;
  dir = null;
});

/** A server on loopback whose every answer is written by `answer`. */
async function serve(answer: (res: ServerResponse) => void): Promise<string> {
  const server = createServer((req, res) => {
    req.resume();
    answer(res);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/**
 * The moment a dripping source finishes its answer: far past every limit set here, so a call
 * that ends before it was stopped by its limit, however slow the machine is.
 */
const ANSWER_AFTER_MS = 60_000;

/** Headers at once, then one byte every `everyMs`; the body would end only at ANSWER_AFTER_MS. */
function drip(res: ServerResponse, everyMs: number, contentType = 'application/json'): void {
  res.writeHead(200, { 'content-type': contentType });
  res.write('{');
  const timer = setInterval(() => res.write(' '), everyMs);
  const end = setTimeout(() => res.end('}'), ANSWER_AFTER_MS);
  timers.push(timer, end);
  res.on('close', () => {
    clearInterval(timer);
    clearTimeout(end);
  });
}

async function failure(promise: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  try {
    await promise;
  } catch (error) {
    return { error, ms: performance.now() - started };
  }
  throw new Error('expected a failure');
}

const STAGE_REQUEST: StageRequest = { request_id: 'r', stage: 'ffmpeg-0', input_uri: 's3://b/k', output_hint: null, config: {}, fanout: {} };

describe('stage calls: the timeout covers the whole exchange', () => {
  it('a body dripping a byte every 250 ms fails at the 3 s timeout, not when the answer would end', async () => {
    const url = await serve((res) => drip(res, 250));
    const transport = new HttpTransport({ gatewayUrl: url });
    try {
      const { error, ms } = await failure(transport.call('stage-ffmpeg-0', STAGE_REQUEST, { signal: new AbortController().signal, timeoutMs: 3000 }));
      expect(error).toBeInstanceOf(StageTimeout);
      // A timer never fires early; a busy machine only makes it late, never by most of a minute.
      expect(ms).toBeGreaterThanOrEqual(2900);
      expect(ms).toBeLessThan(ANSWER_AFTER_MS / 2);
    } finally {
      await transport.close();
    }
  });

  it('an answer over the cap stops being read there', async () => {
    let sent = 0;
    const url = await serve((res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const more = () => {
        while (sent < 64 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    });
    const transport = new HttpTransport({ gatewayUrl: url, maxResponseBytes: 1024 * 1024 });
    try {
      const { error } = await failure(transport.call('stage-ffmpeg-0', STAGE_REQUEST, { signal: new AbortController().signal, timeoutMs: 10_000 }));
      expect(error).toBeInstanceOf(StageResponseTooLarge);
      expect(sent).toBeLessThan(64 * 1024 * 1024);
    } finally {
      await transport.close();
    }
  });
});

describe('input import: bounded by the request deadline and MAX_INPUT_BYTES', () => {
  async function store(): Promise<FsStore> {
    dir = await mkdtemp(join(tmpdir(), 'fave-import-'));
    const s = new FsStore(join(dir, 'data'), 'fave-artifacts');
    await s.init();
    return s;
  }
  const dest = { bucket: 'fave-artifacts', key: 'requests/r/input/original.mp4' };

  it('a source that never sends headers, and one dripping its body, fail at the deadline', async () => {
    const s = await store();
    const silent = await serve(() => undefined);
    const dripping = await serve((res) => drip(res, 200, 'video/mp4'));
    for (const url of [`${silent}/v.mp4`, `${dripping}/v.mp4`]) {
      const { error, ms } = await failure(importInput(s, url, dest, { deadlineAt: Date.now() + 2000, allowPrivateNetwork: true }));
      expect((error as FaveFailure).error, url).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
      expect(ms, url).toBeLessThan(ANSWER_AFTER_MS / 2);
    }
    expect(await readdir(join(dir!, 'data', 'fave-artifacts', 'requests', 'r', 'input')).catch(() => [])).toEqual([]);
  });

  it('a source over MAX_INPUT_BYTES is refused, announced or not, and nothing of it is kept', async () => {
    const s = await store();
    const announced = await serve((res) => res.writeHead(200, { 'content-length': String(5 * 1024 * 1024) }).end(Buffer.alloc(5 * 1024 * 1024)));
    const chunked = await serve((res) => {
      res.writeHead(200, { 'content-type': 'video/mp4' });
      res.end(Buffer.alloc(5 * 1024 * 1024));
    });
    for (const url of [`${announced}/v.mp4`, `${chunked}/v.mp4`]) {
      const { error } = await failure(importInput(s, url, dest, { maxBytes: 1024 * 1024, allowPrivateNetwork: true }));
      expect((error as FaveFailure).error, url).toMatchObject({ code: 'BAD_REQUEST' });
      expect((error as FaveFailure).error.message).toMatch(/MAX_INPUT_BYTES \(1048576\)/);
    }
    expect(await s.head(dest)).toBeNull();
    expect(await readdir(join(dir!, 'data', 'fave-artifacts', 'requests', 'r', 'input')).catch(() => [])).toEqual([]);
  });

  it('a request whose source is silent fails with DEADLINE_EXCEEDED at INIT within REQUEST_DEADLINE_SECONDS', async () => {
    const silent = await serve(() => undefined);
    h = await startHarness({ env: { REQUEST_DEADLINE_SECONDS: '2' } });
    const started = Date.now();
    const handle = await h.app.orchestrator.submit({ video_uri: `${silent}/v.mp4`, request_id: 'silent' }, { allowPrivateNetwork: true });
    const outcome = await handle.done;
    expect(outcome.status).toBe('FAILED');
    expect(outcome.result.error).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(Date.now() - started).toBeLessThan(ANSWER_AFTER_MS / 2);
  });
});
