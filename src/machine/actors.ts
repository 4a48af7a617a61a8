import { fromPromise } from 'xstate';
import type { Logger } from 'pino';
import { FaveFailure, faveError, toFaveError } from '../errors.ts';
import { formatS3Uri, requestKeys, type Store } from '../persistence/store.ts';
import { importInput, inputExtension } from '../persistence/input-import.ts';
import { buildFinalResult } from '../services/aggregate.ts';
import type { Limiter } from '../services/limiter.ts';
import { buildStageRequest, extractFacts, type StageFacts } from '../services/stages.ts';
import { callStageOnce, isStageCallFailure, type StageCallFailure } from '../services/stage-call.ts';
import type { InvocationRecord } from '../services/metrics.ts';
import type { StageTransport } from '../services/transport.ts';
import type { PipelineContext, StageCallInput } from './context.ts';

/** The side effects the machine may cause, handed in by whoever runs it. */
export interface PipelineDeps {
  transport: StageTransport;
  store: Store;
  limiter: Limiter;
  logger?: Logger;
  /** Told about every attempt of every stage call, as it ends (metrics, live views). */
  onInvocation?: (requestId: string, record: InvocationRecord) => void;
}

export interface AttemptInput {
  call: StageCallInput;
  attempt: number;
}

export interface AttemptOutput {
  facts: StageFacts;
  record: InvocationRecord;
}

/**
 * The actor implementations. Each is one small unit of work, so that restoring a snapshot
 * restarts at most the units that were in flight.
 */
export function createActors(deps: PipelineDeps) {
  return {
    /** Copies the input video into requests/{id}/input/ (byte-identical, streamed). */
    importInput: fromPromise<{ input_uri: string }, Pick<PipelineContext, 'request_id' | 'video_uri' | 'settings' | 'allow_local_path'>>(
      async ({ input, signal }) => {
        const dest = { bucket: input.settings.bucket, key: requestKeys.input(input.request_id, inputExtension(input.video_uri)) };
        if (input.video_uri === formatS3Uri(dest)) return { input_uri: input.video_uri };
        try {
          await importInput(deps.store, input.video_uri, dest, { allowLocalPath: input.allow_local_path, signal });
        } catch (err) {
          throw toFaveError(err, { stage: 'INIT' });
        }
        deps.logger?.info({ request_id: input.request_id, stage: 'INIT', event: 'input_imported', uri: formatS3Uri(dest) });
        return { input_uri: formatS3Uri(dest) };
      },
    ),

    /** One attempt of one stage call, then reading back the facts the answer needs. */
    attemptStage: fromPromise<AttemptOutput, AttemptInput>(async ({ input, signal }) => {
      const { call, attempt } = input;
      const request = buildStageRequest(call.request_id, call.function_name, call.task, call.profile);
      const where = {
        stage: call.function_name,
        ...(call.task.fanout ? { clip_index: call.task.fanout.clip_index } : {}),
        ...(call.task.fanout?.frame_index !== undefined ? { frame_index: call.task.fanout.frame_index } : {}),
      };
      const report = (record: InvocationRecord) => {
        deps.onInvocation?.(call.request_id, record);
        if (record.error) {
          deps.logger?.warn({ request_id: call.request_id, stage: call.function_name, event: 'invocation_failed', attempt, error: record.error });
        }
      };
      let attemptResult;
      try {
        attemptResult = await callStageOnce(
        deps.transport,
        deps.limiter,
        {
          functionName: call.function_name,
          request,
          clipIndex: call.task.fanout?.clip_index ?? null,
          frameIndex: call.task.fanout?.frame_index ?? null,
          attempt,
          timeoutMs: call.timeout_ms,
          deadlineAt: call.deadline_at,
        },
        signal,
      );
      } catch (err) {
        if (isStageCallFailure(err)) report(err.record);
        throw err;
      }
      const { response, record } = attemptResult;
      try {
        const facts = await extractFacts(call.task.stage, response, deps.store, where);
        report(record);
        return { facts, record };
      } catch (err) {
        const error = { ...toFaveError(err, where), attempts: attempt };
        // A store hiccup while reading the artifact may heal; a broken artifact will not.
        if (err instanceof FaveFailure && err.error.code === 'STORE_ERROR') error.transient = err.error.transient ?? true;
        const failure: StageCallFailure = { error, record: { ...record, outcome: 'error', error } };
        report(failure.record);
        throw failure;
      }
    }),

    /** Waits out a retry backoff. Restart-safe: a restored wait sleeps only what is left. */
    sleepUntil: fromPromise<void, { until: number }>(
      ({ input, signal }) =>
        new Promise<void>((resolve) => {
          const ms = Math.max(0, input.until - Date.now());
          const timer = setTimeout(resolve, ms);
          signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
        }),
    ),

    /** Aggregates the answer and writes final.json. */
    writeResult: fromPromise<{ final_uri: string }, { context: PipelineContext; status: 'COMPLETED' | 'FAILED'; finished_at: number }>(
      async ({ input }) => {
        const result = buildFinalResult(input.context, input.status, input.finished_at);
        const loc = { bucket: input.context.settings.bucket, key: requestKeys.final(input.context.request_id) };
        await deps.store.put(loc, `${JSON.stringify(result, null, 2)}\n`, { contentType: 'application/json' });
        return { final_uri: formatS3Uri(loc) };
      },
    ),
  };
}

export function failureOf(value: unknown): { error: ReturnType<typeof toFaveError>; record: InvocationRecord | null } {
  if (isStageCallFailure(value)) return { error: value.error, record: value.record };
  return { error: toFaveError(value), record: null };
}

export function internal(message: string) {
  return faveError('INTERNAL', message);
}
