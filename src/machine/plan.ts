import { faveError, toFaveError, describeLocation, type FaveError } from '../errors.ts';
import { failureOf } from './actors.ts';
import type { ClipState, ClipTaskOutput, FrameState, PipelineContext, RunningState, StageCallOutput } from './context.ts';
import { emptyProgress } from './context.ts';

/**
 * Pure bookkeeping of the pipeline machine: which units start next, how a finished unit
 * changes the context, when the request has failed. Kept apart so it reads and tests plainly.
 */

export const clipTaskId = (clip: number) => `clip-${clip}`;
export const frameTaskId = (clip: number, frame: number) => `frame-${clip}-${frame}`;

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

/** Frames still to detect, for clips whose chain finished. */
export function pendingFrames(context: PipelineContext): Array<[number, number]> {
  const pairs: Array<[number, number]> = [];
  for (const clip of context.clips) {
    if (clip.status !== 'done') continue;
    for (const frame of clip.frames) if (frame.status === 'pending') pairs.push([clip.index, frame.index]);
  }
  return pairs;
}

export function framesToStart(context: PipelineContext): { starts: Array<[number, number]>; next_frame: number } {
  const free = Math.max(0, context.settings.max_concurrency - context.active);
  const end = Math.min(context.frame_plan.length, context.next_frame + free);
  return { starts: context.frame_plan.slice(context.next_frame, end), next_frame: end };
}

export function settleFrame(context: PipelineContext, output: StageCallOutput): Partial<PipelineContext> {
  if (output.clip_index === null || output.frame_index === null) return {};
  const position = clipPosition(context.clips, output.clip_index);
  const clip = context.clips[position];
  if (!clip) return {};
  const frames = clip.frames.map((f): FrameState => {
    if (f.index !== output.frame_index || f.status !== 'running') return f;
    const facts = output.facts?.kind === 'detections' ? output.facts : null;
    return {
      ...f,
      status: facts ? 'done' : 'failed',
      detections: facts?.detections ?? [],
      note: facts?.note ?? null,
      records: [...f.records, ...output.records],
      error: facts ? null : output.error,
    };
  });
  const failedFrame = frames.find((f) => f.index === output.frame_index && f.status === 'failed');
  const clips = context.clips.slice();
  const newlyFailed = failedFrame !== undefined && clip.status !== 'failed';
  clips[position] = failedFrame
    ? { ...clip, frames, status: 'failed', error: clip.error ?? failedFrame.error }
    : { ...clip, frames };
  return { clips, active: context.active - 1, failed_clips: context.failed_clips + (newlyFailed ? 1 : 0) };
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
    for (const frame of clip.frames) if (frame.status === 'running') ids.push(frameTaskId(clip.index, frame.index));
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
    next_frame: 0,
    frame_plan: [],
    active: 0,
    redrives: context.redrives + 1,
    settings: { ...context.settings, deadline_at: now + budget },
  };
}

export { toFaveError };
