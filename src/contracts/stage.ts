import { z } from 'zod';

/** The wire contract with the FAVE stage functions (DESIGN §3). Unknown fields pass through. */

/**
 * Where a call sits in the fan-out: `{}` for the linear stages (ffmpeg-0, librosa, ffmpeg-1),
 * `{clip_index}` per clip, `{clip_index, frame_index, frame_uri}` per frame. Never null: the
 * stages validate it as a dictionary and refuse anything else.
 */
export const FanoutSchema = z.strictObject({
  clip_index: z.number().int().nonnegative().optional(),
  frame_index: z.number().int().nonnegative().optional(),
  frame_uri: z.string().optional(),
});
export type Fanout = z.infer<typeof FanoutSchema>;

/** The fan-out block of the linear stages. */
export const LINEAR_FANOUT: Fanout = Object.freeze({});

/**
 * A stage request exactly as the stages' `StagePayload` validates it: every field present and of
 * its type (`output_hint` a string or null, `config` and `fanout` objects), and nothing else, so
 * a request this orchestrator builds is one every stage accepts.
 */
export const StageRequestSchema = z.strictObject({
  request_id: z.string(),
  stage: z.string(),
  input_uri: z.string(),
  output_hint: z.string().nullable(),
  config: z.record(z.string(), z.unknown()),
  fanout: FanoutSchema,
});
export type StageRequest = z.infer<typeof StageRequestSchema>;

export const StageOutputSchema = z.looseObject({
  type: z.string(),
  uri: z.string(),
  metadata: z.record(z.string(), z.unknown()).nullish().transform((m) => m ?? {}),
});
export type StageOutput = z.infer<typeof StageOutputSchema>;

const optionalNumber = z.number().nullish().transform((v) => v ?? null);

export const StageMetricsSchema = z.looseObject({
  duration_ms: optionalNumber,
  memory_limit_mb: optionalNumber,
  cold_start: z.boolean().nullish().transform((v) => v ?? null),
  cost_unit: optionalNumber,
  extra: z.record(z.string(), z.unknown()).nullish(),
});
export type StageMetrics = z.infer<typeof StageMetricsSchema>;

export const StageStatusSchema = z.enum(['success', 'error', 'skipped', 'simulated']);
export type StageStatus = z.infer<typeof StageStatusSchema>;

/**
 * A stage that cannot parse its input answers `{status: "error", message}` and nothing else,
 * so every other field is optional here; `parseStageResponse` enforces what success needs.
 */
export const StageResponseSchema = z.looseObject({
  request_id: z.string().optional(),
  stage: z.string().optional(),
  outputs: z.array(StageOutputSchema).default([]),
  metrics: StageMetricsSchema.nullish().transform((m) => m ?? null),
  status: StageStatusSchema,
  message: z.string().nullish().transform((m) => m ?? null),
});
export type StageResponse = z.infer<typeof StageResponseSchema>;

/** Describes the first offending field of a zod failure, e.g. `outputs[0].uri: expected string`. */
export function describeZodIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid value';
  const path = issue.path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
  return `${path || '(root)'}: ${issue.message}`;
}
