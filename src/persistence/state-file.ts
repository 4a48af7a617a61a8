import { z } from 'zod';
import { FaveErrorSchema, FaveFailure, faveError } from '../domain/errors.ts';
import { PipelineContextSchema, TopLevelStateSchema } from '../domain/context.ts';
import { ProgressSummarySchema, RequestStatusSchema } from '../domain/progress.ts';
import { LeaseSchema } from '../domain/request-view.ts';
import { describeZodIssue } from '../lib/zod-issue.ts';

/**
 * state.json: a versioned envelope around the persisted XState snapshot of one request.
 * The summary fields (status, state, progress, error, lease) are there so a person or a tool can
 * read where a request is without understanding the snapshot; the snapshot alone is restored.
 */

export const STATE_FORMAT = 'fave-state';
export const STATE_VERSION = 1;

/**
 * A child's input as restored, upgraded from what earlier versions wrote:
 * - permissions were once stored with the request (the import actor's input is a copy of the
 *   context); they come from the running process now, so they are dropped;
 * - the linear stages' calls held `fanout: null`, which every stage refuses; it is read as `{}`.
 * The context itself needs neither: its schema keeps only the fields it declares.
 */
function upgradeChildInput(input: unknown): unknown {
  if (typeof input !== 'object' || input === null) return input;
  const { allow_local_path: _local, allow_private_network: _private, ...kept } = input as Record<string, unknown>;
  const task = kept.task;
  if (typeof task !== 'object' || task === null || !('fanout' in task) || task.fanout !== null) return kept;
  return { ...kept, task: { ...task, fanout: {} } };
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
    throw new FaveFailure(faveError('STATE_CORRUPT', `${where} is not a valid state file at ${describeZodIssue(parsed.error)}; it was left untouched`));
  }
  return parsed.data;
}
