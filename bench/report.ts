/** The figures of one bench run, how they are judged, and their readable form. */

export const FIGURE_NAMES = [
  'overhead_ratio',
  'fanout_efficiency',
  'baseline_speedup',
  'write_amplification',
  'baseline_write_amplification',
  'peak_rss_mb',
  'resume_ms_per_1k_clips',
  'concurrent_scaling',
] as const;
export type FigureName = (typeof FIGURE_NAMES)[number];
export type Figures = Record<FigureName, number>;

interface Target {
  op: '<=' | '>=';
  value: number;
}

export const TARGETS: Partial<Record<FigureName, Target>> = {
  overhead_ratio: { op: '<=', value: 1.5 },
  fanout_efficiency: { op: '>=', value: 0.9 },
  write_amplification: { op: '<=', value: 20 },
  peak_rss_mb: { op: '<=', value: 300 },
};

const MEANING: Record<FigureName, string> = {
  overhead_ratio: 'orchestrated ÷ raw POST wall time per invocation',
  fanout_efficiency: 'ideal ÷ measured wall time, 13k invocations',
  baseline_speedup: 'sequential baseline ÷ ours wall time, same workload',
  write_amplification: 'state.json + dispatch journal bytes written ÷ final state.json size (ours)',
  baseline_write_amplification: 'same, sequential baseline',
  peak_rss_mb: 'orchestrator process peak RSS, 13k request',
  resume_ms_per_1k_clips: 'read + validate + rehydrate, per 1,000 clips',
  concurrent_scaling: 'N requests at once vs one at a time (throughput)',
};

export function verdict(name: FigureName, value: number | null): string {
  const target = TARGETS[name];
  if (!target) return '';
  if (value === null) return `not run (${target.op} ${target.value})`;
  const ok = target.op === '<=' ? value <= target.value : value >= target.value;
  return `${ok ? 'met' : 'MISSED'} (${target.op} ${target.value})`;
}

function format(value: number | null): string {
  if (value === null) return '-';
  if (!Number.isFinite(value) || Number.isInteger(value)) return String(value);
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length)));
  return rows.map((r) => r.map((cell, col) => cell.padEnd(widths[col]!)).join('  ').trimEnd()).join('\n');
}

export function figuresTable(figures: Record<FigureName, number | null>): string {
  return table([
    ['figure', 'value', 'target', 'meaning'],
    ...FIGURE_NAMES.map((name) => [name, format(figures[name]), verdict(name, figures[name]), MEANING[name]]),
  ]);
}

export function detailsTable(details: Array<[string, number | string]>): string {
  return table([['detail', 'value'], ...details.map(([k, v]) => [k, typeof v === 'number' ? format(v) : v])]);
}
