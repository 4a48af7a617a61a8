import { z } from 'zod';
import type { MetricsSummary, StageSummary } from './result.ts';
import { FaveErrorSchema, type FaveError } from './errors.ts';
import { StageOutputSchema } from './stage.ts';

/**
 * One attempt at one stage call. Persisted in state.json, so it stays plain JSON: times are
 * epoch milliseconds, absent facts are `null`.
 */
export const InvocationRecordSchema = z.object({
  stage: z.string(),
  clip_index: z.number().int().nullable(),
  frame_index: z.number().int().nullable(),
  /** 1 for the first try; above 1 for a retry. */
  attempt: z.number().int().positive(),
  queued_at: z.number(),
  started_at: z.number(),
  ended_at: z.number(),
  latency_ms: z.number(),
  /** `metrics.duration_ms` as the stage reported it. */
  reported_duration_ms: z.number().nullable(),
  /** The gateway's `X-Duration-Seconds`, in milliseconds. */
  gateway_duration_ms: z.number().nullable(),
  /** The gateway's `X-Call-Id`. */
  call_id: z.string().nullable(),
  cold_start: z.boolean().nullable(),
  memory_limit_mb: z.number().nullable(),
  cost_unit: z.number().nullable(),
  http_status: z.number().int().nullable(),
  /**
   * `interrupted`: the attempt was sent, but the process driving the request stopped before its
   * answer was recorded (a crash, a shutdown); the call was made again on resume.
   */
  outcome: z.enum(['success', 'error', 'skipped', 'simulated', 'interrupted']),
  error: FaveErrorSchema.nullable(),
  /** Set for a call made through the gateway's queue; `queued_at` is then its dispatch. */
  call_mode: z.literal('async').optional(),
  /** Async calls: dispatch → function start (from X-Start-Time), null when the start is not known. */
  queue_delay_ms: z.number().nullable().optional(),
  /** SHA-256 (hex, first 16) of the body of an answer other than HTTP 200: tells a repeat. */
  response_digest: z.string().optional(),
  /** The attempt's marker in the dispatch journal. */
  dispatch_id: z.string().optional(),
  /**
   * The stage's `outputs`, on the attempt that settled its call successfully, with their short
   * scalar metadata only. Left out for ffmpeg-3, whose one output per frame is in the clip's
   * frame list already.
   */
  outputs: z.array(StageOutputSchema).optional(),
});
export type InvocationRecord = z.infer<typeof InvocationRecordSchema>;

/** An attempt as it was about to be sent: what a crash leaves of a call whose answer was never recorded. */
export const DispatchMarkerSchema = z.object({
  /** Unique per attempt; the attempt's invocation record carries it as `dispatch_id`. */
  id: z.string(),
  task_id: z.string(),
  /** Function name. */
  stage: z.string(),
  clip_index: z.number().int().nullable(),
  frame_index: z.number().int().nullable(),
  attempt: z.number().int().positive(),
  /** Epoch ms when it was dispatched. */
  at: z.number(),
  /**
   * How it was sent: a sync call's answer is lost with the process that waited for it; an async
   * call's comes by callback to any replica. Absent in journals written before it was recorded: sync.
   */
  mode: z.enum(['sync', 'async']).optional(),
  /** The request's redrive count when it was sent. */
  run: z.number().int().min(0).optional(),
  /** How long its answer is awaited from `at` (the call's timeout, within the request deadline). */
  timeout_ms: z.number().positive().optional(),
});
export type DispatchMarker = z.infer<typeof DispatchMarkerSchema>;

/** A failed attempt: the classified error and the record of the attempt. Plain JSON. */
export interface StageCallFailure {
  error: FaveError;
  record: InvocationRecord;
}

export function isStageCallFailure(value: unknown): value is StageCallFailure {
  return typeof value === 'object' && value !== null && 'error' in value && 'record' in value;
}

/**
 * Nearest-rank percentile (p in 0..100): the smallest value with at least p% of the values at
 * or below it. Always one of the values, never interpolated; 0 for no values.
 */
export function percentile(values: readonly number[], p: number): number {
  return rankOf(finiteSorted(values), p);
}

function finiteSorted(values: readonly number[]): Float64Array {
  return Float64Array.from(values.filter((v) => Number.isFinite(v))).sort();
}

/** The nearest-rank percentile of values already sorted ascending. */
function rankOf(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const clamped = Math.min(100, Math.max(0, p));
  const rank = Math.max(1, Math.ceil((clamped / 100) * sorted.length));
  return sorted[rank - 1] ?? 0;
}

function roundCost(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}

/** What the records of one stage add up to, so far: a part of a summary. */
interface StageTally {
  count: number;
  failures: number;
  retries: number;
  coldStarts: number;
  cost: number;
  /** Of the attempts that ended: an interrupted one's end is not known. */
  latencies: number[];
}

/**
 * What some records add up to, stage by stage in the order of their first record. Tallies of
 * parts (a settled clip's records, made once) merge into the summary of the whole.
 */
export type RecordTally = ReadonlyMap<string, StageTally>;

/** The tally of some lists of records, in their order, in one pass over each. */
export function tallyRecords(lists: ReadonlyArray<readonly InvocationRecord[]>): RecordTally {
  const tally = new Map<string, StageTally>();
  for (const records of lists) addToTally(tally, records);
  return tally;
}

function addToTally(tally: Map<string, StageTally>, records: readonly InvocationRecord[]): void {
  for (const r of records) {
    let stage = tally.get(r.stage);
    if (!stage) {
      stage = { count: 0, failures: 0, retries: 0, coldStarts: 0, cost: 0, latencies: [] };
      tally.set(r.stage, stage);
    }
    stage.count++;
    if (r.outcome === 'error') stage.failures++;
    if (r.attempt > 1) stage.retries++;
    if (r.cold_start === true) stage.coldStarts++;
    stage.cost += r.cost_unit ?? 0;
    if (r.outcome !== 'interrupted') stage.latencies.push(r.latency_ms);
  }
}

function summarizeStage(stage: StageTally): StageSummary {
  // Sorted once for all three ranks.
  const sorted = finiteSorted(stage.latencies);
  return {
    count: stage.count,
    failures: stage.failures,
    retries: stage.retries,
    p50_ms: Math.round(rankOf(sorted, 50)),
    p95_ms: Math.round(rankOf(sorted, 95)),
    max_ms: Math.round(rankOf(sorted, 100)),
    cold_starts: stage.coldStarts,
    cost_units: roundCost(stage.cost),
  };
}

/**
 * The `metrics` block of final.json. Every record is one attempt, so `invocations` counts
 * retries too. Stages appear in the order of their first record, which is pipeline order.
 */
export function summarizeInvocations(records: readonly InvocationRecord[], wallMs: number): MetricsSummary {
  return summarizeTallies([tallyRecords([records])], wallMs);
}

/** The same for records tallied in parts, in record order: the parts' stages in order of first appearance. */
export function summarizeTallies(parts: readonly RecordTally[], wallMs: number): MetricsSummary {
  const merged = new Map<string, StageTally>();
  for (const part of parts) {
    for (const [name, stage] of part) {
      const into = merged.get(name);
      if (!into) {
        merged.set(name, { ...stage, latencies: [...stage.latencies] });
        continue;
      }
      into.count += stage.count;
      into.failures += stage.failures;
      into.retries += stage.retries;
      into.coldStarts += stage.coldStarts;
      into.cost += stage.cost;
      for (const latency of stage.latencies) into.latencies.push(latency);
    }
  }
  let invocations = 0;
  let retries = 0;
  let coldStarts = 0;
  let cost = 0;
  for (const stage of merged.values()) {
    invocations += stage.count;
    retries += stage.retries;
    coldStarts += stage.coldStarts;
    cost += stage.cost;
  }
  return {
    wall_ms: Math.round(wallMs),
    invocations,
    retries,
    cold_starts: coldStarts,
    cost_units: roundCost(cost),
    // fromEntries defines own properties, so even a stage named "__proto__" stays a plain key.
    stages: Object.fromEntries([...merged].map(([name, stage]) => [name, summarizeStage(stage)])),
  };
}
