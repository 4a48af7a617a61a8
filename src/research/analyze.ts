import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { faveError, FaveFailure } from '../domain/errors.ts';
import { readEnvelope, ResultsFileSchema, type ResultRecord } from './results-file.ts';
import { exclusiveQuantile, mean, median, percentile } from './stats.ts';

/**
 * One results file summarised as FAVE's `scripts/final_analysis.py` counts it: a request whose
 * HTTP call failed is a gateway failure; one answered `status: "error"` an app error; the rest
 * are true successes, and latency and cost are taken over those alone.
 */

export interface LatencySummary {
  min: number;
  p50: number;
  /** Inclusive (interpolated) percentile; see `stats.ts`. */
  p90: number;
  p99: number;
  max: number;
  mean: number;
  /** FAVE's P90, `statistics.quantiles(n=10)[8]` (exclusive method); null below two samples. */
  p90_fave: number | null;
}

export interface StageRunSummary {
  calls: number;
  p50_ms: number | null;
  p90_ms: number | null;
  cold_starts: number;
  cost: number;
}

export interface RunSummary {
  name: string;
  requests: number;
  gateway_failures: number;
  app_errors: number;
  succeeded: number;
  success_pct: number;
  latency_ms: LatencySummary | null;
  stages: Record<string, StageRunSummary>;
  /**
   * `metrics.cost_unit` per successful request, summed over `result.linear` and
   * `result.clips[].stages` as final_analysis.py sums it: every call the answer lists (its last
   * attempt), the detector's included.
   */
  cost_per_request: number | null;
  /** Every attempt, retried ones included, where the answer reports it (ours); else as `cost_per_request`. */
  cost_per_request_all: number | null;
  /** `cost_per_request` without the object detector's calls. */
  cost_per_request_without_detector: number | null;
  retries: { stage_calls: number | null; requests: number | null };
  queue_delay_ms: { p50: number; max: number } | null;
  /** Figures this run has too few samples for (they are given, but say little). */
  too_small_for: string[];
}

/** What the charts need beyond the summary: the samples themselves. */
export interface AnalyzedRun {
  summary: RunSummary;
  latencies: number[];
}

/** Bounds on what is read: a results file is a few megabytes even for thousands of requests. */
export const MAX_RESULTS_FILE_BYTES = 512 * 1024 * 1024;
export const MAX_RUNS = 500;

/** The percentile figures and the sample counts below which they are reported as too small. */
const MIN_SAMPLES = { p90: 10, p99: 100, p90_fave: 2 } as const;

export function analyzeRecords(name: string, records: readonly ResultRecord[]): AnalyzedRun {
  let gatewayFailures = 0;
  let appErrors = 0;
  const latencies: number[] = [];
  const stageDurations = new Map<string, number[]>();
  const stages = new Map<string, StageRunSummary>();
  let cost = 0;
  let costAll = 0;
  let costWithoutDetector = 0;
  let costSeen = false;
  let stageRetries: number | null = null;
  let clientRetries: number | null = null;
  const queueDelays: number[] = [];

  for (const record of records) {
    if (record.attempts !== undefined) clientRetries = (clientRetries ?? 0) + Math.max(0, record.attempts - 1);
    if (record.queue_delay_ms !== undefined) queueDelays.push(record.queue_delay_ms);
    if (record.status !== 'success') {
      gatewayFailures += 1;
      continue;
    }
    const envelope = readEnvelope(record.response);
    if (envelope.retries !== null) stageRetries = (stageRetries ?? 0) + envelope.retries;
    if (envelope.status === 'error') {
      appErrors += 1;
      continue;
    }
    latencies.push(record.duration_ms);
    let listed = 0;
    for (const entry of envelope.entries) {
      const unit = entry.metrics?.cost_unit;
      if (typeof unit === 'number') {
        costSeen = true;
        listed += unit;
        if (!entry.detector) costWithoutDetector += unit;
      }
      const stage = stages.get(entry.stage) ?? { calls: 0, p50_ms: null, p90_ms: null, cold_starts: 0, cost: 0 };
      stage.calls += 1;
      if (entry.metrics?.cold_start === true) stage.cold_starts += 1;
      stage.cost += unit ?? 0;
      stages.set(entry.stage, stage);
      const duration = entry.metrics?.duration_ms;
      if (typeof duration === 'number') stageDurations.set(entry.stage, [...(stageDurations.get(entry.stage) ?? []), duration]);
    }
    cost += listed;
    costAll += envelope.costOfAllAttempts ?? listed;
  }
  for (const [key, stage] of stages) {
    const durations = stageDurations.get(key) ?? [];
    stage.p50_ms = median(durations);
    stage.p90_ms = percentile(durations, 90);
  }

  const succeeded = latencies.length;
  const tooSmall: string[] = [];
  if (records.length === 0) tooSmall.push('success_pct');
  if (succeeded === 0) tooSmall.push('latency_ms', 'cost_per_request', 'cost_per_request_all', 'cost_per_request_without_detector');
  else {
    if (succeeded < MIN_SAMPLES.p90_fave) tooSmall.push('latency_ms.p90_fave');
    if (succeeded < MIN_SAMPLES.p90) tooSmall.push('latency_ms.p90');
    if (succeeded < MIN_SAMPLES.p99) tooSmall.push('latency_ms.p99');
  }
  const perRequest = (total: number): number | null => (succeeded > 0 ? (costSeen ? total / succeeded : 0) : null);
  const summary: RunSummary = {
    name,
    requests: records.length,
    gateway_failures: gatewayFailures,
    app_errors: appErrors,
    succeeded,
    success_pct: records.length > 0 ? (succeeded / records.length) * 100 : 0,
    latency_ms:
      succeeded > 0
        ? {
            min: Math.min(...latencies),
            p50: median(latencies)!,
            p90: percentile(latencies, 90)!,
            p99: percentile(latencies, 99)!,
            max: Math.max(...latencies),
            mean: mean(latencies)!,
            p90_fave: exclusiveQuantile(latencies, 10, 9),
          }
        : null,
    // In the order the answers list them: the pipeline's order.
    stages: Object.fromEntries(stages),
    cost_per_request: perRequest(cost),
    cost_per_request_all: perRequest(costAll),
    cost_per_request_without_detector: perRequest(costWithoutDetector),
    retries: { stage_calls: stageRetries, requests: clientRetries },
    queue_delay_ms: queueDelays.length > 0 ? { p50: median(queueDelays)!, max: Math.max(...queueDelays) } : null,
    too_small_for: tooSmall,
  };
  return { summary, latencies };
}

/** Reads one results file; a file that is not a results list fails naming the file and the place. */
export async function readResultsFile(path: string): Promise<ResultRecord[]> {
  const info = await stat(path).catch(() => null);
  if (!info?.isFile()) throw new FaveFailure(faveError('BAD_REQUEST', `${path}: no such results file`));
  if (info.size > MAX_RESULTS_FILE_BYTES) throw new FaveFailure(faveError('BAD_REQUEST', `${path}: larger than the ${MAX_RESULTS_FILE_BYTES} bytes read`));
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new FaveFailure(faveError('BAD_REQUEST', `${path}: not JSON (${(err as Error).message})`));
  }
  const parsed = ResultsFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new FaveFailure(faveError('BAD_REQUEST', `${path}: not a results list at ${issue.path.join('.') || 'the top'}: ${issue.message}`));
  }
  return parsed.data;
}

/** The results files named: a file as given, a folder's `results_*.json` in name order (as FAVE's scripts glob them). */
export async function resultsFilesOf(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    const info = await stat(path).catch(() => null);
    if (!info) throw new FaveFailure(faveError('BAD_REQUEST', `${path}: no such file or folder`));
    if (info.isDirectory()) {
      const names = (await readdir(path)).filter((n) => /^results_.*\.json$/.test(n)).sort();
      files.push(...names.map((n) => join(path, n)));
    } else files.push(path);
  }
  if (files.length > MAX_RUNS) throw new FaveFailure(faveError('BAD_REQUEST', `${files.length} results files: at most ${MAX_RUNS} are compared at once`));
  return files;
}

export async function analyzePaths(paths: readonly string[]): Promise<AnalyzedRun[]> {
  const runs: AnalyzedRun[] = [];
  for (const file of await resultsFilesOf(paths)) runs.push(analyzeRecords(basename(file), await readResultsFile(file)));
  return runs;
}
