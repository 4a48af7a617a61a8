import { availableParallelism, cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { GatewayHost } from './gateways.ts';
import { detailsTable, figuresTable, type Figures } from './report.ts';
import type { BenchContext } from './scenarios/context.ts';
import { measureFanout } from './scenarios/fanout.ts';
import { measureOverhead } from './scenarios/overhead.ts';
import { measureScaling } from './scenarios/scaling.ts';
import { measureVersus } from './scenarios/versus.ts';
import { FULL, SMOKE } from './sizes.ts';
import { openWorkspace } from './workspace.ts';

const USAGE = `usage: npm run bench -- [--smoke] [--json]

Measures the orchestrator against a scripted OpenFaaS-like gateway on loopback.
  --smoke   tiny sizes, a few seconds; the figures are not meaningful
  --json    print one JSON line with every figure at the end (the tables go to stderr)`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { smoke: { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const sizes = values.smoke ? SMOKE : FULL;
  const out = (text: string) => (values.json ? process.stderr : process.stdout).write(`${text}\n`);
  const log = (line: string) => process.stderr.write(`${line}\n`);

  const machine = {
    cpus: availableParallelism(),
    cpu_model: cpus()[0]?.model ?? 'unknown',
    memory_gb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    date: new Date().toISOString(),
  };
  log(`fave-orchestrator bench (${sizes.mode}) on ${machine.cpus} CPUs, node ${machine.node}`);

  const workspace = await openWorkspace();
  const gateways = GatewayHost.start();
  const ctx: BenchContext = { sizes, workspace, gateways, log };
  const started = performance.now();
  try {
    log('overhead: orchestrated vs raw POSTs, zero-latency stages');
    const overhead = await measureOverhead(ctx);
    log('fan-out: one large request in a separate orchestrator process');
    const fanout = await measureFanout(ctx);
    log('versus the sequential baseline');
    const versus = await measureVersus(ctx);
    log('concurrent requests');
    const scaling = await measureScaling(ctx);

    const figures: Figures = {
      overhead_ratio: overhead.overhead_ratio,
      fanout_efficiency: fanout.fanout_efficiency,
      baseline_speedup: versus.baseline_speedup,
      write_amplification: fanout.write_amplification,
      baseline_write_amplification: versus.baseline_write_amplification,
      peak_rss_mb: fanout.peak_rss_mb,
      resume_ms_per_1k_clips: fanout.resume_ms_per_1k_clips,
      concurrent_scaling: scaling.concurrent_scaling,
    };
    const details: Array<[string, number | string]> = [
      ['overhead: invocations', overhead.invocations],
      ['overhead: orchestrated µs / invocation', overhead.orchestrator_us_per_invocation],
      ['overhead: raw POST µs / invocation', overhead.raw_us_per_invocation],
      ['overhead: orchestrator CPU µs / invocation', overhead.orchestrator_cpu_us_per_invocation],
      ['overhead: raw client CPU µs / POST', overhead.raw_cpu_us_per_invocation],
      ['overhead: gateway event-loop use, orchestrated / raw', `${overhead.gateway_elu_orchestrated.toFixed(2)} / ${overhead.gateway_elu_raw.toFixed(2)}`],
      ['fan-out: invocations', fanout.invocations],
      ['fan-out: wall ms (ideal)', `${fanout.wall_ms.toFixed(0)} (${fanout.ideal.total_ms.toFixed(0)} = ${fanout.ideal.single_ms} + ${fanout.ideal.fanout_ms.toFixed(1)} + ${fanout.ideal.detect_ms.toFixed(1)})`],
      ['fan-out: clips / s', fanout.clips_per_s],
      ['fan-out: orchestrator CPU ms', fanout.orchestrator_cpu_ms],
      ['fan-out: gateway CPU ms, event-loop use', `${fanout.gateway_cpu_ms.toFixed(0)}, ${fanout.gateway_elu.toFixed(2)}`],
      ['fan-out: gateway peak concurrent calls', fanout.gateway_max_concurrent],
      ['fan-out: state.json MB written / final MB', `${(fanout.state_bytes_written / 2 ** 20).toFixed(1)} / ${(fanout.final_state_bytes / 2 ** 20).toFixed(2)}`],
      ['fan-out: orchestrator RSS MB idle / peak', `${fanout.idle_rss_mb.toFixed(0)} / ${fanout.peak_rss_mb.toFixed(0)}`],
      [`resume (${fanout.resume_snapshot}): read / parse+validate / rehydrate ms`, `${fanout.resume.read_ms.toFixed(1)} / ${fanout.resume.parse_ms.toFixed(1)} / ${fanout.resume.rehydrate_ms.toFixed(1)}`],
      ['resume: snapshot MB, clips, live children', `${(fanout.resume.bytes / 2 ** 20).toFixed(2)}, ${fanout.resume.clips}, ${fanout.resume.children}`],
      ['resume (final COMPLETED state): total ms', fanout.resume_final.total_ms],
      ['versus: invocations', versus.invocations],
      ['versus: baseline / ours / ideal wall ms', `${versus.baseline.wall_ms.toFixed(0)} / ${versus.ours.wall_ms.toFixed(0)} / ${versus.ideal_ms.toFixed(0)}`],
      ['versus: clips / s baseline / ours', `${versus.baseline_clips_per_s.toFixed(2)} / ${versus.ours_clips_per_s.toFixed(2)}`],
      ['versus: clips / s ours at 13k ÷ baseline', fanout.clips_per_s / versus.baseline_clips_per_s],
      ['versus: write amplification baseline / ours', `${versus.baseline_write_amplification.toFixed(1)} / ${versus.ours.write_amplification.toFixed(1)}`],
      ['scaling: requests', scaling.requests],
      ['scaling: one at a time / all at once ms', `${scaling.alone_total_ms.toFixed(0)} / ${scaling.together_ms.toFixed(0)}`],
      ['scaling: ideal ms of one request alone', scaling.ideal_alone_ms],
      ['bench wall s', (performance.now() - started) / 1000],
    ];
    out('');
    out(figuresTable(figures));
    out('');
    out(detailsTable(details));
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ mode: sizes.mode, machine, ...figures, details: { overhead, fanout, versus, scaling } })}\n`);
    }
  } finally {
    await gateways.close();
    await workspace.cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
