import { z } from 'zod';
import { FaveErrorSchema, type FaveError } from './errors.ts';
import { InvocationRecordSchema, type InvocationRecord } from './invocations.ts';
import { CallModeSchema, RetryPolicySchema, SettingsSchema } from './settings.ts';
import { ClipTimeSchema, DetectionSchema, FanoutSchema, FrameRefSchema, StageTaskSchema, type StageFacts, type StageKey } from './stage.ts';
import { RunningStateSchema } from './states.ts';

/**
 * Everything the pipeline knows of one request, declared once: the schema state.json is read
 * with, and (by `z.infer`) the type the machine works on. It is plain JSON because it is persisted
 * verbatim; resuming a request is restoring this context and the active children.
 */

export { TOP_LEVEL_STATES, TopLevelStateSchema, RunningStateSchema, type TopLevelState, type RunningState } from './states.ts';

export const PipelineInputSchema = z.object({
  request_id: z.string(),
  video_uri: z.string(),
  query: z.string().nullable(),
  settings: SettingsSchema,
  started_at: z.number(),
});
export type PipelineInput = z.infer<typeof PipelineInputSchema>;

/**
 * Where a clip or a frame is. A unit is `pending` until its work ends, `done` or `failed`.
 * Files written before this version may say `running` (a status never assigned): it reads as
 * `pending`, which is what it meant.
 */
export const UnitStatusSchema = z.preprocess((value) => (value === 'running' ? 'pending' : value), z.enum(['pending', 'done', 'failed']));
export type UnitStatus = z.infer<typeof UnitStatusSchema>;

export const FrameStateSchema = z.object({
  index: z.number().int().nonnegative(),
  uri: z.string(),
  status: UnitStatusSchema,
  detections: z.array(DetectionSchema),
  note: z.string().nullable(),
  records: z.array(InvocationRecordSchema),
  error: FaveErrorSchema.nullable(),
});
export type FrameState = z.infer<typeof FrameStateSchema>;

/** What a clip's chain has produced so far; lets a redriven clip skip the steps it finished. */
export const ClipProgressSchema = z.object({
  compressed_uri: z.string().nullable(),
  transcript_uri: z.string().nullable(),
  transcript: z.string().nullable(),
  transcript_note: z.string().nullable(),
  frames: z.array(FrameRefSchema).nullable(),
});
export type ClipProgress = z.infer<typeof ClipProgressSchema>;

export const ClipStateSchema = z.object({
  index: z.number().int().nonnegative(),
  uri: z.string(),
  start_s: z.number().nullable(),
  end_s: z.number().nullable(),
  status: UnitStatusSchema,
  progress: ClipProgressSchema,
  frames: z.array(FrameStateSchema),
  records: z.array(InvocationRecordSchema),
  error: FaveErrorSchema.nullable(),
});
export type ClipState = z.infer<typeof ClipStateSchema>;

export const StepStateSchema = z.object({ output_uri: z.string() });
export type StepState = z.infer<typeof StepStateSchema>;

/** An async call queued at the gateway and not answered yet. */
export const AsyncDispatchSchema = z.object({
  /** The request's redrive count when it was queued. */
  run: z.number().int().min(0),
  attempt: z.number().int().min(1),
  call_id: z.string().nullable(),
  dispatched_at: z.number(),
  timeout_ms: z.number().positive(),
  /** The attempt's marker in the dispatch journal: a resume continues it, it is not interrupted. */
  dispatch_id: z.string().optional(),
});
export type AsyncDispatch = z.infer<typeof AsyncDispatchSchema>;

/** What the request was started with, and everything learned since. */
export const PipelineContextSchema = PipelineInputSchema.extend({
  finished_at: z.number().nullable(),
  input_uri: z.string().nullable(),
  steps: z.object({ ffmpeg0: StepStateSchema.optional(), librosa: StepStateSchema.optional(), ffmpeg1: StepStateSchema.optional() }),
  clip_times: z.array(ClipTimeSchema).nullable(),
  clips: z.array(ClipStateSchema),
  /** Clips whose chain has not ended (done or failed) yet. */
  clips_pending: z.number().int().min(0),
  /** Frames still to be detected in this pass of DETECT. */
  frames_pending: z.number().int().min(0),
  /** How many clips are failed (kept so the failure check on every event is O(1)). */
  failed_clips: z.number().int().min(0),
  /** Records of the single-call stages (ffmpeg-0, librosa, ffmpeg-1). */
  records: z.array(InvocationRecordSchema),
  /**
   * The failed attempts of calls being retried, by task id, until the call settles. A call
   * interrupted between attempts (a crash, a restart) resumes at its next attempt, within the
   * same budget, instead of starting over. Absent from files written before retries were persisted.
   */
  retrying: z.record(z.string(), z.array(InvocationRecordSchema)).default({}),
  /**
   * Async calls queued and not answered yet, by task id: a resumed request waits for their
   * callbacks on the clock of their dispatch instead of queueing them again. Absent from files
   * written before async calls existed.
   */
  dispatched: z.record(z.string(), AsyncDispatchSchema).default({}),
  error: FaveErrorSchema.nullable(),
  failed_at: RunningStateSchema.nullable(),
  redrives: z.number().int().min(0),
});
export type PipelineContext = z.infer<typeof PipelineContextSchema>;

/** What a request knows as it starts: its input, and nothing learned yet. */
export function initialContext(input: PipelineInput): PipelineContext {
  return {
    ...input,
    finished_at: null,
    input_uri: null,
    steps: {},
    clip_times: null,
    clips: [],
    clips_pending: 0,
    frames_pending: 0,
    failed_clips: 0,
    records: [],
    retrying: {},
    dispatched: {},
    error: null,
    failed_at: null,
    redrives: 0,
  };
}

/**
 * The inputs of the machine's children, persisted with them in state.json: a child active at a
 * crash is started again with the input it had. Each schema also reads what earlier versions
 * wrote, keeping only what the actor uses.
 */

/** The input import's input. Earlier versions handed it the whole context (permission flags included): only these are kept. */
export const ImportInputSchema = PipelineInputSchema.pick({ request_id: true, video_uri: true, settings: true });
export type ImportInput = z.infer<typeof ImportInputSchema>;

/** What one stage call (with its retries) is asked to do. */
export const StageCallInputSchema = z.object({
  task_id: z.string(),
  request_id: z.string(),
  profile: z.string(),
  function_name: z.string(),
  /** The linear stages' calls once held `fanout: null`, which every stage refuses: it reads as `{}`. */
  task: StageTaskSchema.extend({ fanout: z.preprocess((value) => value ?? {}, FanoutSchema) }),
  timeout_ms: z.number(),
  retry: RetryPolicySchema,
  deadline_at: z.number(),
  /** Absent: sync. */
  call_mode: CallModeSchema.optional(),
  /** The request's redrive count: attempts of a redriven call are told apart from the first run's. */
  run: z.number().int().min(0).optional(),
});
export type StageCallInput = z.infer<typeof StageCallInputSchema>;

/** The fan-out runners' input: they read the work still to do from the machine's current context. */
export const RunnerInputSchema = z.object({ request_id: z.string() });
export type RunnerInput = z.infer<typeof RunnerInputSchema>;

/** The result writer's input; it reads the context from the machine when it runs. */
export const ResultInputSchema = z.object({ status: z.enum(['COMPLETED', 'FAILED']) });
export type ResultInput = z.infer<typeof ResultInputSchema>;

/** What one stage call (with its retries) ends with. */
export interface StageCallOutput {
  task_id: string;
  /** The pipeline's key of the stage (`ffmpeg0`); `stage` in records and errors is its function name. */
  step: StageKey;
  clip_index: number | null;
  frame_index: number | null;
  facts: StageFacts | null;
  error: FaveError | null;
  records: InvocationRecord[];
}

/** Task ids name one stage call of a request: the key of `retrying`. */
export const clipTaskId = (clipIndex: number, step: string): string => `clip-${clipIndex}/${step}`;
export const frameTaskId = (clipIndex: number, frameIndex: number): string => `frame-${clipIndex}-${frameIndex}`;

export const emptyProgress = (): ClipProgress => ({
  compressed_uri: null,
  transcript_uri: null,
  transcript: null,
  transcript_note: null,
  frames: null,
});

/** The input a request was started with, rebuilt from its context (restoring needs one). */
export function inputOfContext(context: PipelineContext): PipelineInput {
  return {
    request_id: context.request_id,
    video_uri: context.video_uri,
    query: context.query,
    settings: context.settings,
    started_at: context.started_at,
  };
}
