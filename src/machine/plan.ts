import { faveError, describeLocation, type FaveError } from '../domain/errors.ts';
import { failureOf, type ClipStepResult, type FrameResult } from './work.ts';
import { applyStepFacts, CLIP_CHAIN } from './clip-chain.ts';
import type { InvocationRecord } from '../domain/invocations.ts';
import type { ClipState, FrameState, PipelineContext, RunningState, StageCallOutput } from '../domain/context.ts';
import { clipTaskId, emptyProgress, frameTaskId, type AsyncDispatch } from '../domain/context.ts';
import { type DispatchMarker } from '../domain/invocations.ts';

/**
 * Pure bookkeeping of the pipeline machine: how finished work changes the context, when the
 * request has failed, what a redrive keeps. Kept apart so it reads and tests plainly.
 */

export type ClipStepResults = ClipStepResult[];
export type FrameResults = FrameResult[];

const LAST_CLIP_STEP = CLIP_CHAIN[CLIP_CHAIN.length - 1];

export function clipPosition(clips: ClipState[], clipIndex: number): number {
  // Clips are stored sorted by index and usually dense, so the index is the position.
  if (clips[clipIndex]?.index === clipIndex) return clipIndex;
  return clips.findIndex((c) => c.index === clipIndex);
}

export function errorOf(value: unknown, at: RunningState): FaveError {
  const { error } = failureOf(value);
  return error.stage || error.step ? error : { ...error, step: at };
}

/** A failed attempt that will be tried again, kept until its call settles. */
export function recordRetry(context: PipelineContext, taskId: string, record: InvocationRecord): Partial<PipelineContext> {
  return { retrying: { ...context.retrying, [taskId]: [...(context.retrying[taskId] ?? []), record] } };
}

/** Async calls queued by the gateway; each replaces the dispatch of its task's previous attempt. */
export function recordDispatches(context: PipelineContext, dispatches: Record<string, AsyncDispatch>): Partial<PipelineContext> {
  return { dispatched: { ...context.dispatched, ...dispatches } };
}

/**
 * A per-task map (`retrying`, `dispatched`) without the calls that settled: their results carry
 * those attempts' records.
 */
export function settleRetries<T, V>(retrying: Record<string, V>, settled: readonly T[], taskIdOf: (item: T) => string): Record<string, V> {
  if (Object.keys(retrying).length === 0) return retrying;
  let left: Record<string, V> | null = null;
  for (const item of settled) {
    const id = taskIdOf(item);
    if (!(id in retrying)) continue;
    left ??= { ...retrying };
    delete left[id];
  }
  return left ?? retrying;
}

/** Folds the result of a single-call stage (ffmpeg-0, librosa, ffmpeg-1) into the context. */
export function applyStep(context: PipelineContext, output: StageCallOutput): Partial<PipelineContext> {
  const records = [...context.records, ...output.records];
  const retrying = settleRetries(context.retrying, [output], (o) => o.task_id);
  const dispatched = settleRetries(context.dispatched, [output], (o) => o.task_id);
  const facts = output.facts;
  if (!facts) return { records, retrying, dispatched };
  switch (facts.kind) {
    case 'timestamps':
      return { records, retrying, dispatched, steps: { ...context.steps, librosa: { output_uri: facts.uri } }, clip_times: facts.clip_times };
    case 'clips': {
      const clips: ClipState[] = facts.clips.map((c) => {
        const fallback = context.clip_times?.[c.index] ?? null;
        return {
          index: c.index,
          uri: c.uri,
          start_s: c.start_s ?? fallback?.start_s ?? null,
          end_s: c.end_s ?? fallback?.end_s ?? null,
          status: 'pending',
          progress: emptyProgress(),
          frames: [],
          records: [],
          error: null,
        };
      });
      return { records, retrying, dispatched, steps: { ...context.steps, ffmpeg1: { output_uri: facts.uri } }, clips, clips_pending: clips.length };
    }
    default:
      return output.step === 'ffmpeg0' ? { records, retrying, dispatched, steps: { ...context.steps, ffmpeg0: { output_uri: facts.uri } } } : { records, retrying, dispatched };
  }
}

/**
 * Folds a batch of finished clip steps into the clips: progress and records; a failed step fails
 * its clip; the last step of the chain finishes it, with its frames ready for detection.
 */
export function settleClipSteps(context: PipelineContext, results: ClipStepResult[]): Partial<PipelineContext> {
  if (results.length === 0) return {};
  const clips = context.clips.slice();
  let ended = 0;
  let newlyFailed = 0;
  for (const r of results) {
    const position = clipPosition(clips, r.clip_index);
    const clip = clips[position];
    if (!clip || clip.status === 'done' || clip.status === 'failed') continue;
    const records = [...clip.records, ...r.records];
    if (!r.facts) {
      ended++;
      newlyFailed++;
      clips[position] = { ...clip, status: 'failed', records, error: r.error ?? faveError('INTERNAL', `${r.step} failed without an error value`) };
      continue;
    }
    const progress = applyStepFacts(clip.progress, r.facts);
    if (r.step === LAST_CLIP_STEP && r.facts.kind === 'frames') {
      ended++;
      const frames: FrameState[] = r.facts.frames.map((f) => ({ index: f.index, uri: f.uri, status: 'pending', detections: [], note: null, records: [], error: null }));
      clips[position] = { ...clip, status: 'done', progress, frames, records, error: null };
    } else {
      clips[position] = { ...clip, progress, records };
    }
  }
  return {
    clips,
    clips_pending: Math.max(0, context.clips_pending - ended),
    failed_clips: context.failed_clips + newlyFailed,
    retrying: settleRetries(context.retrying, results, (r) => clipTaskId(r.clip_index, r.step)),
    dispatched: settleRetries(context.dispatched, results, (r) => clipTaskId(r.clip_index, r.step)),
  };
}

/**
 * Folds a batch of detection results into the clips: one copy of the clip list per batch and
 * one of each touched clip's frames. A failed frame fails its clip.
 */
export function settleFrames(context: PipelineContext, results: FrameResult[]): Partial<PipelineContext> {
  if (results.length === 0) return {};
  const byClip = new Map<number, FrameResult[]>();
  for (const r of results) {
    const list = byClip.get(r.clip_index);
    if (list) list.push(r);
    else byClip.set(r.clip_index, [r]);
  }
  const clips = context.clips.slice();
  let settled = 0;
  let newlyFailed = 0;
  for (const [clipIndex, list] of byClip) {
    const position = clipPosition(clips, clipIndex);
    const clip = clips[position];
    if (!clip) continue;
    const byFrame = new Map(list.map((r) => [r.frame_index, r]));
    let firstError: FaveError | null = null;
    const frames = clip.frames.map((f): FrameState => {
      const r = byFrame.get(f.index);
      if (!r || f.status === 'done' || f.status === 'failed') return f;
      settled++;
      const facts = r.facts?.kind === 'detections' ? r.facts : null;
      if (!facts) firstError ??= r.error;
      return {
        ...f,
        status: facts ? 'done' : 'failed',
        detections: facts?.detections ?? [],
        note: facts?.note ?? null,
        records: [...f.records, ...r.records],
        error: facts ? null : r.error,
      };
    });
    if (firstError && clip.status !== 'failed') {
      newlyFailed++;
      clips[position] = { ...clip, frames, status: 'failed', error: firstError };
    } else {
      clips[position] = { ...clip, frames };
    }
  }
  return {
    clips,
    frames_pending: Math.max(0, context.frames_pending - settled),
    failed_clips: context.failed_clips + newlyFailed,
    retrying: settleRetries(context.retrying, results, (r) => frameTaskId(r.clip_index, r.frame_index)),
    dispatched: settleRetries(context.dispatched, results, (r) => frameTaskId(r.clip_index, r.frame_index)),
  };
}

/**
 * Records, as `interrupted`, every dispatched sync attempt the context has no record of: sent
 * before the process stopped, its answer never recorded. An async attempt the call would make
 * next is put back in `dispatched` instead (`queued`), waited for until its timeout from the
 * marker's time, and only then retried as the next attempt. Each goes with the unit it belongs to (the
 * request, the clip, the frame), so it counts as an invocation and shows on the timeline; it
 * does not count against the call's retry budget. Attempts already recorded are left alone, so
 * reading the same dispatches again changes nothing.
 */
export function recordInterrupted(
  context: PipelineContext,
  markers: readonly DispatchMarker[],
  lastSeenAt: number,
): { context: PipelineContext; interrupted: number; queued: number } {
  const known = new Set<string>();
  const collect = (records: readonly InvocationRecord[]) => {
    for (const r of records) if (r.dispatch_id !== undefined) known.add(r.dispatch_id);
  };
  collect(context.records);
  for (const failed of Object.values(context.retrying)) collect(failed);
  // An async attempt still queued is continued by the resume: waited for, not lost.
  for (const queued of Object.values(context.dispatched)) if (queued.dispatch_id !== undefined) known.add(queued.dispatch_id);
  for (const clip of context.clips) {
    collect(clip.records);
    for (const frame of clip.frames) collect(frame.records);
  }
  const unknown = markers.filter((m) => !known.has(m.id)).sort((a, b) => a.at - b.at);
  if (unknown.length === 0) return { context, interrupted: 0, queued: 0 };
  // An async attempt the journal has and state.json does not is queued, not lost: its answer
  // comes by callback to any replica, so the resume waits for it instead of sending it again.
  let dispatched = context.dispatched;
  const missing: DispatchMarker[] = [];
  for (const marker of unknown) {
    const dispatch = queuedDispatch(context, marker);
    const current = dispatched[marker.task_id];
    if (dispatch && (!current || current.attempt < dispatch.attempt)) {
      known.add(marker.id);
      dispatched = { ...dispatched, [marker.task_id]: dispatch };
    } else {
      missing.push(marker);
    }
  }
  const queued = unknown.length - missing.length;
  if (missing.length === 0) return { context: { ...context, dispatched }, interrupted: 0, queued };
  let records = context.records;
  const clips = context.clips.slice();
  for (const marker of missing) {
    known.add(marker.id);
    const record = interruptedRecord(marker, lastSeenAt);
    const position = marker.clip_index === null ? -1 : clipPosition(clips, marker.clip_index);
    const clip = clips[position];
    if (!clip) {
      records = [...records, record];
      continue;
    }
    const frameAt = marker.frame_index === null ? -1 : clip.frames.findIndex((f) => f.index === marker.frame_index);
    const frame = clip.frames[frameAt];
    if (frame) {
      const frames = clip.frames.slice();
      frames[frameAt] = { ...frame, records: [...frame.records, record] };
      clips[position] = { ...clip, frames };
    } else {
      clips[position] = { ...clip, records: [...clip.records, record] };
    }
  }
  return { context: { ...context, records, clips, dispatched }, interrupted: missing.length, queued };
}

/**
 * The dispatch to wait for, when a marker is an async attempt of the current run that is the
 * very next attempt its call makes (after the failed ones kept in `retrying`); null otherwise
 * (a sync call, an older run, or an attempt its call has gone past).
 */
function queuedDispatch(context: PipelineContext, marker: DispatchMarker): AsyncDispatch | null {
  if (marker.mode !== 'async' || marker.run !== context.redrives || marker.timeout_ms === undefined) return null;
  const failed = context.retrying[marker.task_id]?.length ?? 0;
  if (marker.attempt !== failed + 1) return null;
  return { run: marker.run, attempt: marker.attempt, call_id: null, dispatched_at: marker.at, timeout_ms: marker.timeout_ms, dispatch_id: marker.id };
}

/** Its end is unknown: the last moment the request's state was written, if after the send. */
function interruptedRecord(marker: DispatchMarker, lastSeenAt: number): InvocationRecord {
  const ended = Math.max(marker.at, lastSeenAt);
  return {
    stage: marker.stage,
    clip_index: marker.clip_index,
    frame_index: marker.frame_index,
    attempt: marker.attempt,
    queued_at: marker.at,
    started_at: marker.at,
    ended_at: ended,
    latency_ms: ended - marker.at,
    reported_duration_ms: null,
    gateway_duration_ms: null,
    call_id: null,
    cold_start: null,
    memory_limit_mb: null,
    cost_unit: null,
    http_status: null,
    outcome: 'interrupted',
    error: null,
    dispatch_id: marker.id,
  };
}

/**
 * Whether a clip is past its last change of the request's run: its chain failed, or every one of
 * its frames is detected or failed. Only a redrive changes such a clip again.
 */
export function clipSettled(clip: ClipState): boolean {
  if (clip.status === 'failed') return true;
  if (clip.status !== 'done') return false;
  for (const frame of clip.frames) if (frame.status === 'pending') return false;
  return true;
}

export function failedClips(context: PipelineContext): ClipState[] {
  return context.clips.filter((c) => c.status === 'failed');
}

/** More clips failed than the profile tolerates (any failure, when it tolerates none). */
export function tooManyFailures(context: PipelineContext): boolean {
  const failed = context.failed_clips;
  if (failed === 0) return false;
  return (failed * 100) / context.clips.length > context.settings.tolerated_failure_pct;
}

export function tooManyFailuresError(context: PipelineContext): FaveError {
  const failed = failedClips(context);
  const first = failed[0]?.error ?? faveError('INTERNAL', 'a clip failed without an error value');
  if (context.settings.tolerated_failure_pct === 0) return first;
  const pct = Math.round((failed.length * 1000) / context.clips.length) / 10;
  return faveError(
    'TOO_MANY_FAILURES',
    `${failed.length} of ${context.clips.length} clips failed (${pct}%), more than the profile tolerates ` +
      `(${context.settings.tolerated_failure_pct}%); first failure at ${describeLocation(first)}: ${first.message}`,
    { ...(first.stage ? { stage: first.stage } : {}), ...(first.clip_index !== undefined ? { clip_index: first.clip_index } : {}) },
  );
}

/** Clears the failure so the failed step runs again; finished work is kept. */
export function prepareRedrive(context: PipelineContext, now: number): Partial<PipelineContext> {
  const budget = context.settings.deadline_at - context.started_at;
  const clips = context.clips.map((clip): ClipState => {
    if (clip.status !== 'failed') return clip;
    const frames = clip.frames.map((f) => (f.status === 'failed' ? { ...f, status: 'pending' as const, error: null } : f));
    // A clip whose chain finished failed in detection: it is done, only its frames run again.
    return { ...clip, status: clip.progress.frames ? 'done' : 'pending', frames, error: null };
  });
  const pending = clips.filter((c) => c.status === 'pending').length;
  return {
    clips,
    failed_clips: 0,
    clips_pending: pending,
    error: null,
    failed_at: null,
    finished_at: null,
    frames_pending: 0,
    redrives: context.redrives + 1,
    // A redriven call gets the whole retry budget again.
    retrying: {},
    dispatched: {},
    settings: { ...context.settings, deadline_at: now + budget },
  };
}
