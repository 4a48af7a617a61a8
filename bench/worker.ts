import { readFileSync } from 'node:fs';
import { copyFile, readFile, stat } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { serveIpc, type BenchMessage } from './ipc.ts';
import { callTimesOf, type CallTimes } from './call-times.ts';
import { freePort } from '../test/support/free-port.ts';

/**
 * Runs one request in a process of its own, so its peak RSS is the orchestrator's alone.
 * Along the way it keeps a copy of the state.json it finds on disk once most frames are
 * detected: a real mid-flight resume point of nearly the final size.
 */

// Before any project module is loaded: node itself (with `--ts`, plus the TypeScript loader thread).
const runtimeRssKb = Math.round(process.memoryUsage().rss / 1024);

export interface WorkerJob {
  gatewayUrl: string;
  dataDir: string;
  requestId: string;
  videoUri: string;
  concurrency: number;
  persistIntervalMs?: number;
  /**
   * `async`: stages are called through the gateway's queue and answer by callback into an
   * HTTP server this worker starts for the request (default sync).
   */
  callMode?: 'sync' | 'async';
  /** Where to copy the in-flight state.json, once this many invocations have ended. */
  capture: { path: string; afterInvocations: number } | null;
}

export interface WorkerResult {
  wall_ms: number;
  invocations: number;
  state_bytes_written: number;
  final_state_bytes: number;
  /** process.resourceUsage().maxRSS and /proc/self/status VmHWM, in kB. */
  max_rss_kb: number;
  vm_hwm_kb: number | null;
  /** Resident set of node (with `--ts`, and the tsx loader) before any project module was imported. */
  runtime_rss_kb: number;
  /** Resident set once the app is wired, before the request starts. */
  idle_rss_kb: number;
  /** Highest V8 heap use and off-heap (Buffer) memory seen by a 100 ms sampler, in kB. */
  peak_heap_used_kb: number;
  peak_external_kb: number;
  cpu_ms: number;
  /** CPU time of the main thread alone (the event loop), where the platform tells it; the rest is helper threads. */
  main_thread_cpu_ms: number | null;
  /**
   * How long the main thread was ready to run but waited for a CPU, where the platform tells it:
   * the other threads of this process and the other processes of the machine had the cores.
   */
  main_thread_wait_ms: number | null;
  /** Share of the request's wall time the event loop was busy. */
  event_loop_utilization: number;
  /** How late timers fired during the request (a 5 ms probe), in ms: what every answer waited extra. */
  event_loop_delay_ms: { p50: number; p99: number; max: number };
  captured: { bytes: number; after_invocations: number } | null;
  /** Async runs: callbacks stored, and the queue delay (dispatch → function start) p50 / max ms. */
  callbacks: { stored: number; queue_delay_p50_ms: number; queue_delay_max_ms: number } | null;
  /** Where a call's time went, from the request's own invocation records. */
  calls: CallTimes;
  /**
   * The request's edges, ms: from its submission to its first call's start (the input copied,
   * the first state written), and from its last call's end to its answer (aggregated, final.json
   * and the last state.json written). No stage runs in either.
   */
  edges_ms: { before_first_call: number; after_last_call: number };
}

/** The histogram holds the time between probe ticks; what exceeds the period is lateness. */
const LATENESS_PROBE_MS = 5;
const lateness = (ns: number): number => Math.max(0, ns / 1e6 - LATENESS_PROBE_MS);

async function vmHwmKb(): Promise<number | null> {
  try {
    const status = await readFile('/proc/self/status', 'utf8');
    const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

function sampleMemory(): { stop(): { heap: number; external: number } } {
  let heap = 0;
  let external = 0;
  const sample = () => {
    const m = process.memoryUsage();
    heap = Math.max(heap, m.heapUsed);
    external = Math.max(external, m.external);
  };
  const timer = setInterval(sample, 100);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { heap: Math.round(heap / 1024), external: Math.round(external / 1024) };
    },
  };
}

async function run(job: WorkerJob): Promise<WorkerResult> {
  const { FsStore } = await import('../src/persistence/fs-store.ts');
  const { requestKeys } = await import('../src/persistence/store.ts');
  const { BUCKET, benchEnv, openApp } = await import('./workspace.ts');
  const callbackPort = job.callMode === 'async' ? await freePort() : null;
  const app = await openApp({
    ...benchEnv({
      gatewayUrl: job.gatewayUrl,
      dataDir: job.dataDir,
      concurrency: job.concurrency,
      ...(job.persistIntervalMs !== undefined ? { persistIntervalMs: job.persistIntervalMs } : {}),
    }),
    ...(callbackPort !== null ? { STAGE_CALL_MODE: 'async', CALLBACK_BASE_URL: `http://127.0.0.1:${callbackPort}`, CALLBACK_SECRET: 'bench-callback-secret-0123456789' } : {}),
  });
  const { startHttpServer } = await import('../src/server/http-server.ts');
  const server = callbackPort !== null ? await startHttpServer({ app, port: callbackPort, host: '127.0.0.1', processMetrics: false }) : null;
  const idleRss = Math.round(process.memoryUsage().rss / 1024);
  const stateLoc = { bucket: BUCKET, key: requestKeys.state(job.requestId) };
  const statePath = app.store instanceof FsStore ? app.store.path(stateLoc) : null;

  // Counted from invocation events, O(1) each: a progress listener would make the execution
  // summarize its progress on every snapshot, which is work the bench must not add.
  let captured: WorkerResult['captured'] = null;
  // Held in an object: set inside a listener, so a plain `let` would read as still null below.
  const capture: { copying: Promise<void> | null } = { copying: null };
  let seen = 0;
  const onInvocation = () => {
    if (!job.capture || !statePath || capture.copying || ++seen < job.capture.afterInvocations) return;
    const { path } = job.capture;
    capture.copying = copyFile(statePath, path).then(async () => {
      captured = { bytes: (await stat(path)).size, after_invocations: seen };
    });
  };
  app.orchestrator.events.on('invocation', onInvocation);
  const queueDelays: number[] = [];
  const callTimes = callTimesOf();
  // Epoch ms, as the records hold them.
  let firstStart = Infinity;
  let lastEnd = -Infinity;
  app.orchestrator.events.on('invocation', (_id, record) => {
    callTimes.add(record.latency_ms, record.gateway_duration_ms);
    firstStart = Math.min(firstStart, record.started_at);
    lastEnd = Math.max(lastEnd, record.ended_at);
    if (typeof record.queue_delay_ms === 'number') queueDelays.push(record.queue_delay_ms);
  });

  const memory = sampleMemory();
  const delay = monitorEventLoopDelay({ resolution: LATENESS_PROBE_MS });
  delay.enable();
  const eluBefore = performance.eventLoopUtilization();
  const cpuBefore = process.cpuUsage();
  const mainBefore = mainThreadSchedMs();
  const started = performance.now();
  const submittedAt = Date.now();
  const handle = await app.orchestrator.submit({ video_uri: job.videoUri, request_id: job.requestId });
  const outcome = await handle.done;
  const wall = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const mainAfter = mainThreadSchedMs();
  const elu = performance.eventLoopUtilization(eluBefore);
  delay.disable();
  const peaks = memory.stop();
  if (outcome.status !== 'COMPLETED') throw new Error(`request ${job.requestId} ended ${outcome.status}: ${JSON.stringify(outcome.result.error)}`);
  if (capture.copying) await capture.copying;
  const { callbackKeys } = await import('../src/transport/callbacks.ts');
  const { percentile } = await import('../src/domain/invocations.ts');
  const result: WorkerResult = {
    wall_ms: wall,
    invocations: outcome.result.metrics.invocations,
    // The dispatch journal is written for the same durability as state.json: it counts too.
    state_bytes_written: app.orchestrator.stateBytes + app.orchestrator.dispatchBytes,
    final_state_bytes: (await app.store.head(stateLoc))?.size ?? 0,
    max_rss_kb: process.resourceUsage().maxRSS,
    vm_hwm_kb: await vmHwmKb(),
    runtime_rss_kb: runtimeRssKb,
    idle_rss_kb: idleRss,
    peak_heap_used_kb: peaks.heap,
    peak_external_kb: peaks.external,
    cpu_ms: (cpu.user + cpu.system) / 1000,
    main_thread_cpu_ms: mainBefore && mainAfter ? mainAfter.cpu - mainBefore.cpu : null,
    main_thread_wait_ms: mainBefore && mainAfter ? mainAfter.waiting - mainBefore.waiting : null,
    event_loop_utilization: elu.utilization,
    event_loop_delay_ms: { p50: lateness(delay.percentile(50)), p99: lateness(delay.percentile(99)), max: lateness(delay.max) },
    captured,
    callbacks: server
      ? {
          stored: (await app.store.list(BUCKET, callbackKeys.prefix(job.requestId))).length,
          queue_delay_p50_ms: percentile(queueDelays, 50),
          queue_delay_max_ms: percentile(queueDelays, 100),
        }
      : null,
    calls: callTimes.result(wall),
    edges_ms: { before_first_call: Math.max(0, firstStart - submittedAt), after_last_call: Math.max(0, submittedAt + wall - lastEnd) },
  };
  await server?.close();
  await app.close();
  return result;
}

/**
 * The main thread's time on a CPU, and waiting in the run queue for one (Linux:
 * /proc/thread-self/schedstat, nanoseconds), ms. The process's CPU time also counts the thread
 * pool and worker threads, which run beside the event loop on another core; `cpu` is the part the
 * event loop itself spent. `waiting` is time it could have run and did not.
 */
function mainThreadSchedMs(): { cpu: number; waiting: number } | null {
  try {
    // Read on this thread: through the thread pool, "thread-self" would be a pool thread.
    const [cpu, waiting] = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ').map(Number);
    return Number.isFinite(cpu) && Number.isFinite(waiting) ? { cpu: cpu! / 1e6, waiting: waiting! / 1e6 } : null;
  } catch {
    return null;
  }
}

serveIpc(async (message: BenchMessage) => {
  if (message.type !== 'run') throw new Error(`unknown message ${message.type}`);
  return run(message.job as WorkerJob);
});
