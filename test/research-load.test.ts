import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../src/persistence/fs-store.ts';
import { arrivalOffsets } from '../src/research/arrivals.ts';
import { runLoad, uploadVideo, type LoadOptions } from '../src/research/load.ts';
import { scaleAndWait } from '../src/research/openfaas-system.ts';
import { OpenFaasSystemClient } from '../src/transport/openfaas-system.ts';
import { loadConfig } from '../src/config/config.ts';
import { analyzeRecords } from '../src/research/analyze.ts';
import { ResultsFileSchema } from '../src/research/results-file.ts';
import { Agent } from 'undici';
import { runFave, type ChildRun } from './support/child.ts';
import { closeAfterTest, closeNodeServer } from './support/cleanup.ts';
import { startTestGateway, type TestGateway } from './support/test-gateway.ts';
import { until } from './support/until.ts';

/** `fave load` against `fave serve` over the scripted gateway, and its HTTP clients against loopback servers. */

let dir: string;
let store: FsStore;
let gateway: TestGateway;
let serve: ChildRun;
let serveUrl: string;

/** Every stage call takes this long: a request (7 calls in a row) takes far longer than 1/R. */
const STAGE_MS = 150;
const RATE = 20;
const REQUESTS = 6;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fave-load-'));
  store = new FsStore(join(dir, 'data'), 'fave-artifacts');
  await store.init();
  gateway = await startTestGateway({ store, clips: 1, framesPerClip: 1, latencyMs: STAGE_MS, coldStartEvery: 3 });
  await writeFile(join(dir, 'street.mp4'), 'the scripted stages do not read the video');
  serve = runFave(['serve', '--port', '0', '--host', '127.0.0.1'], {
    GATEWAY_URL: gateway.url,
    FAVE_DATA_DIR: join(dir, 'data'),
    OPENFAAS_SECRETS_DIR: join(dir, 'no-secrets'),
    LOG_LEVEL: 'warn',
  });
  let stdout = '';
  serve.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const line = await until(() => /^fave serve: API (http:\/\/127\.0\.0\.1:\d+)\//m.exec(stdout), {
    timeoutMs: 30_000,
    message: () => `fave serve prints where it listens (${stdout})`,
  });
  serveUrl = line[1]!;
}, 60_000);

afterAll(async () => {
  serve?.child.kill('SIGTERM');
  await serve?.exit;
  await gateway?.close();
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

/** FAVE's own reading of a results file: the fields its scripts index, of the types they use. */
function faveReads(data: unknown): { total: number; trueSuccesses: number } {
  expect(Array.isArray(data)).toBe(true);
  let ok = 0;
  for (const r of data as Array<Record<string, unknown>>) {
    // workload_generator.py's fields, as datetime.isoformat() and int() write them.
    expect(r.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
    expect(Number.isInteger(r.duration_ms)).toBe(true);
    expect(['success', 'failure']).toContain(r.status);
    expect(typeof r.response).toBe('object');
    expect(typeof r.profile).toBe('string');
    const response = r.response as Record<string, unknown>;
    if (r.status === 'success' && response.status !== 'error') {
      ok += 1;
      // final_analysis.py's cost walk: result.linear[].metrics and result.clips[].stages[].metrics.
      const result = response.result as { linear: Array<{ metrics: { cost_unit: number } }>; clips: Array<{ stages: Array<{ metrics: { cost_unit: number } }> }> };
      for (const e of [...result.linear, ...result.clips.flatMap((c) => c.stages)]) expect(typeof e.metrics.cost_unit).toBe('number');
    }
  }
  return { total: (data as unknown[]).length, trueSuccesses: ok };
}

describe('fave load against fave serve', () => {
  it('steady arrivals are open-loop: starts 1/R apart while each request takes longer than 1/R', async () => {
    const out = await runFave(
      [
        'load',
        '--target',
        serveUrl,
        '--video',
        join(dir, 'street.mp4'),
        '--regime',
        'steady',
        '--rate',
        String(RATE),
        '--requests',
        String(REQUESTS),
        '--profile',
        'warm',
        '--out',
        join(dir, 'out'),
      ],
      { LOG_LEVEL: 'warn' },
    ).exit;
    expect(out.code, out.stderr).toBe(0);
    // On a pipe: nothing but the results file's path.
    const path = out.stdout.trim();
    expect(out.stdout.split('\n').filter((l) => l !== '')).toHaveLength(1);
    expect(path).toMatch(new RegExp(`/results_steady_warm_${RATE}rps_${REQUESTS}req_\\d{10}\\.json$`));
    expect(out.stderr).toBe('');
    expect(await readdir(join(dir, 'out'))).toHaveLength(1);

    const raw: unknown = JSON.parse(await readFile(path, 'utf8'));
    const data = raw as Array<{ request_id: string; intended_start_ms: number; started_ms: number; queue_delay_ms: number; duration_ms: number; attempts: number; status: string }>;
    expect(faveReads(data)).toEqual({ total: REQUESTS, trueSuccesses: REQUESTS });
    const interval = 1000 / RATE;
    data.forEach((r, i) => {
      expect(r.intended_start_ms).toBeCloseTo(i * interval, 6);
      // A timer fires at its time or later (Node may round it down by a millisecond).
      expect(r.started_ms).toBeGreaterThanOrEqual(r.intended_start_ms - 1);
      expect(r.queue_delay_ms).toBeCloseTo(r.started_ms - r.intended_start_ms, 2);
      expect(r.duration_ms).toBeGreaterThan(interval);
      expect(r.attempts).toBe(1);
    });
    // Each request was still running when the next one started.
    for (let i = 1; i < data.length; i += 1) expect(data[i]!.started_ms, `request ${i}`).toBeLessThan(data[i - 1]!.started_ms + data[i - 1]!.duration_ms);
    // One request id per request, each run once (one ffmpeg-0 call each).
    const ids = data.map((r) => r.request_id);
    expect(new Set(ids).size).toBe(REQUESTS);
    for (const id of ids) expect(gateway.calls.filter((c) => c.request_id === id && c.stage_key === 'ffmpeg0')).toHaveLength(1);
    // The video was uploaded once, and every request ran on that one upload.
    expect(await store.list('fave-artifacts', 'uploads/')).toHaveLength(1);

    const summary = analyzeRecords('run', ResultsFileSchema.parse(raw)).summary;
    expect(summary.succeeded).toBe(REQUESTS);
    expect(summary.stages['stage-ffmpeg-0']!.calls).toBe(REQUESTS);
    expect(summary.stages['stage-object-detector']!.calls).toBe(REQUESTS);
    expect(summary.retries.requests).toBe(0);
  }, 120_000);
});

/** A loopback server; `handle` answers every request. */
async function loopback(handle: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<string> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => handle(req, body, res));
  });
  closeAfterTest(server, closeNodeServer);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return `http://127.0.0.1:${address.port}`;
}

function options(target: string, extra: Partial<LoadOptions> = {}): LoadOptions {
  return {
    target,
    video: 's3://b/v.mp4',
    regime: 'burst',
    rate: 1,
    requests: 3,
    concurrency: 3,
    profile: 'cold',
    token: 'secret-token',
    timeoutMs: 10_000,
    attempts: 3,
    maxDurationMs: 60_000,
    retryBaseMs: 5,
    ...extra,
  };
}

describe('the load client', () => {
  it('retries a 5xx or a dropped connection with the same request id, and a 4xx not at all', async () => {
    const seen = new Map<string, number>();
    const auth: string[] = [];
    const target = await loopback((req, body, res) => {
      auth.push(req.headers.authorization ?? '');
      const { request_id: id, profile } = JSON.parse(body) as { request_id: string; profile: string };
      const n = (seen.get(id) ?? 0) + 1;
      seen.set(id, n);
      expect(req.url).toBe('/?format=fave-v1');
      if (profile === 'refused') {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"code":"BAD_REQUEST"}}');
      } else if (n === 1) {
        res.writeHead(503).end('no replica yet');
      } else if (n === 2) {
        req.socket.destroy();
      } else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', request_id: id, result: { linear: [], clips: [] } }));
    });
    const records = await runLoad(options(target), 's3://b/v.mp4');
    expect(records.map((r) => [r.status, r.attempts])).toEqual([
      ['success', 3],
      ['success', 3],
      ['success', 3],
    ]);
    expect([...seen.values()]).toEqual([3, 3, 3]);
    expect(records.map((r) => r.request_id).sort()).toEqual([...seen.keys()].sort());
    expect(new Set(auth)).toEqual(new Set(['Bearer secret-token']));
    expect(analyzeRecords('r', records).summary.retries.requests).toBe(6);

    const refused = await runLoad(options(target, { requests: 1, profile: 'refused' }), 's3://b/v.mp4');
    expect(refused[0]).toMatchObject({ status: 'failure', attempts: 1, http_status: 400 });
    expect((refused[0]!.response as { error: string }).error).toContain('HTTP 400');
  });

  it('with --concurrency, arrivals past the limit wait, and the wait is their queue delay', async () => {
    const release: Array<() => void> = [];
    const target = await loopback((_req, body, res) => {
      const { request_id: id } = JSON.parse(body) as { request_id: string };
      release.push(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', request_id: id, result: { linear: [], clips: [] } })));
    });
    const done = runLoad(options(target, { requests: 3, concurrency: 1 }), 's3://b/v.mp4');
    for (let i = 0; i < 3; i += 1) {
      await until(() => release.length === i + 1, { message: `request ${i + 1} sent` });
      release[i]!();
    }
    const records = await done;
    expect(records.map((r) => r.intended_start_ms)).toEqual([0, 0, 0]);
    expect(records[1]!.started_ms!).toBeGreaterThanOrEqual(records[0]!.started_ms! + records[0]!.duration_ms - 1);
    expect(records[2]!.queue_delay_ms!).toBeGreaterThanOrEqual(records[1]!.queue_delay_ms!);
    expect(records[2]!.queue_delay_ms).toBeGreaterThan(0);
  });

  it('uploads a local video once through POST /uploads', async () => {
    const uploads: Array<{ url: string; size: number; type: string }> = [];
    const target = await loopback((req, body, res) => {
      uploads.push({ url: req.url ?? '', size: body.length, type: req.headers['content-type'] ?? '' });
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ uri: 's3://fave-artifacts/uploads/ab/my_clip.mp4' }));
    });
    const file = join(dir, 'my clip.mp4');
    await writeFile(file, 'x'.repeat(1000));
    const agent = closeAfterTest(new Agent());
    expect(await uploadVideo(target, file, null, agent)).toBe('s3://fave-artifacts/uploads/ab/my_clip.mp4');
    expect(uploads).toEqual([{ url: '/uploads?filename=my%20clip.mp4', size: 1000, type: 'application/octet-stream' }]);
  });

  it('arrival schedules: steady 1/R apart, ramp rising to R, burst at once', () => {
    expect(arrivalOffsets('steady', 4, 2)).toEqual([0, 500, 1000, 1500]);
    expect(arrivalOffsets('burst', 3, 2)).toEqual([0, 0, 0]);
    const ramp = arrivalOffsets('ramp', 100, 10);
    const gaps = ramp.slice(1).map((t, i) => t - ramp[i]!);
    // Gaps shrink as the rate rises; the last gap is about 1/R.
    for (let i = 1; i < gaps.length; i += 1) expect(gaps[i]!).toBeLessThan(gaps[i - 1]!);
    expect(gaps.at(-1)!).toBeCloseTo(100, -1);
    expect(ramp.at(-1)!).toBeLessThan((2 * 100 * 1000) / 10);
  });
});

describe('the OpenFaaS system API client', () => {
  it('scales every function and waits until each reports the target replicas', async () => {
    const replicas = new Map<string, { replicas: number; available: number; polls: number }>([
      ['stage-librosa', { replicas: 2, available: 2, polls: 0 }],
      ['stage-ffmpeg-0', { replicas: 1, available: 1, polls: 0 }],
    ]);
    const calls: string[] = [];
    const gatewayUrl = await loopback((req, body, res) => {
      calls.push(`${req.method} ${req.url}`);
      if (req.headers.authorization !== `Basic ${Buffer.from('admin:pw').toString('base64')}`) return void res.writeHead(401).end('unauthorized');
      const scale = /^\/system\/scale-function\/([\w-]+)$/.exec(req.url ?? '');
      if (req.method === 'POST' && scale) {
        const { serviceName, replicas: n } = JSON.parse(body) as { serviceName: string; replicas: number };
        expect(serviceName).toBe(scale[1]);
        const fn = replicas.get(serviceName);
        if (!fn) return void res.writeHead(404).end(`function ${serviceName} not found`);
        fn.replicas = n;
        return void res.writeHead(202).end();
      }
      const get = /^\/system\/function\/([\w-]+)$/.exec(req.url ?? '');
      const fn = get ? replicas.get(get[1]!) : undefined;
      if (!fn) return void res.writeHead(404).end('not found');
      // Replicas go away over a few polls, as pods terminate.
      fn.polls += 1;
      if (fn.polls >= 3) fn.available = fn.replicas;
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ name: get![1], image: 'x', replicas: fn.replicas, availableReplicas: fn.available, invocationCount: 0 }));
    });
    const pending: string[][] = [];
    const admin = new OpenFaasSystemClient({ gatewayUrl, auth: { user: 'admin', password: 'pw' } });
    await scaleAndWait(admin, ['stage-ffmpeg-0', 'stage-librosa'], 0, { timeoutMs: 10_000, everyMs: 5, onPoll: (p) => pending.push(p) });
    expect(calls.slice(0, 2)).toEqual(['POST /system/scale-function/stage-ffmpeg-0', 'POST /system/scale-function/stage-librosa']);
    expect(pending.at(-1)).toEqual([]);
    expect(pending[0]).toEqual(['stage-ffmpeg-0', 'stage-librosa']);
    expect([...replicas.values()].map((f) => [f.replicas, f.available])).toEqual([
      [0, 0],
      [0, 0],
    ]);

    const anonymous = new OpenFaasSystemClient({ gatewayUrl, auth: null });
    await expect(scaleAndWait(anonymous, ['stage-librosa'], 1, { timeoutMs: 1000 })).rejects.toThrow(/HTTP 401.*OPENFAAS_USERNAME/);
    await expect(scaleAndWait(admin, ['stage-nope'], 1, { timeoutMs: 1000 })).rejects.toThrow(/HTTP 404: function stage-nope not found/);
    await expect(scaleAndWait(admin, ['stage-nope'], 1, { timeoutMs: 1000 })).rejects.toMatchObject({ error: { code: 'STAGE_NOT_FOUND', http_status: 404 } });
  });
});

describe('the system API login', () => {
  it("is OPENFAAS_USERNAME/OPENFAAS_PASSWORD, else the gateway's basic auth", () => {
    const none = join(tmpdir(), 'fave-no-secrets');
    expect(loadConfig({ OPENFAAS_SECRETS_DIR: none, OPENFAAS_USERNAME: 'admin', OPENFAAS_PASSWORD: 'pw', BASIC_AUTH_USER: 'u', BASIC_AUTH_PASSWORD: 'p' }).systemAuth).toEqual({
      user: 'admin',
      password: 'pw',
    });
    expect(loadConfig({ OPENFAAS_SECRETS_DIR: none, BASIC_AUTH_USER: 'u', BASIC_AUTH_PASSWORD: 'p' }).systemAuth).toEqual({ user: 'u', password: 'p' });
    expect(loadConfig({ OPENFAAS_SECRETS_DIR: none }).systemAuth).toBeNull();
  });
});
