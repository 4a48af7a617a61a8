import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { createApp, type App } from '../../src/app.ts';
import type { ReplicaUsage } from '../../src/stages/gateway/replica-model.ts';
import { STAGE_KEYS } from '../../src/domain/stage.ts';
import { startTestGateway, type TestGateway } from '../../test/support/test-gateway.ts';
import { until } from '../../test/support/until.ts';
import { benchEnv, timeRequest } from '../workspace.ts';
import type { BenchContext } from './context.ts';

/**
 * Cold starts on the gateway's replica model: one request and a burst, each with every function
 * at zero replicas (cold) and with every function at its maximum, ready (warm), for pre-warming
 * off, speculative and just in time. The gateway runs in this process: its timescale is seconds.
 */

export type PrewarmMode = 'off' | 'speculative' | 'just-in-time';

export interface ModeFigures {
  mode: PrewarmMode;
  /** The first request of a fresh process, every function at zero: nothing learned yet. */
  first_wall_ms: number;
  warm_wall_ms: number;
  cold_wall_ms: number;
  /** cold − warm, and that in cold starts. */
  penalty_ms: number;
  penalty_cold_starts: number;
  warm_burst_ms: number;
  cold_burst_ms: number;
  /** (cold burst − one cold start) ÷ warm burst: the target is ≤ 1.2. */
  burst_ratio: number;
  invocations_warm: number;
  invocations_cold: number;
  cold_calls: number;
  cold_calls_by_stage: Record<string, number>;
  /** Most scale calls any one function got for the cold request, and per request in the cold burst. */
  scale_calls_max_per_function: number;
  burst_scale_calls_max_per_function_per_request: number;
  /** Over the cold request's wall time: replica-seconds alive, and those ready but serving nothing. */
  replica_seconds: number;
  idle_replica_seconds: number;
  burst_replica_seconds: number;
  burst_idle_replica_seconds: number;
}

export interface ColdstartFigures {
  cold_start_ms: number;
  latency_ms: number;
  clips: number;
  frames_per_clip: number;
  max_inflight: number;
  max_replicas: number;
  burst: number;
  modes: ModeFigures[];
}

function usageSum(gateway: TestGateway): ReplicaUsage {
  const model = gateway.replicaModel!;
  const sum: ReplicaUsage = { replicaSeconds: 0, idleSeconds: 0, started: 0, coldCalls: 0 };
  for (const name of model.names()) {
    const u = model.usage(name);
    sum.replicaSeconds += u.replicaSeconds;
    sum.idleSeconds += u.idleSeconds;
    sum.started += u.started;
    sum.coldCalls += u.coldCalls;
  }
  return sum;
}

/** Every function at `replicas`, all of them ready (or gone). */
async function scaleAll(gateway: TestGateway, replicas: number, coldStartMs: number): Promise<void> {
  const model = gateway.replicaModel!;
  for (const name of model.names()) model.scale(name, replicas);
  await until(() => model.names().every((n) => model.status(n).availableReplicas === replicas && model.status(n).replicas === replicas), {
    timeoutMs: coldStartMs * 4 + 10_000,
    message: `every function at ${replicas} ready replicas`,
  });
}

/** Waits for the give-back of the requests just finished (scale calls are fire-and-forget). */
async function settled(app: App): Promise<void> {
  await until(() => app.orchestrator.running().length === 0 && app.orchestrator.prewarmIdle, { message: 'no request running, no scale call under way' });
}

async function measureMode(ctx: BenchContext, mode: PrewarmMode): Promise<ModeFigures> {
  const s = ctx.sizes.coldstart;
  const gateway = await startTestGateway({
    store: ctx.workspace.store,
    clips: s.clips,
    framesPerClip: s.framesPerClip,
    latencyMs: s.latencyMs,
    artifacts: 'none',
    replicas: { coldStartMs: s.coldStartMs, maxInflight: s.maxInflight, maxReplicas: s.maxReplicas, initialReplicas: 0, idleMs: 0 },
  });
  const profiles = join(ctx.workspace.dir, 'coldstart-profiles.json');
  await writeFile(profiles, JSON.stringify({ default: { replicas: { min: 0, max: s.maxReplicas } } }));
  const env = {
    ...benchEnv({ gatewayUrl: gateway.url, dataDir: ctx.workspace.dataDir, concurrency: 16 }),
    PREWARM: mode === 'off' ? 'off' : 'on',
    ...(mode === 'off' ? {} : { PREWARM_STRATEGY: mode }),
    // The default profile's regime reaches the gateway's maximum, so a fan-out may ask for all of it.
    FAVE_PROFILES_FILE: profiles,
  };
  const app = await createApp({ env, logger: pino({ level: 'silent' }) });
  const id = (what: string) => `coldstart-${mode}-${what}`;
  try {
    const first = await timeRequest(app, id('first'), ctx.workspace.videoUri);
    await settled(app);

    await scaleAll(gateway, s.maxReplicas, s.coldStartMs);
    gateway.reset();
    const warm = await timeRequest(app, id('warm'), ctx.workspace.videoUri);
    const invocationsWarm = gateway.calls.length;

    await scaleAll(gateway, 0, s.coldStartMs);
    gateway.reset();
    const before = usageSum(gateway);
    const cold = await timeRequest(app, id('cold'), ctx.workspace.videoUri);
    const after = usageSum(gateway);
    const invocationsCold = gateway.calls.length;
    const coldByStage = Object.fromEntries(STAGE_KEYS.map((k) => [k, gateway.callsTo(k).filter((c) => c.cold_start === true).length]));
    await settled(app);
    const perFunction = new Map<string, number>();
    for (const call of gateway.scaleCalls) perFunction.set(call.name, (perFunction.get(call.name) ?? 0) + 1);

    await scaleAll(gateway, s.maxReplicas, s.coldStartMs);
    const warmBurstStart = performance.now();
    await Promise.all(Array.from({ length: s.burst }, (_, i) => timeRequest(app, id(`warm-burst-${i}`), ctx.workspace.videoUri)));
    const warmBurst = performance.now() - warmBurstStart;

    await scaleAll(gateway, 0, s.coldStartMs);
    gateway.reset();
    const burstBefore = usageSum(gateway);
    const coldBurstStart = performance.now();
    await Promise.all(Array.from({ length: s.burst }, (_, i) => timeRequest(app, id(`cold-burst-${i}`), ctx.workspace.videoUri)));
    const coldBurst = performance.now() - coldBurstStart;
    const burstAfter = usageSum(gateway);
    await settled(app);
    const burstPerFunction = new Map<string, number>();
    for (const call of gateway.scaleCalls) burstPerFunction.set(call.name, (burstPerFunction.get(call.name) ?? 0) + 1);

    const penalty = cold.wall_ms - warm.wall_ms;
    const figures: ModeFigures = {
      mode,
      first_wall_ms: first.wall_ms,
      warm_wall_ms: warm.wall_ms,
      cold_wall_ms: cold.wall_ms,
      penalty_ms: penalty,
      penalty_cold_starts: penalty / s.coldStartMs,
      warm_burst_ms: warmBurst,
      cold_burst_ms: coldBurst,
      burst_ratio: (coldBurst - s.coldStartMs) / warmBurst,
      invocations_warm: invocationsWarm,
      invocations_cold: invocationsCold,
      cold_calls: Object.values(coldByStage).reduce((a, b) => a + b, 0),
      cold_calls_by_stage: coldByStage,
      scale_calls_max_per_function: Math.max(0, ...perFunction.values()),
      burst_scale_calls_max_per_function_per_request: Math.max(0, ...burstPerFunction.values()) / s.burst,
      replica_seconds: after.replicaSeconds - before.replicaSeconds,
      idle_replica_seconds: after.idleSeconds - before.idleSeconds,
      burst_replica_seconds: burstAfter.replicaSeconds - burstBefore.replicaSeconds,
      burst_idle_replica_seconds: burstAfter.idleSeconds - burstBefore.idleSeconds,
    };
    ctx.log(
      `  ${mode}: warm ${warm.wall_ms.toFixed(0)} ms, cold ${cold.wall_ms.toFixed(0)} ms (penalty ${penalty.toFixed(0)} ms), bursts warm ${warmBurst.toFixed(0)} / cold ${coldBurst.toFixed(0)} ms, cold calls ${figures.cold_calls}`,
    );
    return figures;
  } finally {
    await app.close();
    await gateway.close();
  }
}

export async function measureColdstart(ctx: BenchContext): Promise<ColdstartFigures> {
  const s = ctx.sizes.coldstart;
  const modes: ModeFigures[] = [];
  for (const mode of ['off', 'speculative', 'just-in-time'] as const) modes.push(await measureMode(ctx, mode));
  return {
    cold_start_ms: s.coldStartMs,
    latency_ms: s.latencyMs,
    clips: s.clips,
    frames_per_clip: s.framesPerClip,
    max_inflight: s.maxInflight,
    max_replicas: s.maxReplicas,
    burst: s.burst,
    modes,
  };
}
