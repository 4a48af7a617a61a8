import { z } from 'zod';
import { FaveErrorSchema, FaveFailure, faveError } from '../domain/errors.ts';
import { PipelineContextSchema, TopLevelStateSchema } from '../domain/context.ts';

/**
 * state.json: a versioned envelope around the persisted XState snapshot of one request.
 * The summary fields (status, state, progress, error, lease) are there so a person or a tool can
 * read where a request is without understanding the snapshot; the snapshot alone is restored.
 */

export const STATE_FORMAT = 'fave-state';
export const STATE_VERSION = 1;

/**
 * A child's input as restored. State files written before the linear stages were sent `fanout: {}`
 * hold `fanout: null` in a stage call's input; restored as is, the call would be refused by
 * every stage, so it is read as `{}`.
 */
function upgradeChildInput(input: unknown): unknown {
  if (typeof input !== 'object' || input === null || !('task' in input)) return input;
  const task = input.task;
  if (typeof task !== 'object' || task === null || !('fanout' in task) || task.fanout !== null) return input;
  return { ...input, task: { ...task, fanout: {} } };
}

export const SnapshotSchema = z.looseObject({
  status: z.enum(['active', 'done', 'error', 'stopped']),
  value: z.union([TopLevelStateSchema, z.partialRecord(TopLevelStateSchema, z.string())]),
  context: PipelineContextSchema,
  children: z.record(
    z.string(),
    z.looseObject({ src: z.string(), snapshot: z.looseObject({ status: z.string(), input: z.unknown().transform(upgradeChildInput) }) }),
  ),
});

export const RequestStatusSchema = z.enum(['RUNNING', 'COMPLETED', 'FAILED']);
export type RequestStatus = z.infer<typeof RequestStatusSchema>;

export const LeaseSchema = z.object({
  owner: z.string(),
  acquired_at: z.number(),
  expires_at: z.number(),
});
export type Lease = z.infer<typeof LeaseSchema>;

export const ProgressSummarySchema = z.object({
  clips_total: z.number().int(),
  clips_done: z.number().int(),
  clips_failed: z.number().int(),
  frames_total: z.number().int(),
  frames_done: z.number().int(),
  invocations: z.number().int(),
});
export type ProgressSummary = z.infer<typeof ProgressSummarySchema>;

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
  const head = z.looseObject({ format: z.string(), version: z.number() }).safeParse(raw);
  if (head.success && head.data.format === STATE_FORMAT && head.data.version > STATE_VERSION) {
    throw new FaveFailure(
      faveError('STATE_VERSION', `${where} has format version ${head.data.version}, newer than this orchestrator understands (${STATE_VERSION}); upgrade before resuming it`),
    );
  }
  const parsed = StateEnvelopeSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new FaveFailure(
      faveError('STATE_CORRUPT', `${where} is not a valid state file at ${issue.path.join('.') || '(root)'}: ${issue.message}; it was left untouched`),
    );
  }
  // Permissions were once stored with the request; they come from the running process now.
  // (The import actor's persisted input is a copy of the context: the same keys go there too.)
  const holders: unknown[] = [parsed.data.snapshot.context, ...Object.values(parsed.data.snapshot.children).map((child) => child.snapshot.input)];
  for (const holder of holders) {
    if (typeof holder !== 'object' || holder === null) continue;
    delete (holder as Record<string, unknown>).allow_local_path;
    delete (holder as Record<string, unknown>).allow_private_network;
  }
  return parsed.data;
}
