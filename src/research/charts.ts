import type { TopLevelSpec } from 'vega-lite';
import type { AnalyzedRun } from './analyze.ts';

/**
 * The analysis charts as Vega-Lite specifications, rendered to static SVG in Node (Vega's
 * headless View, no canvas, no browser). Vega is loaded only here, by `fave analyze --html`.
 */

export interface Chart {
  id: string;
  title: string;
  caption: string;
  svg: string;
}

/** The page's palette (`src/ui/assets.ts`), then more distinct hues for many runs. */
const PALETTE = ['#3b82f6', '#d97706', '#2f855a', '#7c3aed', '#dc2626', '#0ea5e9', '#616e7c', '#db2777', '#65a30d', '#0f766e'];

const CONFIG: TopLevelSpec['config'] = {
  font: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
  background: '#ffffff',
  view: { stroke: '#cbd2d9' },
  axis: {
    labelColor: '#1f2933',
    titleColor: '#616e7c',
    gridColor: '#e4e7eb',
    domainColor: '#cbd2d9',
    tickColor: '#cbd2d9',
    labelFontSize: 11,
    titleFontSize: 11,
    titleFontWeight: 600,
  },
  legend: { labelColor: '#1f2933', titleColor: '#616e7c', labelFontSize: 11, titleFontSize: 11, labelLimit: 1000, orient: 'bottom', direction: 'vertical' },
  range: { category: PALETTE },
};

/** Points of the empirical CDF of each run's latencies, as one table. */
function cdfRows(runs: readonly AnalyzedRun[]): Array<{ run: string; latency_ms: number; fraction: number }> {
  return runs.flatMap(({ summary, latencies }) => {
    const sorted = [...latencies].sort((a, b) => a - b);
    return sorted.map((latency, i) => ({ run: summary.name, latency_ms: latency, fraction: (i + 1) / sorted.length }));
  });
}

function stageRows(
  runs: readonly AnalyzedRun[],
): Array<{ run: string; stage: string; p50_ms: number | null; p90_ms: number | null; cold_starts: number; cost_per_request: number | null }> {
  return runs.flatMap(({ summary }) =>
    Object.entries(summary.stages).map(([stage, s]) => ({
      run: summary.name,
      stage,
      p50_ms: s.p50_ms,
      p90_ms: s.p90_ms,
      cold_starts: s.cold_starts,
      cost_per_request: summary.succeeded > 0 ? s.cost / summary.succeeded : null,
    })),
  );
}

/** Stages in the order the runs first list them (the pipeline's), not alphabetically. */
function stageOrder(runs: readonly AnalyzedRun[]): string[] {
  return [...new Set(runs.flatMap(({ summary }) => Object.keys(summary.stages)))];
}

export function chartSpecs(runs: readonly AnalyzedRun[]): Array<{ id: string; title: string; caption: string; spec: TopLevelSpec }> {
  const stages = stageRows(runs);
  const stageAxis = { field: 'stage', type: 'nominal', title: null, sort: stageOrder(runs), axis: { labelAngle: -30, labelLimit: 200 } } as const;
  const color = { field: 'run', type: 'nominal', title: 'run' } as const;
  const groupedBars = (field: string, title: string, counts = false): TopLevelSpec => ({
    config: CONFIG,
    width: { step: 14 * Math.max(1, runs.length) + 10, for: 'position' },
    height: 220,
    data: { values: stages },
    mark: { type: 'bar', tooltip: true },
    encoding: {
      x: stageAxis,
      xOffset: { field: 'run', type: 'nominal' },
      y: { field, type: 'quantitative', title, ...(counts ? { axis: { format: 'd', tickMinStep: 1 } } : {}) },
      color,
    },
  });
  return [
    {
      id: 'latency-cdf',
      title: 'Latency distribution',
      caption: 'Empirical CDF of the end-to-end latency of the successful requests of each run.',
      spec: {
        config: CONFIG,
        width: 520,
        height: 260,
        data: { values: cdfRows(runs) },
        mark: { type: 'line', interpolate: 'step-after', point: { size: 18 } },
        encoding: {
          x: { field: 'latency_ms', type: 'quantitative', title: 'latency (ms)' },
          y: { field: 'fraction', type: 'quantitative', title: 'fraction of successful requests', scale: { domain: [0, 1] } },
          color,
        },
      },
    },
    {
      id: 'stage-time',
      title: 'Time per stage',
      caption: 'Median duration each stage reports for its calls (metrics.duration_ms), per run; the tick marks the P90.',
      spec: {
        config: CONFIG,
        width: { step: 14 * Math.max(1, runs.length) + 10, for: 'position' },
        height: 220,
        data: { values: stages },
        encoding: {
          x: stageAxis,
          xOffset: { field: 'run', type: 'nominal' },
          color,
        },
        layer: [
          { mark: { type: 'bar', tooltip: true }, encoding: { y: { field: 'p50_ms', type: 'quantitative', title: 'duration (ms)' } } },
          { mark: { type: 'tick', color: '#1f2933', thickness: 1.5 }, encoding: { y: { field: 'p90_ms', type: 'quantitative' } } },
        ],
      },
    },
    {
      id: 'cold-starts',
      title: 'Cold starts per stage',
      caption: 'Calls of the successful requests that reported metrics.cold_start, per stage and run.',
      spec: groupedBars('cold_starts', 'cold starts', true),
    },
    {
      id: 'stage-cost',
      title: 'Cost per stage',
      caption: "metrics.cost_unit of each stage per successful request (its calls' sum over the successful requests, divided by their number), per run.",
      spec: groupedBars('cost_per_request', 'cost units per request'),
    },
  ];
}

/** Every chart as an SVG document fragment. */
export async function renderCharts(runs: readonly AnalyzedRun[]): Promise<Chart[]> {
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const charts: Chart[] = [];
  for (const { id, title, caption, spec } of chartSpecs(runs)) {
    const compiled = vegaLite.compile(spec).spec;
    const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
    try {
      const svg = await view.toSVG();
      charts.push({ id, title, caption, svg });
    } finally {
      view.finalize();
    }
  }
  return charts;
}
