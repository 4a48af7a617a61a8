import type { FaveError } from '../domain/errors.ts';
import type { PipelineContext, TopLevelState } from '../domain/context.ts';
import { assertRequestId, type Orchestrator } from '../orchestrator/orchestrator.ts';
import type { ProgressSummary, RequestStatus } from '../persistence/state-file.ts';
import type { InvocationRecord } from '../domain/invocations.ts';
import { activePaths, pipelineStatechart, type Statechart } from '../visualize/statechart.ts';
import type { ArtifactContext } from '../persistence/request-artifacts.ts';
import { buildAnswer, type Answer, type AnswerContext } from './answer.ts';
import { liveFeedOf } from './live-feed.ts';
import { buildTimeline, flattenInvocations, mergeInvocations, stepsByName, toInvocation, type Invocation, type Timeline } from './timeline.ts';

/** What the request page shows, and what `/ui/api/requests/{id}` answers. Plain JSON. */
export interface RequestView {
  request_id: string;
  status: RequestStatus;
  state: TopLevelState;
  /** The machine's state value, e.g. `{ "DETECT": "detecting" }`. */
  value: string | Record<string, string>;
  /** Every state path the value makes active: `DETECT`, `DETECT.detecting`. */
  active: string[];
  progress: ProgressSummary;
  error: FaveError | null;
  video_uri: string;
  query: string | null;
  profile: string | null;
  started_at: number;
  finished_at: number | null;
  /** When this view was taken (epoch ms). */
  observed_at: number;
  wall_ms: number;
  /** True when this process runs the request (the view is live, not read from state.json). */
  local: boolean;
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

/** The execution's state value as the page shows it: a string, or one level of substate. */
function stateValueOf(value: unknown): string | Record<string, string> {
  if (typeof value === 'string') return value;
  const [top, sub] = Object.entries(value as Record<string, unknown>)[0] ?? [];
  return top && typeof sub === 'string' ? { [top]: sub } : String(top ?? 'INIT');
}

/**
 * From a state summary alone (no live execution), the substate is inferred. Inside DETECT the rest follows from
 * the context (planning is eventless, so never a resting state; aggregating stamps
 * finished_at on entry); a FAILED one still here is writing its report.
 */
export function liveStateValue(state: TopLevelState, context: Pick<PipelineContext, 'finished_at'>): string | Record<string, string> {
  if (state === 'DETECT') return { DETECT: context.finished_at !== null ? 'aggregating' : 'detecting' };
  if (state === 'FAILED') return { FAILED: 'reporting' };
  return state;
}

function wallOf(startedAt: number, finishedAt: number | null, now: number, running: boolean): number {
  return Math.max(0, (running ? now : (finishedAt ?? now)) - startedAt);
}

/** What a request view reads from its context, live or from state.json. */
interface ViewedContext extends AnswerContext {
  video_uri: string;
  query: string | null;
  settings: AnswerContext['settings'] & { profile: string; stage_names?: Partial<Record<string, string>> };
  started_at: number;
  finished_at: number | null;
}

function assemble(
  head: Pick<RequestView, 'request_id' | 'status' | 'state' | 'value' | 'progress' | 'error' | 'observed_at' | 'local'>,
  context: ViewedContext,
  live: readonly InvocationRecord[],
): RequestView {
  const base = {
    ...head,
    video_uri: context.video_uri,
    query: context.query,
    profile: context.settings.profile,
    started_at: context.started_at,
    finished_at: context.finished_at,
  };
  const steps = stepsByName(context.settings.stage_names);
  const invocations = mergeInvocations(
    flattenInvocations(context),
    live.flatMap((r) => toInvocation(r, steps) ?? []),
  );
  const running = base.status === 'RUNNING';
  const end = running ? base.observed_at : (base.finished_at ?? null);
  return {
    ...base,
    active: activePaths(base.value),
    answer: buildAnswer(context, base.status),
    wall_ms: wallOf(base.started_at, base.finished_at, base.observed_at, running),
    invocations,
    timeline: buildTimeline(invocations, { start: base.started_at, end }),
    statechart: pipelineStatechart(),
  };
}

/** The view of one request, from memory when it runs here, else from its state.json; null when unknown. */
export async function loadRequestView(orchestrator: Orchestrator, requestId: string): Promise<RequestView | null> {
  return (await loadRequestViewAndContext(orchestrator, requestId))?.view ?? null;
}

/** The view and the context it was drawn from (the report reads artifacts through it). */
export async function loadRequestViewAndContext(orchestrator: Orchestrator, requestId: string): Promise<{ view: RequestView; context: ViewedContext & ArtifactContext } | null> {
  assertRequestId(requestId);
  const feed = liveFeedOf(orchestrator);
  const now = Date.now();
  const execution = orchestrator.get(requestId);
  if (execution) {
    const view = execution.view();
    const context = execution.context;
    return {
      view: assemble(
        { request_id: requestId, status: view.status, state: view.state, value: stateValueOf(execution.value), progress: view.progress, error: view.error, observed_at: now, local: true },
        context,
        feed.records(requestId),
      ),
      context,
    };
  }
  const stored = await orchestrator.readState(requestId);
  if (!stored) return null;
  const { envelope } = stored;
  const context = envelope.snapshot.context;
  const view = assemble(
    {
      request_id: requestId,
      status: envelope.status,
      state: envelope.state,
      value: envelope.snapshot.value as RequestView['value'],
      progress: envelope.progress,
      error: envelope.error as FaveError | null,
      observed_at: now,
      local: false,
    },
    context,
    feed.records(requestId),
  );
  return { view, context };
}

async function summaryOf(orchestrator: Orchestrator, requestId: string, now: number): Promise<RequestSummary> {
  const execution = orchestrator.get(requestId);
  if (execution) {
    const context = execution.context;
    const view = execution.view();
    return {
      request_id: requestId,
      status: view.status,
      state: view.state,
      video_uri: context.video_uri,
      query: context.query,
      started_at: context.started_at,
      wall_ms: wallOf(context.started_at, context.finished_at, now, view.status === 'RUNNING'),
      progress: view.progress,
      error: view.error?.message ?? null,
    };
  }
  try {
    const stored = await orchestrator.readState(requestId);
    if (!stored) throw new Error('its state.json disappeared');
    const { envelope } = stored;
    const context = envelope.snapshot.context;
    return {
      request_id: requestId,
      status: envelope.status,
      state: envelope.state,
      video_uri: context.video_uri,
      query: context.query,
      started_at: context.started_at,
      wall_ms: wallOf(context.started_at, context.finished_at, envelope.updated_at, envelope.status === 'RUNNING'),
      progress: envelope.progress,
      error: envelope.error?.message ?? null,
    };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { request_id: requestId, status: 'UNREADABLE', state: null, video_uri: null, query: null, started_at: null, wall_ms: null, progress: null, error: message };
  }
}

/** Every request this process runs or the store holds, newest first; a few state files at a time. */
export async function listRequestSummaries(orchestrator: Orchestrator, concurrency = 8): Promise<RequestSummary[]> {
  const ids = new Set(orchestrator.running().map((e) => e.requestId));
  for (const id of await orchestrator.listRequests()) ids.add(id);
  const list = [...ids];
  const now = Date.now();
  const out: RequestSummary[] = new Array(list.length);
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const i = next++;
      out[i] = await summaryOf(orchestrator, list[i]!, now);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, list.length) }, worker));
  return out.sort((a, b) => (b.started_at ?? 0) - (a.started_at ?? 0) || (a.request_id < b.request_id ? -1 : 1));
}
