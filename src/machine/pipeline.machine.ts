import { assign, enqueueActions, setup } from 'xstate';
import type { StageKey } from '../config.ts';
import { faveError, describeLocation, type FaveError } from '../errors.ts';
import { createActors, framesToDetect, type PipelineDeps, type PipelineEventFromRunner } from './actors.ts';
import { createClipMachine } from './clip.machine.ts';
import {
  emptyProgress,
  type ClipState,
  type ClipTaskOutput,
  type PipelineContext,
  type PipelineInput,
  type RunningState,
  type StageCallInput,
  type StageCallOutput,
} from './context.ts';
export { PIPELINE_SYSTEM_ID } from './actors.ts';
import * as plan from './plan.ts';

export type PipelineEvent =
  | { type: 'CANCEL'; reason?: string }
  | { type: 'REDRIVE' }
  | PipelineEventFromRunner
  | { type: `xstate.done.actor.${string}`; output: unknown };

function stepCall(context: PipelineContext, stage: StageKey, inputUri: string): StageCallInput {
  const { settings } = context;
  return {
    task_id: stage,
    request_id: context.request_id,
    profile: settings.profile,
    function_name: settings.stage_names[stage],
    task: { stage, input_uri: inputUri, fanout: null },
    timeout_ms: settings.timeouts_ms[stage],
    retry: settings.retry,
    deadline_at: settings.deadline_at,
  };
}

/** CANCEL from a running state: in-flight calls are aborted as FAILED stops every task. */
function cancelFrom(at: RunningState) {
  return {
    target: '#pipeline.FAILED',
    actions: { type: 'recordCancel', params: ({ event }: { event: { type: 'CANCEL'; reason?: string } }) => ({ at, reason: event.reason }) },
  } as const;
}

function isClipOutput(output: unknown): output is ClipTaskOutput {
  return typeof output === 'object' && output !== null && 'progress' in output && 'clip_index' in output;
}


/**
 * The FAVE pipeline, top to bottom:
 * INIT → FFMPEG0 → LIBROSA → CLIP → FANOUT (per clip: ffmpeg-2 → deepspeech → ffmpeg-3)
 *      → DETECT (per frame: object detector, then aggregate) → COMPLETED, or FAILED from anywhere.
 * FAILED is not final: REDRIVE resumes from the step that failed once its cause is fixed.
 */
export function createPipelineMachine(deps: PipelineDeps) {
  const actors = createActors(deps);
  const stageCall = actors.stageCall;
  const clipTask = createClipMachine(stageCall);

  return setup({
    types: {} as {
      input: PipelineInput;
      context: PipelineContext;
      events: PipelineEvent;
    },
    actors: {
      importInput: actors.importInput,
      writeResult: actors.writeResult,
      stageCall,
      clipTask,
      detectFrames: actors.detectFrames,
    },
    guards: {
      callSucceeded: (_, params: { output: StageCallOutput }) => params.output.facts !== null,
      hasClips: ({ context }) => context.clips.length > 0,
      tooManyFailures: ({ context }) => plan.tooManyFailures(context),
      allClipsSettled: ({ context }) => context.active === 0 && plan.nextPendingClip(context, context.next_clip) === -1,
      shouldDetect: ({ context }) => context.settings.detector_enabled && framesToDetect(context).length > 0,
      allFramesSettled: ({ context }) => context.frames_pending === 0,
      failedIn: ({ context }, params: { state: RunningState }) => context.failed_at === params.state,
    },
    actions: {
      recordInput: assign((_, params: { input_uri: string }) => ({ input_uri: params.input_uri })),

      recordStep: assign(({ context }, params: { output: StageCallOutput }) => plan.applyStep(context, params.output)),

      recordFailure: assign(({ context }, params: { at: RunningState; error: FaveError | null; records?: StageCallOutput['records'] }) => ({
        error: params.error ?? faveError('INTERNAL', `${params.at} failed without an error value`),
        failed_at: params.at,
        records: params.records ? [...context.records, ...params.records] : context.records,
      })),

      recordCancel: assign((_, params: { at: RunningState; reason: string | undefined }) => ({
        error: faveError('CANCELLED', params.reason ? `request cancelled: ${params.reason}` : 'request cancelled', { stage: params.at }),
        failed_at: params.at,
      })),

      failForTooManyFailures: assign(({ context }, params: { at: RunningState }) => ({
        error: plan.tooManyFailuresError(context),
        failed_at: params.at,
      })),

      dispatchClips: enqueueActions(({ context, enqueue }) => {
        const { starts, next_clip } = plan.clipsToStart(context);
        if (starts.length === 0) return;
        const clips = context.clips.slice();
        for (const index of starts) {
          const clip = clips[index]!;
          clips[index] = { ...clip, status: 'running' };
          enqueue.spawnChild('clipTask', {
            id: plan.clipTaskId(clip.index),
            input: {
              task_id: plan.clipTaskId(clip.index),
              request_id: context.request_id,
              clip_index: clip.index,
              clip_uri: clip.uri,
              progress: clip.progress,
              settings: context.settings,
            },
          });
        }
        enqueue.assign({ clips, next_clip, active: context.active + starts.length });
      }),

      settleClip: enqueueActions(({ context, enqueue }, params: { output: unknown }) => {
        if (!isClipOutput(params.output)) return;
        enqueue.stopChild(params.output.task_id);
        enqueue.assign(plan.settleClip(context, params.output));
      }),

      planFrames: assign(({ context }) => ({ frames_pending: framesToDetect(context).length })),

      settleFrames: assign(({ context }, params: { results: PipelineEventFromRunner['results'] }) => plan.settleFrames(context, params.results)),

      recordRunnerError: assign((_, params: { error: FaveError | undefined }) =>
        params.error ? { error: params.error, failed_at: 'DETECT' as const } : {},
      ),

      stopAllTasks: enqueueActions(({ context, enqueue, self }) => {
        // What a stopped clip had already learned (finished steps, attempts) is kept, so the
        // failure report is complete and a redrive does not repeat those steps.
        // (During a pure transition, as in model-based traversal, there are no live children.)
        const children = (self.getSnapshot()?.children ?? {}) as Record<string, { getSnapshot(): { context?: unknown } } | undefined>;
        const partial: plan.PartialClips = {};
        for (const id of plan.runningTaskIds(context)) {
          const ctx = children[id]?.getSnapshot().context as { progress?: ClipTaskOutput['progress']; records?: ClipTaskOutput['records'] } | undefined;
          if (ctx?.progress && ctx.records) partial[id] = { progress: ctx.progress, records: ctx.records };
          enqueue.stopChild(id);
        }
        enqueue.assign(plan.releaseRunning(context, partial));
      }),

      markFinished: assign(() => ({ finished_at: Date.now() })),

      prepareRedrive: assign(({ context }) => plan.prepareRedrive(context, Date.now())),
    },
  }).createMachine({
    id: 'pipeline',
    context: ({ input }) => ({
      request_id: input.request_id,
      video_uri: input.video_uri,
      query: input.query,
      settings: input.settings,
      allow_local_path: input.allow_local_path,
      started_at: input.started_at,
      finished_at: null,
      input_uri: null,
      steps: {},
      clip_times: null,
      clips_note: null,
      clips: [],
      next_clip: 0,
      frames_pending: 0,
      active: 0,
      failed_clips: 0,
      records: [],
      error: null,
      failed_at: null,
      redrives: 0,
    }),
    initial: 'INIT',
    states: {
      INIT: {
        on: { CANCEL: cancelFrom('INIT') },
        invoke: {
          id: 'importInput',
          src: 'importInput',
          input: ({ context }) => context,
          onDone: { target: 'FFMPEG0', actions: { type: 'recordInput', params: ({ event }) => event.output } },
          onError: {
            target: 'FAILED',
            actions: { type: 'recordFailure', params: ({ event }) => ({ at: 'INIT', error: plan.errorOf(event.error, 'INIT') }) },
          },
        },
      },

      FFMPEG0: {
        on: { CANCEL: cancelFrom('FFMPEG0') },
        invoke: {
          id: 'ffmpeg0',
          src: 'stageCall',
          input: ({ context }) => stepCall(context, 'ffmpeg0', context.input_uri!),
          onDone: [
            {
              guard: { type: 'callSucceeded', params: ({ event }) => ({ output: event.output }) },
              target: 'LIBROSA',
              actions: { type: 'recordStep', params: ({ event }) => ({ output: event.output }) },
            },
            {
              target: 'FAILED',
              actions: { type: 'recordFailure', params: ({ event }) => ({ at: 'FFMPEG0', error: event.output.error, records: event.output.records }) },
            },
          ],
        },
      },

      LIBROSA: {
        on: { CANCEL: cancelFrom('LIBROSA') },
        invoke: {
          id: 'librosa',
          src: 'stageCall',
          input: ({ context }) => stepCall(context, 'librosa', context.steps.ffmpeg0!.output_uri),
          onDone: [
            {
              guard: { type: 'callSucceeded', params: ({ event }) => ({ output: event.output }) },
              target: 'CLIP',
              actions: { type: 'recordStep', params: ({ event }) => ({ output: event.output }) },
            },
            {
              target: 'FAILED',
              actions: { type: 'recordFailure', params: ({ event }) => ({ at: 'LIBROSA', error: event.output.error, records: event.output.records }) },
            },
          ],
        },
      },

      CLIP: {
        on: { CANCEL: cancelFrom('CLIP') },
        invoke: {
          id: 'ffmpeg1',
          src: 'stageCall',
          input: ({ context }) => stepCall(context, 'ffmpeg1', context.steps.librosa!.output_uri),
          onDone: [
            {
              guard: { type: 'callSucceeded', params: ({ event }) => ({ output: event.output }) },
              target: 'FANOUT',
              actions: { type: 'recordStep', params: ({ event }) => ({ output: event.output }) },
            },
            {
              target: 'FAILED',
              actions: { type: 'recordFailure', params: ({ event }) => ({ at: 'CLIP', error: event.output.error, records: event.output.records }) },
            },
          ],
        },
      },

      FANOUT: {
        entry: 'dispatchClips',
        on: {
          CANCEL: cancelFrom('FANOUT'),
          'xstate.done.actor.*': {
            actions: [{ type: 'settleClip', params: ({ event }) => ({ output: event.output }) }, 'dispatchClips'],
          },
        },
        always: [
          { guard: 'tooManyFailures', target: 'FAILED', actions: { type: 'failForTooManyFailures', params: { at: 'FANOUT' } } },
          { guard: 'allClipsSettled', target: 'DETECT' },
        ],
      },

      DETECT: {
        on: { CANCEL: cancelFrom('DETECT') },
        initial: 'planning',
        states: {
          planning: {
            always: [{ guard: 'shouldDetect', target: 'detecting', actions: 'planFrames' }, { target: 'aggregating' }],
          },
          detecting: {
            invoke: { id: 'detectFrames', src: 'detectFrames', input: ({ context }) => ({ request_id: context.request_id }) },
            on: {
              'FRAMES.SETTLED': [
                {
                  guard: ({ event }) => event.error !== undefined,
                  target: '#pipeline.FAILED',
                  actions: { type: 'recordRunnerError', params: ({ event }) => ({ error: event.error }) },
                },
                { actions: { type: 'settleFrames', params: ({ event }) => ({ results: event.results }) } },
              ],
            },
            always: [
              { guard: 'tooManyFailures', target: '#pipeline.FAILED', actions: { type: 'failForTooManyFailures', params: { at: 'DETECT' } } },
              { guard: 'allFramesSettled', target: 'aggregating' },
            ],
          },
          aggregating: {
            entry: 'markFinished',
            invoke: {
              id: 'writeResult',
              src: 'writeResult',
              input: { status: 'COMPLETED' as const },
              onDone: { target: '#pipeline.COMPLETED' },
              onError: {
                target: '#pipeline.FAILED',
                actions: { type: 'recordFailure', params: ({ event }) => ({ at: 'DETECT', error: plan.errorOf(event.error, 'DETECT') }) },
              },
            },
          },
        },
      },

      COMPLETED: { type: 'final' },

      FAILED: {
        entry: ['stopAllTasks', 'markFinished'],
        initial: 'reporting',
        states: {
          reporting: {
            invoke: {
              id: 'writeFailure',
              src: 'writeResult',
              input: { status: 'FAILED' as const },
              onDone: 'settled',
              onError: 'settled',
            },
          },
          settled: {},
        },
        on: {
          REDRIVE: [
            { guard: { type: 'failedIn', params: { state: 'INIT' } }, target: 'INIT', actions: 'prepareRedrive' },
            { guard: { type: 'failedIn', params: { state: 'FFMPEG0' } }, target: 'FFMPEG0', actions: 'prepareRedrive' },
            { guard: { type: 'failedIn', params: { state: 'LIBROSA' } }, target: 'LIBROSA', actions: 'prepareRedrive' },
            { guard: { type: 'failedIn', params: { state: 'CLIP' } }, target: 'CLIP', actions: 'prepareRedrive' },
            { guard: { type: 'failedIn', params: { state: 'FANOUT' } }, target: 'FANOUT', actions: 'prepareRedrive' },
            { guard: { type: 'failedIn', params: { state: 'DETECT' } }, target: 'DETECT', actions: 'prepareRedrive' },
          ],
        },
      },
    },
  });
}

export type PipelineMachine = ReturnType<typeof createPipelineMachine>;

export function describeError(error: FaveError): string {
  const where = describeLocation(error);
  return `${where ? `${where}: ` : ''}${error.message}${error.attempts ? ` (after ${error.attempts} attempt${error.attempts === 1 ? '' : 's'})` : ''}`;
}

export type { ClipState };
export { emptyProgress };
