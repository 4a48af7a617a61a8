import { z } from 'zod';
import { summarizeRequest } from './answer.ts';
import type { PipelineContext, TopLevelState } from './context.ts';
import type { FaveError } from './errors.ts';
import type { MetricsSummary } from './result.ts';
import { requestStatus, summarizeProgress, topLevelState, type MachineValue, type ProgressSummary, type RequestStatus } from './progress.ts';

/** Who runs a request until when: the owner renews it while it runs, and gives it up at the end. */
export const LeaseSchema = z.object({
  owner: z.string(),
  acquired_at: z.number(),
  expires_at: z.number(),
});
export type Lease = z.infer<typeof LeaseSchema>;

/**
 * Where one request stands, the same whether this process runs it or it was read from its
 * state.json: what the CLI, the HTTP API, the UI and the report all show. Plain JSON.
 */
export interface RequestView {
  request_id: string;
  status: RequestStatus;
  state: TopLevelState;
  /** The machine's state value to one level of substate, e.g. `{ "DETECT": "detecting" }`. */
  value: string | Record<string, string>;
  progress: ProgressSummary;
  error: FaveError | null;
  /** The lease as last written (null once released or finished). */
  lease: Lease | null;
  /** True when this process runs the request: the view is live, not read from state.json. */
  local: boolean;
  started_at: number;
  finished_at: number | null;
  /** When state.json was written (epoch ms); null for a live view. */
  updated_at: number | null;
  /** When this view was taken (epoch ms). */
  observed_at: number;
  /** Time the request has run: until now while it runs, until it finished once it has. */
  wall_ms: number;
  /** What the request learned, its invocation records included. */
  context: PipelineContext;
}

/** What a view is drawn from: a live execution's snapshot, or a state.json's. */
export interface ViewSource {
  context: PipelineContext;
  value: MachineValue;
  lease: Lease | null;
  local: boolean;
  updated_at: number | null;
  observed_at: number;
}

export function requestView(source: ViewSource): RequestView {
  const { context, value, observed_at, updated_at } = source;
  const status = requestStatus(value);
  const end = status === 'RUNNING' ? observed_at : (context.finished_at ?? updated_at ?? observed_at);
  return {
    request_id: context.request_id,
    status,
    state: topLevelState(value),
    value: shownValue(value),
    progress: summarizeProgress(context),
    error: context.error,
    lease: source.lease,
    local: source.local,
    started_at: context.started_at,
    finished_at: context.finished_at,
    updated_at,
    observed_at,
    wall_ms: Math.max(0, end - context.started_at),
    context,
  };
}

/** Per-stage counts and timings of every invocation so far, over the request's wall time. */
export function requestMetrics(view: RequestView): MetricsSummary {
  return summarizeRequest(view.context, view.wall_ms);
}

/** A state value as shown: a string, or one level of substate. */
function shownValue(value: MachineValue): string | Record<string, string> {
  if (typeof value === 'string') return value;
  const [top, sub] = Object.entries(value)[0] ?? [];
  return top && typeof sub === 'string' ? { [top]: sub } : String(top ?? 'INIT');
}
