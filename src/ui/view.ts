import type { TopLevelState } from '../domain/context.ts';
import type { ProgressSummary, RequestStatus } from '../domain/progress.ts';
import type { RequestView } from '../domain/request-view.ts';
import type { InvocationRecord } from '../domain/invocations.ts';
import type { Orchestrator } from '../orchestrator/orchestrator.ts';
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
export function pageViewOf(view: RequestView, live: readonly InvocationRecord[] = []): RequestPageView {
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
  };
}

/** The page of one request, live when it runs here, else from its state.json; null when unknown. */
export async function loadRequestPage(orchestrator: Orchestrator, requestId: string): Promise<RequestPageView | null> {
  const view = await orchestrator.requests.view(requestId);
  return view ? pageViewOf(view, liveFeedOf(orchestrator).records(requestId)) : null;
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

/** Every request this process runs or the store holds, newest first; a few state files at a time. */
export async function listRequestSummaries(orchestrator: Orchestrator, concurrency = 8): Promise<RequestSummary[]> {
  const list = await orchestrator.requests.ids();
  const out = new Array<RequestSummary>(list.length);
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const i = next++;
      out[i] = await summaryOf(orchestrator, list[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, list.length) }, worker));
  return out.sort((a, b) => (b.started_at ?? 0) - (a.started_at ?? 0) || (a.request_id < b.request_id ? -1 : 1));
}
