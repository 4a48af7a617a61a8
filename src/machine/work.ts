import { toFaveError, type FaveError } from '../domain/errors.ts';
import { isStageCallFailure, type InvocationRecord } from '../domain/invocations.ts';
import { clipTaskId, frameTaskId, type AsyncDispatch, type PipelineContext, type StageCallInput } from '../domain/context.ts';

export type { RunnerInput } from '../domain/context.ts';
import { LINEAR_FANOUT, type StageFacts, type StageTask } from '../domain/stage.ts';
import type { ClipStep } from './clip-chain.ts';

/**
 * What the machine and its actors exchange: the work items, the events the fan-out runners send
 * back, and the one way a stage call is described. Pure: the actors' implementations are the
 * host's (see `pipelineMachine.provide`).
 */

/** The root actor's system id, so children can read the request's current context. */
export const PIPELINE_SYSTEM_ID = 'pipeline';

/** The request's root actor as its children see it: its context, and the events they may send it. */
export interface PipelineRoot {
  getSnapshot(): { context: PipelineContext };
  send(event: RetryEvent | DispatchEvent): void;
}

/** What a child actor is handed as `system`: only looking an actor up by its system id is used. */
export interface SystemOfActors {
  get(systemId: string): unknown;
}

/**
 * The root actor, reached through the system every child of a request shares; undefined when
 * the actor runs outside a request (no actor is registered under the id).
 */
export function pipelineRoot(system: SystemOfActors): PipelineRoot | undefined {
  const root = system.get(PIPELINE_SYSTEM_ID);
  return isPipelineRoot(root) ? root : undefined;
}

/** Only the pipeline machine is registered under PIPELINE_SYSTEM_ID, so its shape tells it apart. */
function isPipelineRoot(value: unknown): value is PipelineRoot {
  return typeof value === 'object' && value !== null && 'getSnapshot' in value && typeof value.getSnapshot === 'function' && 'send' in value && typeof value.send === 'function';
}

export interface ClipStepResult {
  clip_index: number;
  step: ClipStep;
  facts: StageFacts | null;
  error: FaveError | null;
  records: InvocationRecord[];
}

export interface FrameResult {
  clip_index: number;
  frame_index: number;
  facts: StageFacts | null;
  error: FaveError | null;
  records: InvocationRecord[];
}

/** A failed attempt of a call that is about to be tried again. */
export type RetryEvent = { type: 'STAGE.RETRYING'; task_id: string; record: InvocationRecord };

/**
 * Async calls the gateway has queued, by task id: persisted so a restart waits for their
 * callbacks. A runner reports its dispatches in batches, with its results and before them.
 */
export type DispatchEvent = { type: 'STAGE.DISPATCHED'; dispatches: Record<string, AsyncDispatch> };

/** What the runners send back: results in batches, or that they could not start; and retries. */
export type RunnerEvent =
  { type: 'CLIPS.PROGRESS'; results: ClipStepResult[]; error?: FaveError } | { type: 'FRAMES.SETTLED'; results: FrameResult[]; error?: FaveError } | RetryEvent | DispatchEvent;

/** The call of one stage for one task of the request, on the request's settings. */
export function stageCallInput(context: PipelineContext, taskId: string, task: StageTask): StageCallInput {
  const { settings } = context;
  return {
    task_id: taskId,
    request_id: context.request_id,
    profile: settings.profile,
    function_name: settings.stage_names[task.stage],
    task,
    timeout_ms: settings.timeouts_ms[task.stage],
    retry: settings.retry,
    deadline_at: settings.deadline_at,
    call_mode: settings.call_modes?.[task.stage] ?? 'sync',
    run: context.redrives,
  };
}

/** Frames of finished clips not detected yet, in clip then frame order. */
export function framesToDetect(context: PipelineContext): Array<[number, PipelineContext['clips'][number]['frames'][number]]> {
  const todo: Array<[number, PipelineContext['clips'][number]['frames'][number]]> = [];
  for (const clip of context.clips) {
    if (clip.status !== 'done') continue;
    for (const frame of clip.frames) if (frame.status === 'pending') todo.push([clip.index, frame]);
  }
  return todo;
}

/** What a rejected actor gave: a failed attempt (its error and record), or anything thrown. */
export function failureOf(value: unknown): { error: FaveError; record: InvocationRecord | null } {
  if (isStageCallFailure(value)) return { error: value.error, record: value.record };
  return { error: toFaveError(value), record: null };
}

/** A call of one of the linear stages (ffmpeg-0, librosa, ffmpeg-1); its task id is its stage. */
export function linearCall(context: PipelineContext, stage: 'ffmpeg0' | 'librosa' | 'ffmpeg1', inputUri: string): StageCallInput {
  return stageCallInput(context, stage, { stage, input_uri: inputUri, fanout: LINEAR_FANOUT });
}

/** A step of one clip's chain. */
export function clipStepCall(context: PipelineContext, clipIndex: number, step: ClipStep, inputUri: string): StageCallInput {
  return stageCallInput(context, clipTaskId(clipIndex, step), { stage: step, input_uri: inputUri, fanout: { clip_index: clipIndex } });
}

/** The detection of one frame. */
export function frameCall(context: PipelineContext, clipIndex: number, frame: { index: number; uri: string }): StageCallInput {
  return stageCallInput(context, frameTaskId(clipIndex, frame.index), {
    stage: 'detector',
    input_uri: frame.uri,
    fanout: { clip_index: clipIndex, frame_index: frame.index, frame_uri: frame.uri },
  });
}
