import { z } from 'zod';
import { TOP_LEVEL_STATES, type PipelineContext, type TopLevelState } from './context.ts';

/** A machine's state value: a state name, or a state and its substates (`{ DETECT: 'detecting' }`). */
export type MachineValue = string | { [state: string]: MachineValue | undefined };

export const RequestStatusSchema = z.enum(['RUNNING', 'COMPLETED', 'FAILED']);
export type RequestStatus = z.infer<typeof RequestStatusSchema>;

export const ProgressSummarySchema = z.object({
  clips_total: z.number().int(),
  clips_done: z.number().int(),
  clips_failed: z.number().int(),
  frames_total: z.number().int(),
  frames_done: z.number().int(),
  invocations: z.number().int(),
});
export type ProgressSummary = z.infer<typeof ProgressSummarySchema>;

export function topLevelState(value: MachineValue): TopLevelState {
  const key = typeof value === 'string' ? value : Object.keys(value)[0];
  return (TOP_LEVEL_STATES as readonly string[]).includes(key ?? '') ? (key as TopLevelState) : 'INIT';
}

/** A request is terminal once COMPLETED, or FAILED with its report written. */
export function isTerminal(value: MachineValue): boolean {
  if (value === 'COMPLETED') return true;
  return typeof value === 'object' && value.FAILED === 'settled';
}

export function requestStatus(value: MachineValue): RequestStatus {
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
