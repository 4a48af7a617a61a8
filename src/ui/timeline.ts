import type { InvocationRecord } from '../domain/invocations.ts';
import type { ClipState, FrameState } from '../domain/context.ts';
import type { FaveError } from '../domain/errors.ts';
import type { Settings } from '../domain/settings.ts';
import { DEFAULT_STAGE_NAMES, STAGE_KEYS, type StageKey } from '../domain/stage.ts';

/**
 * The timeline of a request as pure data: every invocation (one attempt of one stage call),
 * the lanes they are drawn in, and the critical path. Built from a pipeline context, live or
 * loaded from state.json.
 */

/** One attempt as the timeline draws it: the persisted record's timing, plus where it belongs. */
export interface Invocation extends Pick<
  InvocationRecord,
  'stage' | 'clip_index' | 'frame_index' | 'attempt' | 'queued_at' | 'started_at' | 'ended_at' | 'latency_ms' | 'cold_start' | 'http_status' | 'call_id'
> {
  /** `{stage}|{clip}|{frame}|{attempt}`, `-` for an absent clip or frame. */
  key: string;
  /** The pipeline step the function serves, when the request's settings name it. */
  step: StageKey | null;
  outcome: InvocationRecord['outcome'];
  error: Pick<FaveError, 'code' | 'message'> | null;
  /** `async`: queued through the gateway; `queued_at` is the dispatch, `started_at` the function's start. */
  call_mode: 'sync' | 'async';
}

export interface Lane {
  stage: string;
  step: StageKey | null;
  /** Rows needed so that no two bars of the lane overlap. */
  rows: number;
}

export interface TimelineBar {
  /** Position in the invocation list. */
  index: number;
  key: string;
  lane: number;
  row: number;
  critical: boolean;
}

export interface Timeline {
  /** Epoch ms of the left and right edges. */
  start: number;
  end: number;
  lanes: Lane[];
  bars: TimelineBar[];
  /** Invocation indexes from the first link of the critical path to the last. */
  critical_path: number[];
}

/** What the timeline reads of a pipeline context: every record it holds, and the stage names. */
export interface TimelineContext {
  settings: Pick<Settings, 'stage_names'>;
  records: readonly InvocationRecord[];
  retrying?: Readonly<Record<string, readonly InvocationRecord[]>>;
  clips: ReadonlyArray<Pick<ClipState, 'records'> & { frames: ReadonlyArray<Pick<FrameState, 'records'>> }>;
}

export function invocationKey(r: { stage: string; clip_index: number | null; frame_index: number | null; attempt: number }): string {
  return `${r.stage}|${r.clip_index ?? '-'}|${r.frame_index ?? '-'}|${r.attempt}`;
}

/** Function name → pipeline step, from the request's settings, else the default names. */
export function stepsByName(stageNames: Partial<Record<string, string>> | undefined): Map<string, StageKey> {
  const map = new Map<string, StageKey>();
  for (const key of STAGE_KEYS) map.set(DEFAULT_STAGE_NAMES[key], key);
  for (const key of STAGE_KEYS) {
    const name = stageNames?.[key];
    if (name) map.set(name, key);
  }
  return map;
}

/** One attempt's record as the timeline draws it. */
export function toInvocation(r: InvocationRecord, steps: ReadonlyMap<string, StageKey>): Invocation {
  const started = r.started_at;
  const ended = Math.max(started, r.ended_at);
  const queued = Math.min(started, r.queued_at);
  return {
    // An interrupted attempt is made again under the same number: its key must differ.
    key: r.outcome === 'interrupted' ? `${invocationKey(r)}|interrupted` : invocationKey(r),
    stage: r.stage,
    step: steps.get(r.stage) ?? null,
    clip_index: r.clip_index,
    frame_index: r.frame_index,
    attempt: r.attempt,
    queued_at: queued,
    started_at: started,
    ended_at: ended,
    latency_ms: r.latency_ms,
    cold_start: r.cold_start,
    http_status: r.http_status,
    outcome: r.outcome,
    error: r.error ? { code: r.error.code, message: r.error.message } : null,
    call_id: r.call_id,
    call_mode: r.call_mode ?? 'sync',
  };
}

function byTime(a: Invocation, b: Invocation): number {
  return a.started_at - b.started_at || a.ended_at - b.ended_at || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

/**
 * Every invocation a pipeline context holds — the single-call stages, each clip's chain, each
 * frame's detection, and the failed attempts of calls still being retried — in order of start.
 */
export function flattenInvocations(context: TimelineContext): Invocation[] {
  const { settings, records, retrying = {}, clips } = context;
  const steps = stepsByName(settings.stage_names);
  const all = [...records, ...Object.values(retrying).flat(), ...clips.flatMap((c) => [...c.records, ...c.frames.flatMap((f) => f.records)])];
  return all.map((r) => toInvocation(r, steps)).sort(byTime);
}

/**
 * The context's invocations plus ones seen live that the context does not hold yet (a clip's
 * records reach the context only when the clip settles). Same key and start = same attempt.
 */
export function mergeInvocations(fromContext: readonly Invocation[], live: readonly Invocation[]): Invocation[] {
  const seen = new Set(fromContext.map((i) => `${i.key}@${i.started_at}`));
  const extra = live.filter((i) => !seen.has(`${i.key}@${i.started_at}`));
  return [...fromContext, ...extra].sort(byTime);
}

function stepIndex(step: StageKey | null): number {
  return step === null ? -1 : STAGE_KEYS.indexOf(step);
}

/** One lane per stage, in pipeline order, then stages the settings do not name, by name. */
export function layoutLanes(invocations: readonly Invocation[]): { lanes: Lane[]; bars: Array<Omit<TimelineBar, 'critical'>> } {
  const stages = new Map<string, StageKey | null>();
  for (const inv of invocations) if (!stages.has(inv.stage)) stages.set(inv.stage, inv.step);
  const order = [...stages].sort(([a, sa], [b, sb]) => {
    const ia = stepIndex(sa);
    const ib = stepIndex(sb);
    if (ia !== ib) return (ia === -1 ? 99 : ia) - (ib === -1 ? 99 : ib);
    return a < b ? -1 : a > b ? 1 : 0;
  });
  const laneOf = new Map(order.map(([stage], i) => [stage, i]));
  const lanes: Lane[] = order.map(([stage, step]) => ({ stage, step, rows: 0 }));
  // Greedy interval packing: each bar takes the first row of its lane free at its queue time.
  const rowEnds: number[][] = lanes.map(() => []);
  const indexed = invocations.map((inv, index) => ({ inv, index }));
  indexed.sort((a, b) => a.inv.queued_at - b.inv.queued_at || byTime(a.inv, b.inv));
  const bars = new Array<Omit<TimelineBar, 'critical'>>(invocations.length);
  for (const { inv, index } of indexed) {
    const lane = laneOf.get(inv.stage)!;
    const ends = rowEnds[lane]!;
    let row = ends.findIndex((end) => end <= inv.queued_at);
    if (row === -1) {
      row = ends.length;
      ends.push(inv.ended_at);
    } else {
      ends[row] = inv.ended_at;
    }
    bars[index] = { index, key: inv.key, lane, row };
  }
  lanes.forEach((lane, i) => (lane.rows = Math.max(1, rowEnds[i]!.length)));
  return { lanes, bars };
}

const CLIP_STEPS: readonly StageKey[] = ['ffmpeg2', 'deepspeech', 'ffmpeg3'];

/**
 * The groups of invocations that could have held an invocation back, nearest first. A retry
 * waits on its earlier attempt; a step waits on the step before it (the same clip's, within a
 * clip's chain); a detection waits for the whole fan-out, so on any clip step of any clip.
 */
function upstreamTiers(inv: Invocation): Array<(other: Invocation) => boolean> {
  const tiers: Array<(other: Invocation) => boolean> = [];
  const s = stepIndex(inv.step);
  if (s < 0) return tiers;
  const at = (k: number) => (o: Invocation) => stepIndex(o.step) === k;
  if (inv.step === 'detector') {
    tiers.push((o) => o.step !== null && CLIP_STEPS.includes(o.step));
    for (let k = STAGE_KEYS.indexOf('ffmpeg1'); k >= 0; k--) tiers.push(at(k));
    return tiers;
  }
  const firstClipStep = STAGE_KEYS.indexOf('ffmpeg2');
  for (let k = s - 1; k >= 0; k--) {
    if (s > firstClipStep && k >= firstClipStep) tiers.push((o) => stepIndex(o.step) === k && o.clip_index === inv.clip_index);
    else tiers.push(at(k));
  }
  return tiers;
}

function latestEnding(invocations: readonly Invocation[], candidates: Iterable<number>): number | null {
  let best: number | null = null;
  for (const i of candidates) {
    const inv = invocations[i]!;
    const current = best === null ? null : invocations[best]!;
    if (!current || inv.ended_at > current.ended_at || (inv.ended_at === current.ended_at && inv.started_at > current.started_at)) best = i;
  }
  return best;
}

/** The invocation that determined when `index` could start, or null when none did. */
export function predecessorOf(invocations: readonly Invocation[], index: number): number | null {
  const inv = invocations[index]!;
  const before = (o: Invocation, i: number) => i !== index && o.ended_at <= inv.started_at;
  const earlierAttempts = invocations
    .map((o, i) => ({ o, i }))
    .filter(({ o, i }) => before(o, i) && o.stage === inv.stage && o.clip_index === inv.clip_index && o.frame_index === inv.frame_index && o.attempt < inv.attempt)
    .map(({ i }) => i);
  const retried = latestEnding(invocations, earlierAttempts);
  if (retried !== null) return retried;
  for (const tier of upstreamTiers(inv)) {
    const found = latestEnding(
      invocations,
      invocations.flatMap((o, i) => (before(o, i) && tier(o) ? [i] : [])),
    );
    if (found !== null) return found;
  }
  return null;
}

/**
 * The chain of invocations that set the request's end: from the last-ending invocation, step
 * back to the latest-ending invocation it waited on in the pipeline chain, until none is left.
 */
export function criticalPath(invocations: readonly Invocation[]): number[] {
  const last = latestEnding(
    invocations,
    invocations.map((_, i) => i),
  );
  const path: number[] = [];
  const visited = new Set<number>();
  for (let at = last; at !== null && !visited.has(at); at = predecessorOf(invocations, at)) {
    visited.add(at);
    path.push(at);
  }
  return path.reverse();
}

/** Lanes, bars and critical path in one value, with the time span they cover. */
export function buildTimeline(invocations: readonly Invocation[], span?: { start?: number | null; end?: number | null }): Timeline {
  const { lanes, bars } = layoutLanes(invocations);
  const path = criticalPath(invocations);
  const onPath = new Set(path);
  let start = span?.start ?? Number.POSITIVE_INFINITY;
  let end = span?.end ?? Number.NEGATIVE_INFINITY;
  for (const inv of invocations) {
    start = Math.min(start, inv.queued_at);
    end = Math.max(end, inv.ended_at);
  }
  return {
    start: Number.isFinite(start) ? start : 0,
    end: Number.isFinite(end) ? end : Number.isFinite(start) ? start : 0,
    lanes,
    bars: bars.map((b) => ({ ...b, critical: onPath.has(b.index) })),
    critical_path: path,
  };
}
