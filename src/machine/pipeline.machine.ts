import { assign, fromCallback, fromPromise, setup } from 'xstate';
import { faveError, type FaveError } from '../domain/errors.ts';
import { framesToDetect, linearCall, type DispatchEvent, type RetryEvent, type RunnerEvent } from './work.ts';
import {
  initialContext,
  type ImportInput,
  type PipelineContext,
  type PipelineInput,
  type ResultInput,
  type RunnerInput,
  type RunningState,
  type StageCallInput,
  type StageCallOutput,
} from '../domain/context.ts';
import * as plan from './plan.ts';

export { PIPELINE_SYSTEM_ID } from './work.ts';

export type PipelineEvent = { type: 'CANCEL'; reason?: string } | { type: 'REDRIVE' } | RunnerEvent;

export type ImportOutput = { input_uri: string };
export type ResultOutput = { final_uri: string };

/** An actor the host has not provided: the definition alone describes the pipeline, it cannot run it. */
function notProvided(name: string): never {
  throw new Error(`the pipeline's "${name}" actor is not provided: run pipelineMachine.provide({ actors: createActors(deps) })`);
}

/** CANCEL from a running state: leaving it stops its actor, which aborts the calls in flight. */
function cancelFrom(at: RunningState) {
  return {
    target: '#pipeline.FAILED',
    actions: { type: 'recordCancel', params: ({ event }: { event: { type: 'CANCEL'; reason?: string } }) => ({ at, reason: event.reason }) },
  } as const;
}

/**
 * The FAVE pipeline, top to bottom:
 * INIT → FFMPEG0 → LIBROSA → CLIP → FANOUT (per clip: ffmpeg-2 → deepspeech → ffmpeg-3)
 *      → DETECT (per frame: object detector, then aggregate) → COMPLETED, or FAILED from anywhere.
 * FAILED is not final: REDRIVE resumes from the step that failed once its cause is fixed.
 */
export const pipelineMachine = setup({
  types: {} as {
    input: PipelineInput;
    context: PipelineContext;
    events: PipelineEvent;
  },
  // Placeholders with the implementations' types; hosts provide the real ones.
  actors: {
    importInput: fromPromise<ImportOutput, ImportInput>(async () => notProvided('importInput')),
    stageCall: fromPromise<StageCallOutput, StageCallInput>(async () => notProvided('stageCall')),
    runClips: fromCallback<RunnerEvent, RunnerInput>(() => notProvided('runClips')),
    detectFrames: fromCallback<RunnerEvent, RunnerInput>(() => notProvided('detectFrames')),
    writeResult: fromPromise<ResultOutput, ResultInput>(async () => notProvided('writeResult')),
  },
  guards: {
    callSucceeded: (_, params: { output: StageCallOutput }) => params.output.facts !== null,
    runnerFailed: (_, params: { error: FaveError | undefined }) => params.error !== undefined,
    tooManyFailures: ({ context }) => plan.tooManyFailures(context),
    allClipsSettled: ({ context }) => context.clips_pending === 0,
    shouldDetect: ({ context }) => context.settings.detector_enabled && framesToDetect(context).length > 0,
    allFramesSettled: ({ context }) => context.frames_pending === 0,
    failedIn: ({ context }, params: { state: RunningState }) => context.failed_at === params.state,
  },
  actions: {
    recordInput: assign((_, params: { input_uri: string }) => ({ input_uri: params.input_uri })),

    recordStep: assign(({ context }, params: { output: StageCallOutput }) => plan.applyStep(context, params.output)),

    recordRetry: assign(({ context }, params: Omit<RetryEvent, 'type'>) => plan.recordRetry(context, params.task_id, params.record)),

    recordDispatches: assign(({ context }, params: Omit<DispatchEvent, 'type'>) => plan.recordDispatches(context, params.dispatches)),

    recordFailure: assign(({ context }, params: { at: RunningState; error: FaveError | null; output?: StageCallOutput }) => ({
      error: params.error ?? faveError('INTERNAL', `${params.at} failed without an error value`),
      failed_at: params.at,
      ...(params.output
        ? {
            records: [...context.records, ...params.output.records],
            retrying: plan.settleRetries(context.retrying, [params.output], (o) => o.task_id),
            dispatched: plan.settleRetries(context.dispatched, [params.output], (o) => o.task_id),
          }
        : {}),
    })),

    recordCancel: assign((_, params: { at: RunningState; reason: string | undefined }) => ({
      error: faveError('CANCELLED', params.reason ? `request cancelled: ${params.reason}` : 'request cancelled', { stage: params.at }),
      failed_at: params.at,
    })),

    failForTooManyFailures: assign(({ context }, params: { at: RunningState }) => ({
      error: plan.tooManyFailuresError(context),
      failed_at: params.at,
    })),

    settleClipSteps: assign(({ context }, params: { results: plan.ClipStepResults }) => plan.settleClipSteps(context, params.results)),

    planFrames: assign(({ context }) => ({ frames_pending: framesToDetect(context).length })),

    settleFrames: assign(({ context }, params: { results: plan.FrameResults }) => plan.settleFrames(context, params.results)),

    markFinished: assign(() => ({ finished_at: Date.now() })),

    prepareRedrive: assign(({ context }) => plan.prepareRedrive(context, Date.now())),
  },
}).createMachine({
  id: 'pipeline',
  context: ({ input }) => initialContext(input),
  // A stage call about to retry, from any running state: persisted so a resume continues its count.
  on: {
    'STAGE.RETRYING': { actions: { type: 'recordRetry', params: ({ event }) => ({ task_id: event.task_id, record: event.record }) } },
    // An async call the gateway queued, from any running state: persisted so a resume waits for its callback.
    'STAGE.DISPATCHED': { actions: { type: 'recordDispatches', params: ({ event }) => ({ dispatches: event.dispatches }) } },
  },
  initial: 'INIT',
  states: {
    INIT: {
      on: { CANCEL: cancelFrom('INIT') },
      invoke: {
        id: 'importInput',
        src: 'importInput',
        input: ({ context }): ImportInput => ({ request_id: context.request_id, video_uri: context.video_uri, settings: context.settings }),
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
        input: ({ context }) => linearCall(context, 'ffmpeg0', context.input_uri!),
        onDone: [
          {
            guard: { type: 'callSucceeded', params: ({ event }) => ({ output: event.output }) },
            target: 'LIBROSA',
            actions: { type: 'recordStep', params: ({ event }) => ({ output: event.output }) },
          },
          {
            target: 'FAILED',
            actions: { type: 'recordFailure', params: ({ event }) => ({ at: 'FFMPEG0', error: event.output.error, output: event.output }) },
          },
        ],
      },
    },

    LIBROSA: {
      on: { CANCEL: cancelFrom('LIBROSA') },
      invoke: {
        id: 'librosa',
        src: 'stageCall',
        input: ({ context }) => linearCall(context, 'librosa', context.steps.ffmpeg0!.output_uri),
        onDone: [
          {
            guard: { type: 'callSucceeded', params: ({ event }) => ({ output: event.output }) },
            target: 'CLIP',
            actions: { type: 'recordStep', params: ({ event }) => ({ output: event.output }) },
          },
          {
            target: 'FAILED',
            actions: { type: 'recordFailure', params: ({ event }) => ({ at: 'LIBROSA', error: event.output.error, output: event.output }) },
          },
        ],
      },
    },

    CLIP: {
      on: { CANCEL: cancelFrom('CLIP') },
      invoke: {
        id: 'ffmpeg1',
        src: 'stageCall',
        input: ({ context }) => linearCall(context, 'ffmpeg1', context.steps.librosa!.output_uri),
        onDone: [
          {
            guard: { type: 'callSucceeded', params: ({ event }) => ({ output: event.output }) },
            target: 'FANOUT',
            actions: { type: 'recordStep', params: ({ event }) => ({ output: event.output }) },
          },
          {
            target: 'FAILED',
            actions: { type: 'recordFailure', params: ({ event }) => ({ at: 'CLIP', error: event.output.error, output: event.output }) },
          },
        ],
      },
    },

    FANOUT: {
      description: 'per clip: ffmpeg-2 → deepspeech → ffmpeg-3',
      on: {
        CANCEL: cancelFrom('FANOUT'),
        'CLIPS.PROGRESS': [
          {
            guard: { type: 'runnerFailed', params: ({ event }) => ({ error: event.error }) },
            target: 'FAILED',
            actions: { type: 'recordFailure', params: ({ event }) => ({ at: 'FANOUT', error: event.error ?? null }) },
          },
          { actions: { type: 'settleClipSteps', params: ({ event }) => ({ results: event.results }) } },
        ],
      },
      invoke: { id: 'runClips', src: 'runClips', input: ({ context }) => ({ request_id: context.request_id }) },
      always: [
        { guard: 'tooManyFailures', target: 'FAILED', actions: { type: 'failForTooManyFailures', params: { at: 'FANOUT' } } },
        { guard: 'allClipsSettled', target: 'DETECT' },
      ],
    },

    // Per frame: the object detector, bounded by the request's concurrency; then the answer.
    DETECT: {
      on: { CANCEL: cancelFrom('DETECT') },
      initial: 'planning',
      states: {
        planning: {
          always: [{ guard: 'shouldDetect', target: 'detecting', actions: 'planFrames' }, { target: 'aggregating' }],
        },
        detecting: {
          description: 'per frame: object detector',
          on: {
            'FRAMES.SETTLED': [
              {
                guard: { type: 'runnerFailed', params: ({ event }) => ({ error: event.error }) },
                target: '#pipeline.FAILED',
                actions: { type: 'recordFailure', params: ({ event }) => ({ at: 'DETECT', error: event.error ?? null }) },
              },
              { actions: { type: 'settleFrames', params: ({ event }) => ({ results: event.results }) } },
            ],
          },
          invoke: { id: 'detectFrames', src: 'detectFrames', input: ({ context }) => ({ request_id: context.request_id }) },
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
      entry: 'markFinished',
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

export type PipelineMachine = typeof pipelineMachine;
