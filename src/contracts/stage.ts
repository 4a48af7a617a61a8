import { z } from 'zod';

/** The wire contract with the FAVE stage functions (DESIGN §3). Unknown fields pass through. */

export const FanoutSchema = z.looseObject({
  clip_index: z.number().int().nonnegative(),
  frame_index: z.number().int().nonnegative().optional(),
  frame_uri: z.string().optional(),
});
export type Fanout = z.infer<typeof FanoutSchema>;

export const StageRequestSchema = z.looseObject({
  request_id: z.string(),
  stage: z.string(),
  input_uri: z.string(),
  output_hint: z.string().nullable().default(null),
  config: z.record(z.string(), z.unknown()).default({}),
  fanout: FanoutSchema.nullable().default(null),
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
