import { STYLES } from '../ui/assets.ts';
import { escapeXml, htmlDocument } from '../ui/html.ts';
import type { AnalyzedRun, RunSummary } from './analyze.ts';
import type { Chart } from './charts.ts';

/**
 * The analysis as one offline page, styled as the request page: the runs' table and the charts
 * as inline SVG. Nothing is fetched and nothing runs (the page has no script).
 */

const EXTRA_STYLES = `
table.runs { border-collapse: collapse; font-size: 12.5px; margin: 8px 0; }
table.runs th, table.runs td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: right; white-space: nowrap; }
table.runs th:first-child, table.runs td:first-child { text-align: left; }
table.runs th { color: var(--muted); font-weight: 600; }
.chart-box svg { display: block; max-width: 100%; height: auto; }
`;

function fixed(value: number | null | undefined, digits = 0): string {
  return value === null || value === undefined ? '–' : value.toFixed(digits);
}

function runRow(run: RunSummary): string {
  const l = run.latency_ms;
  const cells = [
    `<td class="mono">${escapeXml(run.name)}</td>`,
    `<td>${run.requests}</td>`,
    `<td>${run.gateway_failures}</td>`,
    `<td>${run.app_errors}</td>`,
    `<td>${run.succeeded}</td>`,
    `<td>${fixed(run.success_pct, 1)} %</td>`,
    `<td>${fixed(l?.min)}</td>`,
    `<td>${fixed(l?.p50)}</td>`,
    `<td>${fixed(l?.p90)}</td>`,
    `<td>${fixed(l?.p99)}</td>`,
    `<td>${fixed(l?.max)}</td>`,
    `<td>${fixed(run.cost_per_request, 2)}</td>`,
    `<td>${fixed(run.cost_per_request_all, 2)}</td>`,
    `<td>${fixed(run.cost_per_request_without_detector, 2)}</td>`,
    `<td class="muted">${escapeXml(run.too_small_for.join(', ') || '–')}</td>`,
  ];
  return `<tr>${cells.join('')}</tr>`;
}

export function renderAnalysisPage(runs: readonly AnalyzedRun[], charts: readonly Chart[], generatedAt: Date): string {
  const head = [
    'run',
    'requests',
    'gateway failures',
    'app errors',
    'succeeded',
    'success',
    'min ms',
    'p50 ms',
    'p90 ms',
    'p99 ms',
    'max ms',
    'cost/request',
    'all attempts',
    'without detector',
    'too few samples for',
  ];
  const body = [
    '<header><h1>FAVE runs</h1>',
    `<span class="muted">${runs.length} run${runs.length === 1 ? '' : 's'} · generated ${escapeXml(generatedAt.toISOString())}</span></header>`,
    '<main>',
    '<h2>Runs</h2>',
    '<div style="overflow-x:auto">',
    `<table class="runs"><thead><tr>${head.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead>`,
    `<tbody>${runs.map((r) => runRow(r.summary)).join('')}</tbody></table>`,
    '</div>',
    '<p class="muted">Counted as FAVE\'s final_analysis.py counts: a failed HTTP call is a gateway failure, an answer with status "error" an app error, latency and cost are over the rest. p50 is the median; p90 and p99 interpolate between the closest ranks. cost/request sums metrics.cost_unit over the calls the answer lists (result.linear and result.clips[].stages), as final_analysis.py does; "all attempts" counts retried attempts too where the answer reports them; "without detector" leaves out the object detector\'s calls.</p>',
    '<h2>Charts</h2>',
    '<div class="charts">',
    ...charts.map(
      (c) => `<figure class="chart-box" id="${escapeXml(c.id)}"><figcaption><strong>${escapeXml(c.title)}</strong> · ${escapeXml(c.caption)}</figcaption>${c.svg}</figure>`,
    ),
    '</div>',
    '</main>',
  ].join('\n');
  return htmlDocument({ title: 'FAVE runs', live: false, body, head: `<style>${STYLES}${EXTRA_STYLES}</style>` });
}
