import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { requestKeys } from '../../src/persistence/store.ts';
import { idealTime, invocations, type IdealTime } from '../ideal.ts';
import { COMPILED, spawnScript } from '../ipc.ts';
import { RawClient, type RecordedCall, type TimedReplay } from '../raw-client.ts';
import { timeResume, type ResumeTiming } from '../resume.ts';
import { BUCKET } from '../workspace.ts';
import type { FloorServerStarted } from '../floor-server.ts';
import type { GatewayUsage } from '../gateway-process.ts';
import type { CallTimes } from '../call-times.ts';
import type { WorkerJob, WorkerResult } from '../worker.ts';
import { openGateway, type BenchContext } from './context.ts';

export interface FanoutFigures {
  /** Of the second run of the request in the worker process; the first is the cold figure. */
  fanout_efficiency: number;
  /** The same request as the first thing a fresh process does: V8 has optimized nothing yet. */
  cold_fanout_efficiency: number;
  cold_wall_ms: number;
  write_amplification: number;
  peak_rss_mb: number;
  resume_ms_per_1k_clips: number;
  invocations: number;
  wall_ms: number;
  ideal: IdealTime;
  clips_per_s: number;
  state_bytes_written: number;
  final_state_bytes: number;
  /** node before any project module (with `--ts`, and the tsx loader); the app wired, before the request. */
  runtime_rss_mb: number;
  /** A bare node process at start; with `--ts`, runtime_rss_mb minus this is what the TypeScript loader costs. */
  plain_node_rss_mb: number;
  /**
   * peak_rss_mb without a TypeScript loader's share: peak_rss_mb itself when the worker runs
   * compiled JavaScript (the default), an estimate with `--ts`.
   */
  peak_rss_mb_without_loader: number;
  idle_rss_mb: number;
  peak_heap_used_mb: number;
  peak_external_mb: number;
  orchestrator_cpu_ms: number;
  orchestrator_elu: number;
  /** How long the orchestrator's main thread waited for a CPU while it could have run, ms; null where the platform does not tell it. */
  orchestrator_main_thread_wait_ms: number | null;
  /** How late the orchestrator's timers fired during the request, ms. */
  orchestrator_loop_delay_ms: { p50: number; p99: number; max: number };
  /** Where a call's time went (its latency against the gateway's timing) and the lanes it kept busy. */
  calls: CallTimes;
  /** The same for the bare client's calls of the raw floor. */
  raw_calls: CallTimes;
  /** From the request's submission to its first call, and from its last call to its answer, ms. */
  edges_ms: WorkerResult['edges_ms'];
  concurrency: number;
  gateway_cpu_ms: number;
  gateway_cpu_us_per_call: number;
  /**
   * Ideal time ÷ the gateway process's CPU time: the best efficiency this gateway allows even
   * with a core to itself and a free orchestrator.
   */
  gateway_efficiency_ceiling: number;
  /**
   * The same number of detector POSTs, flat (no chain), by a bare undici client at the same
   * concurrency against the same gateway: ideal ÷ that wall time is the best this machine and
   * gateway reach with nothing in between.
   */
  raw_wall_ms: number;
  raw_efficiency: number;
  /** fanout_efficiency ÷ raw_efficiency: how much of what this machine allows the orchestrator reaches. */
  fanout_vs_bare: number;
  /**
   * The same number of calls by the same bare client against the least a function server can be
   * (bench/floor-server.ts: a timer and a fixed answer, in a process of its own): ideal ÷ that
   * wall time is the most any Node client reaches on this machine at this latency and
   * concurrency, before any gateway work.
   */
  machine_floor_wall_ms: number;
  machine_floor_efficiency: number;
  /**
   * The same request once more in the same worker, warm, with state.json written at every step
   * (PERSIST_INTERVAL_MS=0): its wall ms, and that ÷ the default mode's wall ms.
   */
  step_persist_wall_ms: number;
  step_persist_ratio: number;
  step_persist_write_amplification: number;
  gateway_elu: number;
  gateway_max_concurrent: number;
  /** The snapshot the resume figure comes from: in flight (late in DETECT) or the final one. */
  resume_snapshot: 'in-flight' | 'final';
  resume: ResumeTiming & { first_ms: number };
  resume_final: ResumeTiming & { first_ms: number };
}

/** Resident set of a bare `node` at start, to tell how much of the worker's is the TypeScript loader. */
async function plainNodeRssKb(): Promise<number> {
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', 'process.stdout.write(String(process.memoryUsage().rss))']);
  return Math.round(Number(stdout) / 1024);
}

/** `n` calls by a bare client at `concurrency` against a server that does nothing but wait `latencyMs`: wall ms. */
async function machineFloor(n: number, concurrency: number, latencyMs: number): Promise<number> {
  const server = spawnScript(new URL('../floor-server.ts', import.meta.url), 'floor server');
  try {
    const { url } = await server.request<FloorServerStarted>({ type: 'start', latencyMs });
    return (await rawFloor(url, n, concurrency)).wall_ms;
  } finally {
    await server.close();
  }
}

/** `n` detector calls by a bare client at `concurrency`, with nothing in between: wall ms, and where a call's time went. */
async function rawFloor(gatewayUrl: string, n: number, concurrency: number): Promise<TimedReplay> {
  const calls: RecordedCall[] = Array.from({ length: n }, (_, i) => ({
    functionName: 'stage-object-detector',
    body: JSON.stringify({
      request_id: 'raw-floor',
      stage: 'stage-object-detector',
      input_uri: `s3://${BUCKET}/raw/frame.jpg`,
      output_hint: null,
      config: {},
      fanout: { clip_index: Math.floor(i / 10), frame_index: i % 10, frame_uri: `s3://${BUCKET}/raw/frame.jpg` },
    }),
  }));
  const client = new RawClient(gatewayUrl);
  try {
    return await client.replayTimed(calls, concurrency);
  } finally {
    await client.close();
  }
}

/** The 13,003-invocation request, run by an orchestrator in a child process of its own. */
export async function measureFanout(ctx: BenchContext): Promise<FanoutFigures> {
  const { clips, framesPerClip, latencyMs } = ctx.sizes.fanout;
  const concurrency = ctx.sizes.concurrency;
  const requestId = 'fanout-1';
  // In the store, so that the resume reads it as it reads state.json; outside `requests/`, which
  // is not a request of its own to any later listing.
  const captureLoc = { bucket: BUCKET, key: 'bench/in-flight-state.json' };
  const capturePath = ctx.workspace.store.path(captureLoc);
  await mkdir(dirname(capturePath), { recursive: true });
  const gateway = await openGateway(ctx, { clips, framesPerClip, latencyMs });
  const profile = ctx.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', join(ctx.cpuProfDir, 'orchestrator')] : [];
  const plainRss = await plainNodeRssKb();
  const worker = spawnScript(new URL('../worker.ts', import.meta.url), 'orchestrator worker', {}, profile);
  let cold: WorkerResult;
  let result: WorkerResult;
  let step: WorkerResult;
  let gatewayUsage: GatewayUsage;
  let raw: TimedReplay;
  let floor: number;
  try {
    const job = (id: string, capture: WorkerJob['capture'], persistIntervalMs?: number): WorkerJob => ({
      gatewayUrl: gateway.url,
      dataDir: ctx.workspace.dataDir,
      requestId: id,
      videoUri: ctx.workspace.videoUri,
      concurrency,
      capture,
      ...(persistIntervalMs !== undefined ? { persistIntervalMs } : {}),
    });
    // The same request twice in one process: the first in a fresh process (cold), the second
    // as a server that has been running meets it (warm). The figures come from the second.
    const afterInvocations = Math.ceil(invocations({ clips, framesPerClip: 0 }) + clips * framesPerClip * ctx.sizes.captureAt);
    cold = await worker.request<WorkerResult>({ type: 'run', job: job('fanout-cold', { path: capturePath, afterInvocations }) });
    const before = await gateway.usage();
    result = await worker.request<WorkerResult>({ type: 'run', job: job(requestId, null) });
    const after = await gateway.usage();
    // `calls` counts from the start; CPU and event-loop use are since the previous reading.
    gatewayUsage = { ...after, calls: after.calls - before.calls };
    // Last, so that the peak RSS figure (read from the run before) is the default mode's.
    step = await worker.request<WorkerResult>({ type: 'run', job: job('fanout-step', null, 0) });
    await worker.close();
    raw = await rawFloor(gateway.url, invocations({ clips, framesPerClip }), concurrency);
    floor = await machineFloor(invocations({ clips, framesPerClip }), concurrency, latencyMs);
  } finally {
    await worker.close();
    await gateway.stop();
  }
  const expected = invocations({ clips, framesPerClip });
  for (const r of [cold, result, step]) if (r.invocations !== expected) throw new Error(`fan-out: expected ${expected} invocations, got ${r.invocations}`);
  const ideal = idealTime({ clips, framesPerClip, latencyMs, concurrency });
  // Process lifetime peaks, so they cover both runs.
  const peakRssKb = Math.max(result.max_rss_kb, result.vm_hwm_kb ?? 0);
  ctx.log(
    `  fan-out: ${expected} invocations in ${cold.wall_ms.toFixed(0)} ms in a fresh process, then ${result.wall_ms.toFixed(0)} ms (ideal ${ideal.total_ms.toFixed(0)} ms), peak RSS ${(peakRssKb / 1024).toFixed(0)} MB; persisting every step ${step.wall_ms.toFixed(0)} ms`,
  );

  const finalLoc = { bucket: BUCKET, key: requestKeys.state(requestId) };
  const resume = cold.captured ? await timeResume(ctx.workspace.store, captureLoc, ctx.sizes.resumeReps) : null;
  const resumeFinal = await timeResume(ctx.workspace.store, finalLoc, ctx.sizes.resumeReps);
  const per1k = (t: ResumeTiming) => (t.clips === 0 ? t.total_ms : (t.total_ms * 1000) / t.clips);
  const used = resume ?? resumeFinal;
  ctx.log(`  resume: ${used.total_ms.toFixed(0)} ms for ${used.bytes} bytes, ${used.clips} clips, ${used.children} live children`);

  return {
    fanout_efficiency: ideal.total_ms / result.wall_ms,
    cold_fanout_efficiency: ideal.total_ms / cold.wall_ms,
    cold_wall_ms: cold.wall_ms,
    write_amplification: result.state_bytes_written / result.final_state_bytes,
    peak_rss_mb: peakRssKb / 1024,
    resume_ms_per_1k_clips: per1k(used),
    invocations: result.invocations,
    wall_ms: result.wall_ms,
    ideal,
    clips_per_s: (clips * 1000) / result.wall_ms,
    state_bytes_written: result.state_bytes_written,
    final_state_bytes: result.final_state_bytes,
    runtime_rss_mb: result.runtime_rss_kb / 1024,
    plain_node_rss_mb: plainRss / 1024,
    peak_rss_mb_without_loader: (COMPILED ? peakRssKb : peakRssKb - Math.max(0, result.runtime_rss_kb - plainRss)) / 1024,
    idle_rss_mb: cold.idle_rss_kb / 1024,
    peak_heap_used_mb: result.peak_heap_used_kb / 1024,
    peak_external_mb: result.peak_external_kb / 1024,
    orchestrator_cpu_ms: result.cpu_ms,
    orchestrator_elu: result.event_loop_utilization,
    orchestrator_main_thread_wait_ms: result.main_thread_wait_ms,
    orchestrator_loop_delay_ms: result.event_loop_delay_ms,
    calls: result.calls,
    edges_ms: result.edges_ms,
    concurrency,
    gateway_cpu_ms: gatewayUsage.cpu_ms,
    gateway_cpu_us_per_call: (gatewayUsage.cpu_ms * 1000) / gatewayUsage.calls,
    gateway_efficiency_ceiling: ideal.total_ms / gatewayUsage.cpu_ms,
    raw_wall_ms: raw.wall_ms,
    raw_efficiency: ideal.total_ms / raw.wall_ms,
    raw_calls: raw.calls,
    fanout_vs_bare: ideal.total_ms / result.wall_ms / (ideal.total_ms / raw.wall_ms),
    machine_floor_wall_ms: floor,
    machine_floor_efficiency: ideal.total_ms / floor,
    step_persist_wall_ms: step.wall_ms,
    step_persist_ratio: step.wall_ms / result.wall_ms,
    step_persist_write_amplification: step.state_bytes_written / step.final_state_bytes,
    gateway_elu: gatewayUsage.elu,
    gateway_max_concurrent: gatewayUsage.max_concurrent,
    resume_snapshot: resume ? 'in-flight' : 'final',
    resume: used,
    resume_final: resumeFinal,
  };
}
