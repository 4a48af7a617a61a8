/** The figures of one bench run, how they are judged, and their readable form. */
import type { Sizes } from './sizes.ts';

export const FIGURE_NAMES = [
  'overhead_ratio',
  'fanout_efficiency',
  'fanout_vs_bare',
  'step_persist_ratio',
  'async_fanout_efficiency',
  'baseline_speedup',
  'write_amplification',
  'baseline_write_amplification',
  'peak_rss_mb',
  'resume_ms_per_1k_clips',
  'concurrent_scaling',
  'sweep_state_reads',
  'sweep_idle_state_reads',
  'sweep_ms',
] as const;
export type FigureName = (typeof FIGURE_NAMES)[number];
export type Figures = Record<FigureName, number>;

interface Target {
  op: '<=' | '>=';
  value: number;
}

export const TARGETS: Partial<Record<FigureName, Target>> = {
  overhead_ratio: { op: '<=', value: 1.3 },
  fanout_efficiency: { op: '>=', value: 0.9 },
  fanout_vs_bare: { op: '>=', value: 0.95 },
  step_persist_ratio: { op: '<=', value: 1.1 },
  async_fanout_efficiency: { op: '>=', value: 0.6 },
  write_amplification: { op: '<=', value: 20 },
  peak_rss_mb: { op: '<=', value: 250 },
  resume_ms_per_1k_clips: { op: '<=', value: 100 },
  // The running count (10) + 1, and under a second, with 10,000 finished requests stored.
  sweep_state_reads: { op: '<=', value: 11 },
  sweep_idle_state_reads: { op: '<=', value: 0 },
  sweep_ms: { op: '<=', value: 1000 },
};

/** Stage invocations of one request: ffmpeg-0 and librosa once, then per clip 3 calls and one per frame. */
export function invocationsOf(request: { clips: number; framesPerClip: number }): number {
  return 3 + request.clips * (3 + request.framesPerClip);
}

/** The fan-out request by its real size: "13,003 invocations (1,000 clips)". */
export function fanoutLabel(sizes: Pick<Sizes, 'fanout'>): string {
  return `${invocationsOf(sizes.fanout).toLocaleString('en-US')} invocations (${sizes.fanout.clips.toLocaleString('en-US')} clips)`;
}

function meaning(name: FigureName, sizes: Pick<Sizes, 'fanout' | 'asyncFanout' | 'sweep'>): string {
  const fanout = fanoutLabel(sizes);
  const meanings: Record<FigureName, string> = {
    overhead_ratio: 'orchestrated ÷ raw POST wall time per invocation',
    fanout_efficiency: `ideal ÷ measured wall time, ${fanout}`,
    fanout_vs_bare: "fanout_efficiency ÷ a bare undici client's efficiency making as many calls, same run and gateway",
    step_persist_ratio: 'wall time of the same request with state.json written at every step (PERSIST_INTERVAL_MS=0) ÷ default mode',
    async_fanout_efficiency: `same with async stage calls (queue + callback), ${invocationsOf(sizes.asyncFanout).toLocaleString('en-US')} invocations; sync beside it in the details`,
    baseline_speedup: 'sequential baseline ÷ ours wall time, same workload',
    write_amplification: 'state.json + dispatch journal bytes written ÷ final state.json size (ours)',
    baseline_write_amplification: 'same, sequential baseline',
    peak_rss_mb: `orchestrator process peak RSS, ${fanout}`,
    resume_ms_per_1k_clips: 'read + validate + rehydrate, per 1,000 clips',
    concurrent_scaling: 'N requests at once vs one at a time (throughput)',
    sweep_state_reads: `most state.json reads of one orphan sweep, ${sizes.sweep.running} running and ${sizes.sweep.finished.toLocaleString('en-US')} finished stored (fs)`,
    sweep_idle_state_reads: 'most state.json reads of one sweep once none runs, same store',
    sweep_ms: 'slowest of those sweeps, the first one (full scan) included, ms',
  };
  return meanings[name];
}

/**
 * Met or MISSED against the target, which holds for the full-size run only: a smoke run's
 * figures are not judged.
 */
export function verdict(name: FigureName, value: number | null, mode: Sizes['mode'] = 'full'): string {
  const target = TARGETS[name];
  if (!target) return '';
  if (value === null) return `not run (${target.op} ${target.value})`;
  if (mode === 'smoke') return `not judged in smoke (full run: ${target.op} ${target.value})`;
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
  return rows
    .map((r) =>
      r
        .map((cell, col) => cell.padEnd(widths[col]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function figuresTable(figures: Record<FigureName, number | null>, sizes: Pick<Sizes, 'mode' | 'fanout' | 'asyncFanout' | 'sweep'>): string {
  return table([
    ['figure', 'value', 'target', 'meaning'],
    ...FIGURE_NAMES.map((name) => [name, format(figures[name]), verdict(name, figures[name], sizes.mode), meaning(name, sizes)]),
  ]);
}

export function detailsTable(details: Array<[string, number | string]>): string {
  return table([['detail', 'value'], ...details.map(([k, v]) => [k, typeof v === 'number' ? format(v) : v])]);
}
