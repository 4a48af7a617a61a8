import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { STAGE_KEYS, type StageKey } from '../src/domain/stage.ts';
import { startHarness, type Harness, type HarnessOptions } from './support/harness.ts';
import { closeAfterTest } from './support/cleanup.ts';
import { until } from './support/until.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeProfile, loadConfig } from '../src/config/config.ts';
import { loadRequestPage } from '../src/ui/view.ts';
import { runFave } from './support/child.ts';
import { createMetrics } from '../src/server/metrics.ts';
import { OpenFaasSystemClient, type SystemApiError } from '../src/transport/openfaas-system.ts';

/**
 * Pre-warming against the gateway's replica model: every function starts at zero replicas; a
 * replica takes COLD_MS to start and serves two calls at once.
 */
const COLD_MS = 400;
const REPLICAS = { coldStartMs: COLD_MS, maxInflight: 2, maxReplicas: 10, initialReplicas: 0 };
// The entry stage takes a while, so the scale calls sent at request start are surely out before
// the second stage is called, even on a busy machine.
const LATENCY = { ffmpeg0: 300, librosa: 20, ffmpeg1: 20, ffmpeg2: 20, deepspeech: 20, ffmpeg3: 20, detector: 20 };

interface Logged {
  event?: string;
  reason?: string;
  [key: string]: unknown;
}

async function start(env: Record<string, string>, gateway: HarnessOptions['gateway'] = {}): Promise<{ h: Harness; logs: Logged[] }> {
  const logs: Logged[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logs.push(JSON.parse(line) as Logged);
      done();
    },
  });
  const h = closeAfterTest(
    await startHarness({
      gateway: { clips: 2, framesPerClip: 1, latencyMs: LATENCY, replicas: REPLICAS, ...gateway },
      env: { PREWARM_TIMEOUT_MS: '500', ...env },
      logger: pino({ level: 'info' }, sink),
    }),
  );
  return { h, logs };
}

function coldCallsByStage(h: Harness): Record<StageKey, number> {
  return Object.fromEntries(STAGE_KEYS.map((k) => [k, h.gateway.callsTo(k).filter((c) => c.cold_start === true).length])) as Record<StageKey, number>;
}

async function run(h: Harness, id: string) {
  const outcome = await (await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: id })).done;
  expect(outcome.status).toBe('COMPLETED');
  return outcome;
}

function replicasNow(h: Harness): Record<string, number> {
  const model = h.gateway.replicaModel!;
  return Object.fromEntries(model.names().map((n) => [n, model.status(n).replicas]));
}

const allZero = (h: Harness) => Object.values(replicasNow(h)).every((n) => n === 0);

describe('pre-warming on the replica model', () => {
  it('without it, every stage meets its own cold start, one after another', async () => {
    const { h } = await start({ PREWARM: 'off' });
    const outcome = await run(h, 'cold-off');
    const cold = coldCallsByStage(h);
    for (const stage of STAGE_KEYS) expect(cold[stage], stage).toBeGreaterThanOrEqual(1);
    expect(h.gateway.scaleCalls).toEqual([]);
    // The stage records keep what the stages said: the final metrics count every cold call.
    expect(outcome.result.metrics.cold_starts).toBe(Object.values(cold).reduce((a, b) => a + b, 0));
    const records = [...outcome.context.records, ...outcome.context.clips.flatMap((c) => [...c.records, ...c.frames.flatMap((f) => f.records)])];
    expect(records.filter((r) => r.cold_start === true).length).toBe(outcome.result.metrics.cold_starts);
  });

  for (const strategy of ['speculative', 'just-in-time'] as const) {
    it(`with it (${strategy}), only the entry stage can meet a cold start, with the same invocations and at most 2 scale calls per function`, async () => {
      const { h } = await start({ PREWARM_STRATEGY: strategy });
      const metrics = createMetrics(h.app.orchestrator);
      const outcome = await run(h, `cold-${strategy}`);
      const cold = coldCallsByStage(h);
      for (const stage of STAGE_KEYS.filter((k) => k !== 'ffmpeg0')) expect(cold[stage], stage).toBe(0);
      // Same work as without pre-warming: 3 linear calls, 3 per clip, 1 per frame.
      expect(outcome.result.metrics.invocations).toBe(3 + 2 * 3 + 2);
      expect(h.gateway.calls.length).toBe(3 + 2 * 3 + 2);
      // The give-back: once no running request needs them, every function is back at zero.
      await until(() => allZero(h), { message: () => `replicas back at 0: ${JSON.stringify(replicasNow(h))}` });
      const byFunction = new Map<string, number[]>();
      for (const call of h.gateway.scaleCalls) byFunction.set(call.name, [...(byFunction.get(call.name) ?? []), call.replicas]);
      expect(byFunction.size).toBe(STAGE_KEYS.length);
      for (const [name, asked] of byFunction) {
        expect(asked.length, name).toBeLessThanOrEqual(2);
        expect(asked.at(-1), name).toBe(0);
      }
      // The gateway applies a scale call as it arrives; the orchestrator records it once the answer
      // is back, so the last give-back may still be on its way here.
      await until(() => h.app.orchestrator.prewarmActions(`cold-${strategy}`).length === h.gateway.scaleCalls.length, {
        message: () => `${h.app.orchestrator.prewarmActions(`cold-${strategy}`).length} actions recorded for ${h.gateway.scaleCalls.length} scale calls`,
      });
      const text = await metrics.render();
      expect(text).toMatch(/fave_prewarm_scale_total\{stage="stage-librosa",kind="raise",ok="true"\} 1\n/);
      expect(text).toMatch(/fave_prewarm_scale_total\{stage="stage-librosa",kind="give-back",ok="true"\} 1\n/);
      expect(text).not.toMatch(/fave_cold_starts_total\{stage="stage-librosa"\}/);
      metrics.close();
      // The request page marks them in their stage's lane.
      const page = await loadRequestPage(h.app.orchestrator, `cold-${strategy}`);
      expect(
        page!.prewarm
          .filter((m) => m.kind === 'raise')
          .map((m) => m.stage)
          .sort(),
      ).toEqual(Object.values(h.gateway.script.stageNames).sort());
      expect(page!.invocations.filter((i) => i.cold_start === true).map((i) => i.stage)).toEqual(['stage-ffmpeg-0'].slice(0, cold.ffmpeg0));
    });
  }

  it('gives back no lower than what the function had before, nor than the profile minimum', async () => {
    // Four clips at two calls per replica: the per-clip stages need a second replica.
    const { h } = await start({}, { clips: 4, replicas: { ...REPLICAS, initialReplicas: 1 } });
    await run(h, 'had-one');
    await until(() => h.gateway.scaleCalls.length > 0 && Object.values(replicasNow(h)).every((n) => n === 1), {
      message: () => `replicas back at 1: ${JSON.stringify(replicasNow(h))}`,
    });
    // A warm-profile request keeps every function at its min (1) and never asks for 0.
    h.gateway.reset();
    const outcome = await (await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'warm-one', profile: 'warm' })).done;
    expect(outcome.status).toBe('COMPLETED');
    await until(() => Object.values(replicasNow(h)).every((n) => n === 1), { message: () => JSON.stringify(replicasNow(h)) });
    expect(h.gateway.scaleCalls.every((c) => c.replicas >= 1)).toBe(true);
  });

  it('a second running request keeps what it asked for when the first gives back', async () => {
    const { h } = await start({}, { latencyMs: { ...LATENCY, detector: 20 }, faults: [{ stage: 'ffmpeg0', requestId: 'slow', kind: 'slow', ms: 5000 }] });
    const slow = await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'slow' });
    await run(h, 'fast');
    // 'fast' has finished and given back; 'slow' is still before its first stage's answer and
    // still holds a replica of every stage after it.
    const status = replicasNow(h);
    expect(h.gateway.callsTo('librosa').filter((c) => c.request_id === 'slow')).toEqual([]);
    for (const stage of ['stage-librosa', 'stage-ffmpeg-1', 'stage-ffmpeg-2', 'stage-deepspeech', 'stage-ffmpeg-3', 'stage-object-detector']) {
      expect(status[stage], stage).toBeGreaterThanOrEqual(1);
    }
    expect((await slow.done).status).toBe('COMPLETED');
    await until(() => allZero(h), { message: () => JSON.stringify(replicasNow(h)) });
  });

  it('reads the replicas again when a request starts: a function scaled down meanwhile is raised again', async () => {
    const { h } = await start(
      {},
      {
        faults: [
          { stage: 'ffmpeg0', requestId: 'holder', kind: 'slow', ms: 5000 },
          // Longer than a cold start: the second request's scale calls have time to land.
          { stage: 'ffmpeg0', requestId: 'second', kind: 'slow', ms: 2 * COLD_MS },
        ],
      },
    );
    const holder = await h.app.orchestrator.submit({ video_uri: h.videoUri, request_id: 'holder' });
    const model = h.gateway.replicaModel!;
    const others = model.names().filter((n) => n !== 'stage-ffmpeg-0');
    await until(() => others.every((n) => model.status(n).availableReplicas >= 1), { message: 'every later stage pre-warmed for the holder' });
    // Something else (an idler, an operator) takes them away while the holder still needs them.
    for (const name of others) model.scale(name, 0);
    await run(h, 'second');
    const coldOfSecond = h.gateway.calls.filter((c) => c.request_id === 'second' && c.cold_start === true && c.stage !== 'stage-ffmpeg-0');
    expect(coldOfSecond).toEqual([]);
    expect((await holder.done).status).toBe('COMPLETED');
  });

  for (const status of [404, 401] as const) {
    it(`is off, with one log line saying why, when the system API answers ${status}`, async () => {
      const { h, logs } = await start({}, { systemStatus: status });
      await run(h, `no-api-${status}`);
      await run(h, `no-api-${status}-again`);
      const off = logs.filter((l) => l.event === 'prewarm_off');
      expect(off).toHaveLength(1);
      expect(off[0]!.reason).toContain(String(status));
      expect(h.gateway.scaleCalls).toEqual([]);
      // Without pre-warming the cascade is back: every stage meets a cold start.
      for (const stage of STAGE_KEYS) expect(coldCallsByStage(h)[stage], stage).toBeGreaterThanOrEqual(1);
    });
  }

  for (const failure of [500, 'hang'] as const) {
    it(`a scale call that ${failure === 'hang' ? 'never answers' : `answers ${failure}`} leaves the request unharmed`, async () => {
      const { h, logs } = await start({}, { scaleStatus: failure });
      const outcome = await run(h, `scale-${failure}`);
      expect(outcome.result.metrics.invocations).toBe(3 + 2 * 3 + 2);
      expect(outcome.result.metrics.retries).toBe(0);
      await until(() => logs.some((l) => l.event === 'prewarm_scale_failed'), { message: 'the failed scale call logged' });
      expect(h.gateway.scaleCalls).toEqual([]);
      const actions = h.app.orchestrator.prewarmActions(`scale-${failure}`);
      expect(actions.length).toBeGreaterThan(0);
      expect(actions.every((a) => !a.ok)).toBe(true);
      // Credentials never reach the logs.
      expect(JSON.stringify(logs)).not.toMatch(/authorization|Basic [A-Za-z0-9+/=]{8,}/i);
    });
  }
});

describe('pre-warming configuration', () => {
  it('reads PREWARM, its strategy and the system API credentials, failing on bad values by name', async () => {
    const base = { GATEWAY_URL: 'http://127.0.0.1:9', OPENFAAS_SECRETS_DIR: '/nonexistent' };
    expect(() => loadConfig({ ...base, PREWARM: 'maybe' })).toThrow(/PREWARM/);
    expect(() => loadConfig({ ...base, PREWARM_STRATEGY: 'eager' })).toThrow(/PREWARM_STRATEGY/);
    expect(() => loadConfig({ ...base, OPENFAAS_USERNAME: 'admin' })).toThrow(/OPENFAAS_PASSWORD/);
    const config = loadConfig(base);
    expect(config.prewarm.strategy).toBe('speculative');
    expect(config.profiles.default!.prewarm).toBe('on');
    expect(config.profiles.cold!.prewarm).toBe('off');
    expect(loadConfig({ ...base, PREWARM: 'off' }).profiles.warm!.prewarm).toBe('off');
    expect(config.systemAuth).toBeNull();
    expect(loadConfig({ ...base, OPENFAAS_USERNAME: 'admin', OPENFAAS_PASSWORD: 'pw' }).systemAuth).toEqual({ user: 'admin', password: 'pw' });
    const secrets = await mkdtemp(join(tmpdir(), 'fave-secrets-'));
    try {
      await writeFile(join(secrets, 'basic-auth-user'), 'admin\n');
      await writeFile(join(secrets, 'basic-auth-password'), 'from-a-file\n');
      expect(loadConfig({ ...base, OPENFAAS_SECRETS_DIR: secrets }).systemAuth).toEqual({ user: 'admin', password: 'from-a-file' });
    } finally {
      await rm(secrets, { recursive: true, force: true });
    }
  });

  it('says in one line what each profile does at run time', () => {
    const { profiles } = loadConfig({ GATEWAY_URL: 'http://127.0.0.1:9', OPENFAAS_SECRETS_DIR: '/nonexistent' });
    expect(describeProfile(profiles.default!, true)).toMatch(/pre-warms: scales every stage up from zero/);
    expect(describeProfile(profiles.warm!, true)).toMatch(/≥ 1 replica\b/);
    expect(describeProfile(profiles['burst-ready']!, true)).toMatch(/≥ 3 replicas.*up to 10/);
    expect(describeProfile(profiles.cold!, true)).toMatch(/no pre-warming/);
    expect(describeProfile(profiles.default!, false)).toMatch(/detector model loads while the clips/);
  });
});

describe('fave gateway with the replica model', () => {
  it('serves the system API behind the admin credentials, with the replicas its flags set', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fave-gw-'));
    const auth = { user: 'admin', password: 'gateway-admin-password' };
    const gateway = runFave(['gateway', '--port', '0', '--cold-start-ms', '100', '--initial-replicas', '1', '--max-inflight', '2', '--max-replicas', '4'], {
      FAVE_DATA_DIR: join(dir, 'data'),
      OPENFAAS_SECRETS_DIR: join(dir, 'no-secrets'),
      OPENFAAS_USERNAME: auth.user,
      OPENFAAS_PASSWORD: auth.password,
      LOG_LEVEL: 'info',
    });
    try {
      const url = await until(() => /GATEWAY_URL=(\S+)/.exec(seen(gateway))?.[1], { timeoutMs: 30_000, message: 'the GATEWAY_URL line' });
      await expect(new OpenFaasSystemClient({ gatewayUrl: url, auth: null }).listFunctions()).rejects.toMatchObject({ status: 401 } satisfies Partial<SystemApiError>);
      const client = new OpenFaasSystemClient({ gatewayUrl: url, auth });
      const functions = await client.listFunctions();
      expect(functions.map((f) => f.name)).toContain('stage-librosa');
      expect(await client.getFunction('stage-librosa')).toMatchObject({ replicas: 1, availableReplicas: 1, envVars: { max_inflight: '2' } });
      await client.scale('stage-librosa', 9);
      // Never above --max-replicas.
      await until(async () => (await client.getFunction('stage-librosa')).availableReplicas === 4, { message: 'four ready replicas' });
    } finally {
      gateway.child.kill('SIGTERM');
      const exit = await gateway.exit;
      await rm(dir, { recursive: true, force: true });
      expect(exit.stdout + exit.stderr).not.toContain(auth.password);
    }
  });
});

const outputs = new WeakMap<object, string>();
/** Everything the child has printed on stdout so far. */
function seen(run: ReturnType<typeof runFave>): string {
  if (!outputs.has(run)) {
    outputs.set(run, '');
    run.child.stdout!.on('data', (d: Buffer) => outputs.set(run, outputs.get(run)! + d.toString()));
  }
  return outputs.get(run)!;
}
