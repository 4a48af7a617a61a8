import { describe, expect, it } from 'vitest';
import { MetricsSummarySchema } from '../src/domain/result.ts';
import { faveError } from '../src/domain/errors.ts';
import { InvocationRecordSchema, percentile, summarizeInvocations, type InvocationRecord } from '../src/domain/invocations.ts';
import { allRecords, clipTally, summarizeRequest } from '../src/domain/answer.ts';
import { clipState, invocationRecord, pipelineContext } from './support/fixtures.ts';

let clock = 1_700_000_000_000;

function record(stage: string, latency_ms: number, extra: Partial<InvocationRecord> = {}): InvocationRecord {
  const started_at = clock;
  clock += latency_ms + 10;
  return invocationRecord(stage, { queued_at: started_at - 5, started_at, ended_at: started_at + latency_ms, latency_ms, ...extra });
}

describe('percentile (nearest rank)', () => {
  it('is 0 for no values', () => {
    expect(percentile([], 50)).toBe(0);
    expect(percentile([], 95)).toBe(0);
  });

  it('is the single value for one value, whatever p', () => {
    for (const p of [0, 1, 50, 95, 100]) expect(percentile([42], p)).toBe(42);
  });

  it('picks the value at rank ceil(p/100 * n) of the sorted values', () => {
    const values = [15, 20, 35, 40, 50];
    expect(percentile(values, 5)).toBe(15);
    expect(percentile(values, 30)).toBe(20);
    expect(percentile(values, 40)).toBe(20);
    expect(percentile(values, 50)).toBe(35);
    expect(percentile(values, 95)).toBe(50);
    expect(percentile(values, 100)).toBe(50);
  });

  it('does not depend on the input order and leaves the input alone', () => {
    const values = [50, 15, 40, 20, 35];
    expect(percentile(values, 50)).toBe(35);
    expect(values).toEqual([50, 15, 40, 20, 35]);
  });

  it('never interpolates between values', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 51)).toBe(3);
    expect(percentile([10, 20], 50)).toBe(10);
  });

  it('handles 100 values exactly', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 95)).toBe(95);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile(values, 100)).toBe(100);
  });

  it('clamps p to 0..100 and ignores non-finite values', () => {
    expect(percentile([3, 1, 2], -10)).toBe(1);
    expect(percentile([3, 1, 2], 250)).toBe(3);
    expect(percentile([Number.NaN, 5, Number.POSITIVE_INFINITY, 1], 100)).toBe(5);
    expect(percentile([Number.NaN], 50)).toBe(0);
  });
});

describe('summarizeInvocations', () => {
  it('summarises no records as zeros', () => {
    expect(summarizeInvocations([], 12.4)).toEqual({
      wall_ms: 12,
      invocations: 0,
      retries: 0,
      cold_starts: 0,
      cost_units: 0,
      stages: {},
    });
  });

  it('counts every attempt, retries, cold starts and cost, overall and per stage', () => {
    const records: InvocationRecord[] = [
      record('stage-ffmpeg-0', 1200, { cold_start: true, cost_unit: 0.6 }),
      record('stage-librosa', 800, { cold_start: false, cost_unit: 0.4 }),
      record('stage-ffmpeg-2', 100, { clip_index: 0, cold_start: true, cost_unit: 0.1 }),
      record('stage-ffmpeg-2', 300, {
        clip_index: 1,
        outcome: 'error',
        http_status: 502,
        error: faveError('STAGE_UNAVAILABLE', 'gateway answered 502', { stage: 'stage-ffmpeg-2', clip_index: 1 }),
      }),
      record('stage-ffmpeg-2', 200, { clip_index: 1, attempt: 2, cost_unit: 0.2 }),
      record('stage-ffmpeg-2', 400, { clip_index: 2, cost_unit: null }),
      record('stage-object-detector', 0, { clip_index: 0, frame_index: 0, outcome: 'skipped', http_status: null }),
    ];
    expect(summarizeInvocations(records, 5123.6)).toEqual({
      wall_ms: 5124,
      invocations: 7,
      retries: 1,
      cold_starts: 2,
      cost_units: 1.3,
      stages: {
        'stage-ffmpeg-0': { count: 1, failures: 0, retries: 0, p50_ms: 1200, p95_ms: 1200, max_ms: 1200, cold_starts: 1, cost_units: 0.6 },
        'stage-librosa': { count: 1, failures: 0, retries: 0, p50_ms: 800, p95_ms: 800, max_ms: 800, cold_starts: 0, cost_units: 0.4 },
        'stage-ffmpeg-2': { count: 4, failures: 1, retries: 1, p50_ms: 200, p95_ms: 400, max_ms: 400, cold_starts: 1, cost_units: 0.3 },
        'stage-object-detector': { count: 1, failures: 0, retries: 0, p50_ms: 0, p95_ms: 0, max_ms: 0, cold_starts: 0, cost_units: 0 },
      },
    });
  });

  it('lists stages in the order of their first record', () => {
    const records = [record('b', 1), record('a', 1), record('b', 1), record('c', 1)];
    expect(Object.keys(summarizeInvocations(records, 0).stages)).toEqual(['b', 'a', 'c']);
  });

  it('counts only outcome "error" as a failure; skipped and simulated are not failures', () => {
    const records = [
      record('s', 10, { outcome: 'success' }),
      record('s', 10, { outcome: 'skipped' }),
      record('s', 10, { outcome: 'simulated' }),
      record('s', 10, { outcome: 'error', error: faveError('STAGE_TIMEOUT', 'timed out') }),
      record('s', 10, { outcome: 'error', error: faveError('STAGE_REPORTED_ERROR', 'bad input') }),
    ];
    expect(summarizeInvocations(records, 0).stages.s?.failures).toBe(2);
  });

  it('counts every attempt above the first as a retry', () => {
    const records = [record('s', 10, { attempt: 1 }), record('s', 10, { attempt: 2 }), record('s', 10, { attempt: 3 }), record('t', 10, { attempt: 4 })];
    const summary = summarizeInvocations(records, 0);
    expect(summary.retries).toBe(3);
    expect(summary.stages.s?.retries).toBe(2);
    expect(summary.stages.t?.retries).toBe(1);
  });

  it('counts only cold_start === true, not false or unknown', () => {
    const records = [record('s', 10, { cold_start: true }), record('s', 10, { cold_start: false }), record('s', 10, { cold_start: null }), record('s', 10, { cold_start: true })];
    const summary = summarizeInvocations(records, 0);
    expect(summary.cold_starts).toBe(2);
    expect(summary.stages.s?.cold_starts).toBe(2);
  });

  it('uses nearest-rank percentiles of latency_ms, rounded to whole milliseconds', () => {
    const latencies = Array.from({ length: 20 }, (_, i) => (i + 1) * 10.4);
    const summary = summarizeInvocations(
      latencies.reverse().map((l) => record('s', l)),
      99.5,
    );
    expect(summary.wall_ms).toBe(100);
    expect(summary.stages.s).toMatchObject({ count: 20, p50_ms: 104, p95_ms: 198, max_ms: 208 });
  });

  it('uses latency_ms rather than the reported or gateway duration', () => {
    const summary = summarizeInvocations([record('s', 250, { reported_duration_ms: 100, gateway_duration_ms: 200 })], 0);
    expect(summary.stages.s).toMatchObject({ p50_ms: 250, p95_ms: 250, max_ms: 250 });
  });

  it('sums cost units with null as 0, rounded to 6 decimals', () => {
    const records = [record('s', 1, { cost_unit: 0.1 }), record('s', 1, { cost_unit: 0.2 }), record('s', 1, { cost_unit: null }), record('t', 1, { cost_unit: 1.23456789 })];
    const summary = summarizeInvocations(records, 0);
    expect(summary.stages.s?.cost_units).toBe(0.3);
    expect(summary.stages.t?.cost_units).toBe(1.234568);
    expect(summary.cost_units).toBe(1.534568);
  });

  it('keeps a stage named like an Object.prototype property as a plain key', () => {
    const summary = summarizeInvocations([record('__proto__', 5), record('constructor', 6)], 0);
    expect(Object.keys(summary.stages)).toEqual(['__proto__', 'constructor']);
    expect(Object.getPrototypeOf(summary.stages)).toBe(Object.prototype);
    expect(summary.stages.constructor).toMatchObject({ count: 1, max_ms: 6 });
  });

  it('produces a summary that satisfies the result schema and survives JSON', () => {
    const summary = summarizeInvocations([record('stage-ffmpeg-0', 12.7, { cost_unit: 2.61, cold_start: true }), record('stage-deepspeech', 3, { attempt: 2 })], 77);
    expect(MetricsSummarySchema.parse(summary)).toEqual(summary);
    expect(JSON.parse(JSON.stringify(summary))).toEqual(summary);
  });
});

describe('summarizeRequest', () => {
  const frame = (index: number, records: InvocationRecord[]) => ({ index, uri: `s3://b/f${index}.jpg`, status: 'done' as const, detections: [], note: null, records, error: null });

  it("sums a request the way summarizeInvocations sums all its records, from the clips' tallies", () => {
    const clips = [
      clipState(0, {
        status: 'done',
        records: [record('stage-ffmpeg-2', 100, { clip_index: 0, cost_unit: 0.1, cold_start: true }), record('stage-deepspeech', 300, { clip_index: 0, cost_unit: 0.3 })],
        frames: [
          frame(0, [record('stage-object-detector', 20, { clip_index: 0, frame_index: 0, cost_unit: 0.02 })]),
          frame(1, [record('stage-object-detector', 40, { clip_index: 0, frame_index: 1, attempt: 2 })]),
        ],
      }),
      clipState(1, {
        records: [record('stage-ffmpeg-2', 200, { clip_index: 1, outcome: 'interrupted' }), record('stage-ffmpeg-2', 250, { clip_index: 1, attempt: 2, cost_unit: 0.2 })],
      }),
    ];
    const context = pipelineContext(clips, {
      records: [record('stage-ffmpeg-0', 1200, { cost_unit: 0.6 }), record('stage-librosa', 800)],
      retrying: { 'clip-1/deepspeech': [record('stage-deepspeech', 90, { clip_index: 1, outcome: 'error', error: faveError('STAGE_TIMEOUT', 'timed out') })] },
    });
    const summary = summarizeRequest(context, 4321);
    expect(summary).toEqual(summarizeInvocations(allRecords(context), 4321));
    expect(Object.keys(summary.stages)).toEqual(['stage-ffmpeg-0', 'stage-librosa', 'stage-deepspeech', 'stage-ffmpeg-2', 'stage-object-detector']);
    expect(summary.stages['stage-deepspeech']).toMatchObject({ count: 2, failures: 1 });
    expect(summary.stages['stage-ffmpeg-2']).toMatchObject({ count: 3, retries: 1, max_ms: 250 });
  });

  it('tallies a clip once: the same clip object gives the same tally, a changed clip a new one', () => {
    const clip = clipState(0, { records: [record('stage-ffmpeg-2', 100, { clip_index: 0 })] });
    expect(clipTally(clip)).toBe(clipTally(clip));
    const changed = { ...clip, records: [...clip.records, record('stage-deepspeech', 50, { clip_index: 0 })] };
    expect(clipTally(changed)).not.toBe(clipTally(clip));
    expect([...clipTally(changed).keys()]).toEqual(['stage-ffmpeg-2', 'stage-deepspeech']);
  });
});

describe('InvocationRecordSchema', () => {
  it('accepts a record as persisted and read back from JSON', () => {
    const r = record('stage-ffmpeg-2', 120, {
      clip_index: 2,
      attempt: 2,
      reported_duration_ms: 100,
      gateway_duration_ms: 110,
      call_id: 'abc-123',
      cold_start: false,
      memory_limit_mb: 512,
      cost_unit: 2.61,
      outcome: 'error',
      http_status: 504,
      error: faveError('STAGE_TIMEOUT', 'no answer within 300 s', { stage: 'stage-ffmpeg-2', clip_index: 2, transient: true }),
    });
    const roundTripped: unknown = JSON.parse(JSON.stringify(r));
    expect(InvocationRecordSchema.parse(roundTripped)).toEqual(r);
  });

  it('rejects a record with a missing field, a bad outcome, attempt 0 or a malformed error', () => {
    const { call_id: _dropped, ...withoutCallId } = record('s', 1);
    expect(InvocationRecordSchema.safeParse(withoutCallId).success).toBe(false);
    expect(InvocationRecordSchema.safeParse({ ...record('s', 1), outcome: 'done' }).success).toBe(false);
    expect(InvocationRecordSchema.safeParse({ ...record('s', 1), attempt: 0 }).success).toBe(false);
    expect(InvocationRecordSchema.safeParse({ ...record('s', 1), error: { code: 'X' } }).success).toBe(false);
  });
});
