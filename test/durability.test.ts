import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsStore } from '../src/persistence/fs-store.ts';
import { createApp } from '../src/app.ts';
import { pino } from 'pino';
import { bodyBuffer, requestKeys, type ObjectLocation, type PutBody, type PutOptions } from '../src/persistence/store.ts';
import { parseStateFile } from '../src/persistence/state-file.ts';
import { FinalResultSchema } from '../src/domain/result.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { startTestGateway, type TestGateway } from './support/test-gateway.ts';
import { runFave } from './support/child.ts';
import { startS3rver } from './support/s3rver.ts';
import { until } from './support/until.ts';

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

describe('idempotent request ids and redrive', () => {
  it('re-submitting a completed request id answers from the store without running anything', async () => {
    h = await startHarness({ gateway: { clips: 2, framesPerClip: 1 } });
    const first = await (await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'again' })).done;
    const calls = h.gateway.calls.length;
    const second = await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'again' });
    expect(second.local).toBe(false);
    expect((await second.done).result).toEqual(first.result);
    expect(h.gateway.calls.length).toBe(calls);
  });

  it('a second submission of a running id in the same process joins it and gets the same answer', async () => {
    h = await startHarness({ gateway: { clips: 4, framesPerClip: 1, latencyMs: 10 } });
    const [a, b] = await Promise.all([
      h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'twice' }),
      h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'twice' }),
    ]);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect(ra.result).toEqual(rb.result);
    expect(h.gateway.callsTo('ffmpeg0')).toHaveLength(1);
    expect(h.gateway.calls).toHaveLength(3 + 4 * 3 + 4);
  });

  it('redrives a FAILED request from the step that failed once the cause is fixed', async () => {
    let othersTranscribing: () => void = () => {};
    const refuse = new Promise<void>((resolve) => (othersTranscribing = resolve));
    h = await startHarness({
      gateway: {
        clips: 5,
        framesPerClip: 2,
        faults: [
          // Clip 3 is refused once every other clip is transcribing: their deepspeech calls hang
          // until the failure stops them, however slow or loaded the machine is.
          { stage: 'deepspeech', clip: 3, kind: 'status', status: 400, after: refuse },
          ...[0, 1, 2, 4].map((clip) => ({ stage: 'deepspeech', clip, kind: 'hang' as const })),
        ],
      },
    });
    const gateway = h.gateway;
    const handle = await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'redrive' });
    await until(() => new Set(gateway.callsTo('deepspeech').map((c) => c.clip)).size === 5, { message: 'every clip in deepspeech' });
    othersTranscribing();
    const failed = await handle.done;
    expect(failed.status).toBe('FAILED');
    expect(failed.result.error).toMatchObject({ stage: 'stage-deepspeech', clip_index: 3, code: 'STAGE_HTTP_ERROR', http_status: 400 });

    // The clips stopped by the failure keep what they had finished: ffmpeg-2's output and record.
    const failedState = await h.readState('redrive');
    const stopped = failedState.snapshot.context.clips.filter((c) => c.index !== 3);
    for (const clip of stopped) {
      expect(clip.status).toBe('pending');
      expect(clip.progress.compressed_uri).not.toBeNull();
      expect(clip.records.filter((r) => r.stage === 'stage-ffmpeg-2' && r.outcome === 'success')).toHaveLength(1);
    }

    const before = h.gateway.calls.length;
    h.gateway.clearFaults();
    const redriven = await (await h.app.orchestrator.resume('redrive')).done;
    expect(redriven.status).toBe('COMPLETED');
    expect(redriven.result.clips.map((c) => c.status)).toEqual(['done', 'done', 'done', 'done', 'done']);
    const after = h.gateway.calls.slice(before).map((c) => `${c.stage}|${c.clip}|${c.frame}`);
    // Nothing that had finished runs again: no single-call stage, no ffmpeg-2 at all.
    expect(after.filter((k) => /^stage-(ffmpeg-0|librosa|ffmpeg-1|ffmpeg-2)\|/.test(k))).toEqual([]);
    expect(after.filter((k) => k.startsWith('stage-deepspeech')).sort()).toEqual([0, 1, 2, 3, 4].map((i) => `stage-deepspeech|${i}|null`));
    const state = await h.readState('redrive');
    expect(state.snapshot.context.redrives).toBe(1);
    expect(state.status).toBe('COMPLETED');
  });
});

describe('when state.json is written', () => {
  it('writes each top-level state once as it is entered, the claim holding the first, and the end', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fave-state-writes-'));
    const fsStore = new FsStore(join(dir, 'data'), 'fave-artifacts');
    await fsStore.init();
    const written: string[] = [];
    // The real store, telling which state each state.json put carries.
    const store = new Proxy(fsStore, {
      get(target, prop, receiver) {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (prop !== 'put' || typeof value !== 'function') return value;
        return (loc: ObjectLocation, body: PutBody, options?: PutOptions) => {
          if (loc.key.endsWith('/metadata/state.json')) written.push(parseStateFile(bodyBuffer(body).toString('utf8'), loc.key).state);
          return Reflect.apply(value, target, [loc, body, options]);
        };
      },
    });
    const gateway = await startTestGateway({ store: fsStore, clips: 2, framesPerClip: 2 });
    await fsStore.put({ bucket: 'fave-artifacts', key: 'uploads/v.mp4' }, Buffer.from('video'));
    // No interval write and no lease renewal within the request: only the writes made at once.
    const env = { GATEWAY_URL: gateway.url, FAVE_DATA_DIR: join(dir, 'data'), PERSIST_INTERVAL_MS: '3600000', LEASE_TTL_MS: '3600000', LOG_LEVEL: 'silent' };
    const app = await createApp({ env, logger: pino({ level: 'silent' }), store });
    try {
      const outcome = await (await app.orchestrator.submit({ video_uri: 's3://fave-artifacts/uploads/v.mp4', request_id: 'writes' })).done;
      expect(outcome.status).toBe('COMPLETED');
      expect(written).toEqual(['INIT', 'FFMPEG0', 'LIBROSA', 'CLIP', 'FANOUT', 'DETECT', 'COMPLETED']);
    } finally {
      await app.close();
      await gateway.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('state.json that cannot be trusted', () => {
  it.each([
    ['not JSON', '{"format": "fave-state", "vers', 'STATE_CORRUPT'],
    ['a newer version', JSON.stringify({ format: 'fave-state', version: 99, request_id: 'x' }), 'STATE_VERSION'],
    ['a wrong shape', JSON.stringify({ format: 'fave-state', version: 1, request_id: 'x', status: 'RUNNING' }), 'STATE_CORRUPT'],
  ])('refuses %s with a clear error and leaves the file untouched', async (_name, body, code) => {
    h = await startHarness({ gateway: { clips: 1, framesPerClip: 1 } });
    const loc = { bucket: 'fave-artifacts', key: requestKeys.state('bad') };
    await h.store.put(loc, body);
    await expect(h.app.orchestrator.resume('bad')).rejects.toMatchObject({ error: { code } });
    await expect(h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'bad' })).rejects.toMatchObject({ error: { code } });
    expect((await h.store.get(loc)).toString()).toBe(body);
    expect(h.gateway.calls).toHaveLength(0);
  });
});

describe('one owner per request across processes', () => {
  let gateway: TestGateway | null = null;
  let dir: string | null = null;
  afterEach(async () => {
    await gateway?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    gateway = null;
    dir = null;
  });

  it('two `fave run --request-id X` started together: the pipeline runs once and both print the result', async () => {
    dir = await mkdtemp(join(tmpdir(), 'fave-two-'));
    const store = new FsStore(join(dir, 'data'), 'fave-artifacts');
    await store.init();
    gateway = await startTestGateway({ store, clips: 6, framesPerClip: 2, latencyMs: 20 });
    await store.put({ bucket: 'fave-artifacts', key: 'uploads/v.mp4' }, Buffer.from('video'));
    const env = { GATEWAY_URL: gateway.url, FAVE_DATA_DIR: join(dir, 'data'), LOG_LEVEL: 'warn', OPENFAAS_SECRETS_DIR: '/nonexistent' };
    const args = ['run', 's3://fave-artifacts/uploads/v.mp4', '--request-id', 'shared', '--json'];
    const [a, b] = await Promise.all([runFave(args, env).exit, runFave(args, env).exit]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const ra = FinalResultSchema.parse(JSON.parse(a.stdout));
    const rb = FinalResultSchema.parse(JSON.parse(b.stdout));
    expect(ra).toEqual(rb);
    expect(ra.status).toBe('COMPLETED');
    expect(gateway.callsTo('ffmpeg0')).toHaveLength(1);
    expect(gateway.calls).toHaveLength(3 + 6 * 3 + 12);
  });
});

describe('store problems are found at start', () => {
  it('a missing bucket fails `fave run` before any stage is called, naming the bucket', async () => {
    const s3 = await startS3rver();
    const gw = await startTestGateway({ store: new FsStore(tmpdir(), 'unused'), clips: 1 });
    try {
      const out = await runFave(['run', 's3://nope/v.mp4'], {
        GATEWAY_URL: gw.url,
        FAVE_STORE: 's3',
        ARTIFACT_ENDPOINT: s3.endpoint,
        ARTIFACT_BUCKET: 'no-such-bucket',
        ARTIFACT_ACCESS_KEY: s3.accessKeyId,
        ARTIFACT_SECRET_KEY: s3.secretAccessKey,
        OPENFAAS_SECRETS_DIR: '/nonexistent',
      }).exit;
      expect(out.code).not.toBe(0);
      expect(out.stderr).toContain('no-such-bucket');
      expect(out.stderr).toMatch(/does not exist/);
      expect(gw.calls).toHaveLength(0);
    } finally {
      await gw.close();
      await s3.stop();
    }
  });
});

describe('orphans are taken over while a server runs', () => {
  it('`fave serve` with RESUME_ON_START finishes a request whose process was SIGKILLed after the server started', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fave-sweep-'));
    const store = new FsStore(join(dir, 'data'), 'fave-artifacts');
    await store.init();
    const gateway = await startTestGateway({ store, clips: 8, framesPerClip: 2, latencyMs: 30 });
    await store.put({ bucket: 'fave-artifacts', key: 'uploads/v.mp4' }, Buffer.from('video'));
    const env = { GATEWAY_URL: gateway.url, FAVE_DATA_DIR: join(dir, 'data'), LOG_LEVEL: 'info', OPENFAAS_SECRETS_DIR: '/nonexistent', LEASE_TTL_MS: '800' };
    const server = runFave(['serve', '--port', '0', '--host', '127.0.0.1'], { ...env, RESUME_ON_START: 'true' });
    try {
      let serverLog = '';
      server.child.stderr!.on('data', (d: Buffer) => (serverLog += d.toString()));
      await until(() => serverLog.includes('"event":"listening"'), { timeoutMs: 15_000, message: () => `fave serve to listen; its stderr: ${serverLog}` });

      const run = runFave(['run', 's3://fave-artifacts/uploads/v.mp4', '--request-id', 'orphan', '--json'], env);
      // Polled tightly: the kill must land while the run is still under way.
      await until(() => gateway.calls.filter((c) => c.request_id === 'orphan').length >= 8, { timeoutMs: 15_000, everyMs: 5, message: "the orphan's first 8 calls" });
      run.child.kill('SIGKILL');
      await run.exit;

      const stateKey = { bucket: 'fave-artifacts', key: requestKeys.state('orphan') };
      await until(async () => (JSON.parse((await store.get(stateKey)).toString()) as { status: string }).status !== 'RUNNING', {
        timeoutMs: 30_000,
        everyMs: 50,
        message: () => `the server to finish the orphan; its stderr: ${serverLog}`,
      });
      const final = FinalResultSchema.parse(JSON.parse((await store.get({ bucket: 'fave-artifacts', key: requestKeys.final('orphan') })).toString()));
      expect(final.status).toBe('COMPLETED');
      expect(final.clips).toHaveLength(8);
      expect(serverLog).toContain('"event":"resumed_orphans"');
      expect(serverLog).toContain('"orphan"');
    } finally {
      server.child.kill('SIGTERM');
      await server.exit;
      await gateway.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

type RetryContext = {
  records: Array<{ stage: string; attempt: number; http_status: number | null; outcome: string }>;
  clips: Array<{ records: Array<{ stage: string; attempt: number; http_status: number | null; outcome: string }> }>;
  retrying?: Record<string, Array<{ attempt: number }>>;
};

describe('retries across a crash', () => {
  const cases = [
    { name: 'a single-call stage', stage: 'librosa', fault: {}, taskId: 'librosa', function: 'stage-librosa', records: (c: RetryContext) => c.records },
    {
      name: 'a step of a clip chain',
      stage: 'deepspeech',
      fault: { clip: 0 },
      taskId: 'clip-0/deepspeech',
      function: 'stage-deepspeech',
      records: (c: RetryContext) => c.clips[0]!.records,
    },
  ];

  it.each(cases)('$name killed between attempts resumes at its next attempt, within the same max_attempts', async (c) => {
    const dir = await mkdtemp(join(tmpdir(), 'fave-retry-crash-'));
    const store = new FsStore(join(dir, 'data'), 'fave-artifacts');
    await store.init();
    // Two 502s, then an attempt that hangs (the process is killed during it), then a 502.
    const gateway = await startTestGateway({
      store,
      clips: 2,
      framesPerClip: 1,
      faults: [
        { stage: c.stage, ...c.fault, kind: 'status', status: 502, times: 2 },
        { stage: c.stage, ...c.fault, kind: 'hang', times: 1 },
        { stage: c.stage, ...c.fault, kind: 'status', status: 502, times: 1 },
      ],
    });
    await store.put({ bucket: 'fave-artifacts', key: 'uploads/v.mp4' }, Buffer.from('video'));
    const env = {
      GATEWAY_URL: gateway.url,
      FAVE_DATA_DIR: join(dir, 'data'),
      LOG_LEVEL: 'error',
      OPENFAAS_SECRETS_DIR: '/nonexistent',
      RETRY_MAX_ATTEMPTS: '3',
      RETRY_BASE_DELAY_MS: '1',
      RETRY_MAX_DELAY_MS: '5',
      PERSIST_INTERVAL_MS: '0',
      LEASE_TTL_MS: '800',
    };
    const stateKey = { bucket: 'fave-artifacts', key: requestKeys.state('retried') };
    const readContext = async (): Promise<RetryContext | null> => {
      const body = await store.get(stateKey).catch(() => null);
      return body ? (JSON.parse(body.toString()) as { snapshot: { context: RetryContext } }).snapshot.context : null;
    };
    const persistedRetries = async () => ((await readContext())?.retrying?.[c.taskId] ?? []).map((r) => r.attempt);
    const calls = () => gateway.callsTo(c.stage).filter((call) => call.clip === null || call.clip === 0);
    try {
      const run = runFave(['run', 's3://fave-artifacts/uploads/v.mp4', '--request-id', 'retried', '--json'], env);
      // The third attempt is hanging and the first two failures are in state.json: kill now.
      await until(async () => calls().length >= 3 && (await persistedRetries()).length >= 2, { message: 'the third attempt hanging after two persisted failures' });
      expect(await persistedRetries()).toEqual([1, 2]);
      run.child.kill('SIGKILL');
      expect((await run.exit).signal).toBe('SIGKILL');

      const resumed = await runFave(['resume', 'retried', '--json'], env).exit;
      // Started over, the call would have had three more attempts and met the success after the 502.
      expect(resumed.code, resumed.stderr).toBe(1);
      const result = FinalResultSchema.parse(JSON.parse(resumed.stdout));
      expect(result.status).toBe('FAILED');
      expect(result.error).toMatchObject({ code: 'STAGE_UNAVAILABLE', stage: c.function, attempts: 3 });
      expect(calls()).toHaveLength(4);
      const context = (await readContext())!;
      const attempts = c.records(context).filter((r) => r.stage === c.function);
      // The attempt in flight at the kill was sent, so it is counted, as interrupted.
      expect(attempts.filter((r) => r.outcome === 'interrupted').map((r) => r.attempt)).toEqual([3]);
      expect(attempts.filter((r) => r.outcome !== 'interrupted').map((r) => [r.attempt, r.http_status])).toEqual([
        [1, 502],
        [2, 502],
        [3, 502],
      ]);
      expect(context.retrying).toEqual({});
    } finally {
      await gateway.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('cancel across processes', () => {
  it('a cancel that reaches an orchestrator not running the request is carried out by the owner', async () => {
    h = await startHarness({
      gateway: { clips: 4, framesPerClip: 1, faults: [{ stage: 'ffmpeg2', kind: 'hang' }] },
      env: { LEASE_TTL_MS: '600' },
    });
    const other = await createApp({ env: h.env, logger: pino({ level: 'silent' }) });
    try {
      const handle = await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'far-cancel' });
      await until(() => h!.gateway.callsTo('ffmpeg2').length >= 4, { message: 'all 4 ffmpeg-2 calls' });
      expect(other.orchestrator.get('far-cancel')).toBeUndefined();
      expect(await other.orchestrator.requestCancel('far-cancel', 'asked elsewhere')).toBe(true);
      const outcome = await handle.done;
      expect(outcome.status).toBe('FAILED');
      expect(outcome.result.error).toMatchObject({ code: 'CANCELLED', message: 'request cancelled: asked elsewhere' });
      expect((await h.readState('far-cancel')).error).toMatchObject({ code: 'CANCELLED' });
      // The marker is taken once acted on; a finished request cannot be cancelled again.
      expect(await h.store.head({ bucket: 'fave-artifacts', key: requestKeys.cancel('far-cancel') })).toBeNull();
      expect(await other.orchestrator.requestCancel('far-cancel', 'again')).toBe(false);
    } finally {
      await other.close();
    }
  });
});
