import type { CallMode, StageKey, RetryPolicy } from '../config.ts';
import type { AsyncDispatch } from '../services/async-transport.ts';
import type { FaveError } from '../errors.ts';
import type { InvocationRecord } from '../services/metrics.ts';
import type { ClipTime, Detection, StageFacts, StageTask } from '../services/stages.ts';

/**
 * Everything the pipeline machine knows. It is plain JSON because it is persisted verbatim as
 * part of state.json; resuming a request is restoring this context and the active children.
 */

export const TOP_LEVEL_STATES = ['INIT', 'FFMPEG0', 'LIBROSA', 'CLIP', 'FANOUT', 'DETECT', 'COMPLETED', 'FAILED'] as const;
export type TopLevelState = (typeof TOP_LEVEL_STATES)[number];
export type RunningState = Exclude<TopLevelState, 'COMPLETED' | 'FAILED'>;

/** The resolved configuration of one request, fixed when it starts so a resume behaves the same. */
export interface Settings {
  bucket: string;
  profile: string;
  stage_names: Record<StageKey, string>;
  timeouts_ms: Record<StageKey, number>;
  retry: RetryPolicy;
  max_concurrency: number;
  tolerated_failure_pct: number;
  detector_enabled: boolean;
  min_confidence: number;
  /** Epoch ms: the whole-request deadline. */
  deadline_at: number;
  /** How each stage is called; absent in requests started before async calls existed (all sync). */
  call_modes?: Record<StageKey, CallMode>;
}

export interface PipelineInput {
  request_id: string;
  video_uri: string;
  query: string | null;
  settings: Settings;
  started_at: number;
}

export type UnitStatus = 'pending' | 'running' | 'done' | 'failed';

export interface FrameState {
  index: number;
  uri: string;
  status: UnitStatus;
  detections: Detection[];
  note: string | null;
  records: InvocationRecord[];
  error: FaveError | null;
}

/** What a clip's chain has produced so far; lets a redriven clip skip the steps it finished. */
export interface ClipProgress {
  compressed_uri: string | null;
  transcript_uri: string | null;
  transcript: string | null;
  transcript_note: string | null;
  frames: Array<{ index: number; uri: string }> | null;
}

export interface ClipState {
  index: number;
  uri: string;
  start_s: number | null;
  end_s: number | null;
  status: UnitStatus;
  progress: ClipProgress;
  frames: FrameState[];
  records: InvocationRecord[];
  error: FaveError | null;
}

export interface StepState {
  output_uri: string;
}

/** What the request was started with, and everything learned since. */
export interface PipelineContext extends PipelineInput {
  finished_at: number | null;
  input_uri: string | null;
  steps: Partial<Record<'ffmpeg0' | 'librosa' | 'ffmpeg1', StepState>>;
  clip_times: ClipTime[] | null;
  clips_note: string | null;
  clips: ClipState[];
  /** Clips whose chain has not ended (done or failed) yet. */
  clips_pending: number;
  /** Frames still to be detected in this pass of DETECT. */
  frames_pending: number;
  /** How many clips are failed (kept so the failure check on every event is O(1)). */
  failed_clips: number;
  /** Records of the single-call stages (ffmpeg-0, librosa, ffmpeg-1). */
  records: InvocationRecord[];
  /**
   * The failed attempts of calls being retried, by task id, until the call settles. A call
   * interrupted between attempts (a crash, a restart) resumes at its next attempt, within the
   * same budget, instead of starting over.
   */
  retrying: Record<string, InvocationRecord[]>;
  /**
   * Async calls queued and not answered yet, by task id: a resumed request waits for their
   * callbacks on the clock of their dispatch instead of queueing them again.
   */
  dispatched?: Record<string, AsyncDispatch>;
  error: FaveError | null;
  failed_at: RunningState | null;
  redrives: number;
}

/** What one stage call (with its retries) ends with. */
export interface StageCallInput {
  task_id: string;
  request_id: string;
  profile: string;
  function_name: string;
  task: StageTask;
  timeout_ms: number;
  retry: RetryPolicy;
  deadline_at: number;
  /** Absent: sync. */
  call_mode?: CallMode;
  /** The request's redrive count: attempts of a redriven call are told apart from the first run's. */
  run?: number;
}

export interface StageCallOutput {
  task_id: string;
  stage: StageKey;
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
