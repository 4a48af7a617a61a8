import { z } from 'zod';
import type { AnyStateMachine, Snapshot } from 'xstate';
import { FaveErrorSchema, FaveFailure, faveError } from '../domain/errors.ts';
import {
  ImportInputSchema,
  PipelineContextSchema,
  ResultInputSchema,
  RunnerInputSchema,
  StageCallInputSchema,
  TopLevelStateSchema,
  inputOfContext,
  type PipelineContext,
  type PipelineInput,
} from '../domain/context.ts';
import { ProgressSummarySchema, RequestStatusSchema, requestStatus, summarizeProgress, topLevelState } from '../domain/progress.ts';
import { LeaseSchema, type Lease } from '../domain/request-view.ts';
import { describeZodIssue } from '../lib/zod-issue.ts';
import { fast } from '../lib/zod-plain.ts';
import { StoredClipsSchema, StoredRecordsSchema } from './stored-clip.ts';

/**
 * state.json, in one place: what it holds (every type below is `z.infer` of its schema), how an
 * envelope is built from the machine's snapshot, written (`serializeEnvelope`, which reuses the
 * bytes of the clips that did not change) and read back.
 *
 * A versioned envelope around the persisted XState snapshot of one request. The summary fields
 * (status, state, progress, error, lease) are there so a person or a tool can read where a
 * request is without understanding the snapshot; the snapshot alone is restored.
 */

export { serializeEnvelope } from './state-serializer.ts';

export const STATE_FORMAT = 'fave-state';
/** 2: each clip's invocation records are one table (`stored-clip.ts`). Every earlier version is still read. */
export const STATE_VERSION = 2;

/**
 * A child of the machine as persisted: its logic's name and its snapshot, with the input it is
 * started again with after a restore. Each input schema reads what earlier versions wrote.
 */
function child<const Src extends string, Input extends z.ZodType>(src: Src, input: Input) {
  return z.looseObject({ src: z.literal(src), snapshot: z.looseObject({ status: z.string(), input }) });
}

export const PersistedChildSchema = z.discriminatedUnion('src', [
  child('importInput', ImportInputSchema),
  child('stageCall', StageCallInputSchema),
  child('runClips', RunnerInputSchema),
  child('detectFrames', RunnerInputSchema),
  child('writeResult', ResultInputSchema),
]);

export const SnapshotSchema = z.looseObject({
  status: z.enum(['active', 'done', 'error', 'stopped']),
  value: z.union([TopLevelStateSchema, z.partialRecord(TopLevelStateSchema, z.string())]),
  context: PipelineContextSchema,
  children: z.record(z.string(), PersistedChildSchema),
});
/** The persisted snapshot of the pipeline machine, as state.json holds it. */
export type PersistedSnapshot = z.infer<typeof SnapshotSchema>;

export const StateEnvelopeSchema = z.object({
  format: z.literal(STATE_FORMAT),
  version: z.number().int(),
  request_id: z.string(),
  status: RequestStatusSchema,
  state: TopLevelStateSchema,
  seq: z.number().int().min(0),
  created_at: z.number(),
  updated_at: z.number(),
  lease: LeaseSchema.nullable(),
  progress: ProgressSummarySchema,
  error: FaveErrorSchema.nullable(),
  snapshot: SnapshotSchema,
});
export type StateEnvelope = z.infer<typeof StateEnvelopeSchema>;

/** The envelope as version 2 and later store it: the same, with each clip in its stored form. */
export const StoredStateEnvelopeSchema = StateEnvelopeSchema.extend({
  snapshot: SnapshotSchema.extend({
    context: PipelineContextSchema.extend({
      clips: StoredClipsSchema,
      records: StoredRecordsSchema,
      // One per clip: checked in one pass rather than copied by the schema.
      clip_times: fast(PipelineContextSchema.shape.clip_times),
    }),
  }),
});

/** The envelope of a snapshot: the summary fields are read from it. */
export function buildEnvelope(parts: { request_id: string; seq: number; created_at: number; updated_at: number; lease: Lease | null; snapshot: PersistedSnapshot }): StateEnvelope {
  const { snapshot } = parts;
  return {
    format: STATE_FORMAT,
    version: STATE_VERSION,
    request_id: parts.request_id,
    status: requestStatus(snapshot.value),
    state: topLevelState(snapshot.value),
    seq: parts.seq,
    created_at: parts.created_at,
    updated_at: parts.updated_at,
    lease: parts.lease,
    progress: summarizeProgress(snapshot.context),
    error: snapshot.context.error,
    snapshot,
  };
}

/** The part of the running pipeline actor a persisted snapshot is taken from. */
export interface SnapshotSource<S extends { context: PipelineContext }> {
  getSnapshot(): S;
  logic: { getPersistedSnapshot(snapshot: S): Snapshot<unknown> };
}

/**
 * What `actor.getPersistedSnapshot()` gives, without XState's search of the context for actor
 * references. That search walks every object of the context on every call, and this machine's
 * context never holds a reference: it is plain JSON by construction, because it is state.json.
 * On a 13,000-invocation request the walk took 10–30 ms per state write, on the event loop.
 */
export function persistedSnapshotOf<S extends { context: PipelineContext }>(actor: SnapshotSource<S>): PersistedSnapshot {
  const snapshot = actor.getSnapshot();
  // XState types every persisted snapshot as its generic Snapshot; this machine's has the shape above.
  const persisted = actor.logic.getPersistedSnapshot({ ...snapshot, context: {} as PipelineContext }) as Pick<PersistedSnapshot, 'status' | 'value' | 'children'> &
    Snapshot<unknown>;
  return { ...persisted, context: snapshot.context };
}

/** A persisted snapshot as XState's `createActor` takes one back, with the input the request was started with. */
export function restorable(snapshot: PersistedSnapshot): { snapshot: Snapshot<unknown>; input: PipelineInput } {
  return { snapshot: { output: undefined, error: undefined, ...snapshot } as Snapshot<unknown>, input: inputOfContext(snapshot.context) };
}

/**
 * The machine, restoring a persisted snapshot without XState's search of the context for actor
 * references. Like `getPersistedSnapshot` (see `persistedSnapshotOf`), XState's restore walks every
 * object of the context, keeping each in a Set, to swap references back in; this context never
 * holds one (plain JSON, validated as such when read). On the 13,000-invocation request the walk
 * was most of the 31 ms a restore took. The snapshot is restored with an empty context, then
 * given its own: the state, the children and their inputs are restored by XState as before.
 */
export function restoringPlainContext<M extends AnyStateMachine>(machine: M): M {
  // An object inheriting everything from the machine, but this one method.
  const restoring = Object.create(machine) as M;
  restoring.restoreSnapshot = (snapshot, scope) => {
    // A machine's persisted snapshot has a context (XState's generic type does not say so).
    const { context } = snapshot as { context?: unknown };
    const restored = machine.restoreSnapshot(Object.assign({}, snapshot, { context: {} }), scope);
    return Object.assign(restored, { context });
  };
  return restoring;
}

/** What says which schema reads the rest. Built once: zod compiles an object schema at its first use. */
const HeadSchema = z.looseObject({ format: z.string(), version: z.number() });

/**
 * Parses state.json. A file from a newer version, or one that is not a valid state file, is an
 * error that names the problem; the caller must never overwrite such a file.
 */
export function parseStateFile(text: string, where: string): StateEnvelope {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new FaveFailure(faveError('STATE_CORRUPT', `${where} is not valid JSON (${(err as Error).message}); it was left untouched`));
  }
  const head = HeadSchema.safeParse(raw);
  if (head.success && head.data.format === STATE_FORMAT && head.data.version > STATE_VERSION) {
    throw new FaveFailure(
      faveError('STATE_VERSION', `${where} has format version ${head.data.version}, newer than this orchestrator understands (${STATE_VERSION}); upgrade before resuming it`),
    );
  }
  const schema = head.success && head.data.version < 2 ? StateEnvelopeSchema : StoredStateEnvelopeSchema;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new FaveFailure(faveError('STATE_CORRUPT', `${where} is not a valid state file at ${describeZodIssue(parsed.error)}; it was left untouched`));
  }
  return parsed.data;
}
