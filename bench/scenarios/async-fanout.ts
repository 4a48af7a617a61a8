import { closeSync, constants, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { idealTime, invocations, type IdealTime } from '../ideal.ts';
import { spawnScript } from '../ipc.ts';
import type { GatewayUsage } from '../gateway-process.ts';
import type { CallTimes } from '../call-times.ts';
import type { WorkerJob, WorkerResult } from '../worker.ts';
import { openGateway, type BenchContext } from './context.ts';

/** One mode's run of the request: wall time, what it cost the orchestrator and the gateway. */
export interface ModeFigures {
  wall_ms: number;
  efficiency: number;
  orchestrator_cpu_us_per_invocation: number;
  /** The same, its main thread (event loop) alone; null where the platform does not tell it. */
  orchestrator_main_thread_cpu_us_per_invocation: number | null;
  /** How long its main thread waited for a CPU while it could have run, ms; null where the platform does not tell it. */
  orchestrator_main_thread_wait_ms: number | null;
  orchestrator_elu: number;
  gateway_cpu_us_per_invocation: number;
  state_bytes_written: number;
  peak_rss_mb: number;
  calls: CallTimes;
}

export interface AsyncFanoutFigures {
  invocations: number;
  ideal: IdealTime;
  sync: ModeFigures;
  async: ModeFigures;
  callbacks_stored: number;
  queue_delay_p50_ms: number;
  queue_delay_max_ms: number;
  /**
   * CPU µs this process spent per folder plus synchronously written file in it, the inodes and
   * write a stored callback makes, just before the timed runs and just after: how costly the
   * store's file system was then, which the async figure follows more than any code.
   */
  fs_create_cpu_us: { before: number; after: number };
  /**
   * The same probe's files alone, in one folder and not written synchronously: what allocating
   * an inode costs, the part of a stored callback that the file system's state moves most.
   */
  fs_file_cpu_us: { before: number; after: number };
}

/** Folders and synced files made by one file system probe. */
const PROBE_PAIRS = 200;
const PROBE_BODY = Buffer.alloc(300, 0x7b);

/** CPU µs per folder plus a synced file in it, made one after the other in a new folder under `dir`. */
function fileSystemProbe(dir: string): number {
  mkdirSync(dir, { recursive: true });
  const before = process.cpuUsage();
  for (let i = 0; i < PROBE_PAIRS; i++) {
    const folder = join(dir, `frame-${i}`);
    mkdirSync(folder);
    writeNewFile(join(folder, 'r0-a1.json'), constants.O_DSYNC);
  }
  return cpuUsPer(before, PROBE_PAIRS);
}

/** CPU µs per new file, written plainly, all in one new folder under `dir`. */
function fileProbe(dir: string): number {
  mkdirSync(dir, { recursive: true });
  const before = process.cpuUsage();
  for (let i = 0; i < PROBE_PAIRS; i++) writeNewFile(join(dir, `f${i}.json`), 0);
  return cpuUsPer(before, PROBE_PAIRS);
}

function writeNewFile(path: string, extraFlags: number): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | extraFlags);
  try {
    writeSync(fd, PROBE_BODY);
  } finally {
    closeSync(fd);
  }
}

function cpuUsPer(before: NodeJS.CpuUsage, count: number): number {
  const used = process.cpuUsage(before);
  return (used.user + used.system) / count;
}

/**
 * The fan-out request twice in one worker process, warmed up by a first untimed run: its stages
 * called synchronously, then through the gateway's queue with callbacks. Same gateway, sizes and
 * concurrency, so the difference is what the queue path costs per call.
 */
export async function measureAsyncFanout(ctx: BenchContext): Promise<AsyncFanoutFigures> {
  const { clips, framesPerClip, latencyMs } = ctx.sizes.asyncFanout;
  const concurrency = ctx.sizes.concurrency;
  const gateway = await openGateway(ctx, { clips, framesPerClip, latencyMs });
  const profile = ctx.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', join(ctx.cpuProfDir, 'async')] : [];
  const worker = spawnScript(new URL('../worker.ts', import.meta.url), 'async fan-out worker', {}, profile);
  const job = (requestId: string, callMode: 'sync' | 'async'): WorkerJob => ({
    gatewayUrl: gateway.url,
    dataDir: ctx.workspace.dataDir,
    requestId,
    videoUri: ctx.workspace.videoUri,
    concurrency,
    callMode,
    capture: null,
  });
  const expected = invocations({ clips, framesPerClip });
  const ideal = idealTime({ clips, framesPerClip, latencyMs, concurrency });
  const run = async (requestId: string, callMode: 'sync' | 'async'): Promise<{ result: WorkerResult; gateway: GatewayUsage }> => {
    await gateway.usage();
    const result = await worker.request<WorkerResult>({ type: 'run', job: job(requestId, callMode) });
    if (result.invocations !== expected) throw new Error(`async fan-out (${callMode}): expected ${expected} invocations, got ${result.invocations}`);
    return { result, gateway: await gateway.usage() };
  };
  const figures = ({ result, gateway: usage }: { result: WorkerResult; gateway: GatewayUsage }): ModeFigures => ({
    wall_ms: result.wall_ms,
    efficiency: ideal.total_ms / result.wall_ms,
    orchestrator_cpu_us_per_invocation: (result.cpu_ms * 1000) / result.invocations,
    orchestrator_main_thread_cpu_us_per_invocation: result.main_thread_cpu_ms === null ? null : (result.main_thread_cpu_ms * 1000) / result.invocations,
    orchestrator_main_thread_wait_ms: result.main_thread_wait_ms,
    orchestrator_elu: result.event_loop_utilization,
    gateway_cpu_us_per_invocation: (usage.cpu_ms * 1000) / result.invocations,
    state_bytes_written: result.state_bytes_written,
    peak_rss_mb: Math.max(result.max_rss_kb, result.vm_hwm_kb ?? 0) / 1024,
    calls: result.calls,
  });
  // Outside `requests/`; removed with the workspace.
  const probeDir = join(ctx.workspace.dataDir, 'bench-fs-probe');
  try {
    await run('async-fanout-warmup-sync', 'sync');
    await run('async-fanout-warmup-async', 'async');
    const probeBefore = fileSystemProbe(join(probeDir, 'before'));
    const filesBefore = fileProbe(join(probeDir, 'files-before'));
    const sync = await run('async-fanout-sync', 'sync');
    const queued = await run('async-fanout-async', 'async');
    const probeAfter = fileSystemProbe(join(probeDir, 'after'));
    const filesAfter = fileProbe(join(probeDir, 'files-after'));
    const callbacks = queued.result.callbacks;
    ctx.log(
      `  async fan-out: ${expected} invocations, sync ${sync.result.wall_ms.toFixed(0)} ms, async ${queued.result.wall_ms.toFixed(0)} ms (ideal ${ideal.total_ms.toFixed(0)} ms)`,
    );
    return {
      invocations: expected,
      ideal,
      sync: figures(sync),
      async: figures(queued),
      callbacks_stored: callbacks?.stored ?? 0,
      queue_delay_p50_ms: callbacks?.queue_delay_p50_ms ?? 0,
      queue_delay_max_ms: callbacks?.queue_delay_max_ms ?? 0,
      fs_create_cpu_us: { before: probeBefore, after: probeAfter },
      fs_file_cpu_us: { before: filesBefore, after: filesAfter },
    };
  } finally {
    await worker.close();
    await gateway.stop();
  }
}
