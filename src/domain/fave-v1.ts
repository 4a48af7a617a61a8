import type { FinalResult } from './result.ts';
import type { ClipState, PipelineContext } from './context.ts';
import type { InvocationRecord } from './invocations.ts';
import { type StageOutput } from './stage.ts';

/**
 * The Python FAVE orchestrator's answer envelope (`fave-v1`), so FAVE's own client tools keep
 * working against this orchestrator: its workload generator reads HTTP 200 with
 * `status: "ok" | "error"`, its analysis scripts sum `metrics.cost_unit` over `result.linear`
 * and `result.clips[].stages`. Built from the invocation records: one entry per settled call,
 * with the stage's result. This orchestrator's own answer rides along under `answer`.
 */

export interface FaveV1Entry {
  stage: string;
  status: InvocationRecord['outcome'];
  message: string | null;
  outputs: StageOutput[];
  metrics: { duration_ms: number | null; memory_limit_mb: number | null; cold_start: boolean | null; cost_unit: number; extra: Record<string, unknown> };
  clip_index?: number;
  frame_index?: number;
  frame_uri?: string;
}

export interface FaveV1Clip {
  clip_index: number;
  input_uri: string;
  stages: FaveV1Entry[];
}

export type FaveV1Answer =
  | { status: 'ok'; request_id: string; result: { linear: FaveV1Entry[]; clips: FaveV1Clip[] }; answer: FinalResult }
  | { status: 'error'; request_id: string; message: string; answer?: FinalResult };

/** The envelope of a finished request: `ok` when it completed, `error` with its failure otherwise. */
export function faveV1Answer(outcome: { request_id: string; status: 'COMPLETED' | 'FAILED'; result: FinalResult; context: PipelineContext }): FaveV1Answer {
  if (outcome.status === 'FAILED') {
    const error = outcome.result.error;
    // Error messages name the stage, clip and frame they concern already.
    return { status: 'error', request_id: outcome.request_id, message: error?.message ?? 'the request failed', answer: outcome.result };
  }
  const { context } = outcome;
  return {
    status: 'ok',
    request_id: outcome.request_id,
    result: {
      linear: settled(context.records).map((r) => entry(r, {})),
      clips: context.clips.map((clip) => ({ clip_index: clip.index, input_uri: clip.uri, stages: clipEntries(clip, context.settings.stage_names.ffmpeg3) })),
    },
    answer: outcome.result,
  };
}

/** A request that could not be answered (this process stopped driving it, or it was refused). */
export function faveV1Error(requestId: string, message: string): FaveV1Answer {
  return { status: 'error', request_id: requestId, message };
}

function clipEntries(clip: ClipState, frameStage: string): FaveV1Entry[] {
  const entries = settled(clip.records).map((r) =>
    r.stage === frameStage && r.outputs === undefined
      ? entry(
          r,
          { clip_index: clip.index },
          (clip.progress.frames ?? []).map((f) => frameOutput(clip.index, f)),
        )
      : entry(r, { clip_index: clip.index }),
  );
  for (const frame of clip.frames) {
    for (const r of settled(frame.records)) entries.push(entry(r, { clip_index: clip.index, frame_index: frame.index, frame_uri: frame.uri }));
  }
  return entries;
}

/** ffmpeg-3's output for one frame, as the stage writes it. */
function frameOutput(clipIndex: number, frame: { index: number; uri: string }): StageOutput {
  return { type: 'image', uri: frame.uri, metadata: { clip: clipIndex, frame_index: frame.index } };
}

/** The last attempt of every call (stage, clip, frame), in the order the calls were made. */
function settled(records: readonly InvocationRecord[]): InvocationRecord[] {
  const last = new Map<string, InvocationRecord>();
  for (const r of records) {
    // Not a settled call: an attempt whose answer was lost with the process that sent it.
    if (r.outcome === 'interrupted') continue;
    const key = `${r.stage}|${r.clip_index}|${r.frame_index}`;
    // Re-inserted so a call made again (a redrive) takes the place of its latest attempt.
    last.delete(key);
    last.set(key, r);
  }
  return [...last.values()];
}

function entry(r: InvocationRecord, fanout: Pick<FaveV1Entry, 'clip_index' | 'frame_index' | 'frame_uri'>, outputs: StageOutput[] = r.outputs ?? []): FaveV1Entry {
  return {
    stage: r.stage,
    status: r.outcome,
    message: r.error?.message ?? null,
    outputs: r.outcome === 'error' ? [] : outputs,
    metrics: {
      duration_ms: r.reported_duration_ms,
      memory_limit_mb: r.memory_limit_mb,
      cold_start: r.cold_start,
      // FAVE's scripts add these up: an attempt that reported no cost adds nothing.
      cost_unit: r.cost_unit ?? 0,
      extra: {},
    },
    ...fanout,
  };
}
