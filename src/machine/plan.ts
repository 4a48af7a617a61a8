import { faveError, toFaveError, describeLocation, type FaveError } from '../errors.ts';
import { failureOf, type FrameResult } from './actors.ts';
import type { ClipState, ClipTaskOutput, FrameState, PipelineContext, RunningState, StageCallOutput } from './context.ts';
import { emptyProgress } from './context.ts';

/**
 * Pure bookkeeping of the pipeline machine: which units start next, how a finished unit
 * changes the context, when the request has failed. Kept apart so it reads and tests plainly.
 */

export const clipTaskId = (clip: number) => `clip-${clip}`;

export function clipPosition(clips: ClipState[], clipIndex: number): number {
  // Clips are stored sorted by index and usually dense, so the index is the position.
  if (clips[clipIndex]?.index === clipIndex) return clipIndex;
  return clips.findIndex((c) => c.index === clipIndex);
}

export function errorOf(value: unknown, at: RunningState): FaveError {
  const { error } = failureOf(value);
  return error.stage ? error : { ...error, stage: at };
}

/** Folds the result of a single-call stage (ffmpeg-0, librosa, ffmpeg-1) into the context. */
export function applyStep(context: PipelineContext, output: StageCallOutput): Partial<PipelineContext> {
  const records = [...context.records, ...output.records];
  const facts = output.facts;
  if (!facts) return { records };
  switch (facts.kind) {
    case 'timestamps':
      return { records, steps: { ...context.steps, librosa: { output_uri: facts.uri } }, clip_times: facts.clip_times, clips_note: facts.note };
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
      return { records, steps: { ...context.steps, ffmpeg1: { output_uri: facts.uri } }, clips, next_clip: 0, active: 0 };
    }
    default:
      return output.stage === 'ffmpeg0' ? { records, steps: { ...context.steps, ffmpeg0: { output_uri: facts.uri } } } : { records };
  }
}

export function nextPendingClip(context: PipelineContext, from: number): number {
  for (let i = from; i < context.clips.length; i++) if (context.clips[i]!.status === 'pending') return i;
  return -1;
}

/** Positions of the clips to start now, bounded by the request's concurrency. */
export function clipsToStart(context: PipelineContext): { starts: number[]; next_clip: number } {
  const free = context.settings.max_concurrency - context.active;
  const starts: number[] = [];
  let cursor = context.next_clip;
  while (starts.length < free) {
    const next = nextPendingClip(context, cursor);
    if (next === -1) {
      cursor = context.clips.length;
      break;
    }
    starts.push(next);
    cursor = next + 1;
  }
  return { starts, next_clip: cursor };
}

export function settleClip(context: PipelineContext, output: ClipTaskOutput): Partial<PipelineContext> {
  const position = clipPosition(context.clips, output.clip_index);
  const clip = context.clips[position];
  if (!clip || clip.status !== 'running') return {};
  const clips = context.clips.slice();
  const frames: FrameState[] = (output.progress.frames ?? []).map((f) => ({
    index: f.index,
    uri: f.uri,
    status: 'pending',
    detections: [],
    note: null,
    records: [],
    error: null,
  }));
  clips[position] = {
    ...clip,
    status: output.error ? 'failed' : 'done',
    progress: output.progress,
    frames: output.error ? clip.frames : frames,
    records: [...clip.records, ...output.records],
    error: output.error,
  };
  return { clips, active: context.active - 1, failed_clips: context.failed_clips + (output.error ? 1 : 0) };
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
  };
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

export function runningTaskIds(context: PipelineContext): string[] {
  const ids: string[] = [];
  for (const clip of context.clips) {
    if (clip.status === 'running') ids.push(clipTaskId(clip.index));
  }
  return ids;
}

/** What stopped clip tasks had learned, by task id. */
export type PartialClips = Record<string, Pick<ClipTaskOutput, 'progress' | 'records'>>;

/**
 * Units that were in flight when the request stopped go back to pending, ready for a redrive,
 * keeping what their clip tasks had finished.
 */
export function releaseRunning(context: PipelineContext, partial: PartialClips = {}): Partial<PipelineContext> {
  if (context.active === 0) return {};
  const clips = context.clips.map((clip) => {
    const frames = clip.frames.some((f) => f.status === 'running')
      ? clip.frames.map((f) => (f.status === 'running' ? { ...f, status: 'pending' as const } : f))
      : clip.frames;
    if (clip.status !== 'running') return frames === clip.frames ? clip : { ...clip, frames };
    const learned = partial[clipTaskId(clip.index)];
    return {
      ...clip,
      status: 'pending' as const,
      frames,
      progress: learned ? learned.progress : clip.progress,
      records: learned ? [...clip.records, ...learned.records] : clip.records,
    };
  });
  return { clips, active: 0 };
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
  return {
    clips,
    failed_clips: 0,
    error: null,
    failed_at: null,
    finished_at: null,
    next_clip: 0,
    frames_pending: 0,
    active: 0,
    redrives: context.redrives + 1,
    settings: { ...context.settings, deadline_at: now + budget },
  };
}

export { toFaveError };
