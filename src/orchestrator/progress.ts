import type { StateValue } from 'xstate';
import { TOP_LEVEL_STATES, type PipelineContext, type TopLevelState } from '../domain/context.ts';
import type { ProgressSummary, RequestStatus } from '../persistence/state-file.ts';

export function topLevelState(value: StateValue): TopLevelState {
  const key = typeof value === 'string' ? value : Object.keys(value)[0];
  return (TOP_LEVEL_STATES as readonly string[]).includes(key ?? '') ? (key as TopLevelState) : 'INIT';
}

/** A request is terminal once COMPLETED, or FAILED with its report written. */
export function isTerminal(value: StateValue): boolean {
  if (value === 'COMPLETED') return true;
  return typeof value === 'object' && (value as Record<string, unknown>).FAILED === 'settled';
}

export function requestStatus(value: StateValue): RequestStatus {
  const top = topLevelState(value);
  return top === 'COMPLETED' ? 'COMPLETED' : top === 'FAILED' ? 'FAILED' : 'RUNNING';
}

export function summarizeProgress(context: PipelineContext): ProgressSummary {
  let clipsDone = 0;
  let clipsFailed = 0;
  let framesTotal = 0;
  let framesDone = 0;
  let invocations = context.records.length;
  for (const failed of Object.values(context.retrying)) invocations += failed.length;
  for (const clip of context.clips) {
    if (clip.status === 'done') clipsDone++;
    if (clip.status === 'failed') clipsFailed++;
    invocations += clip.records.length;
    framesTotal += clip.frames.length;
    for (const frame of clip.frames) {
      if (frame.status === 'done') framesDone++;
      invocations += frame.records.length;
    }
  }
  return {
    clips_total: context.clips.length,
    clips_done: clipsDone,
    clips_failed: clipsFailed,
    frames_total: framesTotal,
    frames_done: framesDone,
    invocations,
  };
}
