import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../src/persistence/fs-store.ts';
import { parseStateFile, type StateEnvelope } from '../src/persistence/state-file.ts';
import { requestKeys } from '../src/persistence/store.ts';
import { FinalResultSchema } from '../src/domain/result.ts';
import { callbackKeys } from '../src/transport/callbacks.ts';
import { readDispatches } from '../src/persistence/dispatch-journal.ts';
import { runFave, type ChildRun } from './support/child.ts';
import { startTestGateway, type TestGateway } from './support/test-gateway.ts';
import { until } from './support/until.ts';
import { freePort } from './support/free-port.ts';

/**
 * No process holds an async call: an owner SIGKILLed while 10 calls are queued leaves them to the
 * gateway, their callbacks land on another replica while no owner runs, and the resumed request
 * uses them instead of queueing the calls again.
 */

const CLIPS = 10;
const BUCKET = 'fave-artifacts';
const ID = 'crash-async';

let dir: string;
let store: FsStore;
let gateway: TestGateway;
let env: Record<string, string>;
let replica: ChildRun | null = null;
/** The gateway of the runs killed between a call's marker and its 202. */
let quick: TestGateway | null = null;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fave-async-crash-'));
  store = new FsStore(join(dir, 'data'), BUCKET);
  await store.init();
  gateway = await startTestGateway({ store, clips: CLIPS, framesPerClip: 1 });
  await store.put({ bucket: BUCKET, key: 'uploads/v.mp4' }, Buffer.from('video bytes'));
  const port = await freePort();
  env = {
    GATEWAY_URL: gateway.url,
    FAVE_DATA_DIR: join(dir, 'data'),
    ARTIFACT_BUCKET: BUCKET,
    OPENFAAS_SECRETS_DIR: join(dir, 'no-secrets'),
    STAGE_CALL_MODE: 'async',
    CALLBACK_BASE_URL: `http://127.0.0.1:${port}`,
    CALLBACK_SECRET: 'crash-test-callback-secret-0123',
    MAX_CONCURRENT_INVOCATIONS: String(CLIPS),
    PERSIST_INTERVAL_MS: '0',
    LEASE_TTL_MS: '900',
    LOG_LEVEL: 'warn',
  };
  // The replica the queue-worker calls back: it runs no request itself.
  replica = runFave(['serve', '--port', String(port), '--host', '127.0.0.1'], env);
  await until(async () => (await fetch(`${env.CALLBACK_BASE_URL}/healthz`).catch(() => null))?.ok === true, {
    timeoutMs: 30_000,
    message: 'the second fave serve answers',
    everyMs: 100,
  });
}, 60_000);

afterAll(async () => {
  if (replica && replica.child.exitCode === null) {
    replica.child.kill('SIGTERM');
    await replica.exit;
  }
  await gateway?.close();
  await quick?.close();
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

async function readState(id = ID): Promise<StateEnvelope | null> {
  try {
    return parseStateFile((await store.get({ bucket: BUCKET, key: requestKeys.state(id) })).toString('utf8'), 'state.json');
  } catch {
    return null;
  }
}

// The names of stored callbacks: on this store a callback's key is one file name, its folders encoded.
const compressCallbacks = async () => (await store.list(BUCKET, callbackKeys.prefix(ID))).filter((k) => decodeURIComponent(k).includes('/ffmpeg2/'));

describe('crash while async calls are queued', () => {
  it('callbacks that reach another replica while no owner runs are used on resume, nothing is queued again', async () => {
    gateway.holdCallbacks('ffmpeg2');
    const owner = runFave(['run', 's3://fave-artifacts/uploads/v.mp4', '--request-id', ID, '--json'], env);
    let exited = false;
    void owner.exit.then(() => (exited = true));
    await until(
      async () => {
        if (exited) return true;
        const dispatched = Object.keys((await readState())?.snapshot.context.dispatched ?? {}).filter((t) => t.endsWith('/ffmpeg2'));
        return dispatched.length === CLIPS && gateway.heldCallbacks === CLIPS;
      },
      { timeoutMs: 60_000, message: `${CLIPS} ffmpeg-2 calls are queued, persisted as dispatched, and have run`, everyMs: 25 },
    );
    expect(exited, 'the owner ended before the kill').toBe(false);
    owner.child.kill('SIGKILL');
    expect((await owner.exit).signal).toBe('SIGKILL');
    expect(await compressCallbacks()).toEqual([]);

    // The queue-worker calls back now, while no orchestrator owns the request.
    gateway.releaseCallbacks();
    await until(async () => (await compressCallbacks()).length === CLIPS, { timeoutMs: 30_000, message: 'the replica has stored the 10 callbacks' });
    const atRest = await readState();
    expect(atRest!.status).toBe('RUNNING');
    expect(atRest!.snapshot.context.clips.every((c) => c.progress.compressed_uri === null)).toBe(true);

    const resumed = runFave(['resume', ID, '--json'], env);
    const out = await resumed.exit;
    expect(out.code, out.stderr.slice(-3000)).toBe(0);
    const result = FinalResultSchema.parse(JSON.parse(out.stdout));
    expect(result.status).toBe('COMPLETED');
    expect(result.clips).toHaveLength(CLIPS);

    const calls = gateway.calls.filter((c) => c.request_id === ID);
    const compress = calls.filter((c) => c.stage === 'stage-ffmpeg-2');
    expect(compress.map((c) => c.clip).sort((a, b) => a! - b!)).toEqual([...Array(CLIPS).keys()]);
    expect(calls).toHaveLength(3 + CLIPS * 3 + CLIPS);
    // Each queued call counts once: continued after the crash, not also recorded as interrupted.
    expect(result.metrics.invocations).toBe(calls.length);
    const final = await readState();
    expect(final!.status).toBe('COMPLETED');
    expect(final!.snapshot.context.dispatched).toEqual({});
    const records = final!.snapshot.context.clips.flatMap((c) => c.records).filter((r) => r.stage === 'stage-ffmpeg-2');
    expect(records.map((r) => r.attempt)).toEqual(Array(CLIPS).fill(1));
  }, 120_000);
});

describe('crash after an async call is journaled, before state.json says it was queued', () => {
  const RUNS = 10;
  const QUEUED = 3;

  it(`a resumed request waits for the journaled calls' callbacks and sends none of them again (${RUNS} runs)`, async () => {
    quick = await startTestGateway({ store, clips: QUEUED, framesPerClip: 1 });
    const runEnv = { ...env, GATEWAY_URL: quick.url, MAX_CONCURRENT_INVOCATIONS: String(QUEUED) };
    const sentAgain: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const id = `crash-async-marker-${run}`;
      // The gateway queues the ffmpeg-2 calls (they run and call back) but holds its 202: the
      // owner's journal has their markers, its state.json cannot know they were queued.
      quick.holdAccepts('ffmpeg2');
      const owner = runFave(['run', 's3://fave-artifacts/uploads/v.mp4', '--request-id', id, '--json'], runEnv);
      let exited = false;
      void owner.exit.then(() => (exited = true));
      const queuedCalls = () => quick!.calls.filter((c) => c.request_id === id && c.stage_key === 'ffmpeg2');
      await until(() => exited || (quick!.heldAccepts === QUEUED && queuedCalls().length === QUEUED), {
        timeoutMs: 60_000,
        message: `run ${run}: ${QUEUED} ffmpeg-2 calls are queued, their 202 held`,
        everyMs: 25,
      });
      expect(exited, 'the owner ended before the kill').toBe(false);
      const markers = (await readDispatches(store, BUCKET, id)).filter((m) => m.stage === 'stage-ffmpeg-2');
      expect(markers.map((m) => m.mode)).toEqual(Array(QUEUED).fill('async'));
      owner.child.kill('SIGKILL');
      expect((await owner.exit).signal).toBe('SIGKILL');
      quick.releaseAccepts();
      const atKill = await readState(id);
      expect(Object.keys(atKill!.snapshot.context.dispatched).filter((t) => t.endsWith('/ffmpeg2'))).toEqual([]);

      const resumed = runFave(['resume', id, '--json'], runEnv);
      const out = await resumed.exit;
      expect(out.code, out.stderr.slice(-3000)).toBe(0);
      const result = FinalResultSchema.parse(JSON.parse(out.stdout));
      expect(result.status).toBe('COMPLETED');

      const calls = quick.calls.filter((c) => c.request_id === id);
      const compress = calls.filter((c) => c.stage_key === 'ffmpeg2');
      sentAgain.push(compress.length - QUEUED);
      expect(compress.map((c) => c.clip).sort((a, b) => a! - b!)).toEqual([...Array(QUEUED).keys()]);
      expect(calls).toHaveLength(3 + QUEUED * 3 + QUEUED);
      // Each queued call counts once, with the attempt it was sent as: waited for, not lost.
      expect(result.metrics.invocations).toBe(calls.length);
      expect(result.metrics.retries).toBe(0);
      const records = (await readState(id))!.snapshot.context.clips.flatMap((c) => c.records).filter((r) => r.stage === 'stage-ffmpeg-2');
      expect(records.map((r) => [r.attempt, r.outcome])).toEqual(Array(QUEUED).fill([1, 'success']));
    }
    console.log(`[async-crash] calls sent again per run: ${sentAgain.join(', ')}`);
    expect(sentAgain).toEqual(Array(RUNS).fill(0));
  }, 180_000);
});
