import type { RunSummary } from './analyze.ts';

const COLUMNS = [
  'run',
  'requests',
  'gateway_failures',
  'app_errors',
  'succeeded',
  'success_pct',
  'latency_min_ms',
  'latency_p50_ms',
  'latency_p90_ms',
  'latency_p99_ms',
  'latency_max_ms',
  'latency_mean_ms',
  'latency_p90_fave_ms',
  'cost_per_request',
  'cost_per_request_all',
  'cost_per_request_without_detector',
  'stage',
  'stage_calls',
  'stage_p50_ms',
  'stage_p90_ms',
  'stage_cold_starts',
  'stage_cost',
] as const;

/** RFC 4180 quoting; a leading formula character is defused so a spreadsheet shows the text as text. */
function cell(value: string | number | null): string {
  if (value === null) return '';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : String(Number(value.toFixed(6)));
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One row per run and stage (a run without any stage call gets one row with the stage empty). */
export function runsCsv(runs: readonly RunSummary[]): string {
  const lines = [COLUMNS.join(',')];
  for (const run of runs) {
    const l = run.latency_ms;
    const head = [
      run.name,
      run.requests,
      run.gateway_failures,
      run.app_errors,
      run.succeeded,
      run.success_pct,
      l?.min ?? null,
      l?.p50 ?? null,
      l?.p90 ?? null,
      l?.p99 ?? null,
      l?.max ?? null,
      l?.mean ?? null,
      l?.p90_fave ?? null,
      run.cost_per_request,
      run.cost_per_request_all,
      run.cost_per_request_without_detector,
    ];
    const stages = Object.entries(run.stages);
    if (stages.length === 0) lines.push([...head, null, null, null, null, null, null].map(cell).join(','));
    for (const [name, s] of stages) lines.push([...head, name, s.calls, s.p50_ms, s.p90_ms, s.cold_starts, s.cost].map(cell).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}
