import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { faveError, toFaveError } from '../../domain/errors.ts';
import { analyzePaths, type RunSummary } from '../../research/analyze.ts';
import { runsCsv } from '../../research/csv.ts';
import { EXIT, exitFlushed, fail } from '../shared.ts';

function figure(value: number | null | undefined, digits = 0): string {
  return value === null || value === undefined ? '-' : value.toFixed(digits);
}

/** FAVE's final_analysis.py table, with the figures it leaves out. */
function table(runs: readonly RunSummary[]): string {
  const width = Math.min(60, Math.max(10, ...runs.map((r) => r.name.length)));
  const head = `${'run'.padEnd(width)} | ${'req'.padStart(5)} | ${'gw'.padStart(4)} | ${'app'.padStart(4)} | ${'succ%'.padStart(6)} | ${'p50 ms'.padStart(8)} | ${'p90 ms'.padStart(8)} | ${'FAVE p90'.padStart(8)} | ${'p99 ms'.padStart(8)} | ${'cost'.padStart(8)} | ${'all att.'.padStart(8)} | ${'no det.'.padStart(8)}`;
  const lines = [head, '-'.repeat(head.length)];
  for (const r of runs) {
    lines.push(
      `${r.name.slice(0, width).padEnd(width)} | ${String(r.requests).padStart(5)} | ${String(r.gateway_failures).padStart(4)} | ${String(r.app_errors).padStart(4)} | ${`${figure(r.success_pct, 1)}%`.padStart(6)} | ${figure(r.latency_ms?.p50).padStart(8)} | ${figure(r.latency_ms?.p90).padStart(8)} | ${figure(r.latency_ms?.p90_fave).padStart(8)} | ${figure(r.latency_ms?.p99).padStart(8)} | ${figure(r.cost_per_request, 2).padStart(8)} | ${figure(r.cost_per_request_all, 2).padStart(8)} | ${figure(r.cost_per_request_without_detector, 2).padStart(8)}`,
    );
  }
  const small = runs.filter((r) => r.too_small_for.length > 0);
  if (small.length > 0) lines.push('', 'too few samples:', ...small.map((r) => `  ${r.name}: ${r.too_small_for.join(', ')}`));
  return `${lines.join('\n')}\n`;
}

async function write(file: string, text: string): Promise<string> {
  const path = resolve(file);
  await writeFile(path, text).catch((err: unknown) => fail(faveError('BAD_REQUEST', `cannot write ${path}: ${(err as Error).message}`)));
  return path;
}

/** `fave analyze FILE|DIR ...`: FAVE's counting over results files, as a table, JSON, CSV or an HTML page. */
export function registerAnalyze(program: Command): void {
  program
    .command('analyze')
    .description("summarise results files (fave load's or FAVE's results_*.json) as FAVE's final_analysis.py counts them")
    .argument('<paths...>', 'results files, or folders whose results_*.json are read')
    .option('--json', 'print the summary as JSON')
    .option('--csv <file>', 'write one CSV row per run and stage')
    .option('--html <file>', 'write one offline HTML page with the charts')
    .action(async (paths: string[], opts: { json?: boolean; csv?: string; html?: string }) => {
      const runs = await analyzePaths(paths).catch((err: unknown) => fail(toFaveError(err)));
      if (runs.length === 0) fail(faveError('BAD_REQUEST', `no results_*.json in ${paths.join(', ')}`));
      const summaries = runs.map((r) => r.summary);
      if (opts.csv) process.stderr.write(`CSV → ${await write(opts.csv, runsCsv(summaries))}\n`);
      if (opts.html) {
        const [{ renderCharts }, { renderAnalysisPage }] = await Promise.all([import('../../research/charts.ts'), import('../../research/page.ts')]);
        const charts = await renderCharts(runs).catch((err: unknown) => fail(toFaveError(err)));
        process.stderr.write(`HTML (${charts.length} charts) → ${await write(opts.html, renderAnalysisPage(runs, charts, new Date()))}\n`);
      }
      process.stdout.write(opts.json ? `${JSON.stringify({ runs: summaries }, null, 2)}\n` : table(summaries));
      await exitFlushed(EXIT.completed);
    });
}
