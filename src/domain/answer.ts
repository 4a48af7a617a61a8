import type { ClipResult, FinalResult, MetricsSummary, ObjectSummary } from './result.ts';
import type { ClipState, PipelineContext } from './context.ts';
import { summarizeTallies, tallyRecords, type InvocationRecord, type RecordTally } from './invocations.ts';
import { matchClips } from './query/match.ts';

/** Per-label summary of a clip's frame detections: how many, the best confidence, which frames. */
export function summarizeObjects(clip: { frames: ReadonlyArray<{ index: number; detections: ReadonlyArray<{ label: string; confidence: number }> }> }): ObjectSummary[] {
  const byLabel = new Map<string, { count: number; max: number; maxInFrame: number; frames: Set<number> }>();
  for (const frame of clip.frames) {
    if (frame.detections.length === 0) continue;
    const inFrame = new Map<string, number>();
    for (const d of frame.detections) {
      const entry = byLabel.get(d.label) ?? { count: 0, max: 0, maxInFrame: 0, frames: new Set<number>() };
      entry.count += 1;
      entry.max = Math.max(entry.max, d.confidence);
      entry.frames.add(frame.index);
      byLabel.set(d.label, entry);
      inFrame.set(d.label, (inFrame.get(d.label) ?? 0) + 1);
    }
    for (const [label, n] of inFrame) byLabel.get(label)!.maxInFrame = Math.max(byLabel.get(label)!.maxInFrame, n);
  }
  return [...byLabel.entries()]
    .map(([label, e]) => ({ label, count: e.count, max_in_frame: e.maxInFrame, max_confidence: round(e.max, 4), frames: [...e.frames].sort((a, b) => a - b) }))
    .sort((a, b) => b.count - a.count || b.max_confidence - a.max_confidence || a.label.localeCompare(b.label));
}

/**
 * How many of an object a clip shows, for people: the most seen in one frame and in how many
 * frames, never the sum over frames (one still photo over 7 frames is not 7 people).
 */
export function objectCountText(object: Pick<ObjectSummary, 'count' | 'max_in_frame' | 'frames'>): string {
  const frames = object.frames.length;
  const most = object.max_in_frame ?? Math.max(1, Math.round(object.count / Math.max(1, frames)));
  return `${most} in one frame${object.max_in_frame === undefined ? ' (about)' : ''}, in ${frames} frame${frames === 1 ? '' : 's'}`;
}

/** What a clip's object list needs of it (a ClipState, live or as state.json holds it). */
type NotedClip = Pick<ClipState, 'status' | 'start_s' | 'end_s'> & { frames: ReadonlyArray<{ detections: readonly unknown[]; note: string | null }> };

/** Why a settled clip has no objects, or null when it has some (or has not settled). */
export function objectsNote(clip: NotedClip, detectorEnabled: boolean): string | null {
  if (clip.status !== 'done') return null;
  if (!detectorEnabled) return 'object detection disabled (ENABLE_OBJECT_DETECTOR=false)';
  if (clip.frames.length === 0) return noFrameNote(clip);
  const detected = clip.frames.some((f) => f.detections.length > 0);
  if (detected) return null;
  const notes = [...new Set(clip.frames.map((f) => f.note).filter((n): n is string => n !== null))];
  return notes.length > 0 ? notes.join('; ') : null;
}

/**
 * ffmpeg-3 samples frames at a fixed rate (deployed as one every five seconds), so a clip shorter
 * than one interval gets none: a fact about the clip, not a failure, and said as such.
 */
function noFrameNote(clip: Pick<ClipState, 'start_s' | 'end_s'>): string {
  const length = clip.start_s !== null && clip.end_s !== null ? ` (${round(clip.end_s - clip.start_s, 2)} s long)` : '';
  return `no frame: the frame extractor returned none for this clip${length}; a clip shorter than its sampling interval gets none, so nothing was detected`;
}

/** Clips that finished their chain with no frame at all. */
export function clipsWithoutFrames(context: PipelineContext): number {
  return context.clips.filter((c) => c.status === 'done' && c.progress.frames !== null && c.progress.frames.length === 0).length;
}

// A clip's answer depends on the clip alone, and a settled clip no longer changes: it is computed
// once, as the clip settles, rather than for every clip on the way to the request's answer.
const clipResults = new WeakMap<ClipState, { detectorEnabled: boolean; result: ClipResult }>();

export function clipResult(clip: ClipState, detectorEnabled: boolean): ClipResult {
  const cached = clipResults.get(clip);
  if (cached?.detectorEnabled === detectorEnabled) return cached.result;
  const result = computeClipResult(clip, detectorEnabled);
  clipResults.set(clip, { detectorEnabled, result });
  return result;
}

function computeClipResult(clip: ClipState, detectorEnabled: boolean): ClipResult {
  return {
    index: clip.index,
    start_s: clip.start_s,
    end_s: clip.end_s,
    uri: clip.uri,
    transcript: clip.progress.transcript,
    transcript_note: clip.progress.transcript_note,
    objects: summarizeObjects(clip),
    objects_note: objectsNote(clip, detectorEnabled),
    frames: clip.frames.length,
    status: clip.status === 'done' || clip.status === 'failed' ? clip.status : 'pending',
    error: clip.error,
  };
}

/** Every attempt made so far, including the failed ones of calls still being retried. */
export function allRecords(context: PipelineContext): InvocationRecord[] {
  const records = [...context.records];
  for (const failed of Object.values(context.retrying)) records.push(...failed);
  for (const clip of context.clips) {
    records.push(...clip.records);
    for (const frame of clip.frames) records.push(...frame.records);
  }
  return records;
}

// The same holds for what a clip's records add up to: a settled clip's tally is made once.
const clipTallies = new WeakMap<ClipState, RecordTally>();

/** What a clip's own records and its frames' add up to (cached per clip, which never changes in place). */
export function clipTally(clip: ClipState): RecordTally {
  let tally = clipTallies.get(clip);
  if (!tally) {
    tally = tallyRecords([clip.records, ...clip.frames.map((frame) => frame.records)]);
    clipTallies.set(clip, tally);
  }
  return tally;
}

/** Makes a settled clip's parts of the answer (its result and its records' tally) ahead of the answer. */
export function prepareClipAnswer(clip: ClipState, detectorEnabled: boolean): void {
  clipResult(clip, detectorEnabled);
  clipTally(clip);
}

/**
 * Per-stage counts and timings of every attempt made so far (`allRecords`), over `wallMs`: the
 * clips' parts are their tallies, made once for a clip that no longer changes.
 */
export function summarizeRequest(context: PipelineContext, wallMs: number): MetricsSummary {
  const head = tallyRecords([context.records, ...Object.values(context.retrying)]);
  return summarizeTallies([head, ...context.clips.map(clipTally)], wallMs);
}

// The writer of final.json and the caller awaiting the outcome both ask for the answer of the
// same (immutable) context; it is computed once.
const built = new WeakMap<PipelineContext, { key: string; result: FinalResult }>();

/** The answer (`final.json`, `docs/api.md`), computed from the machine's context alone. */
export function buildFinalResult(context: PipelineContext, status: 'COMPLETED' | 'FAILED', finishedAt: number): FinalResult {
  const key = `${status}:${finishedAt}`;
  const cached = built.get(context);
  if (cached?.key === key) return cached.result;
  const result = computeFinalResult(context, status, finishedAt);
  built.set(context, { key, result });
  return result;
}

function computeFinalResult(context: PipelineContext, status: 'COMPLETED' | 'FAILED', finishedAt: number): FinalResult {
  const clips = context.clips.map((c) => clipResult(c, context.settings.detector_enabled));
  const failed = context.clips.filter((c) => c.status === 'failed');
  const matchable = clips.filter((c) => c.status === 'done');
  return {
    request_id: context.request_id,
    status,
    video_uri: context.video_uri,
    query: context.query,
    profile: context.settings.profile,
    partial: status === 'COMPLETED' && failed.length > 0,
    clips,
    matches: matchClips(matchable, context.query, { minConfidence: context.settings.min_confidence }),
    failed_clips: failed.map((c) => ({ clip_index: c.index, error: c.error ?? { code: 'INTERNAL', message: 'failed without an error value' } })),
    error: context.error,
    metrics: {
      ...summarizeRequest(context, Math.max(0, finishedAt - context.started_at)),
      clips_without_frames: clipsWithoutFrames(context),
    },
  };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
