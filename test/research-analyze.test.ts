import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeRecords, type RunSummary } from '../src/research/analyze.ts';
import { runsCsv } from '../src/research/csv.ts';
import { runFave } from './support/child.ts';

/**
 * `fave analyze` against FAVE's own counting rules, re-implemented here from what its
 * `scripts/final_analysis.py` and `scripts/analyze_results.py` do, on results files this test
 * generates in FAVE's format.
 */

type Json = Record<string, unknown>;
type Line = {
  timestamp: string;
  duration_ms: number;
  status: string;
  response: Json;
  profile: string;
};

/** A small deterministic generator (mulberry32), so every run of the test sees the same files. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function entry(stage: string, rnd: () => number, extra: Json = {}): Json {
  const duration = Math.round(100 + rnd() * 4000);
  return {
    stage,
    status: 'success',
    message: null,
    outputs: [],
    metrics: { duration_ms: duration, memory_limit_mb: 512, cold_start: rnd() < 0.2, cost_unit: Math.round(duration * 0.5) / 1000 },
    ...extra,
  };
}

/**
 * An answer shaped as FAVE's Python orchestrator gives it (the detector once per clip, or its
 * stub costing 0), or as this orchestrator's fave-v1 envelope (a detector call per frame).
 */
function answer(shape: 'python' | 'ours', rnd: () => number): Json {
  const linear = ['stage-ffmpeg-0', 'stage-librosa', 'stage-ffmpeg-1'].map((s) => entry(s, rnd));
  const clips = [0, 1, 2].map((clip) => {
    const stages = ['stage-ffmpeg-2', 'stage-deepspeech', 'stage-ffmpeg-3'].map((s) => entry(s, rnd, { clip_index: clip }));
    if (shape === 'python')
      stages.push(
        clip === 1
          ? entry('stage-object-detector', rnd, { clip_index: clip })
          : {
              stage: 'stage-object-detector',
              status: 'skipped',
              message: 'disabled',
              outputs: [],
              metrics: { duration_ms: 0, memory_limit_mb: 512, cold_start: false, cost_unit: 0.0 },
              clip_index: clip,
            },
      );
    else for (const frame of [1, 2]) stages.push(entry('stage-object-detector', rnd, { clip_index: clip, frame_index: frame, frame_uri: `s3://b/f${frame}.jpg` }));
    return { clip_index: clip, input_uri: `s3://b/clip_${clip}.mp4`, stages };
  });
  if (shape === 'python') return { status: 'ok', request_id: 'r', result: { linear, clips } };
  // Our envelope carries our own answer too: its cost counts every attempt, a retried one included.
  const listed = [...linear, ...clips.flatMap((c) => c.stages)].reduce((sum, e) => sum + (e.metrics as { cost_unit: number }).cost_unit, 0);
  return { status: 'ok', request_id: 'r', result: { linear, clips }, answer: { metrics: { retries: 1, cost_units: listed + RETRIED_ATTEMPT_COST } } };
}

/** The cost of the one retried attempt in each of our answers, which the envelope does not list. */
const RETRIED_ATTEMPT_COST = 0.25;

function run(options: { seed: number; successes: number; appErrors: number; gatewayFailures: number; shape: 'python' | 'ours' }): Line[] {
  const rnd = random(options.seed);
  const lines: Line[] = [];
  const kinds = [...Array<string>(options.successes).fill('ok'), ...Array<string>(options.appErrors).fill('app'), ...Array<string>(options.gatewayFailures).fill('gw')];
  // Shuffled, so the order of outcomes in a file is not what the counting relies on.
  for (let i = kinds.length - 1; i > 0; i -= 1) {
    const j = Math.floor(rnd() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  for (const kind of kinds) {
    const duration = Math.round(2000 + rnd() * 30_000);
    const response =
      kind === 'ok'
        ? answer(options.shape, rnd)
        : kind === 'app'
          ? { status: 'error', request_id: 'r', message: 'stage-ffmpeg-1 failed' }
          : { error: 'Server error 502 Bad Gateway' };
    lines.push({ timestamp: '2025-11-20T14:03:05.123456', duration_ms: duration, status: kind === 'gw' ? 'failure' : 'success', response, profile: 'cold' });
  }
  return lines;
}

// --- FAVE's rules, as its scripts apply them ---

function pyMedian(data: number[]): number {
  const s = [...data].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** `statistics.quantiles(data, n=10)` with its default method, "exclusive", line for line. */
function pyQuantiles(data: number[], n = 10): number[] {
  const s = [...data].sort((a, b) => a - b);
  const ld = s.length;
  const m = ld + 1;
  const result: number[] = [];
  for (let i = 1; i < n; i += 1) {
    let j = Math.floor((i * m) / n);
    j = j < 1 ? 1 : j > ld - 1 ? ld - 1 : j;
    const delta = i * m - j * n;
    result.push((s[j - 1]! * (n - delta) + s[j]! * delta) / n);
  }
  return result;
}

/** final_analysis.py's `analyze_results(filepath)`. */
function finalAnalysis(data: Line[]): { total: number; gateway_fail: number; app_error: number; success_rate: number; p50: number; p90: number; avg_cost: number } {
  let gatewayFail = 0;
  let appError = 0;
  const ok: Line[] = [];
  for (const r of data) {
    if (r.status !== 'success') gatewayFail += 1;
    else if (r.response.status === 'error') appError += 1;
    else ok.push(r);
  }
  const durations = ok.map((r) => r.duration_ms);
  const costs: number[] = [];
  for (const r of ok) {
    const res = (r.response.result ?? {}) as { linear?: Array<{ metrics?: Json }>; clips?: Array<{ stages?: Array<{ metrics?: Json }> }> };
    for (const stage of res.linear ?? []) if (stage.metrics && 'cost_unit' in stage.metrics) costs.push(stage.metrics.cost_unit as number);
    for (const clip of res.clips ?? []) for (const stage of clip.stages ?? []) if (stage.metrics && 'cost_unit' in stage.metrics) costs.push(stage.metrics.cost_unit as number);
  }
  return {
    total: data.length,
    gateway_fail: gatewayFail,
    app_error: appError,
    success_rate: data.length > 0 ? (ok.length / data.length) * 100 : 0,
    p50: durations.length > 0 ? pyMedian(durations) : 0,
    p90: durations.length > 1 ? pyQuantiles(durations)[8]! : durations.length === 1 ? durations[0]! : 0,
    avg_cost: ok.length > 0 && costs.length > 0 ? costs.reduce((a, b) => a + b, 0) / ok.length : 0,
  };
}

/** analyze_results.py's min and max: over every HTTP-level success, app errors included. */
function analyzeResultsMinMax(data: Line[]): { min: number; max: number } {
  const durations = data.filter((r) => r.status === 'success').map((r) => r.duration_ms);
  return { min: Math.min(...durations), max: Math.max(...durations) };
}

const CASES = [
  { name: 'results_burst_cold_5req_1.json', seed: 1, successes: 4, appErrors: 0, gatewayFailures: 1, shape: 'python' },
  { name: 'results_steady_warm_1rps_1req_2.json', seed: 2, successes: 1, appErrors: 0, gatewayFailures: 0, shape: 'python' },
  { name: 'results_steady_warm_2rps_2req_3.json', seed: 3, successes: 2, appErrors: 0, gatewayFailures: 0, shape: 'python' },
  { name: 'results_steady_cold_1rps_10req_4.json', seed: 4, successes: 7, appErrors: 2, gatewayFailures: 1, shape: 'python' },
  { name: 'results_burst_warm_25req_5.json', seed: 5, successes: 25, appErrors: 0, gatewayFailures: 0, shape: 'ours' },
  { name: 'results_steady_warm_5rps_230req_6.json', seed: 6, successes: 200, appErrors: 10, gatewayFailures: 20, shape: 'ours' },
  { name: 'results_burst_cold_3req_7.json', seed: 7, successes: 0, appErrors: 1, gatewayFailures: 2, shape: 'python' },
] as const;

const close = (a: number | null | undefined, b: number): boolean => a !== null && a !== undefined && Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));

describe("fave analyze agrees with FAVE's scripts", () => {
  for (const c of CASES) {
    it(`${c.name}: ${c.successes} successes, ${c.appErrors} app errors, ${c.gatewayFailures} gateway failures`, () => {
      const lines = run(c);
      const { summary } = analyzeRecords(c.name, lines);
      const fave = finalAnalysis(lines);
      expect(summary.requests).toBe(fave.total);
      expect(summary.gateway_failures).toBe(fave.gateway_fail);
      expect(summary.app_errors).toBe(fave.app_error);
      expect(summary.success_pct).toBeCloseTo(fave.success_rate, 9);
      if (c.successes === 0) {
        expect(summary.latency_ms).toBeNull();
        expect(summary.too_small_for).toEqual(expect.arrayContaining(['latency_ms', 'cost_per_request']));
        return;
      }
      expect(close(summary.latency_ms!.p50, fave.p50), `p50 ${summary.latency_ms!.p50} vs ${fave.p50}`).toBe(true);
      // FAVE's P90 is the exclusive quantile; ours is reported beside it and agrees exactly.
      if (c.successes >= 2) expect(close(summary.latency_ms!.p90_fave, fave.p90), `p90 ${summary.latency_ms!.p90_fave} vs ${fave.p90}`).toBe(true);
      else {
        expect(summary.latency_ms!.p90_fave).toBeNull();
        expect(summary.latency_ms!.p90).toBe(fave.p90);
        expect(summary.too_small_for).toContain('latency_ms.p90_fave');
      }
      // With many samples the two percentile definitions land within a sample gap of each other.
      if (c.successes >= 100) expect(Math.abs(summary.latency_ms!.p90 - fave.p90) / fave.p90).toBeLessThan(0.01);
      if (c.successes < 10) expect(summary.too_small_for).toContain('latency_ms.p90');
      // final_analysis sums every call the answer lists, the detector's included, in either shape.
      expect(close(summary.cost_per_request, fave.avg_cost), `cost ${summary.cost_per_request} vs ${fave.avg_cost}`).toBe(true);
      expect(summary.cost_per_request_without_detector!).toBeLessThan(summary.cost_per_request!);
      if (c.shape === 'python') expect(summary.cost_per_request_all).toBe(summary.cost_per_request);
      else {
        expect(close(summary.cost_per_request_all, fave.avg_cost + RETRIED_ATTEMPT_COST)).toBe(true);
        expect(summary.retries.stage_calls).toBe(c.successes);
      }
      if (c.appErrors === 0) {
        const { min, max } = analyzeResultsMinMax(lines);
        expect(summary.latency_ms!.min).toBe(min);
        expect(summary.latency_ms!.max).toBe(max);
      }
      // Per stage: every call of the successful requests, counted once.
      const calls = Object.values(summary.stages).reduce((n, s) => n + s.calls, 0);
      expect(calls).toBe(c.successes * (c.shape === 'python' ? 3 + 3 * 4 : 3 + 3 * 5));
      expect(summary.stages['stage-ffmpeg-2']!.calls).toBe(3 * c.successes);
    });
  }

  it('writes one CSV row per run and stage', () => {
    const summaries: RunSummary[] = CASES.map((c) => analyzeRecords(c.name, run(c)).summary);
    const rows = runsCsv(summaries).trimEnd().split('\r\n');
    const expected = 1 + summaries.reduce((n, s) => n + Math.max(1, Object.keys(s.stages).length), 0);
    expect(rows).toHaveLength(expected);
    expect(rows[0]!.split(',')).toContain('stage_cold_starts');
    expect(rows.filter((r) => r.startsWith('results_burst_cold_3req_7.json,'))).toHaveLength(1);
  });
});

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);

describe('fave analyze on the command line', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fave-analyze-'));
    for (const c of CASES) await writeFile(join(dir, c.name), JSON.stringify(run(c), null, 2));
    await writeFile(join(dir, 'notes.json'), '{"not": "a results file"}');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('--json reads every results_*.json of a folder, single-success runs included', async () => {
    const out = await runFave(['analyze', dir, '--json', '--csv', join(dir, 'runs.csv')], {}).exit;
    expect(out.code, out.stderr).toBe(0);
    const parsed = JSON.parse(out.stdout) as { runs: RunSummary[] };
    expect(parsed.runs.map((r) => r.name)).toEqual(CASES.map((c) => c.name).sort());
    const single = parsed.runs.find((r) => r.name === 'results_steady_warm_1rps_1req_2.json')!;
    expect(single.succeeded).toBe(1);
    expect(Object.keys(single.latency_ms!).sort()).toEqual(['max', 'mean', 'min', 'p50', 'p90', 'p90_fave', 'p99'].sort());
    expect(Object.keys(single.stages['stage-librosa']!).sort()).toEqual(['calls', 'p50_ms', 'p90_ms', 'cold_starts', 'cost'].sort());
    expect((await readFile(join(dir, 'runs.csv'), 'utf8')).split('\r\n')[0]).toMatch(/^run,requests,/);
  });

  it('a file that is not a results list fails naming it', async () => {
    const out = await runFave(['analyze', join(dir, 'notes.json')], {}).exit;
    expect(out.code).toBe(2);
    expect(out.stderr).toContain('notes.json: not a results list');
  });

  it.skipIf(!hasChromium)('--html renders offline in Chromium: several runs as series, at least three SVG charts, no errors', async () => {
    const html = join(dir, 'runs.html');
    const out = await runFave(['analyze', dir, '--html', html], {}).exit;
    expect(out.code, out.stderr).toBe(0);
    const text = await readFile(html, 'utf8');
    expect(text).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      const errors: string[] = [];
      const requested: string[] = [];
      page.on('pageerror', (err) => errors.push(err.message));
      page.on('console', (msg) => {
        if (msg.type() === 'error') errors.push(msg.text());
      });
      page.on('request', (r) => requested.push(r.url()));
      await page.goto(pathToFileURL(html).href);
      const charts = page.locator('figure.chart-box svg');
      expect(await charts.count()).toBeGreaterThanOrEqual(3);
      for (const id of ['latency-cdf', 'stage-time', 'cold-starts', 'stage-cost']) {
        const box = await page.locator(`#${id} svg`).boundingBox();
        expect(box?.width ?? 0, id).toBeGreaterThan(100);
        expect(box?.height ?? 0, id).toBeGreaterThan(100);
      }
      // The grouped bars take their step per stage, not per run's bar: drawn at their own size
      // they fit a screen, so the page does not have to shrink them past reading.
      for (const id of ['stage-time', 'cold-starts', 'stage-cost']) {
        const width = Number(await page.locator(`#${id} svg`).getAttribute('width'));
        expect(width, id).toBeLessThanOrEqual(7 * (14 * CASES.length + 10) + 400);
      }
      // Every run with successes is a series of the latency chart: its name is in the legend.
      const legend = await page.locator('#latency-cdf svg').textContent();
      for (const c of CASES.filter((k) => k.successes > 0)) expect(legend).toContain(c.name);
      expect(await page.locator('table.runs tbody tr').count()).toBe(CASES.length);
      expect(errors).toEqual([]);
      expect(requested).toEqual([pathToFileURL(html).href]);
    } finally {
      await browser.close();
    }
  });
});
