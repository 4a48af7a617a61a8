import { z } from 'zod';
import { ErrorCodes, FaveFailure, faveError } from '../errors.ts';
import { ErrorSchema } from '../contracts/result.ts';
import { STAGE_KEYS } from '../config.ts';
import { TOP_LEVEL_STATES } from '../machine/context.ts';

/**
 * state.json: a versioned envelope around the persisted XState snapshot of one request.
 * The summary fields (status, state, progress, error, lease) are there so a person or a tool can
 * read where a request is without understanding the snapshot; the snapshot alone is restored.
 */

export const STATE_FORMAT = 'fave-state';
export const STATE_VERSION = 1;

/** An error as persisted: the result's error shape, with a code this version knows. */
const ErrorValue = ErrorSchema.extend({ code: z.enum(ErrorCodes) });

const RecordSchema = z.looseObject({
  stage: z.string(),
  clip_index: z.number().nullable(),
  frame_index: z.number().nullable(),
  attempt: z.number().int().min(1),
  started_at: z.number(),
  ended_at: z.number(),
  latency_ms: z.number(),
  outcome: z.string(),
});

const Unit = z.enum(['pending', 'running', 'done', 'failed']);

const FrameSchema = z.looseObject({
  index: z.number().int().nonnegative(),
  uri: z.string(),
  status: Unit,
  detections: z.array(z.looseObject({ label: z.string(), confidence: z.number() })),
  note: z.string().nullable(),
  records: z.array(RecordSchema),
  error: ErrorValue.nullable(),
});

const ProgressSchema = z.looseObject({
  compressed_uri: z.string().nullable(),
  transcript_uri: z.string().nullable(),
  transcript: z.string().nullable(),
  transcript_note: z.string().nullable(),
  frames: z.array(z.looseObject({ index: z.number().int(), uri: z.string() })).nullable(),
});

const ClipSchema = z.looseObject({
  index: z.number().int().nonnegative(),
  uri: z.string(),
  start_s: z.number().nullable(),
  end_s: z.number().nullable(),
  status: Unit,
  progress: ProgressSchema,
  frames: z.array(FrameSchema),
  records: z.array(RecordSchema),
  error: ErrorValue.nullable(),
});

const stageRecord = <T extends z.ZodType>(value: T) => z.object(Object.fromEntries(STAGE_KEYS.map((k) => [k, value])) as Record<(typeof STAGE_KEYS)[number], T>);

export const SettingsSchema = z.looseObject({
  bucket: z.string(),
  profile: z.string(),
  stage_names: stageRecord(z.string()),
  timeouts_ms: stageRecord(z.number().positive()),
  retry: z.looseObject({
    max_attempts: z.number().int().min(1),
    base_delay_ms: z.number().min(0),
    max_delay_ms: z.number().min(0),
    // Absent from state files written before the setting existed: its default then.
    stop_on_repeated_error: z.boolean().default(true),
  }),
  max_concurrency: z.number().int().min(1),
  tolerated_failure_pct: z.number().min(0).max(100),
  detector_enabled: z.boolean(),
  min_confidence: z.number(),
  deadline_at: z.number(),
});

export const ContextSchema = z.looseObject({
  request_id: z.string(),
  video_uri: z.string(),
  query: z.string().nullable(),
  settings: SettingsSchema,
  started_at: z.number(),
  finished_at: z.number().nullable(),
  input_uri: z.string().nullable(),
  steps: z.record(z.string(), z.looseObject({ output_uri: z.string() })),
  clip_times: z.array(z.looseObject({ start_s: z.number(), end_s: z.number() })).nullable(),
  clips: z.array(ClipSchema),
  clips_pending: z.number().int().min(0),
  frames_pending: z.number().int().min(0),
  failed_clips: z.number().int().min(0),
  records: z.array(RecordSchema),
  // Absent from state files written before retries were persisted.
  retrying: z.record(z.string(), z.array(RecordSchema)).default({}),
  // Absent from state files written before async calls existed.
  dispatched: z
    .record(
      z.string(),
      z.looseObject({
        run: z.number().int().min(0),
        attempt: z.number().int().min(1),
        call_id: z.string().nullable(),
        dispatched_at: z.number(),
        timeout_ms: z.number().positive(),
        dispatch_id: z.string().optional(),
      }),
    )
    .default({}),
  error: ErrorValue.nullable(),
  failed_at: z.enum(TOP_LEVEL_STATES).nullable(),
  redrives: z.number().int().min(0),
});

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
  value: z.union([z.enum(TOP_LEVEL_STATES), z.partialRecord(z.enum(TOP_LEVEL_STATES), z.string())]),
  context: ContextSchema,
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
  state: z.enum(TOP_LEVEL_STATES),
  seq: z.number().int().min(0),
  created_at: z.number(),
  updated_at: z.number(),
  lease: LeaseSchema.nullable(),
  progress: ProgressSummarySchema,
  error: ErrorValue.nullable(),
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
