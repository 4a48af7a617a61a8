import { randomBytes } from 'node:crypto';
import { fromCallback, fromPromise } from 'xstate';
import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import { callLocation, FaveFailure, faveError, toFaveError } from '../domain/errors.ts';
import { formatS3Uri, requestKeys, type Store } from '../persistence/store.ts';
import { DEFAULT_MAX_INPUT_BYTES, importInput, inputExtension, type SourceAccess } from '../input/import.ts';
import { defaultS3InputRules } from '../input/s3-input-rules.ts';
import { buildFinalResult } from '../domain/answer.ts';
import { createLimiter, nestedLimiter, type Limiter } from '../lib/limiter.ts';
import { extractFacts } from '../transport/stage-facts.ts';
import { callStageOnce, type SendGate } from '../transport/stage-call.ts';
import { afterFailedAttempt } from '../domain/retry-policy.ts';
import type { StageTransport } from '../transport/transport.ts';
import type { AsyncStageCaller, AsyncTiming } from '../transport/async-transport.ts';
import type { DispatchLog } from '../persistence/dispatch-journal.ts';
import type { AsyncDispatch, ImportInput, PipelineContext, ResultInput, RunnerInput, StageCallInput, StageCallOutput } from '../domain/context.ts';
import { CLIP_CHAIN, applyStepFacts, nextStep, stepInput } from '../machine/clip-chain.ts';
import { clipStepCall, failureOf, frameCall, framesToDetect, pipelineRoot, type ClipStepResult, type FrameResult, type RunnerEvent, type SystemOfActors } from '../machine/work.ts';
import type { ImportOutput, ResultOutput } from '../machine/pipeline.machine.ts';
import type { StageFacts, StageKey, StageOutput } from '../domain/stage.ts';
import { isStageCallFailure, type InvocationRecord, type StageCallFailure } from '../domain/invocations.ts';

/** The side effects the machine may cause, handed in by whoever runs it. */
export interface PipelineDeps {
  transport: StageTransport;
  store: Store;
  limiter: Limiter;
  /** Calls stages through the gateway's queue, for stages whose call mode is async. */
  asyncCalls?: AsyncStageCaller | null;
  logger?: Logger;
  /** Told about every attempt of every stage call, as it ends (metrics, live views). */
  onInvocation?: (requestId: string, record: InvocationRecord) => void;
  /**
   * Where and how this process may fetch a request's input: the full source URL (held in
   * memory only) and the permissions of the running process, never read from state.json.
   * Without it: the stored URI, no local paths, no private network, the default s3:// rules.
   */
  sourceAccess?: (requestId: string) => SourceAccess;
  /** Where each attempt is recorded durably before it is sent, so a resume can count it. */
  dispatches?: DispatchLog;
  /** The request's lease fence, asked right before every send (null: not fenced). */
  leaseGate?: (requestId: string) => SendGate | null;
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
    importInput: fromPromise<ImportOutput, ImportInput>(async ({ input, signal }) => {
      const dest = { bucket: input.settings.bucket, key: requestKeys.input(input.request_id, inputExtension(input.video_uri)) };
      if (input.video_uri === formatS3Uri(dest)) return { input_uri: input.video_uri };
      const access = deps.sourceAccess?.(input.request_id) ?? {
        source: null,
        policy: {
          allowLocalPath: false,
          allowPrivateNetwork: false,
          s3: { artifactBucket: input.settings.bucket, rules: defaultS3InputRules(input.settings.bucket) },
          maxBytes: DEFAULT_MAX_INPUT_BYTES,
        },
      };
      try {
        await importInput(deps.store, access.source ?? input.video_uri, dest, { ...access.policy, deadlineAt: input.settings.deadline_at, signal });
      } catch (err) {
        throw toFaveError(err, { step: 'INIT' });
      }
      deps.logger?.info({ request_id: input.request_id, step: 'INIT', event: 'input_imported', uri: formatS3Uri(dest) });
      return { input_uri: formatS3Uri(dest) };
    }),

    /**
     * One stage call with the profile's retry policy (transient failures retried with full-jitter
     * backoff, up to max_attempts, never past the deadline). Never rejects: the output carries
     * either the facts or the classified error, with a record of every attempt.
     */
    stageCall: fromPromise<StageCallOutput, StageCallInput>(async ({ input, signal, system }) => {
      const root = pipelineRoot(system);
      const context = root?.getSnapshot().context;
      const prior = context?.retrying[input.task_id] ?? [];
      const onRetry = (record: InvocationRecord) => root?.send({ type: 'STAGE.RETRYING', task_id: input.task_id, record });
      const queued: QueuedCall = {
        dispatch: context?.dispatched?.[input.task_id] ?? null,
        onDispatch: (dispatch) => root?.send({ type: 'STAGE.DISPATCHED', dispatches: { [input.task_id]: dispatch } }),
      };
      return {
        task_id: input.task_id,
        step: input.task.stage,
        clip_index: input.task.fanout.clip_index ?? null,
        frame_index: input.task.fanout.frame_index ?? null,
        ...(await callWithRetries(deps, input, signal, prior, onRetry, queued)),
      };
    }),

    /**
     * FANOUT: every clip's chain, at most `max_concurrency` calls at once (`runnerBound`). Each
     * step's result is reported as it ends, so a crash loses at most the calls in flight.
     */
    runClips: fromCallback<RunnerEvent, RunnerInput>(({ input, sendBack, system }) =>
      startRunner<ClipStepResult>(input, system, sendBack, 'CLIPS.PROGRESS', (context, report, retrying, dispatched, signal) => {
        const pending = context.clips.filter((clip) => clip.status === 'pending');
        const bound = runnerBound(deps, context.settings, CLIP_CHAIN);
        return inLanes(pending, bound.lanes, async (clip) => {
          let progress = clip.progress;
          for (let step = nextStep(progress); step !== null && !signal.aborted; step = nextStep(progress)) {
            const call = clipStepCall(context, clip.index, step, stepInput(step, clip, progress));
            const output = await callWithRetries(bound.deps, call, signal, context.retrying[call.task_id] ?? [], (record) => retrying(call.task_id, record), {
              dispatch: context.dispatched?.[call.task_id] ?? null,
              onDispatch: (dispatch) => dispatched(call.task_id, dispatch),
            });
            if (signal.aborted) return;
            report({ clip_index: clip.index, step, facts: output.facts, error: output.error, records: output.records });
            if (!output.facts) return;
            progress = applyStepFacts(progress, output.facts);
          }
        });
      }),
    ),

    /** DETECT: the detection call of every frame still to do, bounded the same way. */
    detectFrames: fromCallback<RunnerEvent, RunnerInput>(({ input, sendBack, system }) =>
      startRunner<FrameResult>(input, system, sendBack, 'FRAMES.SETTLED', (context, report, retrying, dispatched, signal) => {
        const bound = runnerBound(deps, context.settings, ['detector']);
        return inLanes(framesToDetect(context), bound.lanes, async ([clipIndex, frame]) => {
          if (signal.aborted) return;
          const call = frameCall(context, clipIndex, frame);
          const output = await callWithRetries(bound.deps, call, signal, context.retrying[call.task_id] ?? [], (record) => retrying(call.task_id, record), {
            dispatch: context.dispatched?.[call.task_id] ?? null,
            onDispatch: (dispatch) => dispatched(call.task_id, dispatch),
          });
          if (!signal.aborted) report({ clip_index: clipIndex, frame_index: frame.index, facts: output.facts, error: output.error, records: output.records });
        });
      }),
    ),

    /**
     * Aggregates the answer and writes final.json. Reads the context from the machine rather than
     * taking it as input, so the persisted snapshot does not carry a second copy of it.
     */
    writeResult: fromPromise<ResultOutput, ResultInput>(async ({ input, system }) => {
      const root = pipelineRoot(system);
      if (!root) throw faveError('INTERNAL', 'the result writer could not read the request state');
      const context = root.getSnapshot().context;
      const result = buildFinalResult(context, input.status, context.finished_at ?? Date.now());
      const loc = { bucket: context.settings.bucket, key: requestKeys.final(context.request_id) };
      await deps.store.put(loc, `${JSON.stringify(result, null, 2)}\n`, { contentType: 'application/json' });
      return { final_uri: formatS3Uri(loc) };
    }),
  };
}

/**
 * An async call's link to the request's state: the dispatch persisted before a restart (if any)
 * and where to report a new one.
 */
export interface QueuedCall {
  dispatch: AsyncDispatch | null;
  onDispatch: (dispatch: AsyncDispatch) => void;
}

/** One attempt of one stage call, then reading back the facts the answer needs. */
export async function performAttempt(deps: PipelineDeps, call: StageCallInput, attempt: number, signal: AbortSignal, queued?: QueuedCall): Promise<AttemptOutput> {
  const where = callLocation(call.function_name, call.task.fanout);
  const resumed = call.call_mode === 'async' && deps.asyncCalls ? resumedDispatch(call, attempt, queued) : null;
  // A queued attempt a restart interrupted keeps its journal marker: it is continued, not sent again.
  const dispatch = deps.dispatches
    ? resumed?.dispatch_id !== undefined
      ? { id: resumed.dispatch_id, record: async () => {}, unsent: async () => {} }
      : dispatchOf(deps.dispatches, call, attempt, call.call_mode === 'async' && deps.asyncCalls ? 'async' : 'sync')
    : null;
  const gate = deps.leaseGate?.(call.request_id) ?? null;
  const asyncAttempt =
    call.call_mode === 'async' && deps.asyncCalls
      ? deps.asyncCalls.attempt(
          { request_id: call.request_id, task_id: call.task_id, run: call.run ?? 0, attempt },
          { resume: resumed, onDispatch: (d) => queued?.onDispatch(d), dispatchId: dispatch?.id ?? null },
        )
      : null;
  let attempted;
  try {
    attempted = await callStageOnce(asyncAttempt ?? deps.transport, deps.limiter, call, { attempt, gate, ...(dispatch ? { dispatch } : {}) }, signal);
  } catch (err) {
    if (!isStageCallFailure(err)) throw err;
    const failure: StageCallFailure = { error: err.error, record: asyncAttempt ? withQueueTimes(err.record, asyncAttempt.timing) : err.record };
    reportAttempt(deps, call, attempt, failure.record);
    throw failure;
  }
  const response = attempted.response;
  const record = asyncAttempt ? withQueueTimes(attempted.record, asyncAttempt.timing) : attempted.record;
  try {
    const facts = await extractFacts(call.task.stage, response, deps.store, where);
    // The record is this attempt's own, not yet shared: its outputs are added in place.
    if (call.task.stage !== 'ffmpeg3') record.outputs = response.outputs.map(slimOutput);
    reportAttempt(deps, call, attempt, record);
    return { facts, record };
  } catch (err) {
    const error = { ...toFaveError(err, where), attempts: attempt };
    // A store hiccup while reading the artifact may heal; a broken artifact will not.
    if (err instanceof FaveFailure && err.error.code === 'STORE_ERROR') error.transient = err.error.transient ?? true;
    const failure: StageCallFailure = { error, record: amended(record, { outcome: 'error', error }) };
    reportAttempt(deps, call, attempt, failure.record);
    throw failure;
  }
}

/** Tells the host about an attempt that ended (metrics, live views), and logs a failed one. */
function reportAttempt(deps: PipelineDeps, call: StageCallInput, attempt: number, record: InvocationRecord): void {
  deps.onInvocation?.(call.request_id, record);
  if (record.error) {
    deps.logger?.warn({ request_id: call.request_id, stage: call.function_name, event: 'invocation_failed', attempt, error: record.error });
  }
}

/**
 * An output as kept in its invocation record (state.json): type, uri and the short scalar
 * metadata. Lists and long texts (inline detections, transcripts) are left out: what the answer
 * needs of them is in the context already, and kept once per frame they would double its size.
 */
function slimOutput(output: StageOutput): StageOutput {
  const metadata: Record<string, unknown> = {};
  const all = output.metadata;
  for (const key in all) {
    const value = all[key];
    if (value === null || typeof value === 'number' || typeof value === 'boolean' || (typeof value === 'string' && value.length <= 200)) metadata[key] = value;
  }
  return { type: output.type, uri: output.uri, metadata };
}

/**
 * Dispatch ids: 48 random bits per process, then a counter. Unique among a request's attempts
 * across the processes that drive it, short (every record carries one), and without a call into
 * the system's random source per attempt, which cost about 15 µs each.
 */
const DISPATCH_ID_PREFIX = randomBytes(6).toString('base64url');
let dispatchCount = 0;

function dispatchOf(log: DispatchLog, call: StageCallInput, attempt: number, mode: 'sync' | 'async'): { id: string; record(): Promise<void>; unsent(): Promise<void> } {
  return new JournalDispatch(log, call, attempt, mode, `${DISPATCH_ID_PREFIX}${(dispatchCount++).toString(36)}`);
}

/** One attempt's entry in the dispatch journal (a class: one is made for every attempt). */
class JournalDispatch {
  constructor(
    private readonly log: DispatchLog,
    private readonly call: StageCallInput,
    private readonly attempt: number,
    private readonly mode: 'sync' | 'async',
    readonly id: string,
  ) {}

  record(): Promise<void> {
    const { call } = this;
    const at = Date.now();
    return this.log.record(call.request_id, {
      id: this.id,
      task_id: call.task_id,
      stage: call.function_name,
      clip_index: call.task.fanout.clip_index ?? null,
      frame_index: call.task.fanout.frame_index ?? null,
      attempt: this.attempt,
      at,
      // An async call's answer outlives this process: a resume waits for it this long from `at`.
      mode: this.mode,
      run: call.run ?? 0,
      timeout_ms: Math.max(1, Math.min(call.timeout_ms, call.deadline_at - at)),
    });
  }

  unsent(): Promise<void> {
    return this.log.unsent(this.call.request_id, this.id);
  }
}

/**
 * A stage call with the retry policy (`src/domain/retry-policy.ts`). `prior` are the failed attempts it already made (persisted
 * in `retrying` by `onRetry` before each retry), so a call resumed after a crash continues at
 * its next attempt; the one in flight at the crash is made again (at-least-once).
 */
export async function callWithRetries(
  deps: PipelineDeps,
  call: StageCallInput,
  signal: AbortSignal,
  prior: readonly InvocationRecord[] = [],
  onRetry?: (record: InvocationRecord) => void,
  queued?: QueuedCall,
): Promise<Omit<StageCallOutput, 'task_id' | 'step' | 'clip_index' | 'frame_index'>> {
  const records: InvocationRecord[] = [...prior];
  for (let attempt = prior.length + 1; ; attempt++) {
    try {
      // Only the attempt a restart interrupted can have a dispatch of its own already.
      const link = queued && attempt > prior.length + 1 ? { ...queued, dispatch: null } : queued;
      const { facts, record } = await performAttempt(deps, call, attempt, signal, link);
      records.push(record);
      return { facts, error: null, records };
    } catch (err) {
      const { error, record } = failureOf(err);
      if (record) records.push(record);
      const next = afterFailedAttempt(call, attempt, error, records);
      if (!next.retry) return { facts: null, error: next.error, records };
      if (signal.aborted) return { facts: null, error: { ...error, attempts: attempt }, records };
      if (record) onRetry?.(record);
      await sleep(next.delayMs, signal);
    }
  }
}

/** The dispatch a restart interrupted, when it is this very attempt's: waited for, not queued again. */
function resumedDispatch(call: StageCallInput, attempt: number, queued: QueuedCall | undefined): AsyncDispatch | null {
  const dispatch = queued?.dispatch;
  return dispatch && dispatch.run === (call.run ?? 0) && dispatch.attempt === attempt ? dispatch : null;
}

/**
 * An async attempt's record on the queue's clock: queued from its dispatch, started when the
 * function started (X-Start-Time, else at dispatch), ended when its callback came.
 */
function withQueueTimes(record: InvocationRecord, timing: AsyncTiming): InvocationRecord {
  if (timing.dispatched_at === null) return record;
  const queuedAt = timing.dispatched_at;
  const endedAt = Math.max(queuedAt, timing.answered_at ?? record.ended_at);
  const startedAt = Math.min(endedAt, Math.max(queuedAt, timing.function_started_at ?? queuedAt));
  return amended(record, {
    queued_at: queuedAt,
    started_at: startedAt,
    ended_at: endedAt,
    latency_ms: endedAt - queuedAt,
    call_mode: 'async',
    queue_delay_ms: timing.function_started_at === null ? null : startedAt - queuedAt,
  });
}

/**
 * A record with fields changed or added, in the same key order as a spread. Copied onto a fresh
 * object rather than spread: V8 gives every `{ ...record, outputs }` of these records (they hold
 * double fields) a hidden class of its own, about 500 bytes each, 6 MB of live heap over a
 * 13k-call request; copied, they share one.
 */
function amended(record: InvocationRecord, changes: Partial<InvocationRecord>): InvocationRecord {
  return Object.assign({}, record, changes);
}

/**
 * How a runner's calls keep to the request's `max_concurrency` calls at once. A sync call holds
 * its place until its answer is read: one lane per place is the bound. An async call is done with
 * its function once its callback has come, and the callback is then stored before the answer is
 * handed over (milliseconds under load): its place goes to the next call meanwhile, through a
 * limiter of the request's own, and twice as many lanes keep calls ready to take it.
 */
function runnerBound(deps: PipelineDeps, settings: PipelineContext['settings'], stages: readonly StageKey[]): { deps: PipelineDeps; lanes: number } {
  const places = settings.max_concurrency;
  if (!deps.asyncCalls || !stages.some((stage) => settings.call_modes?.[stage] === 'async')) return { deps, lanes: places };
  return { deps: { ...deps, limiter: nestedLimiter(createLimiter(places), deps.limiter) }, lanes: places * 2 };
}

/**
 * Works through `items` in order, at most `lanes` at a time: each lane takes the next item when
 * its last one ends. Same order and bound as a limiter queueing every item up front, without a
 * queued promise per item.
 */
function inLanes<T>(items: readonly T[], lanes: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  return Promise.all(Array.from({ length: Math.min(lanes, items.length) }, lane)).then(() => undefined);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

/**
 * The least time between two result events of a runner. Each event is a machine transition, a
 * new snapshot and its observers, whose cost grows with the number of clips, whether it carries
 * one result or fifty; results and dispatches are not what the next calls wait for, and
 * state.json is written about once a second anyway, so they wait a few milliseconds to go in
 * fewer, larger events.
 */
const RESULTS_MIN_GAP_MS = 5;

/**
 * The common shape of the fan-out runners. The work is read from the machine's current context,
 * not from the runner's input: after a restore the input is the one of the first start, while
 * the context says what has been done since. Results and async dispatches go back in batches, at
 * most one event of each per turn of the event loop and per RESULTS_MIN_GAP_MS (a dispatch's
 * durable record is its journal marker, written before the call is sent); stopping the runner
 * (the state is left) aborts every call in flight.
 */
function startRunner<R>(
  input: RunnerInput,
  system: SystemOfActors,
  sendBack: (event: RunnerEvent) => void,
  type: 'CLIPS.PROGRESS' | 'FRAMES.SETTLED',
  run: (
    context: PipelineContext,
    report: (result: R) => void,
    retrying: (taskId: string, record: InvocationRecord) => void,
    dispatched: (taskId: string, dispatch: AsyncDispatch) => void,
    signal: AbortSignal,
  ) => Promise<void>,
): () => void {
  const controller = new AbortController();
  // Every call in flight listens on this one signal.
  setMaxListeners(0, controller.signal);
  const context = pipelineRoot(system)?.getSnapshot().context;
  if (!context) {
    sendBack({ type, results: [], error: faveError('INTERNAL', `${input.request_id}: the fan-out could not read the request's state`) } as RunnerEvent);
    return () => controller.abort();
  }
  let batch: R[] = [];
  // Async dispatches by task id, sent before the results: a call's dispatch is in the context
  // before its result, which settles it.
  let dispatches: Record<string, AsyncDispatch> | null = null;
  let scheduled = false;
  let flushedAt = 0;
  const flush = () => {
    scheduled = false;
    if (controller.signal.aborted) return;
    const queued = dispatches;
    const results = batch;
    dispatches = null;
    batch = [];
    if (queued) sendBack({ type: 'STAGE.DISPATCHED', dispatches: queued });
    if (results.length > 0) sendBack({ type, results } as RunnerEvent);
    if (queued || results.length > 0) flushedAt = performance.now();
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    const wait = flushedAt + RESULTS_MIN_GAP_MS - performance.now();
    if (wait > 0) setTimeout(flush, wait);
    else setImmediate(flush);
  };
  // The last results go at once: the machine leaves the state on them.
  void run(
    context,
    (result) => {
      batch.push(result);
      schedule();
    },
    (taskId, record) => {
      if (!controller.signal.aborted) sendBack({ type: 'STAGE.RETRYING', task_id: taskId, record });
    },
    (taskId, dispatch) => {
      if (controller.signal.aborted) return;
      (dispatches ??= {})[taskId] = dispatch;
      schedule();
    },
    controller.signal,
  ).then(flush);
  return () => controller.abort();
}
