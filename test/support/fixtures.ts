import { FaveFailure } from '../../src/domain/errors.ts';
import type { InvocationRecord } from '../../src/domain/invocations.ts';
import { emptyProgress, initialContext, type ClipState, type PipelineContext } from '../../src/domain/context.ts';
import type { Settings } from '../../src/domain/settings.ts';
import { DEFAULT_STAGE_NAMES } from '../../src/domain/stage.ts';

/** A successful first attempt of `stage` that took 1 ms at time 0, with `over` applied. */
export function invocationRecord(stage: string, over: Partial<InvocationRecord> = {}): InvocationRecord {
  return {
    stage,
    clip_index: null,
    frame_index: null,
    attempt: 1,
    queued_at: 0,
    started_at: 0,
    ended_at: 1,
    latency_ms: 1,
    reported_duration_ms: null,
    gateway_duration_ms: null,
    call_id: null,
    cold_start: null,
    memory_limit_mb: null,
    cost_unit: null,
    http_status: 200,
    outcome: 'success',
    error: null,
    ...over,
  };
}

/** The FaveFailure a promise rejects with; fails the test if it resolves or rejects otherwise. */
export async function failureOf(promise: Promise<unknown>): Promise<FaveFailure> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof FaveFailure) return err;
    throw err;
  }
  throw new Error('expected a FaveFailure, but the call succeeded');
}

/** Clip `index` of a request, pending with no progress, with `over` applied. */
export function clipState(index: number, over: Partial<ClipState> = {}): ClipState {
  return { index, uri: `s3://b/clip_${index}.mp4`, start_s: index, end_s: index + 1, status: 'pending', progress: emptyProgress(), frames: [], records: [], error: null, ...over };
}

/** A request's settings: one-ms timeouts, one attempt, four calls at once, no tolerated failure; with `over` applied. */
export function testSettings(over: Partial<Settings> = {}): Settings {
  return {
    bucket: 'b',
    profile: 'default',
    stage_names: DEFAULT_STAGE_NAMES,
    timeouts_ms: { ffmpeg0: 1, librosa: 1, ffmpeg1: 1, ffmpeg2: 1, deepspeech: 1, ffmpeg3: 1, detector: 1 },
    retry: { max_attempts: 1, base_delay_ms: 0, max_delay_ms: 0, stop_on_repeated_error: true },
    max_concurrency: 4,
    tolerated_failure_pct: 0,
    detector_enabled: true,
    min_confidence: 0.5,
    deadline_at: 1000,
    ...over,
  };
}

/** A request's context holding `clips` (with `testSettings`), with `over` applied. */
export function pipelineContext(clips: ClipState[], over: Partial<PipelineContext> = {}): PipelineContext {
  return {
    ...initialContext({ request_id: 'r', video_uri: 's3://b/v.mp4', query: null, settings: testSettings(), started_at: 0 }),
    clips,
    clips_pending: clips.filter((c) => c.status === 'pending').length,
    ...over,
  };
}
