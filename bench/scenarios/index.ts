import { COMPILED } from '../ipc.ts';
import type { Figures } from '../report.ts';
import type { BenchContext } from './context.ts';
import type { CallTimes } from '../call-times.ts';
import { measureAsyncFanout } from './async-fanout.ts';
import { measureColdstart } from './coldstart.ts';
import { measureFanout } from './fanout.ts';
import { measureOverhead } from './overhead.ts';
import { measureScaling } from './scaling.ts';
import { measureSweep } from './sweep.ts';
import { measureVersus } from './versus.ts';

export interface ScenarioResult {
  figures: Partial<Figures>;
  details: Array<[string, number | string]>;
  /** Everything measured, for the JSON line. */
  raw: unknown;
}

export interface Scenario {
  name: string;
  title: string;
  run(ctx: BenchContext): Promise<ScenarioResult>;
}

/** The comparison with Restate needs a Restate server, which this bench cannot start. */
export const RESTATE_NOTE = 'not measured: no Restate server is available to the bench (the goal is ≤ 0.8× its time)';

const ms = (v: number) => v.toFixed(0);
const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(2);
/** Run-queue time of the orchestrator's main thread, and its share of the request's wall time. */
const waitingForCpu = (waitMs: number | null, wallMs: number) =>
  waitMs === null ? 'not measured (no /proc/thread-self/schedstat)' : `${ms(waitMs)} (${((waitMs / wallMs) * 100).toFixed(0)} %)`;
/** "latency, gateway's timing" of a run's calls, in ms. */
const callTimes = (c: CallTimes) => `${c.latency_ms.toFixed(2)}, ${c.gateway_ms === null ? '-' : c.gateway_ms.toFixed(2)}`;

export const SCENARIOS = [
  {
    name: 'overhead',
    title: 'overhead: orchestrated vs raw POSTs, zero-latency stages',
    async run(ctx) {
      const r = await measureOverhead(ctx);
      return {
        figures: { overhead_ratio: r.overhead_ratio },
        details: [
          ['overhead: invocations', r.invocations],
          ['overhead: wall µs / invocation, orchestrated / raw', `${ms(r.orchestrator_us_per_invocation)} / ${ms(r.raw_us_per_invocation)}`],
          [
            'overhead: CPU µs / invocation, orchestrator / raw client (ratio)',
            `${ms(r.orchestrator_cpu_us_per_invocation)} / ${ms(r.raw_cpu_us_per_invocation)} (${r.cpu_ratio.toFixed(1)})`,
          ],
          [
            'overhead: first run of the fresh process (cold), wall µs / invocation, orchestrated / raw',
            `${ms(r.cold_orchestrator_us_per_invocation)} / ${ms(r.cold_raw_us_per_invocation)}`,
          ],
          ['overhead: gateway event-loop use, orchestrated / raw', `${r.gateway_elu_orchestrated.toFixed(2)} / ${r.gateway_elu_raw.toFixed(2)}`],
        ],
        raw: r,
      };
    },
  },
  {
    name: 'fanout',
    title: 'fan-out: one large request, orchestrator in a process of its own',
    async run(ctx) {
      const r = await measureFanout(ctx);
      return {
        figures: {
          fanout_efficiency: r.fanout_efficiency,
          fanout_vs_bare: r.fanout_vs_bare,
          step_persist_ratio: r.step_persist_ratio,
          write_amplification: r.write_amplification,
          peak_rss_mb: r.peak_rss_mb,
          resume_ms_per_1k_clips: r.resume_ms_per_1k_clips,
        },
        details: [
          ['fan-out: invocations', r.invocations],
          [
            'fan-out: wall ms (ideal = single + fan-out + detect)',
            `${ms(r.wall_ms)} (${ms(r.ideal.total_ms)} = ${ms(r.ideal.single_ms)} + ${r.ideal.fanout_ms.toFixed(1)} + ${r.ideal.detect_ms.toFixed(1)})`,
          ],
          ['fan-out: first run in a fresh process (cold): wall ms (ideal ÷ it)', `${ms(r.cold_wall_ms)} (${r.cold_fanout_efficiency.toFixed(2)})`],
          ['fan-out: clips / s', r.clips_per_s],
          ['fan-out: orchestrator CPU ms', r.orchestrator_cpu_ms],
          [
            'fan-out: orchestrator event-loop use; timer lateness p50 / p99 / max ms',
            `${r.orchestrator_elu.toFixed(2)}; ${r.orchestrator_loop_delay_ms.p50.toFixed(1)} / ${r.orchestrator_loop_delay_ms.p99.toFixed(1)} / ${r.orchestrator_loop_delay_ms.max.toFixed(1)}`,
          ],
          ['fan-out: orchestrator main thread waiting for a CPU while it could run, ms (share of wall)', waitingForCpu(r.orchestrator_main_thread_wait_ms, r.wall_ms)],
          ['fan-out: gateway CPU ms (µs / call), event-loop use', `${ms(r.gateway_cpu_ms)} (${ms(r.gateway_cpu_us_per_call)}), ${r.gateway_elu.toFixed(2)}`],
          ['fan-out: efficiency ceiling set by the gateway CPU alone', r.gateway_efficiency_ceiling],
          ['fan-out: raw floor: same number of calls, bare undici, flat: wall ms (ideal ÷ it)', `${ms(r.raw_wall_ms)} (${r.raw_efficiency.toFixed(2)})`],
          [
            'fan-out: machine floor: the same, against a server that only waits the latency: wall ms (ideal ÷ it)',
            `${ms(r.machine_floor_wall_ms)} (${r.machine_floor_efficiency.toFixed(2)})`,
          ],
          ['fan-out: gateway peak concurrent calls', r.gateway_max_concurrent],
          [
            "fan-out: per call: latency ms, the gateway's timing of the function ms (the rest: transit and both event loops); calls in flight of the limit",
            `${callTimes(r.calls)}; ${r.calls.in_flight.toFixed(1)} of ${r.concurrency}`,
          ],
          ['fan-out: the same for the bare client of the raw floor', `${callTimes(r.raw_calls)}; ${r.raw_calls.in_flight.toFixed(1)} of ${r.concurrency}`],
          [
            'fan-out: no call in flight: from the submission to the first call / from the last call to the answer, ms',
            `${r.edges_ms.before_first_call.toFixed(0)} / ${r.edges_ms.after_last_call.toFixed(0)}`,
          ],
          [
            'fan-out: persisting every step (PERSIST_INTERVAL_MS=0): wall ms (÷ default mode), write amplification',
            `${ms(r.step_persist_wall_ms)} (${r.step_persist_ratio.toFixed(2)}), ${r.step_persist_write_amplification.toFixed(1)}`,
          ],
          ['fan-out: versus Restate 1.7 journaling every step, same workload', RESTATE_NOTE],
          ['fan-out: state.json MB written / final MB', `${mb(r.state_bytes_written)} / ${mb(r.final_state_bytes)}`],
          ['fan-out: orchestrator RSS MB node / app idle / peak', `${ms(r.runtime_rss_mb)} / ${ms(r.idle_rss_mb)} / ${ms(r.peak_rss_mb)}`],
          [
            'fan-out: peak RSS MB without a TypeScript loader (bare node: MB)',
            `${ms(r.peak_rss_mb_without_loader)} (${ms(r.plain_node_rss_mb)})${COMPILED ? ', the worker runs compiled JavaScript' : ', estimated: the worker runs tsx'}`,
          ],
          ['fan-out: orchestrator peak V8 heap used / external MB', `${ms(r.peak_heap_used_mb)} / ${ms(r.peak_external_mb)}`],
          [
            `resume (${r.resume_snapshot}): read / parse+validate / rehydrate ms`,
            `${r.resume.read_ms.toFixed(1)} / ${r.resume.parse_ms.toFixed(1)} / ${r.resume.rehydrate_ms.toFixed(1)}`,
          ],
          ['resume: snapshot MB, clips, live children', `${mb(r.resume.bytes)}, ${r.resume.clips}, ${r.resume.children}`],
          ['resume: first (cold) / median ms', `${ms(r.resume.first_ms)} / ${ms(r.resume.total_ms)}`],
          ['resume of the final COMPLETED state: median ms', r.resume_final.total_ms],
        ],
        raw: r,
      };
    },
  },
  {
    name: 'async',
    title: 'fan-out with async stage calls: queued through /async-function, answered by callback',
    async run(ctx) {
      const r = await measureAsyncFanout(ctx);
      const pair = (f: (m: typeof r.sync) => number, digits = 0) => `${f(r.sync).toFixed(digits)} / ${f(r.async).toFixed(digits)}`;
      return {
        figures: { async_fanout_efficiency: r.async.efficiency },
        details: [
          ['async: invocations per mode', r.invocations],
          ['async: wall ms sync / async (ideal)', `${pair((m) => m.wall_ms)} (${ms(r.ideal.total_ms)})`],
          ['async: efficiency (ideal ÷ wall) sync / async', pair((m) => m.efficiency, 2)],
          ['async: orchestrator CPU µs / invocation sync / async', pair((m) => m.orchestrator_cpu_us_per_invocation)],
          [
            'async: orchestrator main-thread CPU µs / invocation sync / async',
            r.sync.orchestrator_main_thread_cpu_us_per_invocation === null || r.async.orchestrator_main_thread_cpu_us_per_invocation === null
              ? 'not measured (no /proc/thread-self/schedstat)'
              : pair((m) => m.orchestrator_main_thread_cpu_us_per_invocation ?? 0),
          ],
          ['async: orchestrator event-loop use sync / async', pair((m) => m.orchestrator_elu, 2)],
          [
            'async: orchestrator main thread waiting for a CPU while it could run, ms (share of wall) sync / async',
            `${waitingForCpu(r.sync.orchestrator_main_thread_wait_ms, r.sync.wall_ms)} / ${waitingForCpu(r.async.orchestrator_main_thread_wait_ms, r.async.wall_ms)}`,
          ],
          [
            "async: per call: latency ms (async: from the 202 to the callback's arrival), the gateway's timing ms, sync / async",
            `${callTimes(r.sync.calls)} / ${callTimes(r.async.calls)}`,
          ],
          ['async: gateway CPU µs / invocation sync / async', pair((m) => m.gateway_cpu_us_per_invocation)],
          ['async: state.json MB written sync / async', `${mb(r.sync.state_bytes_written)} / ${mb(r.async.state_bytes_written)}`],
          ['async: worker peak RSS MB (both runs) ', ms(r.async.peak_rss_mb)],
          ['async: callbacks stored; queue delay p50 / max ms', `${r.callbacks_stored}; ${r.queue_delay_p50_ms.toFixed(0)} / ${r.queue_delay_max_ms.toFixed(0)}`],
          ['async: file system, CPU µs per folder + synced file, before / after the runs', `${r.fs_create_cpu_us.before.toFixed(0)} / ${r.fs_create_cpu_us.after.toFixed(0)}`],
          ['async: file system, CPU µs per new file alone (no folder, no sync), before / after', `${r.fs_file_cpu_us.before.toFixed(0)} / ${r.fs_file_cpu_us.after.toFixed(0)}`],
          [
            'async: why they differ',
            'each async call adds an enqueue POST (202), the callback POST into the orchestrator, the callback stored durably before the 2xx (a line of a shared segment, flushed, and a link naming it), and a dispatch record in state.json; with 20 ms stages that is pure overhead. It buys calls no gateway timeout cuts and that survive the orchestrator (see async-calls and async-crash tests)',
          ],
        ],
        raw: r,
      };
    },
  },
  {
    name: 'versus',
    title: 'versus the sequential baseline, same workload',
    async run(ctx) {
      const r = await measureVersus(ctx);
      return {
        figures: { baseline_speedup: r.baseline_speedup, baseline_write_amplification: r.baseline_write_amplification },
        details: [
          ['versus: invocations', r.invocations],
          ['versus: wall ms baseline / ours / ideal', `${ms(r.baseline.wall_ms)} / ${ms(r.ours.wall_ms)} / ${ms(r.ideal_ms)}`],
          ['versus: clips / s baseline / ours', `${r.baseline_clips_per_s.toFixed(2)} / ${r.ours_clips_per_s.toFixed(2)}`],
          ['versus: write amplification baseline / ours', `${r.baseline_write_amplification.toFixed(1)} / ${r.ours.write_amplification.toFixed(1)}`],
          ['versus: state.json writes baseline / ours', `${r.baseline.state_writes} / ${r.ours.state_writes}`],
        ],
        raw: r,
      };
    },
  },
  {
    name: 'scaling',
    title: 'concurrent requests: all at once vs one at a time',
    async run(ctx) {
      const r = await measureScaling(ctx);
      return {
        figures: { concurrent_scaling: r.concurrent_scaling },
        details: [
          ['scaling: requests', r.requests],
          ['scaling: wall ms one at a time / all at once', `${ms(r.alone_total_ms)} / ${ms(r.together_ms)}`],
          ['scaling: ideal ms of one request alone', r.ideal_alone_ms],
        ],
        raw: r,
      };
    },
  },
  {
    name: 'sweep',
    title: 'orphan sweeps of an idle replica: 10,000 finished requests stored, 10 running elsewhere',
    async run(ctx) {
      const r = await measureSweep(ctx);
      const m = (s: typeof r.first) => `${s.ms.toFixed(1)} ms, ${s.state_reads} state reads, ${s.lists} listings, ${s.calls} store calls`;
      return {
        figures: { sweep_state_reads: r.sweep_state_reads, sweep_idle_state_reads: r.idle.state_reads, sweep_ms: r.sweep_ms },
        details: [
          ['sweep: stored finished / running', `${r.finished} / ${r.running}`],
          ['sweep: first sweep of a replica (full scan + each lease read)', m(r.first)],
          ['sweep: later sweeps, leases known (worst of 3)', m(r.steady)],
          ['sweep: none running (worst of 3)', m(r.idle)],
          [
            'sweep: request list, first page of 50 + running',
            `${r.list_first_page.ms.toFixed(1)} ms, ${r.list_first_page.calls} store calls, ${r.list_first_page.state_reads} state reads`,
          ],
        ],
        raw: r,
      };
    },
  },
  {
    name: 'coldstart',
    title: 'cold starts on the replica model: pre-warming off, speculative, just in time',
    async run(ctx) {
      const r = await measureColdstart(ctx);
      const cold = r.cold_start_ms;
      const per = (f: (m: (typeof r.modes)[number]) => string) => r.modes.map((m) => `${m.mode} ${f(m)}`).join(' · ');
      return {
        figures: {},
        details: [
          [
            'coldstart: setup',
            `cold start ${cold} ms, stages ${r.latency_ms} ms, ${r.clips} clips × ${r.frames_per_clip} frames, ${r.max_inflight} calls per replica, ≤ ${r.max_replicas} replicas, burst of ${r.burst}`,
          ],
          ['coldstart: penalty ms (cold − warm wall, one request), in cold starts', per((m) => `${ms(m.penalty_ms)} (${m.penalty_cold_starts.toFixed(2)})`)],
          ['coldstart: wall ms warm / cold / first request of a fresh process', per((m) => `${ms(m.warm_wall_ms)} / ${ms(m.cold_wall_ms)} / ${ms(m.first_wall_ms)}`)],
          ['coldstart: burst wall ms warm / cold; (cold − one cold start) ÷ warm', per((m) => `${ms(m.warm_burst_ms)} / ${ms(m.cold_burst_ms)}; ${m.burst_ratio.toFixed(2)}`)],
          ['coldstart: stage invocations warm / cold', per((m) => `${m.invocations_warm} / ${m.invocations_cold}`)],
          ['coldstart: cold calls (one request)', per((m) => `${m.cold_calls} ${JSON.stringify(m.cold_calls_by_stage)}`)],
          [
            'coldstart: scale calls, most per function: one request / per request of the burst',
            per((m) => `${m.scale_calls_max_per_function} / ${m.burst_scale_calls_max_per_function_per_request.toFixed(1)}`),
          ],
          ['coldstart: replica-seconds alive / idle (ready, serving nothing), cold request', per((m) => `${m.replica_seconds.toFixed(1)} / ${m.idle_replica_seconds.toFixed(1)}`)],
          ['coldstart: replica-seconds alive / idle, cold burst', per((m) => `${m.burst_replica_seconds.toFixed(1)} / ${m.burst_idle_replica_seconds.toFixed(1)}`)],
        ],
        raw: r,
      };
    },
  },
] as const satisfies readonly Scenario[];

export type ScenarioName = (typeof SCENARIOS)[number]['name'];
