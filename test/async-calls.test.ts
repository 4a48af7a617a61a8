import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { createRouter } from '../src/server/router.ts';
import { startHttpServer, type HttpServer } from '../src/server/http-server.ts';
import { callbackKeys, callbackToken, callbackUrl } from '../src/transport/callbacks.ts';
import { isNotFound, requestKeys } from '../src/persistence/store.ts';
import { createHandler, type FunctionContext } from '../src/handler.ts';
import { flattenInvocations } from '../src/ui/timeline.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { startTestGateway } from './support/test-gateway.ts';
import { until } from './support/until.ts';
import { freePort } from './support/free-port.ts';
import { holdingStore } from './support/holding-store.ts';
import { FsStore } from '../src/persistence/fs-store.ts';
import { clipTaskId, frameTaskId } from '../src/domain/context.ts';
import type { InspectionEvent } from 'xstate';

const SECRET = 'test-callback-secret-0123456789';
const SLOW_MS = 3000;

let h: Harness;
let asyncApp: App;
let server: HttpServer;

let asyncEnv: Record<string, string>;

beforeAll(async () => {
  // The gateway cuts synchronous calls at 1 s, as OpenFaaS's upstream timeout; deepspeech takes 3 s.
  h = await startHarness({
    gateway: { clips: 2, framesPerClip: 1, upstreamTimeoutMs: 1000, latencyMs: { deepspeech: SLOW_MS } },
    env: { RETRY_MAX_ATTEMPTS: '2', PERSIST_INTERVAL_MS: '0' },
  });
  const port = await freePort();
  const profiles = join(h.dir, 'profiles.json');
  await writeFile(profiles, JSON.stringify({ short: { stage_timeouts_s: { ffmpeg2: 1 } } }));
  asyncEnv = {
    ...h.env,
    STAGE_CALL_MODE: 'async',
    CALLBACK_BASE_URL: `http://127.0.0.1:${port}`,
    CALLBACK_SECRET: SECRET,
    LEASE_TTL_MS: '600',
    FAVE_PROFILES_FILE: profiles,
  };
  asyncApp = await createApp({
    env: asyncEnv,
    logger: pino({ level: 'silent' }),
  });
  server = await startHttpServer({ app: asyncApp, port, host: '127.0.0.1', processMetrics: false });
});

afterAll(async () => {
  await server?.close();
  await asyncApp?.close();
  await h?.close();
});

describe('stage calls through the gateway queue', () => {
  it('a 3 s stage fails the request in sync mode (504 at the 1 s upstream timeout) and completes it in async mode', async () => {
    const sync = await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'slow-sync' });
    const failed = await sync.done;
    expect(failed.status).toBe('FAILED');
    expect(failed.result.error).toMatchObject({ code: 'STAGE_TIMEOUT', http_status: 504, stage: 'stage-deepspeech' });

    const queued = await asyncApp.orchestrator.submit({ video_uri: h.videoUri, request_id: 'slow-async' });
    const done = await queued.done;
    expect(done.status, JSON.stringify(done.result.error)).toBe('COMPLETED');
    expect(done.result.clips.map((c) => c.transcript)).toEqual(expect.arrayContaining([expect.any(String)]));
    const state = await h.readState('slow-async');
    const speech = state.snapshot.context.clips.flatMap((c) => c.records).filter((r) => r.stage === 'stage-deepspeech');
    expect(speech).toHaveLength(2);
    for (const r of speech) {
      expect(r).toMatchObject({ call_mode: 'async', outcome: 'success', http_status: 200, attempt: 1 });
      expect(r.ended_at - r.started_at).toBeGreaterThanOrEqual(SLOW_MS - 50);
      expect(r.started_at).toBeGreaterThanOrEqual(Number(r.queued_at));
      expect(typeof r.call_id).toBe('string');
    }
    expect(state.snapshot.context.dispatched).toEqual({});

    // The timeline draws each async call as queued (dispatch → function start), then running.
    const timed = flattenInvocations(state.snapshot.context).filter((i) => i.stage === 'stage-deepspeech');
    for (const inv of timed) {
      expect(inv.call_mode).toBe('async');
      expect(inv.queued_at).toBeLessThanOrEqual(inv.started_at);
      expect(inv.ended_at - inv.started_at).toBeGreaterThanOrEqual(SLOW_MS - 50);
    }
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^fave_queue_delay_seconds_count\{stage="stage-deepspeech"\} 2$/m);
  });
});

/** Posts a callback as the queue-worker would. */
async function postCallback(url: string, body: string | Buffer, headers: Record<string, string> = { 'X-Function-Status': '200', 'Content-Type': 'application/json' }) {
  const response = await fetch(url, { method: 'POST', headers, body });
  return { status: response.status, json: (await response.json()) as { status?: string; error?: { code: string; field?: string } } };
}

const storedKeys = (requestId: string) => h.store.list('fave-artifacts', callbackKeys.prefix(requestId));

/** The callback stored under a key, read as the inbox reads it; null when there is none. */
async function storedCallback(requestId: string, key: string): Promise<Buffer | null> {
  const loc = { bucket: 'fave-artifacts', key };
  try {
    return await (h.store.readRecord ? h.store.readRecord(loc, callbackKeys.prefix(requestId)) : h.store.get(loc));
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

describe('the callback route', () => {
  it('refuses a forged token (403) and stores nothing; an unknown request gets 404, an oversize body 413', async () => {
    const before = await storedKeys('slow-async');
    const address = { request_id: 'slow-async', task_id: 'clip-0/ffmpeg2', run: 0, attempt: 7 };
    const real = new URL(callbackUrl(server.url, SECRET, address));
    const forged = new URL(real);
    forged.searchParams.set('token', callbackToken('someone-else-s-secret-value', address));
    const refused = await postCallback(forged.href, '{"status": "success"}');
    expect(refused.status).toBe(403);
    expect(refused.json.error).toMatchObject({ code: 'FORBIDDEN', field: 'token' });
    const moved = new URL(real);
    moved.searchParams.set('attempt', '8');
    expect((await postCallback(moved.href, '{}')).status).toBe(403);
    expect(await storedCallback('slow-async', callbackKeys.of(address))).toBeNull();
    expect(await storedKeys('slow-async')).toEqual(before);

    const unknown = { ...address, request_id: 'never-submitted' };
    const missing = await postCallback(callbackUrl(server.url, SECRET, unknown), '{}');
    expect(missing.status).toBe(404);
    expect(await storedKeys('never-submitted')).toEqual([]);

    const huge = Buffer.alloc(1024 * 1024 + 1, 0x20);
    expect((await postCallback(real.href, huge)).status).toBe(413);
    // The same limit holds where no HTTP server reads the body first (the OpenFaaS handler).
    const routed = await server.router({ method: 'POST', path: real.pathname, query: Object.fromEntries(real.searchParams), headers: { 'x-function-status': '200' }, body: huge });
    expect(routed.status).toBe(413);
    const shapeless = await postCallback(real.href, '{}', { 'Content-Type': 'application/json' });
    expect(shapeless.status).toBe(400);
    expect(shapeless.json.error?.field).toBe('X-Function-Status');
    expect(await storedKeys('slow-async')).toEqual(before);
  });

  it('a duplicate callback changes nothing', async () => {
    const delivered = h.gateway.callbacks.find((c) => c.url.includes('/callbacks/slow-async?') && c.name === 'stage-ffmpeg-2');
    expect(delivered).toBeDefined();
    const url = new URL(delivered!.url);
    const key = callbackKeys.of({
      request_id: 'slow-async',
      task_id: url.searchParams.get('task')!,
      run: Number(url.searchParams.get('run')),
      attempt: Number(url.searchParams.get('attempt')),
    });
    const storedBefore = await storedCallback('slow-async', key);
    expect(storedBefore).not.toBeNull();
    const stateBefore = await h.store.get({ bucket: 'fave-artifacts', key: requestKeys.state('slow-async') });
    const again = await postCallback(delivered!.url, '{"status": "error", "message": "a different answer"}', { 'X-Function-Status': '500', 'X-Call-Id': 'another-call' });
    expect(again.status).toBe(200);
    expect(again.json.status).toBe('DUPLICATE');
    // The same through the OpenFaaS handler, whose template has already parsed the JSON body.
    const handler = createHandler(async () => ({ router: server.router }));
    let answered: { status: number; body: unknown } | null = null;
    const context: FunctionContext = {
      status(code) {
        answered = { status: code, body: null };
        return context;
      },
      headers: () => context,
      succeed(value) {
        answered = { status: answered?.status ?? 200, body: JSON.parse(String(value)) };
      },
      fail(value) {
        answered = { status: 500, body: value };
      },
    };
    await handler(
      {
        method: 'POST',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: { 'x-function-status': '200', 'content-type': 'application/json' },
        body: { status: 'success' },
      },
      context,
    );
    expect(answered).toEqual({ status: 200, body: expect.objectContaining({ status: 'DUPLICATE' }) });
    expect(await storedCallback('slow-async', key)).toEqual(storedBefore);
    expect(await h.store.get({ bucket: 'fave-artifacts', key: requestKeys.state('slow-async') })).toEqual(stateBefore);
  });

  it('a call whose callback never comes is re-invoked after its timeout, counted as a retry', async () => {
    h.gateway.addFault({ stage: 'ffmpeg2', clip: 0, requestId: 'lost-callback', kind: 'lose-callback', times: 1 });
    const handle = await asyncApp.orchestrator.submit({ video_uri: h.videoUri, request_id: 'lost-callback', profile: 'short' });
    const done = await handle.done;
    expect(done.status, JSON.stringify(done.result.error)).toBe('COMPLETED');
    const calls = h.gateway.calls.filter((c) => c.request_id === 'lost-callback' && c.stage === 'stage-ffmpeg-2' && c.clip === 0);
    expect(calls).toHaveLength(2);
    const state = await h.readState('lost-callback');
    const records = state.snapshot.context.clips[0]!.records.filter((r) => r.stage === 'stage-ffmpeg-2');
    expect(records.map((r) => [r.attempt, r.outcome, (r.error as { code?: string } | null)?.code ?? null])).toEqual([
      [1, 'error', 'STAGE_TIMEOUT'],
      [2, 'success', null],
    ]);
    expect(done.result.metrics.retries).toBe(1);
  });

  it('the timeout of a queued call holds across a restart: no callback by then, and the resumed request queues it again as a retry', async () => {
    h.gateway.addFault({ stage: 'ffmpeg2', clip: 0, requestId: 'lost-restart', kind: 'lose-callback', times: 1 });
    const first = await createApp({ env: asyncEnv, logger: pino({ level: 'silent' }) });
    try {
      await first.orchestrator.submit({ video_uri: h.videoUri, request_id: 'lost-restart', profile: 'short' });
      await until(async () => (await h.readState('lost-restart')).snapshot.context.dispatched?.['clip-0/ffmpeg2'] !== undefined, {
        timeoutMs: 20_000,
        message: 'the lost call is persisted as dispatched',
      });
    } finally {
      // Stops driving the request without changing its state, as a crash or a redeploy would.
      await first.close();
    }
    const dispatch = (await h.readState('lost-restart')).snapshot.context.dispatched!['clip-0/ffmpeg2']!;
    expect(dispatch).toMatchObject({ run: 0, attempt: 1, timeout_ms: 1000 });
    const resumed = await asyncApp.orchestrator.resume('lost-restart');
    const done = await resumed.done;
    expect(done.status, JSON.stringify(done.result.error)).toBe('COMPLETED');
    const calls = h.gateway.calls.filter((c) => c.request_id === 'lost-restart' && c.stage === 'stage-ffmpeg-2' && c.clip === 0);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.started_at).toBeGreaterThanOrEqual(dispatch.dispatched_at + dispatch.timeout_ms);
    const records = (await h.readState('lost-restart')).snapshot.context.clips[0]!.records.filter((r) => r.stage === 'stage-ffmpeg-2');
    expect(records.map((r) => [r.attempt, (r.error as { code?: string } | null)?.code ?? null])).toEqual([
      [1, 'STAGE_TIMEOUT'],
      [2, null],
    ]);
    expect(records[0]!.queued_at).toBe(dispatch.dispatched_at);
    expect(done.result.metrics.retries).toBe(1);
  });

  it('a callback with a non-2xx status or a contract-breaking body is classified and retried as a synchronous answer', async () => {
    h.gateway.addFault({ stage: 'ffmpeg0', requestId: 'async-faults', kind: 'status', status: 503, times: 1 });
    h.gateway.addFault({ stage: 'ffmpeg2', clip: 1, requestId: 'async-faults', kind: 'contract' });
    const handle = await asyncApp.orchestrator.submit({ video_uri: h.videoUri, request_id: 'async-faults' });
    const done = await handle.done;
    expect(done.status).toBe('FAILED');
    // A contract breach is final: one attempt, as for a synchronous answer.
    expect(done.result.error).toMatchObject({ code: 'STAGE_CONTRACT', stage: 'stage-ffmpeg-2', clip_index: 1, attempts: 1 });
    expect(h.gateway.calls.filter((c) => c.request_id === 'async-faults' && c.stage === 'stage-ffmpeg-2' && c.clip === 1)).toHaveLength(1);
    const state = await h.readState('async-faults');
    const context = state.snapshot.context;
    const first = context.records.filter((r) => r.stage === 'stage-ffmpeg-0');
    // The 503 of the queued call is transient, as a gateway's 503 is: retried.
    expect(first).toHaveLength(2);
    expect(first[0]).toMatchObject({ attempt: 1, http_status: 503, call_mode: 'async', error: expect.objectContaining({ code: 'STAGE_UNAVAILABLE', transient: true }) });
    expect(first[1]).toMatchObject({ attempt: 2, outcome: 'success' });
  });

  it('calls beyond the queue-worker max_inflight wait in the queue: the timeline and the record show the wait', async () => {
    const busy = await startTestGateway({ store: h.store, clips: 1, framesPerClip: 3, asyncMaxInflight: 1, latencyMs: { detector: 300 } });
    // Its callbacks reach the other replica's server; this one finds them in the store.
    const app = await createApp({ env: { ...asyncEnv, GATEWAY_URL: busy.url }, logger: pino({ level: 'silent' }) });
    try {
      const done = await (await app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'busy-queue' })).done;
      expect(done.status, JSON.stringify(done.result.error)).toBe('COMPLETED');
      const state = await h.readState('busy-queue');
      const detections = flattenInvocations(state.snapshot.context).filter((i) => i.stage === 'stage-object-detector');
      expect(detections).toHaveLength(3);
      const waits = detections.map((i) => i.started_at - i.queued_at).sort((a, b) => a - b);
      // Three calls queued together, one running at a time: the last waited at least for one before it.
      expect(waits[2]).toBeGreaterThanOrEqual(300);
      const records = state.snapshot.context.clips[0]!.frames.flatMap((f) => f.records);
      expect(Math.max(...records.map((r) => Number(r.queue_delay_ms)))).toBe(waits[2]);
    } finally {
      await app.close();
      await busy.close();
    }
  });

  it('a call whose callback has come gives its place to the next while the callback is stored, never more calls at the gateway than the bound', async () => {
    const gateway = await startTestGateway({ store: h.store, clips: 1, framesPerClip: 4, latencyMs: { detector: 50 } });
    // The detections' callbacks are held on their way into the store: a slow disk, at that place only.
    const { store, hold } = holdingStore(new FsStore(join(h.dir, 'data'), 'fave-artifacts'), (key) => key.includes('/callbacks/frame-'));
    const port = await freePort();
    const app = await createApp({
      env: { ...asyncEnv, GATEWAY_URL: gateway.url, CALLBACK_BASE_URL: `http://127.0.0.1:${port}`, MAX_CONCURRENT_INVOCATIONS: '2' },
      logger: pino({ level: 'silent' }),
      store,
    });
    const own = await startHttpServer({ app, port, host: '127.0.0.1', processMetrics: false });
    try {
      const handle = await app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'held-callbacks' });
      const detections = () => gateway.calls.filter((c) => c.stage === 'stage-object-detector');
      // Two places: the first two calls' callbacks come and wait for the store; their places go
      // to the last two calls, whose callbacks wait as well.
      await until(() => hold.waiting === 4, { message: () => `4 callbacks held, found ${hold.waiting} (${detections().length} detections called)` });
      expect(detections()).toHaveLength(4);
      expect(gateway.maxConcurrentByRequest('held-callbacks')).toBeLessThanOrEqual(2);
      hold.release();
      const done = await handle.done;
      expect(done.status, JSON.stringify(done.result.error)).toBe('COMPLETED');
      expect(detections()).toHaveLength(4);
      const state = await h.readState('held-callbacks');
      expect(state.snapshot.context.clips[0]!.frames.map((f) => f.records.map((r) => [r.attempt, r.outcome]))).toEqual(Array.from({ length: 4 }, () => [[1, 'success']]));
    } finally {
      hold.release();
      await own.close();
      await app.close();
      await gateway.close();
    }
  });

  it('reports the dispatches of a burst to the machine in fewer events, each before the result that settles its call', async () => {
    const gateway = await startTestGateway({ store: h.store, clips: 3, framesPerClip: 12, latencyMs: { detector: 20 } });
    const port = await freePort();
    // What the pipeline actor was sent, in the order it was sent.
    const sent: Array<{ type: string; dispatches?: Record<string, unknown>; results?: Array<{ clip_index: number; step?: string; frame_index?: number }> }> = [];
    const app = await createApp({
      env: { ...asyncEnv, GATEWAY_URL: gateway.url, CALLBACK_BASE_URL: `http://127.0.0.1:${port}`, MAX_CONCURRENT_INVOCATIONS: '16' },
      logger: pino({ level: 'silent' }),
      inspect: {
        next: (event: InspectionEvent) => {
          if (event.type === '@xstate.event' && event.actorRef.sessionId === event.rootId) sent.push(event.event);
        },
      },
    });
    const own = await startHttpServer({ app, port, host: '127.0.0.1', processMetrics: false });
    try {
      const done = await (await app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'batched-dispatches' })).done;
      expect(done.status, JSON.stringify(done.result.error)).toBe('COMPLETED');
      const dispatchEvents = sent.filter((e) => e.type === 'STAGE.DISPATCHED');
      const dispatched = new Set<string>();
      let dispatches = 0;
      for (const event of sent) {
        if (event.type === 'STAGE.DISPATCHED') {
          for (const taskId of Object.keys(event.dispatches ?? {})) dispatched.add(taskId);
          dispatches += Object.keys(event.dispatches ?? {}).length;
        }
        const settled = (event.type === 'CLIPS.PROGRESS' || event.type === 'FRAMES.SETTLED' ? (event.results ?? []) : []).map((r) =>
          r.step !== undefined ? clipTaskId(r.clip_index, r.step) : frameTaskId(r.clip_index, r.frame_index ?? -1),
        );
        for (const taskId of settled) expect(dispatched, `${taskId} settled before its dispatch was reported`).toContain(taskId);
      }
      // 3 single calls, 3 clips of 3 steps, 36 frames: every call queued once, each dispatch reported.
      expect(dispatches).toBe(3 + 3 * 3 + 36);
      expect(dispatched.size).toBe(3 + 3 * 3 + 36);
      expect(dispatchEvents.length).toBeLessThan(dispatches);
      const state = await h.readState('batched-dispatches');
      expect(state.snapshot.context.dispatched).toEqual({});
    } finally {
      await own.close();
      await app.close();
      await gateway.close();
    }
  });

  it('needs no bearer token when API tokens are configured, and takes any body type, such as the text of an exception', async () => {
    const { FAVE_ANONYMOUS_ROLE: _anonymous, ...withoutAnonymous } = asyncEnv;
    const guarded = loadConfig({ ...withoutAnonymous, FAVE_API_TOKENS: 'operate:a-long-enough-operate-token' });
    const router = createRouter({ orchestrator: asyncApp.orchestrator, logger: pino({ level: 'silent' }), metrics: server.metrics, config: guarded });
    const url = new URL(callbackUrl(server.url, SECRET, { request_id: 'slow-async', task_id: 'clip-1/ffmpeg3', run: 0, attempt: 9 }));
    const answer = await router({
      method: 'POST',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: { 'x-function-status': '500', 'content-type': 'text/plain; charset=utf-8' },
      body: 'Traceback (most recent call last): ffmpeg refused the file',
    });
    expect(answer.status).toBe(200);
    expect(JSON.parse(String(answer.body))).toMatchObject({ status: 'STORED' });
    // The same router guards its other routes: the callback is exempt, not the router open.
    const status = await router({ method: 'GET', path: '/requests/slow-async', query: {}, headers: {}, body: '' });
    expect(status.status).toBe(401);
  });

  it('logs a stored callback at debug, as a poll, and a refused one at info', async () => {
    const lines: Array<{ event?: string; path?: string; status?: number; level?: number }> = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _enc, done) {
          for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as (typeof lines)[number]);
          done();
        },
      }),
    );
    const router = createRouter({ orchestrator: asyncApp.orchestrator, logger, metrics: server.metrics, config: asyncApp.config });
    const post = (address: { task_id: string; attempt: number }, token?: string) => {
      const url = new URL(callbackUrl(server.url, SECRET, { request_id: 'slow-async', run: 0, ...address }));
      if (token !== undefined) url.searchParams.set('token', token);
      return router({ method: 'POST', path: url.pathname, query: Object.fromEntries(url.searchParams), headers: { 'x-function-status': '200' }, body: '{}' });
    };
    expect((await post({ task_id: 'clip-1/ffmpeg3', attempt: 11 })).status).toBe(200);
    expect((await post({ task_id: 'clip-1/ffmpeg3', attempt: 12 }, 'forged')).status).toBe(403);
    const http = lines.filter((l) => l.event === 'http');
    // One line per async stage call would be the busiest log of an async run.
    expect(http.map((l) => l.status)).toEqual([403]);
  });
});
