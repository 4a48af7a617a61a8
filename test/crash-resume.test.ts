import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3Store } from '../src/persistence/s3-store.ts';
import { parseStateFile, type StateEnvelope } from '../src/persistence/state-file.ts';
import { requestKeys } from '../src/persistence/store.ts';
import { FinalResultSchema, type FinalResult } from '../src/domain/result.ts';
import { s3StoreOn, startS3rver, type RunningS3rver } from './support/s3rver.ts';
import { startTestGateway, type TestGateway, type CallRecord } from './support/test-gateway.ts';
import { runFave } from './support/child.ts';
import { until } from './support/until.ts';
import { flattenInvocations } from '../src/ui/timeline.ts';

/**
 * Real child processes running `fave run`, SIGKILLed at many moments, resumed with `fave resume`
 * on a real S3 endpoint: every request ends COMPLETED with the uninterrupted answer, and no stage
 * call whose completion had been persisted is made again.
 */

const CLIPS = 30;
const FRAMES = 2;
const TOTAL_CALLS = 3 + CLIPS * 3 + CLIPS * FRAMES;

let s3: RunningS3rver;
let store: S3Store;
let gateway: TestGateway;
let env: Record<string, string>;
const VIDEO = 's3://fave-artifacts/uploads/crash.mp4';

beforeAll(async () => {
  s3 = await startS3rver();
  store = s3StoreOn(s3);
  await store.init();
  gateway = await startTestGateway({ store, clips: CLIPS, framesPerClip: FRAMES, latencyMs: 12 });
  await store.put({ bucket: s3.bucket, key: 'uploads/crash.mp4' }, Buffer.from('video bytes'));
  env = {
    GATEWAY_URL: gateway.url,
    FAVE_STORE: 's3',
    ARTIFACT_ENDPOINT: s3.endpoint,
    ARTIFACT_BUCKET: s3.bucket,
    ARTIFACT_ACCESS_KEY: s3.accessKeyId,
    ARTIFACT_SECRET_KEY: s3.secretAccessKey,
    PERSIST_INTERVAL_MS: '0',
    MAX_CONCURRENT_INVOCATIONS: '4',
    LEASE_TTL_MS: '800',
    LOG_LEVEL: 'warn',
    OPENFAAS_SECRETS_DIR: '/nonexistent',
  };
});

afterAll(async () => {
  await gateway?.close();
  await store?.close();
  await s3?.stop();
});

async function readState(id: string): Promise<StateEnvelope | null> {
  try {
    const body = await store.get({ bucket: s3.bucket, key: requestKeys.state(id) });
    return parseStateFile(body.toString('utf8'), 'state.json');
  } catch {
    return null;
  }
}

async function readFinal(id: string): Promise<FinalResult> {
  const body = await store.get({ bucket: s3.bucket, key: requestKeys.final(id) });
  return FinalResultSchema.parse(JSON.parse(body.toString('utf8')));
}

/** The answer without what legitimately differs between runs: ids in URIs, timings, call counts. */
function comparable(result: FinalResult) {
  const text = JSON.stringify({
    status: result.status,
    partial: result.partial,
    query: result.query,
    clips: result.clips,
    matches: result.matches,
    failed_clips: result.failed_clips,
    error: result.error,
  });
  return JSON.parse(text.replaceAll(`/requests/${result.request_id}/`, '/requests/ID/'));
}

const unitKey = (stage: string, clip: number | null, frame: number | null) => `${stage}|${clip ?? '-'}|${frame ?? '-'}`;

/** Every stage call whose success is recorded in a state.json, including inside clip machines. */
function finishedUnits(state: StateEnvelope): Set<string> {
  const done = new Set<string>();
  const ctx = state.snapshot.context;
  if (ctx.steps.ffmpeg0) done.add(unitKey('stage-ffmpeg-0', null, null));
  if (ctx.steps.librosa) done.add(unitKey('stage-librosa', null, null));
  if (ctx.steps.ffmpeg1) done.add(unitKey('stage-ffmpeg-1', null, null));
  const addProgress = (clip: number, p: { compressed_uri: string | null; transcript_uri: string | null; frames: unknown[] | null }) => {
    if (p.compressed_uri) done.add(unitKey('stage-ffmpeg-2', clip, null));
    if (p.transcript_uri) done.add(unitKey('stage-deepspeech', clip, null));
    if (p.frames) done.add(unitKey('stage-ffmpeg-3', clip, null));
  };
  for (const clip of ctx.clips) {
    addProgress(clip.index, clip.progress);
    for (const f of clip.frames) if (f.status === 'done') done.add(unitKey('stage-object-detector', clip.index, f.index));
  }
  for (const [id, child] of Object.entries(state.snapshot.children)) {
    const m = /^clip-(\d+)$/.exec(id);
    const progress = (child.snapshot as { context?: { progress?: Parameters<typeof addProgress>[1] } }).context?.progress;
    if (m && progress) addProgress(Number(m[1]), progress);
  }
  return done;
}

/** What the watcher sees: the request's stage calls, and how many distinct state.json versions. */
type Seen = { calls: CallRecord[]; stateExists: boolean; stateVersions: number };
type Trigger = { name: string; watchState: boolean; ready: (seen: Seen) => boolean };

const afterCalls = (n: number): Trigger => ({ name: `after ${n} stage calls`, watchState: false, ready: (s) => s.calls.length >= n });
const afterWrite = (n: number): Trigger => ({
  name: `right after the ${n}th observed state write`,
  watchState: true,
  ready: (s) => s.stateVersions >= n,
});

const TRIGGERS: Trigger[] = [
  { name: 'before the first stage', watchState: true, ready: (s) => s.stateExists && s.calls.length === 0 },
  afterCalls(1),
  afterCalls(2),
  afterCalls(3),
  afterCalls(8),
  afterCalls(30),
  afterCalls(60),
  afterCalls(95),
  afterCalls(120),
  afterCalls(145),
  afterWrite(4),
  afterWrite(10),
];

async function waitFor(id: string, trigger: Trigger, exited: () => boolean): Promise<void> {
  const etags = new Set<string>();
  let seen: Seen = { calls: [], stateExists: false, stateVersions: 0 };
  const reached = async (): Promise<boolean> => {
    if (exited()) return true;
    let stateExists = false;
    if (trigger.watchState) {
      // HEAD is cheap enough to poll without slowing the process under test.
      const info = await store.head({ bucket: s3.bucket, key: requestKeys.state(id) }).catch(() => null);
      if (info) {
        stateExists = true;
        etags.add(info.etag);
      }
    }
    seen = { calls: gateway.calls.filter((c) => c.request_id === id), stateExists, stateVersions: etags.size };
    return trigger.ready(seen);
  };
  // Polled every 1-2 ms: the kill has to land right at the moment, before the run moves on.
  await until(reached, {
    timeoutMs: 30_000,
    everyMs: trigger.watchState ? 1 : 2,
    message: () => `${id} to be ${trigger.name} (seen ${seen.calls.length} calls, ${seen.stateVersions} state versions)`,
  });
}

describe('crash and resume with real processes and SIGKILL', () => {
  let reference: ReturnType<typeof comparable>;

  it('an uninterrupted run gives the reference answer', async () => {
    const run = runFave(['run', VIDEO, '--request-id', 'reference', '--query', 'cars', '--json'], env);
    const out = await run.exit;
    expect(out.code, out.stderr).toBe(0);
    const result = FinalResultSchema.parse(JSON.parse(out.stdout));
    expect(result.clips).toHaveLength(CLIPS);
    expect(gateway.calls.filter((c) => c.request_id === 'reference')).toHaveLength(TOTAL_CALLS);
    reference = comparable(await readFinal('reference'));
    expect(comparable(result)).toEqual(reference);
  });

  it.each(TRIGGERS.map((t, i) => [t.name, i] as const))('killed %s, it resumes to the same answer without redoing finished calls', async (_name, i) => {
    const trigger = TRIGGERS[i]!;
    const id = `crash-${i}`;
    const run = runFave(['run', VIDEO, '--request-id', id, '--query', 'cars', '--json'], env);
    let exited = false;
    void run.exit.then(() => (exited = true));
    await waitFor(id, trigger, () => exited);
    if (exited) {
      const out = await run.exit;
      expect.fail(`the run ended before the kill moment (exit ${out.code}): ${out.stderr.slice(-2000)}`);
    }
    run.child.kill('SIGKILL');
    const killed = await run.exit;
    expect(killed.signal).toBe('SIGKILL');
    const killedAt = Date.now();
    // s3rver writes an object in place: a read while it still stores the last PUT sees part of it.
    let atKill: StateEnvelope | null = null;
    await until(async () => (atKill = await readState(id)) !== null, { timeoutMs: 5000, message: 'a readable state.json' }).catch(() => undefined);
    expect(atKill, 'state.json exists at the kill').not.toBeNull();
    expect(atKill!.status).toBe('RUNNING');
    const finished = finishedUnits(atKill!);

    const resumed = runFave(['resume', id, '--json'], env);
    const out = await resumed.exit;
    expect(out.code, out.stderr).toBe(0);
    const result = FinalResultSchema.parse(JSON.parse(out.stdout));
    expect(result.status).toBe('COMPLETED');
    expect(comparable(await readFinal(id))).toEqual(reference);
    expect(comparable(result)).toEqual(reference);

    const calls = gateway.calls.filter((c) => c.request_id === id);
    const repeated = calls.filter((c) => c.started_at >= killedAt && finished.has(unitKey(c.stage, c.clip, c.frame)));
    expect(repeated.map((c) => unitKey(c.stage, c.clip, c.frame))).toEqual([]);
    // Every unit ran at least once and at most twice (once more only if it was in flight).
    const counts = new Map<string, number>();
    for (const c of calls) counts.set(unitKey(c.stage, c.clip, c.frame), (counts.get(unitKey(c.stage, c.clip, c.frame)) ?? 0) + 1);
    expect(counts.size).toBe(TOTAL_CALLS);
    expect(Math.max(...counts.values())).toBeLessThanOrEqual(2);
    const final = await readState(id);
    expect(final!.status).toBe('COMPLETED');
    expect(final!.lease).toBeNull();
    // Every attempt sent was recorded before it was sent, so none goes uncounted. One killed
    // after its record was stored and before it left may be counted without the gateway seeing
    // it: at most one per call slot.
    expect(result.metrics.invocations).toBeGreaterThanOrEqual(calls.length);
    expect(result.metrics.invocations).toBeLessThanOrEqual(calls.length + Number(env.MAX_CONCURRENT_INVOCATIONS));
  });

  it('killed with calls in flight during FANOUT, the resumed answer counts every invocation the gateway served, the interrupted ones marked', async () => {
    const id = 'crash-in-flight';
    // Four clips' ffmpeg-2 calls hang, so every call slot holds a call the gateway is serving.
    for (const clip of [3, 4, 5, 6]) gateway.addFault({ stage: 'ffmpeg2', clip, requestId: id, kind: 'hang', times: 1 });
    const run = runFave(['run', VIDEO, '--request-id', id, '--query', 'cars', '--json'], env);
    let exited = false;
    void run.exit.then(() => (exited = true));
    const hanging = () => gateway.calls.filter((c) => c.request_id === id && c.fault === 'hang' && c.ended_at === null).length;
    await until(() => exited || hanging() === 4, { timeoutMs: 30_000, message: 'four hanging ffmpeg-2 calls' });
    expect(exited).toBe(false);
    run.child.kill('SIGKILL');
    expect((await run.exit).signal).toBe('SIGKILL');
    await until(() => hanging() === 0, { message: 'the hanging calls to end with the connection' });

    const out = await runFave(['resume', id, '--json'], env).exit;
    expect(out.code, out.stderr).toBe(0);
    const result = FinalResultSchema.parse(JSON.parse(out.stdout));
    expect(comparable(result)).toEqual(reference);
    const served = gateway.calls.filter((c) => c.request_id === id);
    expect(served.length).toBeGreaterThan(TOTAL_CALLS);
    expect(result.metrics.invocations).toBe(served.length);
    expect((await readFinal(id)).metrics.invocations).toBe(served.length);

    const state = (await readState(id))!;
    const records = state.snapshot.context.clips.flatMap((c) => [...c.records, ...c.frames.flatMap((f) => f.records)]).concat(state.snapshot.context.records);
    const interrupted = records.filter((r) => r.outcome === 'interrupted');
    // The hanging calls, and any other sent before the kill whose answer was not in state.json.
    expect(interrupted.length).toBe(served.length - TOTAL_CALLS);
    for (const clip of [3, 4, 5, 6]) {
      expect(interrupted.filter((r) => r.stage === 'stage-ffmpeg-2' && r.clip_index === clip)).toHaveLength(1);
    }
    expect(state.progress.invocations).toBe(served.length);
    const timeline = flattenInvocations(state.snapshot.context);
    expect(timeline).toHaveLength(served.length);
    expect(timeline.filter((inv) => inv.outcome === 'interrupted')).toHaveLength(interrupted.length);
  });
});
