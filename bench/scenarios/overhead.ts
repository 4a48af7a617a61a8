import { Session } from 'node:inspector/promises';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HttpTransport } from '../../src/transport/http-transport.ts';
import { invocations } from '../ideal.ts';
import { RawClient, RecordingTransport } from '../raw-client.ts';
import { benchEnv, openApp, timeRequest } from '../workspace.ts';
import { cpuMsSince, openGateway, type BenchContext } from './context.ts';

export interface OverheadFigures {
  overhead_ratio: number;
  invocations: number;
  orchestrator_us_per_invocation: number;
  raw_us_per_invocation: number;
  /** CPU time of the orchestrating process per invocation, and of the raw client per POST. */
  orchestrator_cpu_us_per_invocation: number;
  raw_cpu_us_per_invocation: number;
  /** Orchestrator CPU per invocation ÷ raw client CPU per POST: the overhead a slow gateway hides. */
  cpu_ratio: number;
  /** Event-loop utilization of the gateway process while each side ran (1 = it was the bottleneck). */
  gateway_elu_orchestrated: number;
  gateway_elu_raw: number;
  /** The first request of the fresh process and the first raw replay, µs per invocation: before V8 optimized anything. */
  cold_orchestrator_us_per_invocation: number;
  cold_raw_us_per_invocation: number;
}

/**
 * Zero-latency stages, so only overhead costs time. The first request records the exact bodies
 * the orchestrator sends; the raw client replays them (their inputs exist by then) at the same
 * concurrency. After `warmup` untimed rounds of each, each side's best of `reps` timed runs
 * counts; the first round of each is reported too, as the cold figure.
 */
export async function measureOverhead(ctx: BenchContext): Promise<OverheadFigures> {
  const { clips, framesPerClip, warmup, reps } = ctx.sizes.overhead;
  const concurrency = ctx.sizes.concurrency;
  const gateway = await openGateway(ctx, { clips, framesPerClip, latencyMs: 0 });
  const recorder = new RecordingTransport(new HttpTransport({ gatewayUrl: gateway.url }));
  const app = await openApp(benchEnv({ gatewayUrl: gateway.url, dataDir: ctx.workspace.dataDir, concurrency }), recorder);
  const raw = new RawClient(gateway.url);
  try {
    const expected = invocations({ clips, framesPerClip });
    const cold = await timeRequest(app, 'overhead-cold', ctx.workspace.videoUri);
    recorder.recording = false;
    const calls = recorder.calls;
    if (cold.invocations !== expected || calls.length !== expected) {
      throw new Error(`overhead: expected ${expected} invocations, the orchestrator made ${cold.invocations} (${calls.length} recorded)`);
    }
    const coldRaw = await raw.replay(calls, concurrency);
    ctx.log(`  overhead cold: orchestrator ${cold.wall_ms.toFixed(0)} ms, raw ${coldRaw.toFixed(0)} ms for ${expected} calls`);
    for (let round = 1; round < warmup; round++) {
      await timeRequest(app, `overhead-warmup-${round}`, ctx.workspace.videoUri);
      await raw.replay(calls, concurrency);
    }

    // The orchestrator runs in this process: its profile covers the timed requests only.
    const profiler = ctx.cpuProfDir ? await startProfile(join(ctx.cpuProfDir, 'overhead')) : null;
    let best = { orch: Infinity, raw: Infinity, orchCpu: Infinity, rawCpu: Infinity, eluOrch: 0, eluRaw: 0 };
    for (let rep = 0; rep < reps; rep++) {
      await gateway.usage();
      let cpu = process.cpuUsage();
      await profiler?.resume();
      const orch = await timeRequest(app, `overhead-${rep}`, ctx.workspace.videoUri);
      const orchCpu = cpuMsSince(cpu);
      const eluOrch = (await gateway.usage()).elu;
      await profiler?.pause();
      cpu = process.cpuUsage();
      const rawMs = await raw.replay(calls, concurrency);
      const rawCpu = cpuMsSince(cpu);
      const eluRaw = (await gateway.usage()).elu;
      ctx.log(`  overhead rep ${rep + 1}/${reps}: orchestrator ${orch.wall_ms.toFixed(0)} ms, raw ${rawMs.toFixed(0)} ms for ${expected} calls`);
      if (orch.wall_ms < best.orch) best = { ...best, orch: orch.wall_ms, orchCpu, eluOrch };
      if (rawMs < best.raw) best = { ...best, raw: rawMs, rawCpu, eluRaw };
    }
    profiler?.stop();
    const perCall = (ms: number) => (ms * 1000) / expected;
    return {
      overhead_ratio: best.orch / best.raw,
      invocations: expected,
      orchestrator_us_per_invocation: perCall(best.orch),
      raw_us_per_invocation: perCall(best.raw),
      orchestrator_cpu_us_per_invocation: perCall(best.orchCpu),
      raw_cpu_us_per_invocation: perCall(best.rawCpu),
      cpu_ratio: best.orchCpu / best.rawCpu,
      gateway_elu_orchestrated: best.eluOrch,
      gateway_elu_raw: best.eluRaw,
      cold_orchestrator_us_per_invocation: perCall(cold.wall_ms),
      cold_raw_us_per_invocation: perCall(coldRaw),
    };
  } finally {
    await app.close();
    await raw.close();
    await gateway.stop();
  }
}

/**
 * V8 CPU profiles of this process, each from `resume()` to `pause()` (an orchestrated request,
 * not the raw client's replays), written into `dir` as orchestrator-N.cpuprofile.
 */
async function startProfile(dir: string): Promise<{ resume(): Promise<void>; pause(): Promise<void>; stop(): void }> {
  await mkdir(dir, { recursive: true });
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  let taken = 0;
  return {
    async resume() {
      await session.post('Profiler.start');
    },
    async pause() {
      const { profile } = await session.post('Profiler.stop');
      await writeFile(join(dir, `orchestrator-${++taken}.cpuprofile`), JSON.stringify(profile));
    },
    stop() {
      session.disconnect();
    },
  };
}
