import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { compileBench } from './compiled.ts';
import { GatewayHost } from './gateways.ts';
import { COMPILED } from './ipc.ts';
import { FIGURE_NAMES, detailsTable, fanoutLabel, figuresTable, type Figures } from './report.ts';
import { RESTATE_NOTE, SCENARIOS, type ScenarioName } from './scenarios/index.ts';
import type { BenchContext } from './scenarios/context.ts';
import { FULL, SMOKE } from './sizes.ts';
import { openWorkspace } from './workspace.ts';

const USAGE = `usage: npm run bench -- [--smoke] [--json] [--only <scenarios>] [--cpu-prof <dir>] [--sync-artifacts] [--write-artifacts] [--ts]

Measures the orchestrator against a scripted OpenFaaS-like gateway on loopback. The bench first
compiles the sources into a temp dir and runs the JavaScript, as the image does.
  --smoke           tiny sizes, a few seconds; the figures are not meaningful
  --json            print one JSON line with every figure at the end (the tables go to stderr)
  --only a,b        run only these scenarios (${SCENARIOS.map((s) => s.name).join(', ')});
                    the figures of the others are null
  --cpu-prof <dir>  write V8 CPU profiles of the fan-out run's orchestrator process, of the async
                    run's (<dir>/async) and of the gateway process into <dir>/orchestrator and
                    <dir>/gateway, and of each timed
                    request of the overhead scenario (run in the bench process) into <dir>/overhead
                    (with --ts, CPU.*.0.001.* is the main thread, the other the loader's)
  --sync-artifacts  the scripted stages fsync every artifact they write (off: plain atomic writes)
  --write-artifacts the per-clip and per-frame stages write their artifacts (off: they answer inline)
  --ts              run the TypeScript sources through tsx's loader instead (its loader thread
                    adds about 30 MB to every process's RSS)`;

/**
 * Run from the sources (`tsx bench/run.ts`), the bench compiles them and runs itself again from
 * the compiled tree, passing its arguments on, so every process it measures runs JavaScript.
 */
async function runCompiled(): Promise<number> {
  // Ctrl-C reaches the compiled bench too (same process group); SIGTERM is passed on. Either
  // way this process outlives it, to remove the compiled tree.
  let child: ChildProcess | null = null;
  let stopped = false;
  const onSignal = (signal: NodeJS.Signals) => {
    stopped = true;
    child?.kill(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const tree = await compileBench();
    try {
      if (stopped) return 130;
      process.stderr.write(`compiled ${tree.files} files into ${tree.dir} in ${tree.build_ms.toFixed(0)} ms\n`);
      const running = spawn(process.execPath, [join(tree.dir, 'bench', 'run.js'), ...process.argv.slice(2)], { stdio: 'inherit' });
      child = running;
      return await new Promise<number>((resolveExit, reject) => {
        running.on('error', reject);
        running.on('exit', (code, signal) => resolveExit(code ?? (signal ? 1 : 0)));
      });
    } finally {
      await tree.remove();
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      smoke: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      only: { type: 'string' },
      'cpu-prof': { type: 'string' },
      'sync-artifacts': { type: 'boolean', default: false },
      'write-artifacts': { type: 'boolean', default: false },
      ts: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (!COMPILED && !values.ts) {
    process.exitCode = await runCompiled();
    return;
  }
  const known = new Set<string>(SCENARIOS.map((s) => s.name));
  const only = values.only ? values.only.split(',').map((s) => s.trim()) : null;
  const unknown = only?.filter((name) => !known.has(name)) ?? [];
  if (unknown.length > 0) throw new Error(`--only: unknown scenario ${unknown.join(', ')}\n${USAGE}`);
  const selected = SCENARIOS.filter((s) => !only || only.includes(s.name as ScenarioName));

  const sizes = values.smoke ? SMOKE : FULL;
  const out = (text: string) => (values.json ? process.stderr : process.stdout).write(`${text}\n`);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const cpuProfDir = values['cpu-prof'] ? resolve(values['cpu-prof']) : null;
  if (cpuProfDir) await mkdir(cpuProfDir, { recursive: true });

  const machine = {
    cpus: availableParallelism(),
    cpu_model: cpus()[0]?.model ?? 'unknown',
    memory_gb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    date: new Date().toISOString(),
    loadavg_start: loadavg().map((l) => Math.round(l * 100) / 100),
    loadavg_end: [] as number[],
  };
  const code = COMPILED ? 'compiled JavaScript' : 'TypeScript through tsx';
  log(`fave-orchestrator bench (${sizes.mode}) on ${machine.cpus} CPUs, node ${machine.node}, running ${code}`);
  if (sizes.mode === 'smoke') log(`smoke sizes (the fan-out request is ${fanoutLabel(sizes)}): the figures are not judged against the full-size targets`);

  const workspace = await openWorkspace();
  const syncArtifacts = values['sync-artifacts'];
  const gateways = GatewayHost.start({
    ...(syncArtifacts ? { threadpool: 16 } : {}),
    ...(cpuProfDir ? { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', join(cpuProfDir, 'gateway')] } : {}),
  });
  const writeArtifacts = values['write-artifacts'];
  const ctx: BenchContext = { sizes, workspace, gateways, cpuProfDir, syncArtifacts, writeArtifacts, log };
  const started = performance.now();
  const figures: Partial<Figures> = {};
  const details: Array<[string, number | string]> = [];
  const raw: Record<string, unknown> = {};
  try {
    for (const scenario of selected) {
      log(scenario.title);
      const result = await scenario.run(ctx);
      Object.assign(figures, result.figures);
      details.push(...result.details);
      raw[scenario.name] = result.raw;
    }
  } finally {
    await gateways.close();
    await workspace.cleanup();
  }
  details.push(['bench wall s', (performance.now() - started) / 1000]);
  machine.loadavg_end = loadavg().map((l) => Math.round(l * 100) / 100);
  details.push(['load average at start / end', `${machine.loadavg_start.join(' ')} / ${machine.loadavg_end.join(' ')}`]);
  details.push(['code run by the bench and its processes', code]);
  details.push(['stage artifacts', !writeArtifacts ? 'inline answers (per-clip and per-frame stages write nothing)' : syncArtifacts ? 'fsync each' : 'plain writes']);

  const complete = Object.fromEntries(FIGURE_NAMES.map((name) => [name, figures[name] ?? null])) as Record<keyof Figures, number | null>;
  out('');
  out(figuresTable(complete, sizes));
  out(`step_persist_ratio beside Restate 1.7 (journaling every step): ${RESTATE_NOTE}`);
  out('');
  out(detailsTable(details));
  if (values.json)
    process.stdout.write(
      `${JSON.stringify({ mode: sizes.mode, machine, code: COMPILED ? 'compiled' : 'tsx', stage_artifacts: !writeArtifacts ? 'inline' : syncArtifacts ? 'fsync' : 'plain', ...complete, details: raw })}\n`,
    );
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
