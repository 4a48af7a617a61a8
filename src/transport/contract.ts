import { z } from 'zod';
import { FanoutSchema, StageOutputSchema } from '../domain/stage.ts';
import type { StageCallInput } from '../domain/context.ts';

/**
 * The wire contract with the FAVE stage functions: the request every stage gets and the response
 * it answers (`docs/stages.md`, "How every stage behaves"). Unknown fields pass through.
 */

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

const optionalNumber = z
  .number()
  .nullish()
  .transform((v) => v ?? null);

export const StageMetricsSchema = z.looseObject({
  duration_ms: optionalNumber,
  memory_limit_mb: optionalNumber,
  cold_start: z
    .boolean()
    .nullish()
    .transform((v) => v ?? null),
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
  message: z
    .string()
    .nullish()
    .transform((m) => m ?? null),
});
export type StageResponse = z.infer<typeof StageResponseSchema>;

/** The wire request of a stage call: the stages' own format, made from the call the machine planned. */
export function buildStageRequest(call: Pick<StageCallInput, 'request_id' | 'function_name' | 'task' | 'profile'>): StageRequest {
  return {
    request_id: call.request_id,
    stage: call.function_name,
    input_uri: call.task.input_uri,
    output_hint: null,
    config: { profile: call.profile },
    fanout: call.task.fanout,
  };
}
