import type { ClipProgress, ClipState, FrameState, PipelineContext } from '../domain/context.ts';
import type { Settings } from '../domain/settings.ts';
import type { MatchReason, ObjectSummary } from '../domain/result.ts';
import { objectsNote, summarizeObjects } from '../domain/answer.ts';
import { matchClips, parseQuery } from '../domain/query/match.ts';
import { artifactNames } from '../persistence/request-artifacts.ts';

/**
 * The answer as the request page shows it: a one-line verdict, then every clip with what was
 * found in it, the matches first by score. Built from the pipeline context alone, with the same
 * matching as final.json, so a running request shows what it has so far.
 */

/** What the answer reads of a pipeline context (live or from state.json). */
export type AnswerContext = Pick<PipelineContext, 'query' | 'error'> & {
  settings: Pick<Settings, 'detector_enabled' | 'min_confidence'>;
  clips: ReadonlyArray<
    Pick<ClipState, 'index' | 'start_s' | 'end_s' | 'status' | 'error'> & {
      progress: Pick<ClipProgress, 'transcript' | 'transcript_note' | 'frames'>;
      frames: ReadonlyArray<Pick<FrameState, 'index' | 'uri' | 'detections' | 'note'>>;
    }
  >;
};

export type VerdictKind = 'match' | 'no-match' | 'cannot-match' | 'no-query' | 'running' | 'failed';

export interface AnswerClip {
  index: number;
  start_s: number | null;
  end_s: number | null;
  status: ClipState['status'];
  transcript: string | null;
  transcript_note: string | null;
  /** The clip is a stretch without speech (its transcript note says so, as the local stage-deepspeech writes it). */
  no_speech: boolean;
  objects: ObjectSummary[];
  objects_note: string | null;
  frames: number;
  /** Up to four frames to show, by artifact name (`frame-3-7`), in time order. */
  thumbnails: Array<{ frame_index: number; artifact: string }>;
  /** The clip's video by artifact name. */
  video: string;
  match: { rank: number; score: number; reasons: MatchReason[] } | null;
  /** Transcript words (as matching normalizes them) to highlight. */
  highlight: string[];
  error: string | null;
}

export interface Answer {
  verdict: { kind: VerdictKind; text: string };
  terms: { labels: string[]; words: string[] };
  /** The span the clips cover, for the whole-video strip. */
  duration_s: number | null;
  /** Clip indexes of the matches, best first. */
  matches: number[];
  clips: AnswerClip[];
}

const MAX_THUMBNAILS = 4;

function statusOf(status: AnswerContext['clips'][number]['status']): AnswerClip['status'] {
  return status === 'done' || status === 'failed' ? status : 'pending';
}

/** Frames with a detection of a wanted label first, then spread evenly; at most four, in time order. */
export function pickThumbnails(frames: ReadonlyArray<{ index: number; detections?: ReadonlyArray<{ label: string }> }>, wanted: readonly string[]): number[] {
  const indexes = frames.map((f) => f.index).sort((a, b) => a - b);
  if (indexes.length <= MAX_THUMBNAILS) return indexes;
  const picked = new Set<number>();
  for (const f of frames) {
    if (picked.size >= 2) break;
    if (f.detections?.some((d) => wanted.includes(d.label))) picked.add(f.index);
  }
  for (let i = 0; picked.size < MAX_THUMBNAILS && i < MAX_THUMBNAILS * 2; i++) {
    const at = Math.round(((i % MAX_THUMBNAILS) + 0.5) * (indexes.length / MAX_THUMBNAILS) - 0.5);
    picked.add(indexes[Math.min(indexes.length - 1, at + Math.floor(i / MAX_THUMBNAILS))]!);
  }
  return [...picked].sort((a, b) => a - b).slice(0, MAX_THUMBNAILS);
}

export function buildAnswer(context: AnswerContext, status: 'RUNNING' | 'COMPLETED' | 'FAILED'): Answer {
  const terms = context.query === null ? { labels: [], words: [] } : parseQuery(context.query);
  const done = context.clips.filter((c) => c.status === 'done');
  const objectsByClip = new Map(context.clips.map((c) => [c.index, summarizeObjects(c)]));
  const matches = matchClips(
    done.map((c) => ({ index: c.index, start_s: c.start_s, end_s: c.end_s, transcript: c.progress.transcript, objects: objectsByClip.get(c.index) ?? [] })),
    context.query,
    { minConfidence: context.settings.min_confidence },
  );
  const matchOf = new Map(matches.map((m, rank) => [m.clip_index, { rank: rank + 1, score: m.score, reasons: m.reasons }]));

  const clips: AnswerClip[] = context.clips.map((c) => {
    const match = matchOf.get(c.index) ?? null;
    const frames = c.frames.length > 0 ? c.frames : (c.progress.frames ?? []);
    const wanted = match ? match.reasons.flatMap((r) => (r.type === 'object' ? [r.label] : [])) : terms.labels;
    const note = c.progress.transcript_note;
    return {
      index: c.index,
      start_s: c.start_s,
      end_s: c.end_s,
      status: statusOf(c.status),
      transcript: c.progress.transcript,
      transcript_note: note,
      no_speech: note !== null && /\bno speech in this clip\b/i.test(note),
      objects: objectsByClip.get(c.index) ?? [],
      objects_note: objectsNote(c, context.settings.detector_enabled),
      frames: frames.length,
      thumbnails: pickThumbnails(frames, wanted).map((f) => ({ frame_index: f, artifact: artifactNames.frame(c.index, f) })),
      video: artifactNames.clip(c.index),
      match,
      highlight: match ? match.reasons.flatMap((r) => (r.type === 'transcript' ? [r.word] : [])) : [],
      error: c.error ? `${c.error.code}: ${c.error.message}` : null,
    };
  });

  const ends = context.clips.map((c) => c.end_s).filter((e): e is number => e !== null);
  return {
    verdict: verdictOf(context, status, terms, done.length, matches.length, clips),
    terms,
    duration_s: ends.length > 0 ? Math.max(...ends) : null,
    matches: matches.map((m) => m.clip_index),
    clips,
  };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function verdictOf(
  context: AnswerContext,
  status: 'RUNNING' | 'COMPLETED' | 'FAILED',
  terms: { labels: string[]; words: string[] },
  doneCount: number,
  matchCount: number,
  clips: readonly AnswerClip[],
): Answer['verdict'] {
  const total = context.clips.length;
  if (status === 'RUNNING') {
    const sofar = matchCount > 0 ? `; ${matchCount} matching so far` : '';
    // The same figures as the progress bar: clips done (or failed) of the clips planned so far.
    if (total === 0) return { kind: 'running', text: 'running: finding the clips in the video' };
    return { kind: 'running', text: `running: ${doneCount} of ${plural(total, 'clip')} done${sofar}` };
  }
  if (status === 'FAILED' && doneCount === 0) {
    return { kind: 'failed', text: `the request failed before any clip was analysed${context.error ? `: ${context.error.message}` : ''}` };
  }
  if (context.query === null) return { kind: 'no-query', text: `${plural(total, 'clip')}; no query was given, so none is ranked` };
  if (terms.labels.length + terms.words.length === 0) {
    return { kind: 'no-match', text: `no clip matches: the query has no word to search for (only words like "find", "scenes", "with")` };
  }
  if (matchCount > 0) return { kind: 'match', text: `${matchCount} of ${plural(total, 'clip')} ${matchCount === 1 ? 'matches' : 'match'}` };
  const done = clips.filter((c) => c.status === 'done');
  const heard = done.some((c) => c.transcript !== null && c.transcript.trim() !== '');
  const seen = done.some((c) => c.objects.length > 0);
  if (!heard && !seen) {
    const reasons = [...new Set(done.flatMap((c) => [c.transcript_note, c.objects_note]).filter((n): n is string => n !== null && n !== ''))];
    const why = reasons.length > 0 ? reasons.join('; ') : doneCount === 0 ? 'no clip was analysed' : 'the stages answered no text and no objects';
    return { kind: 'cannot-match', text: `cannot match: no transcripts or detections were produced (${why}; see docs/stages.md)` };
  }
  const looked = [...terms.labels, ...terms.words].map((t) => `"${t}"`).join(', ');
  return { kind: 'no-match', text: `no clip matches (looked for ${looked} in ${plural(done.length, 'analysed clip')})` };
}
