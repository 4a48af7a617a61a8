import { assign, setup } from 'xstate';
import type { StageKey } from '../config.ts';
import type { FaveError } from '../errors.ts';
import type { InvocationRecord } from '../services/metrics.ts';
import type { StageFacts } from '../services/stages.ts';
import type { ClipProgress, ClipTaskInput, ClipTaskOutput, StageCallInput, StageCallOutput } from './context.ts';
import type { createActors } from './actors.ts';

interface ClipContext {
  input: ClipTaskInput;
  progress: ClipProgress;
  records: InvocationRecord[];
  error: FaveError | null;
}

function callInput(context: ClipContext, stage: StageKey, inputUri: string): StageCallInput {
  const { settings } = context.input;
  return {
    task_id: `${context.input.task_id}/${stage}`,
    request_id: context.input.request_id,
    profile: settings.profile,
    function_name: settings.stage_names[stage],
    task: { stage, input_uri: inputUri, fanout: { clip_index: context.input.clip_index } },
    timeout_ms: settings.timeouts_ms[stage],
    retry: settings.retry,
    deadline_at: settings.deadline_at,
  };
}

function apply(progress: ClipProgress, facts: StageFacts): ClipProgress {
  switch (facts.kind) {
    case 'output':
      return { ...progress, compressed_uri: facts.uri };
    case 'transcript':
      return { ...progress, transcript_uri: facts.uri, transcript: facts.transcript, transcript_note: facts.note };
    case 'frames':
      return { ...progress, frames: facts.frames };
    default:
      return progress;
  }
}

/**
 * One clip's chain: compress (ffmpeg-2) → transcribe (deepspeech) → extract frames (ffmpeg-3).
 * Each step's input is the last output of the step before it. A clip redriven after a failure
 * starts at the first step it has not finished.
 */
export function createClipMachine(stageCall: ReturnType<typeof createActors>['stageCall']) {
  return setup({
    types: {} as { input: ClipTaskInput; context: ClipContext; output: ClipTaskOutput },
    actors: { stageCall },
    guards: {
      succeeded: (_, params: { output: StageCallOutput }) => params.output.facts !== null,
      compressed: ({ context }) => context.progress.compressed_uri !== null,
      transcribed: ({ context }) => context.progress.transcript_uri !== null,
      framesExtracted: ({ context }) => context.progress.frames !== null,
    },
    actions: {
      recordStep: assign(({ context }, params: { output: StageCallOutput }) => ({
        progress: params.output.facts ? apply(context.progress, params.output.facts) : context.progress,
        records: [...context.records, ...params.output.records],
        error: params.output.error,
      })),
    },
  }).createMachine({
    id: 'clip',
    context: ({ input }) => ({ input, progress: input.progress, records: [], error: null }),
    initial: 'resuming',
    states: {
      resuming: {
        always: [
          { guard: 'framesExtracted', target: 'done' },
          { guard: 'transcribed', target: 'extractingFrames' },
          { guard: 'compressed', target: 'transcribing' },
          { target: 'compressing' },
        ],
      },
      compressing: {
        invoke: {
          id: 'ffmpeg2',
          src: 'stageCall',
          input: ({ context }) => callInput(context, 'ffmpeg2', context.input.clip_uri),
          onDone: [
            {
              guard: { type: 'succeeded', params: ({ event }) => ({ output: event.output }) },
              target: 'transcribing',
              actions: { type: 'recordStep', params: ({ event }) => ({ output: event.output }) },
            },
            { target: 'failed', actions: { type: 'recordStep', params: ({ event }) => ({ output: event.output }) } },
          ],
        },
      },
      transcribing: {
        invoke: {
          id: 'deepspeech',
          src: 'stageCall',
          input: ({ context }) => callInput(context, 'deepspeech', context.progress.compressed_uri ?? context.input.clip_uri),
          onDone: [
            {
              guard: { type: 'succeeded', params: ({ event }) => ({ output: event.output }) },
              target: 'extractingFrames',
              actions: { type: 'recordStep', params: ({ event }) => ({ output: event.output }) },
            },
            { target: 'failed', actions: { type: 'recordStep', params: ({ event }) => ({ output: event.output }) } },
          ],
        },
      },
      extractingFrames: {
        invoke: {
          id: 'ffmpeg3',
          src: 'stageCall',
          input: ({ context }) =>
            callInput(context, 'ffmpeg3', context.progress.transcript_uri ?? context.progress.compressed_uri ?? context.input.clip_uri),
          onDone: [
            {
              guard: { type: 'succeeded', params: ({ event }) => ({ output: event.output }) },
              target: 'done',
              actions: { type: 'recordStep', params: ({ event }) => ({ output: event.output }) },
            },
            { target: 'failed', actions: { type: 'recordStep', params: ({ event }) => ({ output: event.output }) } },
          ],
        },
      },
      done: { type: 'final' },
      failed: { type: 'final' },
    },
    output: ({ context }) => ({
      task_id: context.input.task_id,
      clip_index: context.input.clip_index,
      progress: context.progress,
      error: context.progress.frames ? null : context.error,
      records: context.records,
    }),
  });
}
