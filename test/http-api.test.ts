import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../src/lib/logger.ts';
import { startHttpServer, type HttpServer } from '../src/server/http-server.ts';
import { checkVideoUri, classifyAddress, MAX_BODY_BYTES, type HostLookup } from '../src/server/validate.ts';
import { startHarness, type Harness, type HarnessOptions } from './support/harness.ts';
import { expectedClips } from './support/test-gateway.ts';
import { runFave, type ChildRun } from './support/child.ts';
import { until } from './support/until.ts';
import { closeNodeServer } from './support/cleanup.ts';

let h: Harness | null = null;
let server: HttpServer | null = null;
let extra: Server | null = null;

afterEach(async () => {
  await server?.close(200);
  await h?.close();
  if (extra) await closeNodeServer(extra);
  server = null;
  h = null;
  extra = null;
});

interface Started {
  h: Harness;
  server: HttpServer;
}

async function start(options: HarnessOptions & { lookup?: HostLookup; allowPrivateSources?: boolean } = {}): Promise<Started> {
  h = await startHarness(options);
  server = await startHttpServer({
    app: h.app,
    port: 0,
    host: '127.0.0.1',
    processMetrics: false,
    ...(options.lookup ? { lookup: options.lookup } : {}),
    ...(options.allowPrivateSources !== undefined ? { allowPrivateSources: options.allowPrivateSources } : {}),
  });
  return { h, server };
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  // Parsed JSON bodies are checked field by field in each test.
  body: Record<string, any>;
}

async function call(method: string, path: string, options: { body?: unknown; raw?: string | Buffer; headers?: Record<string, string> } = {}): Promise<Answer> {
  const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const res = await fetch(`${server!.url}${path}`, {
    method,
    headers: { ...(body !== undefined || method === 'POST' ? { 'content-type': 'application/json' } : {}), ...options.headers },
    ...(body !== undefined ? { body } : {}),
  });
  const text = await res.text();
  let parsed: Record<string, any> = {};
  try {
    parsed = JSON.parse(text) as Record<string, any>;
  } catch {
    // /metrics and error pages of other kinds are not JSON.
  }
  return { status: res.status, headers: res.headers, text, body: parsed };
}

async function storeKeys(harness: Harness): Promise<string[]> {
  return (await harness.store.list('fave-artifacts', '')).sort();
}

describe('POST /', () => {
  it('answers a synchronous request 200 with the result, as stored in final.json', async () => {
    const { h } = await start({ gateway: { clips: 4, framesPerClip: 2 } });
    const res = await call('POST', '/', { body: { video_uri: h.videoUri, query: 'find scenes with cars', request_id: 'sync-1' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.body.request_id).toBe('sync-1');
    expect(res.body.status).toBe('COMPLETED');
    expect(res.body.result).toEqual(await h.readFinal('sync-1'));
    expect(res.body.result.clips.map((c: { transcript: string }) => c.transcript)).toEqual(expectedClips({ clips: 4, framesPerClip: 2 }).map((c) => c.transcript));
    expect(res.body.result.matches.length).toBeGreaterThan(0);

    // The same id again is the same request: answered from the store, not run twice.
    const calls = h.gateway.calls.length;
    const again = await call('POST', '/', { body: { video_uri: h.videoUri, request_id: 'sync-1' } });
    expect(again.status).toBe(200);
    expect(again.body.result).toEqual(res.body.result);
    expect(h.gateway.calls.length).toBe(calls);
  });

  it('answers 202 at once with ?async=true or X-Fave-Async, then GET /requests/{id} reaches COMPLETED', async () => {
    const { h } = await start({ gateway: { clips: 3, framesPerClip: 2, latencyMs: 2 } });
    const first = await call('POST', '/?async=true', { body: { video_uri: h.videoUri, query: 'dog' } });
    const second = await call('POST', '/', { body: { video_uri: h.videoUri }, headers: { 'X-Fave-Async': 'true' } });
    for (const res of [first, second]) {
      expect(res.status).toBe(202);
      const id = res.body.request_id as string;
      expect(id).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/);
      expect(res.body.status_url).toBe(`/requests/${id}`);
      expect(res.body.result_url).toBe(`/requests/${id}/result`);
      expect(res.headers.get('location')).toBe(`/requests/${id}`);
      const done = await until(
        async () => {
          const view = await call('GET', res.body.status_url as string);
          return view.body.status !== 'RUNNING' ? view : null;
        },
        { message: `${id} to leave RUNNING` },
      );
      expect(done.status).toBe(200);
      expect(done.body).toMatchObject({
        request_id: id,
        status: 'COMPLETED',
        state: 'COMPLETED',
        profile: 'default',
        progress: { clips_total: 3, clips_done: 3, frames_total: 6, frames_done: 6, invocations: 3 + 9 + 6 },
        error: null,
      });
      expect(Object.keys(done.body.metrics.stages)).toEqual([
        'stage-ffmpeg-0',
        'stage-librosa',
        'stage-ffmpeg-1',
        'stage-ffmpeg-2',
        'stage-deepspeech',
        'stage-ffmpeg-3',
        'stage-object-detector',
      ]);
      expect(done.body.metrics.stages['stage-object-detector'].count).toBe(6);
      expect(done.body.metrics.invocations).toBe(18);
      const result = await call('GET', res.body.result_url as string);
      expect(result.status).toBe(200);
      expect(result.body).toEqual(await h.readFinal(id));
    }
    expect(first.body.request_id).not.toBe(second.body.request_id);
  });

  it('takes X-Call-Id as the request id when the body names none, and refuses a malformed one', async () => {
    const { h } = await start({ gateway: { clips: 2, framesPerClip: 1 } });
    const res = await call('POST', '/', { body: { video_uri: h.videoUri }, headers: { 'X-Call-Id': '0f8e2c1a-5b7d-4e7a-9a51-3c2b1d0e9f88' } });
    expect(res.status).toBe(200);
    expect(res.body.request_id).toBe('0f8e2c1a-5b7d-4e7a-9a51-3c2b1d0e9f88');
    expect((await h.readState('0f8e2c1a-5b7d-4e7a-9a51-3c2b1d0e9f88')).status).toBe('COMPLETED');

    const named = await call('POST', '/', { body: { video_uri: h.videoUri, request_id: 'from-body' }, headers: { 'X-Call-Id': 'from-header' } });
    expect(named.body.request_id).toBe('from-body');

    // A proxy's prefix reaches the links; one that is not a plain path is ignored.
    const prefixed = await call('POST', '/?async=true', { body: { video_uri: h.videoUri, request_id: 'prefixed' }, headers: { 'X-Forwarded-Prefix': '/function/orchestrator' } });
    expect(prefixed.body.status_url).toBe('/function/orchestrator/requests/prefixed');
    expect(prefixed.headers.get('location')).toBe('/function/orchestrator/requests/prefixed');
    const hostile = await call('POST', '/?async=true', { body: { video_uri: h.videoUri, request_id: 'prefixed' }, headers: { 'X-Forwarded-Prefix': '//evil.example' } });
    expect(hostile.body.status_url).toBe('/requests/prefixed');
    await h.app.orchestrator.get('prefixed')?.done;

    const before = await storeKeys(h);
    const bad = await call('POST', '/', { body: { video_uri: h.videoUri }, headers: { 'X-Call-Id': '../etc' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'BAD_REQUEST', field: 'X-Call-Id' });
    expect(await storeKeys(h)).toEqual(before);
  });

  it('maps a FAILED request to 502, 504 or 422 with code, stage, clip and attempts', async () => {
    const { h } = await start({
      gateway: {
        clips: 3,
        framesPerClip: 1,
        faults: [
          { stage: 'deepspeech', clip: 1, kind: 'error', requestId: 'fails-502' },
          { stage: 'ffmpeg1', kind: 'hang', requestId: 'fails-504' },
        ],
      },
      env: { STAGE_TIMEOUT_SECONDS: '0.2', RETRY_MAX_ATTEMPTS: '2' },
    });
    const stageError = await call('POST', '/', { body: { video_uri: h.videoUri, request_id: 'fails-502' } });
    expect(stageError.status).toBe(502);
    expect(stageError.body).toMatchObject({
      request_id: 'fails-502',
      status: 'FAILED',
      error: { code: 'STAGE_REPORTED_ERROR', stage: 'stage-deepspeech', clip_index: 1, attempts: 1 },
    });
    expect(stageError.body.error.message).toContain('stage-deepspeech');
    expect(stageError.body.result.status).toBe('FAILED');

    const timeout = await call('POST', '/', { body: { video_uri: h.videoUri, request_id: 'fails-504' } });
    expect(timeout.status).toBe(504);
    expect(timeout.body.error).toMatchObject({ code: 'STAGE_TIMEOUT', stage: 'stage-ffmpeg-1', attempts: 2 });

    const missing = await call('POST', '/', { body: { video_uri: 's3://fave-artifacts/uploads/missing.mp4', request_id: 'fails-422' } });
    expect(missing.status).toBe(422);
    expect(missing.body.error.code).toBe('INPUT_NOT_FOUND');

    // A failed request's result is its final.json, answered 200 with status FAILED inside.
    const result = await call('GET', '/requests/fails-502/result');
    expect(result.status).toBe(200);
    expect(result.body.status).toBe('FAILED');

    // Redriving it once the stage behaves completes it, re-running only what failed.
    h.gateway.clearFaults();
    const before = h.gateway.callsTo('ffmpeg0').length;
    const resumed = await call('POST', '/requests/fails-502/resume');
    expect(resumed.status).toBe(200);
    expect(resumed.body.status).toBe('COMPLETED');
    expect(resumed.body.result.clips).toHaveLength(3);
    expect(h.gateway.callsTo('ffmpeg0').length).toBe(before);
  });
});

describe('cancel', () => {
  it('ends a running request as CANCELLED: in-flight calls aborted, no new ones, persisted; a waiting sync caller gets 409', async () => {
    const { h } = await start({ gateway: { clips: 6, framesPerClip: 1, faults: [{ stage: 'ffmpeg2', kind: 'hang' }] } });
    const accepted = await call('POST', '/?async=true', { body: { video_uri: h.videoUri, request_id: 'cancel-me' } });
    expect(accepted.status).toBe(202);
    const waiting = call('POST', '/', { body: { video_uri: h.videoUri, request_id: 'cancel-me' } });
    await until(() => h.gateway.callsTo('ffmpeg2').some((c) => c.request_id === 'cancel-me'), { message: "cancel-me's first ffmpeg-2 call" });

    const early = await call('GET', '/requests/cancel-me/result');
    expect(early.status).toBe(409);
    expect(early.body.error.code).toBe('RESULT_NOT_READY');
    expect(early.body.status).toBe('RUNNING');

    const cancelled = await call('POST', '/requests/cancel-me/cancel', { body: { reason: 'user asked' } });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ request_id: 'cancel-me', status: 'FAILED', error: { code: 'CANCELLED' } });
    const calls = h.gateway.calls.length;

    const sync = await waiting;
    expect(sync.status).toBe(409);
    expect(sync.body.error.code).toBe('CANCELLED');

    const view = await call('GET', '/requests/cancel-me');
    expect(view.body).toMatchObject({ status: 'FAILED', error: { code: 'CANCELLED' } });
    expect((await h.readState('cancel-me')).error).toMatchObject({ code: 'CANCELLED' });
    // Stopped here means its actor is stopped: once the aborted calls have left the gateway,
    // nothing is left that could make another call.
    await until(() => h.app.orchestrator.get('cancel-me') === undefined && h.gateway.inFlight === 0, {
      message: () => `cancel-me to stop (${h.gateway.inFlight} calls in flight)`,
    });
    expect(h.gateway.calls.length).toBe(calls);

    const twice = await call('POST', '/requests/cancel-me/cancel');
    expect(twice.status).toBe(409);
    expect(twice.body.error.code).toBe('ALREADY_FINISHED');
    expect((await call('POST', '/requests/nobody/cancel')).status).toBe(404);
    const badBody = await call('POST', '/requests/cancel-me/cancel', { body: { reason: 7 } });
    expect(badBody.status).toBe(400);
    expect(badBody.body.error.field).toBe('reason');
  });
});

describe('resume', () => {
  it('continues an interrupted request through POST /requests/{id}/resume without redoing finished work', async () => {
    const { h } = await start({ gateway: { clips: 3, framesPerClip: 1, faults: [{ stage: 'ffmpeg3', clip: 2, kind: 'hang' }] } });
    expect((await call('POST', '/?async=true', { body: { video_uri: h.videoUri, request_id: 'interrupted' } })).status).toBe(202);
    await until(() => h.gateway.callsTo('ffmpeg3').some((c) => c.clip === 2), { message: "clip 2's ffmpeg-3 call" });
    // What a crash or a shutdown leaves: state.json says RUNNING and nobody drives it.
    await h.app.orchestrator.close();
    expect((await h.readState('interrupted')).status).toBe('RUNNING');
    h.gateway.clearFaults();
    const before = h.gateway.calls.length;
    const resumed = await call('POST', '/requests/interrupted/resume');
    expect(resumed.status).toBe(200);
    expect(resumed.body.status).toBe('COMPLETED');
    expect(resumed.body.result.clips).toHaveLength(3);
    const after = h.gateway.calls.slice(before);
    expect(after.filter((c) => ['ffmpeg0', 'librosa', 'ffmpeg1'].includes(c.stage_key))).toEqual([]);
    expect((await call('POST', '/requests/nobody/resume')).status).toBe(404);
  });
});

describe('fave serve', () => {
  it('drains on SIGTERM leaving the request resumable, and RESUME_ON_START=true finishes it', async () => {
    h = await startHarness({ gateway: { clips: 2, framesPerClip: 1, faults: [{ stage: 'ffmpeg2', kind: 'hang', times: 2 }] } });
    const harness = h;
    const env = { ...harness.env, LOG_LEVEL: 'info', LEASE_TTL_MS: '600' };
    const children: ChildRun[] = [];
    const serve = async (extraEnv: Record<string, string>) => {
      const run = runFave(['serve', '--port', '0', '--host', '127.0.0.1'], { ...env, ...extraEnv });
      children.push(run);
      let seen = '';
      run.child.stderr!.on('data', (d: Buffer) => (seen += d.toString()));
      const url = await until(() => /"event":"listening","url":"([^"]+)"/.exec(seen)?.[1], {
        timeoutMs: 15_000,
        message: () => `fave serve to listen; its stderr: ${seen}`,
      });
      return { run, url };
    };
    try {
      const first = await serve({});
      const answer = fetch(`${first.url}/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ video_uri: harness.videoUri, request_id: 'served' }),
      });
      await until(() => harness.gateway.callsTo('ffmpeg2').length === 2, { message: 'both ffmpeg-2 calls' });
      // Stop once the fan-out is on disk: what finished before it must not run again.
      await until(async () => (await harness.readState('served')).state === 'FANOUT', { message: 'FANOUT in state.json' });
      first.run.child.kill('SIGTERM');
      const interrupted = await answer;
      expect(interrupted.status).toBe(503);
      expect(await interrupted.json()).toMatchObject({ request_id: 'served', status: 'INTERRUPTED', error: { code: 'CANCELLED' } });
      const exited = await first.run.exit;
      expect(exited.code).toBe(0);
      expect(exited.stderr).toContain('"event":"shutting_down"');
      const state = await harness.readState('served');
      expect(state.status).toBe('RUNNING');

      // The old owner's lease has to run out before another process may take the request over.
      const expiresAt = state.lease?.expires_at ?? 0;
      await until(() => Date.now() > expiresAt, { message: 'the old lease to run out' });
      const calls = harness.gateway.calls.length;
      const second = await serve({ RESUME_ON_START: 'true' });
      const done = await until(
        async () => {
          const view = (await (await fetch(`${second.url}/requests/served`)).json()) as { status: string };
          return view.status !== 'RUNNING' ? view : null;
        },
        { message: 'served to leave RUNNING' },
      );
      expect(done.status).toBe('COMPLETED');
      const resumedCalls = harness.gateway.calls.slice(calls);
      expect(resumedCalls.map((c) => c.stage_key).filter((k) => ['ffmpeg0', 'librosa', 'ffmpeg1'].includes(k))).toEqual([]);
      expect(resumedCalls.filter((c) => c.stage_key === 'ffmpeg2')).toHaveLength(2);
      second.run.child.kill('SIGTERM');
      expect((await second.run.exit).code).toBe(0);
    } finally {
      for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});

describe('input checks', () => {
  const big = 'x'.repeat(MAX_BODY_BYTES + 1000);
  const cases: Array<[string, { raw?: string; body?: unknown; path?: string; headers?: Record<string, string> }, number, string]> = [
    ['a body that is not JSON', { raw: 'video_uri=s3://b/k' }, 400, 'body'],
    ['an empty body', { raw: '' }, 400, 'body'],
    ['a JSON array', { body: [{ video_uri: 's3://fave-artifacts/v.mp4' }] }, 400, 'body'],
    ['a body over 1 MiB', { body: { video_uri: 's3://fave-artifacts/v.mp4', query: big } }, 413, 'body'],
    ['no video_uri', { body: { query: 'cars' } }, 400, 'video_uri'],
    ['a numeric video_uri', { body: { video_uri: 42 } }, 400, 'video_uri'],
    ['an empty video_uri', { body: { video_uri: '   ' } }, 400, 'video_uri'],
    ['a numeric query', { body: { video_uri: 's3://fave-artifacts/v.mp4', query: 3 } }, 400, 'query'],
    ['a query over 1000 characters', { body: { video_uri: 's3://fave-artifacts/v.mp4', query: 'q'.repeat(1001) } }, 400, 'query'],
    ['an unknown profile', { body: { video_uri: 's3://fave-artifacts/v.mp4', profile: 'turbo' } }, 400, 'profile'],
    ['a profile that is not a string', { body: { video_uri: 's3://fave-artifacts/v.mp4', profile: ['warm'] } }, 400, 'profile'],
    ['../ in request_id', { body: { video_uri: 's3://fave-artifacts/v.mp4', request_id: '../x' } }, 400, 'request_id'],
    ['a request_id of 129 characters', { body: { video_uri: 's3://fave-artifacts/v.mp4', request_id: 'a'.repeat(129) } }, 400, 'request_id'],
    ['an unknown field', { body: { video_uri: 's3://fave-artifacts/v.mp4', callback: 'http://x' } }, 400, 'callback'],
    ['an ftp:// source', { body: { video_uri: 'ftp://example.com/v.mp4' } }, 400, 'video_uri'],
    ['a file:// source', { body: { video_uri: 'file:///etc/passwd' } }, 400, 'video_uri'],
    ['a local path', { body: { video_uri: '/tmp/video.mp4' } }, 400, 'video_uri'],
    ['an s3 URI without a key', { body: { video_uri: 's3://fave-artifacts' } }, 400, 'video_uri'],
    ['an s3 key with ..', { body: { video_uri: 's3://fave-artifacts/a/../../b.mp4' } }, 400, 'video_uri'],
    ['the cloud metadata address', { body: { video_uri: 'http://169.254.169.254/latest/meta-data/iam' } }, 400, 'video_uri'],
    ['a loopback address', { body: { video_uri: 'http://127.0.0.1/video.mp4' } }, 400, 'video_uri'],
    ['loopback spelled as a number', { body: { video_uri: 'http://2130706433/video.mp4' } }, 400, 'video_uri'],
    ['localhost', { body: { video_uri: 'http://localhost:9000/video.mp4' } }, 400, 'video_uri'],
    ['IPv6 loopback', { body: { video_uri: 'http://[::1]:8080/video.mp4' } }, 400, 'video_uri'],
    ['IPv4-mapped loopback', { body: { video_uri: 'https://[::ffff:127.0.0.1]/video.mp4' } }, 400, 'video_uri'],
    ['a private address', { body: { video_uri: 'http://10.1.2.3/video.mp4' } }, 400, 'video_uri'],
    ['a CGNAT address', { body: { video_uri: 'http://100.64.0.9/video.mp4' } }, 400, 'video_uri'],
    ['0.0.0.0', { body: { video_uri: 'http://0.0.0.0/video.mp4' } }, 400, 'video_uri'],
    ['the GCE metadata host', { body: { video_uri: 'http://metadata.google.internal/computeMetadata/v1/' } }, 400, 'video_uri'],
    ['credentials in the URL', { body: { video_uri: 'https://user:pw@example.com/v.mp4' } }, 400, 'video_uri'],
    ['a host resolving to a private address', { body: { video_uri: 'http://videos.internal.test/v.mp4' } }, 400, 'video_uri'],
    ['a host with one private address among public ones', { body: { video_uri: 'http://mixed.test/v.mp4' } }, 400, 'video_uri'],
    ['a host that does not resolve', { body: { video_uri: 'http://nowhere.test/v.mp4' } }, 400, 'video_uri'],
    ['an async flag that is not a boolean', { body: { video_uri: 's3://fave-artifacts/v.mp4' }, path: '/?async=maybe' }, 400, 'async'],
    ['a malformed X-Call-Id', { body: { video_uri: 's3://fave-artifacts/v.mp4' }, headers: { 'x-call-id': 'a/b' } }, 400, 'X-Call-Id'],
  ];

  const lookup: HostLookup = async (host) => {
    if (host === 'videos.internal.test') return [{ address: '192.168.10.20', family: 4 }];
    if (host === 'mixed.test')
      return [
        { address: '93.184.216.34', family: 4 },
        { address: 'fd00:ec2::254', family: 6 },
      ];
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  };

  it(`refuses ${cases.length} malformed requests with the documented 4xx naming the field, storing nothing`, async () => {
    expect(cases.length).toBeGreaterThanOrEqual(12);
    const { h } = await start({ lookup });
    const before = await storeKeys(h);
    expect(before).toEqual(['uploads/sample.mp4']);
    for (const [name, input, status, field] of cases) {
      const res = await call('POST', input.path ?? '/', {
        ...(input.raw !== undefined ? { raw: input.raw } : { body: input.body }),
        ...(input.headers ? { headers: input.headers } : {}),
      });
      expect.soft(res.status, name).toBe(status);
      expect.soft(res.body.error?.field, name).toBe(field);
      expect.soft(typeof res.body.error?.message, name).toBe('string');
      expect.soft(res.body.error?.code, name).toBe(status === 413 ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST');
    }
    expect(await storeKeys(h)).toEqual(before);
    expect(h.gateway.calls).toHaveLength(0);
    expect(await h.app.orchestrator.requests.stored()).toEqual([]);
  });

  it('stops reading a chunked upload past 1 MiB and answers 413', async () => {
    await start();
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(`${server!.url}/`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent < 2 * MAX_BODY_BYTES) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    expect(status).toBe(413);
    expect(JSON.parse(body).error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', field: 'body' });
  });

  it('refuses a bad id in the path before it reaches the store', async () => {
    await start();
    for (const path of ['/requests/..%2Fsecrets', '/requests/-x', '/requests/a.b/result', '/requests/a%20b/cancel']) {
      const res = await call(path.endsWith('cancel') ? 'POST' : 'GET', path);
      expect(res.status, path).toBe(400);
      expect(res.body.error.field, path).toBe('request_id');
    }
  });

  it('fetches from a private source only with ALLOW_PRIVATE_SOURCES=true', async () => {
    extra = createServer((_req, res) => res.end('a small video body'));
    await new Promise<void>((resolve) => extra!.listen(0, '127.0.0.1', resolve));
    const source = `http://127.0.0.1:${(extra.address() as AddressInfo).port}/video.mp4`;
    const { h } = await start({ gateway: { clips: 2, framesPerClip: 1 }, env: { ALLOW_PRIVATE_SOURCES: 'true' } });
    expect(h.app.config.allowPrivateSources).toBe(true);
    const res = await call('POST', '/', { body: { video_uri: source, request_id: 'private-ok' } });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('COMPLETED');
    const input = await h.store.get({ bucket: 'fave-artifacts', key: 'requests/private-ok/input/original.mp4' });
    expect(input.toString()).toBe('a small video body');
  });

  it('classifies addresses, including IPv6 forms that embed IPv4', async () => {
    const blocked = [
      '127.0.0.1',
      '10.0.0.1',
      '172.16.5.4',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '100.127.255.255',
      '0.0.0.0',
      '::',
      '::1',
      'fc00::1',
      'fd00:ec2::254',
      'fe80::1',
      'fe80::1%eth0',
      '::ffff:10.0.0.1',
      '::ffff:a9fe:a9fe',
      '64:ff9b::7f00:1',
      '2002:7f00:1::',
      '224.0.0.1',
      '255.255.255.255',
      '2001:db8::1',
      '::ffff:8.8.8.8',
    ];
    const allowed = ['8.8.8.8', '93.184.216.34', '172.32.0.1', '100.128.0.1', '192.169.0.1', '2606:4700:4700::1111', '64:ff9b::808:808', '2002:808:808::1'];
    for (const a of blocked) expect(classifyAddress(a), a).not.toBeNull();
    for (const a of allowed) expect(classifyAddress(a), a).toBeNull();
    const publicOnly: HostLookup = async () => [{ address: '93.184.216.34', family: 4 }];
    expect(await checkVideoUri('https://videos.example.com/v.mp4', false, publicOnly)).toBeNull();
    expect(await checkVideoUri('http://127.0.0.1/v.mp4', true)).toBeNull();
  });
});

describe('routes', () => {
  it('answers 404, 405 and /healthz by one table, and a page path with a page', async () => {
    await start();
    const cases: Array<[string, string, number, string | null]> = [
      ['GET', '/nowhere', 404, 'NOT_FOUND'],
      ['GET', '/', 405, 'METHOD_NOT_ALLOWED'],
      ['DELETE', '/requests/abc', 405, 'METHOD_NOT_ALLOWED'],
      ['GET', '/requests/abc', 404, 'REQUEST_NOT_FOUND'],
      ['GET', '/requests/abc/result', 404, 'REQUEST_NOT_FOUND'],
      ['POST', '/requests/abc/resume', 404, 'REQUEST_NOT_FOUND'],
      ['POST', '/requests/abc/cancel', 404, 'REQUEST_NOT_FOUND'],
      ['GET', '/requests/abc/artifacts/clip-0', 404, 'REQUEST_NOT_FOUND'],
      ['GET', '/ui/api/requests/abc', 404, 'REQUEST_NOT_FOUND'],
      ['GET', '/ui/api/nothing', 404, 'NOT_FOUND'],
      ['GET', '/healthz', 200, null],
    ];
    for (const [method, path, status, code] of cases) {
      const res = await call(method, path);
      expect(res.status, `${method} ${path}`).toBe(status);
      expect(res.headers.get('content-type'), `${method} ${path}`).toMatch(/^application\/json/);
      if (code) expect(res.body.error.code, `${method} ${path}`).toBe(code);
    }
    for (const path of ['/ui/requests/abc', '/ui/app.js']) {
      const res = await call('GET', path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type'), path).toBe('text/html; charset=utf-8');
    }
    expect((await call('GET', '/')).headers.get('allow')).toBe('POST');
    expect((await call('GET', '/healthz')).body).toMatchObject({ status: 'ok', requests_running: 0 });
  });

  it('never returns or logs the gateway credentials', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const auth = { user: 'fave-operator', password: 'pA55-w0rd-kept-secret' };
    const { h } = await start({
      gateway: { clips: 2, framesPerClip: 1, basicAuth: auth, faults: [{ stage: 'ffmpeg3', kind: 'hang', requestId: 'hangs' }] },
      env: { BASIC_AUTH_USER: auth.user, BASIC_AUTH_PASSWORD: auth.password },
      logger: createLogger('trace', sink),
    });
    expect(h.app.config.gatewayAuth).toEqual(auth);
    const answers: Answer[] = [];
    const hit = async (method: string, path: string, options: Parameters<typeof call>[2] = {}) => {
      const res = await call(method, path, options);
      answers.push(res);
      return res;
    };
    expect((await hit('POST', '/', { body: { video_uri: h.videoUri, request_id: 'with-auth' } })).status).toBe(200);
    await hit('POST', '/?async=true', { body: { video_uri: h.videoUri, request_id: 'hangs' } });
    await until(() => h.gateway.callsTo('ffmpeg3').some((c) => c.request_id === 'hangs'), { message: "hangs' ffmpeg-3 call" });
    await hit('GET', '/requests/hangs');
    await hit('GET', '/requests/hangs/result');
    await hit('POST', '/requests/hangs/cancel');
    await hit('POST', '/requests/hangs/resume', { headers: { 'x-fave-async': 'true' } });
    await hit('POST', '/requests/hangs/cancel');
    await hit('GET', '/requests/with-auth');
    await hit('GET', '/requests/with-auth/result');
    await hit('POST', '/requests/with-auth/resume');
    await hit('POST', '/requests/with-auth/cancel');
    await hit('POST', '/', { body: { video_uri: 'ftp://x/y' } });
    await hit('POST', '/', { raw: '{' });
    await hit('GET', '/healthz');
    await hit('GET', '/metrics');
    await hit('GET', '/ui');
    await hit('GET', '/nowhere');
    // Whatever else may log a config or a call, redaction covers it.
    h.app.logger.info({ event: 'probe', config: h.app.config, auth, headers: { authorization: 'Basic x' }, call: { headers: { authorization: 'Basic y' } } });
    h.app.logger.flush();
    await until(() => lines.some((line) => line.includes('"event":"probe"')), { message: 'the probe line in the log' });

    const token = Buffer.from(`${auth.user}:${auth.password}`).toString('base64');
    const answered = answers.map((a) => `${a.status} ${[...a.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}\n${a.text}`).join('\n');
    const logged = lines.join('');
    expect(logged).toContain('"event":"probe"');
    for (const secret of [auth.password, auth.user, token]) {
      expect(answered).not.toContain(secret);
      expect(logged).not.toContain(secret);
    }
    expect(answers.filter((a) => a.status >= 500)).toEqual([]);
  });
});
