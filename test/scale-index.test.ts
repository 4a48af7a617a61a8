import { describe, expect, it } from 'vitest';
import { Orchestrator } from '../src/orchestrator/orchestrator.ts';
import { indexKeys, parseListedKey } from '../src/persistence/request-index.ts';
import { requestKeys, type Store } from '../src/persistence/store.ts';
import { closeAfterTest } from './support/cleanup.ts';
import { runFave } from './support/child.ts';
import { countingStore } from './support/counting-store.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { motoSkipReason, startMotoStore, type RunningMoto } from './support/moto.ts';
import { until } from './support/until.ts';

/**
 * What a replica costs on an S3 endpoint (moto behind a counting wrapper): state reads per sweep
 * follow the running requests, not the finished ones; and `fave gc` on both stores removes old
 * finished requests and never a running one.
 */

const BUCKET = 'fave-artifacts';
const skipMoto = motoSkipReason();

async function motoHarness(): Promise<Harness> {
  return (await motoHarnessAndServer()).h;
}

/** The harness on moto, with the server itself (its access log counts the S3 calls made). */
async function motoHarnessAndServer(): Promise<{ h: Harness; moto: RunningMoto }> {
  const s3 = await startMotoStore();
  const h = await startHarness({
    store: s3.store,
    gateway: { clips: 1, framesPerClip: 1 },
    env: {
      FAVE_STORE: 's3',
      ARTIFACT_ENDPOINT: s3.moto.endpoint,
      ARTIFACT_BUCKET: s3.moto.bucket,
      ARTIFACT_ACCESS_KEY: s3.moto.accessKeyId,
      ARTIFACT_SECRET_KEY: s3.moto.secretAccessKey,
      PERSIST_INTERVAL_MS: '0',
      LEASE_TTL_MS: '3000',
    },
  });
  closeAfterTest({ close: () => s3.stop() });
  return { h: closeAfterTest(h), moto: s3.moto };
}

async function fsHarness(): Promise<Harness> {
  return closeAfterTest(await startHarness({ gateway: { clips: 1, framesPerClip: 1 }, env: { PERSIST_INTERVAL_MS: '0', LEASE_TTL_MS: '3000' } }));
}

async function complete(h: Harness, id: string): Promise<void> {
  const handle = await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: id });
  expect((await handle.done).status).toBe('COMPLETED');
}

async function keysOf(store: Store, id: string): Promise<string[]> {
  return store.list(BUCKET, requestKeys.prefix(id));
}

describe.skipIf(skipMoto)('sweeps on S3 (moto)', () => {
  it('read no state.json with none running, and one per running request held elsewhere, with 12 finished stored', async () => {
    const h = await motoHarness();
    for (let i = 0; i < 12; i++) await complete(h, `finished-${String(i).padStart(2, '0')}`);
    // Two requests running in the app (another owner for the replica below), held at their first stage.
    h.gateway.addFault({ stage: 'ffmpeg0', kind: 'hang' });
    const running = await Promise.all(['running-a', 'running-b'].map((id) => h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: id })));
    await until(async () => (await h.store.list(BUCKET, indexKeys.runningPrefix)).length === 2, { message: 'two running markers' });

    const { store, counts } = countingStore(h.store);
    const replica = closeAfterTest(new Orchestrator({ config: h.app.config, store, transport: h.app.transport, owner: 'counting-replica' }));
    const sweeps: Array<{ running: number; state_reads: number; lists: number }> = [];
    const sweep = async (runningNow: number) => {
      counts.reset();
      expect(await replica.sweepOrphans()).toEqual([]);
      sweeps.push({ running: runningNow, state_reads: counts.stateReads, lists: counts.calls.get('listPage') ?? 0 });
    };
    await sweep(2); // the first: the full scan too, and a read of each running request's lease
    await sweep(2); // leases known: not read again before they run out
    for (const handle of running) h.app.orchestrator.cancel(handle.request_id);
    await Promise.all(running.map((handle) => handle.done.catch(() => undefined)));
    await until(async () => (await h.store.list(BUCKET, indexKeys.runningPrefix)).length === 0, { message: 'markers removed' });
    await sweep(0);
    await sweep(0);
    console.info(`reads per sweep with 12 finished stored on moto: ${JSON.stringify(sweeps)}`);
    for (const s of sweeps) expect(s.state_reads).toBeLessThanOrEqual(s.running + 1);
    expect(sweeps[0]!.state_reads).toBe(2);
    expect(sweeps[1]!.state_reads).toBe(0);
    expect(sweeps[2]!.state_reads).toBe(0);
    expect(sweeps[3]!.state_reads).toBe(0);
    // Past the first sweep's full scan, one listing call (the running prefix) per sweep.
    expect(sweeps.slice(1).map((s) => s.lists)).toEqual([1, 1, 1]);
  });
});

/** `fave gc` in a child process on the harness's store: one finished request goes, a running one stays. */
async function gcLeavesRunning(h: Harness): Promise<void> {
  await complete(h, 'old-done');
  h.gateway.addFault({ stage: 'librosa', requestId: 'old-running', kind: 'hang' });
  const running = await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'old-running' });
  await until(() => h.gateway.callsTo('stage-librosa').some((c) => c.request_id === 'old-running'), { message: 'old-running at librosa' });
  const doneKeys = await keysOf(h.store, 'old-done');
  const runningKeys = await keysOf(h.store, 'old-running');
  expect(doneKeys.length).toBeGreaterThan(3);

  const dry = await runFave(['gc', '--older-than', '0s', '--dry-run'], h.env).exit;
  expect(dry.code, dry.stderr).toBe(0);
  expect(dry.stdout).toContain('would remove old-done (COMPLETED');
  expect(dry.stdout).not.toContain('old-running');
  expect(await keysOf(h.store, 'old-done')).toEqual(doneKeys);

  const gc = await runFave(['gc', '--older-than', '0s'], h.env).exit;
  expect(gc.code, gc.stderr).toBe(0);
  expect(gc.stdout).toMatch(/^removed old-done \(COMPLETED, finished .*\): \d+ objects/m);
  expect(gc.stdout).toContain(`removed 1 requests, ${doneKeys.length} objects`);
  expect(gc.stdout).not.toContain('removed old-running');
  expect(await keysOf(h.store, 'old-done')).toEqual([]);
  const listed = (await h.store.list(BUCKET, indexKeys.listedPrefix)).map((k) => parseListedKey(k)?.request_id);
  expect(listed).not.toContain('old-done');
  // The running request is untouched, and still finishes.
  expect(await keysOf(h.store, 'old-running')).toEqual(expect.arrayContaining(runningKeys));
  expect(await h.store.head({ bucket: BUCKET, key: indexKeys.running('old-running') })).not.toBeNull();
  h.gateway.clearFaults();
  h.app.orchestrator.cancel('old-running');
  const outcome = await running.done.catch(() => null);
  expect(outcome?.status ?? 'FAILED').toBe('FAILED');

  const again = await runFave(['gc', '--older-than', '30d', '--json'], h.env).exit;
  expect(again.code, again.stderr).toBe(0);
  expect(JSON.parse(again.stdout)).toMatchObject({ removed: [], objects: 0, bytes: 0 });
}

describe('fave gc', () => {
  it('on the filesystem store', async () => {
    await gcLeavesRunning(await fsHarness());
  });

  it.skipIf(skipMoto)('on S3 (moto)', async () => {
    await gcLeavesRunning(await motoHarness());
  });

  it.skipIf(skipMoto)('on S3 (moto) removes a request of thousands of objects with a DeleteObjects call per 1,000, after its state.json', async () => {
    const { h, moto } = await motoHarnessAndServer();
    await complete(h, 'old-big');
    // A long video's frames and detections: objects enough for three calls.
    const frames = Array.from({ length: 2100 }, (_, i) => `requests/old-big/frames/${String(i).padStart(5, '0')}.json`);
    for (let i = 0; i < frames.length; i += 50) await Promise.all(frames.slice(i, i + 50).map((key) => h.store.put({ bucket: BUCKET, key }, '{}')));
    h.gateway.addFault({ stage: 'librosa', requestId: 'old-running', kind: 'hang' });
    const running = await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'old-running' });
    await until(() => h.gateway.callsTo('stage-librosa').some((c) => c.request_id === 'old-running'), { message: 'old-running at librosa' });
    const keys = await keysOf(h.store, 'old-big');
    const runningKeys = await keysOf(h.store, 'old-running');

    const before = moto.accessLog().length;
    const gc = await runFave(['gc', '--older-than', '0s', '--json'], h.env).exit;
    expect(gc.code, gc.stderr).toBe(0);
    expect(JSON.parse(gc.stdout)).toMatchObject({ removed: [{ request_id: 'old-big', objects: keys.length }], objects: keys.length });
    expect(await keysOf(h.store, 'old-big')).toEqual([]);

    const made = moto.accessLog().slice(before);
    const batches = made.flatMap((line, i) => (/^POST \S*\?delete[=&\s]/.test(line) ? [i] : []));
    const single = made.flatMap((line, i) => (line.startsWith(`DELETE /${BUCKET}/requests/`) ? [i] : []));
    // state.json alone first, then everything else in calls of at most 1,000 keys.
    expect(batches).toHaveLength(Math.ceil((keys.length - 1) / 1000));
    expect(single.map((i) => made[i])).toEqual([expect.stringContaining(`/${BUCKET}/requests/old-big/metadata/state.json`)]);
    expect(single[0]!).toBeLessThan(batches[0]!);
    for (const line of [...batches, ...single].map((i) => made[i]!)) expect(line).toMatch(/ 20[04]$/);

    // The running request is untouched.
    expect(await keysOf(h.store, 'old-running')).toEqual(expect.arrayContaining(runningKeys));
    h.gateway.clearFaults();
    h.app.orchestrator.cancel('old-running');
    expect((await running.done.catch(() => null))?.status ?? 'FAILED').toBe('FAILED');
  });

  it('leaves alone a finished request that runs again (redriven), though it is listed as old', async () => {
    const h = await fsHarness();
    h.gateway.addFault({ stage: 'ffmpeg1', kind: 'error', message: 'bad input' });
    expect((await (await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'rerun' })).done).status).toBe('FAILED');
    const keys = await keysOf(h.store, 'rerun');
    h.gateway.clearFaults();
    h.gateway.addFault({ stage: 'ffmpeg1', kind: 'hang' });
    // The redrive claims the request while gc looks: the listing entry is what made it a candidate.
    const entry = (await h.store.list(BUCKET, indexKeys.listedPrefix))[0]!;
    const body = await h.store.get({ bucket: BUCKET, key: entry });
    const again = await h.app.orchestrator.resume('rerun');
    await until(() => h.gateway.callsTo('stage-ffmpeg-1').length === 2, { message: 'the redrive at ffmpeg-1' });
    await h.store.put({ bucket: BUCKET, key: entry }, body);

    const gc = await runFave(['gc', '--older-than', '0s'], h.env).exit;
    expect(gc.code, gc.stderr).toBe(0);
    expect(gc.stdout).toContain('removed 0 requests');
    expect(gc.stdout).toContain('1 that had finished and run again (redriven) left alone');
    expect(await keysOf(h.store, 'rerun')).toEqual(expect.arrayContaining(keys));
    h.gateway.clearFaults();
    h.app.orchestrator.cancel('rerun');
    expect((await again.done).status).toBe('FAILED');
  });

  it('refuses an age it cannot read', async () => {
    const h = await fsHarness();
    const bad = await runFave(['gc', '--older-than', 'a month'], h.env).exit;
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--older-than');
  });
});
