import type { TopLevelState } from '../domain/context.ts';
import type { ProgressSummary, RequestStatus } from '../domain/progress.ts';
import type { RequestView } from '../domain/request-view.ts';
import type { InvocationRecord } from '../domain/invocations.ts';
import type { Orchestrator } from '../orchestrator/orchestrator.ts';
import { mapLimited } from '../lib/limiter.ts';
import type { ListingEntry } from '../persistence/request-index.ts';
import type { PrewarmAction } from '../orchestrator/prewarm.ts';
import { activePaths, pipelineStatechart, type Statechart } from '../visualize/statechart.ts';
import { buildAnswer, type Answer } from './answer.ts';
import { liveFeedOf } from './live-feed.ts';
import { buildTimeline, flattenInvocations, mergeInvocations, stepsByName, toInvocation, type Invocation, type Timeline } from './timeline.ts';

/**
 * What the request page shows, and what `/ui/api/requests/{id}` answers: the request's view
 * with what the page draws from its context instead of the context (large) and the lease (it
 * names hosts). Plain JSON.
 */
export interface RequestPageView extends Omit<RequestView, 'context' | 'lease'> {
  /** Every state path the value makes active: `DETECT`, `DETECT.detecting`. */
  active: string[];
  video_uri: string;
  query: string | null;
  profile: string | null;
  /** The answer: verdict, matches and every clip with what was found in it. */
  answer: Answer;
  invocations: Invocation[];
  timeline: Timeline;
  statechart: Statechart;
  /** Scale calls made ahead of this request's stages, and the give-backs after (in its process only). */
  prewarm: PrewarmMark[];
}

/** A pre-warm action as the timeline marks it, in the lane of its function. */
export interface PrewarmMark {
  at: number;
  stage: string;
  kind: 'raise' | 'give-back';
  from: number;
  replicas: number;
  ok: boolean;
  error: string | null;
}

export interface RequestSummary {
  request_id: string;
  status: RequestStatus | 'UNREADABLE';
  state: TopLevelState | null;
  video_uri: string | null;
  query: string | null;
  started_at: number | null;
  wall_ms: number | null;
  progress: ProgressSummary | null;
  error: string | null;
}

/**
 * The page of a request's view. `live`: invocation records of a request running here that its
 * context does not hold yet (a clip's reach it only when the whole clip settles).
 */
export function pageViewOf(view: RequestView, live: readonly InvocationRecord[] = [], prewarm: readonly PrewarmAction[] = []): RequestPageView {
  const { context, lease: _lease, ...head } = view;
  const steps = stepsByName(context.settings.stage_names);
  const invocations = mergeInvocations(
    flattenInvocations(context),
    live.map((r) => toInvocation(r, steps)),
  );
  const end = view.status === 'RUNNING' ? view.observed_at : view.finished_at;
  return {
    ...head,
    active: activePaths(view.value),
    video_uri: context.video_uri,
    query: context.query,
    profile: context.settings.profile,
    answer: buildAnswer(context, view.status),
    invocations,
    timeline: buildTimeline(invocations, { start: view.started_at, end }),
    statechart: pipelineStatechart(),
    prewarm: prewarm.map((a) => ({ at: a.at, stage: a.function_name, kind: a.kind, from: a.from, replicas: a.replicas, ok: a.ok, error: a.error })),
  };
}

/** The page of one request, live when it runs here, else from its state.json; null when unknown. */
export async function loadRequestPage(orchestrator: Orchestrator, requestId: string): Promise<RequestPageView | null> {
  const view = await orchestrator.requests.view(requestId);
  return view ? pageViewOf(view, liveFeedOf(orchestrator).records(requestId), orchestrator.prewarmActions(requestId)) : null;
}

async function summaryOf(orchestrator: Orchestrator, requestId: string): Promise<RequestSummary> {
  try {
    const view = await orchestrator.requests.view(requestId);
    if (!view) throw new Error('its state.json disappeared');
    const { context } = view;
    return {
      request_id: requestId,
      status: view.status,
      state: view.state,
      video_uri: context.video_uri,
      query: context.query,
      started_at: view.started_at,
      wall_ms: view.wall_ms,
      progress: view.progress,
      error: view.error?.message ?? null,
    };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { request_id: requestId, status: 'UNREADABLE', state: null, video_uri: null, query: null, started_at: null, wall_ms: null, progress: null, error: message };
  }
}

/** A page of the request list, and the cursor of the next (older) one. */
export interface RequestListPage {
  requests: RequestSummary[];
  /** Give it back as `cursor` for the next page; null on the last. */
  next_cursor: string | null;
  limit: number;
}

export const LIST_LIMIT_DEFAULT = 50;
export const LIST_LIMIT_MAX = 200;

function summaryOfEntry(entry: ListingEntry): RequestSummary {
  const { request_id, status, state, video_uri, query, started_at, wall_ms, progress, error } = entry;
  return { request_id, status, state, video_uri, query, started_at, wall_ms, progress, error };
}

/**
 * One page of the request list, newest first, from the indexes rather than every state.json:
 * the first page starts with the running requests (up to `limit`: live when they run here, else
 * their state.json), then every page has up to `limit` finished ones from their listing entries.
 */
export async function listRequestSummaries(orchestrator: Orchestrator, options: { limit?: number; cursor?: string | null } = {}): Promise<RequestListPage> {
  const limit = Math.max(1, Math.min(LIST_LIMIT_MAX, options.limit ?? LIST_LIMIT_DEFAULT));
  const cursor = options.cursor ?? null;
  const finished = await orchestrator.index.listed({ after: cursor, limit });
  let running: RequestSummary[] = [];
  if (cursor === null) {
    const ids = [...new Set([...orchestrator.running().map((e) => e.requestId), ...(await orchestrator.index.someRunning(limit))])].slice(0, limit);
    running = (await mapLimited(ids, 8, (id) => summaryOf(orchestrator, id))).sort((a, b) => (b.started_at ?? 0) - (a.started_at ?? 0));
  }
  const shown = new Set(running.map((r) => r.request_id));
  return {
    requests: [...running, ...finished.entries.filter((e) => !shown.has(e.request_id)).map(summaryOfEntry)],
    next_cursor: finished.next,
    limit,
  };
}
