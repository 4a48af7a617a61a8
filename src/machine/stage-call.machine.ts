import { assign, setup } from 'xstate';
import type { FaveError } from '../errors.ts';
import type { InvocationRecord } from '../services/metrics.ts';
import { backoffDelayMs } from '../services/stage-call.ts';
import type { StageFacts } from '../services/stages.ts';
import { failureOf, mayRetry, type createActors } from './actors.ts';
import type { StageCallInput, StageCallOutput } from './context.ts';

interface StageCallContext {
  call: StageCallInput;
  attempt: number;
  retry_at: number;
  facts: StageFacts | null;
  error: FaveError | null;
  records: InvocationRecord[];
}

/**
 * One stage call with its retry policy: attempt, and on a transient failure back off (full
 * jitter) and attempt again, up to the profile's max_attempts. Ends in `succeeded` or `failed`
 * and never throws, so its parent reads one output either way.
 */
export function createStageCallMachine(actors: ReturnType<typeof createActors>) {
  return setup({
    types: {} as {
      input: StageCallInput;
      context: StageCallContext;
      output: StageCallOutput;
    },
    actors: { attemptStage: actors.attemptStage, sleepUntil: actors.sleepUntil },
    guards: {
      mayRetry: ({ context }, params: { error: unknown }) => mayRetry(failureOf(params.error).error, context.attempt, context.call),
    },
    actions: {
      recordSuccess: assign(({ context }, params: { facts: StageFacts; record: InvocationRecord }) => ({
        facts: params.facts,
        error: null,
        records: [...context.records, params.record],
      })),
      recordFailedAttempt: assign(({ context }, params: { error: unknown }) => {
        const { error, record } = failureOf(params.error);
        const where = {
          stage: context.call.function_name,
          ...(context.call.task.fanout ? { clip_index: context.call.task.fanout.clip_index } : {}),
          ...(context.call.task.fanout?.frame_index !== undefined ? { frame_index: context.call.task.fanout.frame_index } : {}),
        };
        return {
          error: { ...where, ...error, attempts: context.attempt },
          records: record ? [...context.records, record] : context.records,
        };
      }),
      scheduleRetry: assign(({ context }) => ({
        retry_at: Date.now() + backoffDelayMs(context.attempt, context.call.retry),
      })),
      nextAttempt: assign(({ context }) => ({ attempt: context.attempt + 1 })),
    },
  }).createMachine({
    id: 'stageCall',
    context: ({ input }) => ({ call: input, attempt: 1, retry_at: 0, facts: null, error: null, records: [] }),
    initial: 'attempting',
    states: {
      attempting: {
        invoke: {
          id: 'attempt',
          src: 'attemptStage',
          input: ({ context }) => ({ call: context.call, attempt: context.attempt }),
          onDone: {
            target: 'succeeded',
            actions: { type: 'recordSuccess', params: ({ event }) => event.output },
          },
          onError: [
            {
              guard: { type: 'mayRetry', params: ({ event }) => ({ error: event.error }) },
              target: 'backingOff',
              actions: [{ type: 'recordFailedAttempt', params: ({ event }) => ({ error: event.error }) }, 'scheduleRetry'],
            },
            { target: 'failed', actions: { type: 'recordFailedAttempt', params: ({ event }) => ({ error: event.error }) } },
          ],
        },
      },
      backingOff: {
        invoke: {
          id: 'backoff',
          src: 'sleepUntil',
          input: ({ context }) => ({ until: Math.min(context.retry_at, context.call.deadline_at) }),
          onDone: { target: 'attempting', actions: 'nextAttempt' },
        },
      },
      succeeded: { type: 'final' },
      failed: { type: 'final' },
    },
    output: ({ context }) => ({
      task_id: context.call.task_id,
      stage: context.call.task.stage,
      clip_index: context.call.task.fanout?.clip_index ?? null,
      frame_index: context.call.task.fanout?.frame_index ?? null,
      facts: context.facts,
      error: context.facts ? null : context.error,
      records: context.records,
    }),
  });
}
