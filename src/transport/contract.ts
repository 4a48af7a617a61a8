import { z } from 'zod';
import { FanoutSchema, StageOutputSchema, type StageOutput } from '../domain/stage.ts';
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

/**
 * Validates a stage's answer (parsed JSON, owned by the caller) against StageResponseSchema.
 * Every answer is checked: a well-formed one, the shape nearly every answer has, by the
 * hand-written check below, which normalizes it in place to what the schema would give; any
 * other by the schema itself, which also names what is wrong. Thousands of calls per request
 * pass through here, and the schema's copies and transforms cost more than the rest of the
 * check. `test/stage-contract.test.ts` holds the two to the same answers.
 */
export function parseStageResponse(json: unknown): z.ZodSafeParseResult<StageResponse> {
  const plain = plainStageResponse(json);
  return plain ? { success: true, data: plain } : StageResponseSchema.safeParse(json);
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const isNumberOrNone = (value: unknown) => value === undefined || value === null || typeof value === 'number';

/** The answer normalized as StageResponseSchema would, when it passes; else null (and untouched). */
function plainStageResponse(json: unknown): StageResponse | null {
  if (!isObject(json)) return null;
  const { request_id, stage, outputs, metrics, status, message } = json;
  if (status !== 'success' && status !== 'error' && status !== 'skipped' && status !== 'simulated') return null;
  if ((request_id !== undefined && typeof request_id !== 'string') || (stage !== undefined && typeof stage !== 'string')) return null;
  if (message !== undefined && message !== null && typeof message !== 'string') return null;
  if (outputs !== undefined) {
    if (!Array.isArray(outputs)) return null;
    for (const output of outputs as unknown[]) {
      if (!isObject(output) || typeof output.type !== 'string' || typeof output.uri !== 'string') return null;
      if (output.metadata !== undefined && output.metadata !== null && !isObject(output.metadata)) return null;
    }
  }
  if (metrics !== undefined && metrics !== null) {
    if (!isObject(metrics) || !isNumberOrNone(metrics.duration_ms) || !isNumberOrNone(metrics.memory_limit_mb) || !isNumberOrNone(metrics.cost_unit)) return null;
    if (metrics.cold_start !== undefined && metrics.cold_start !== null && typeof metrics.cold_start !== 'boolean') return null;
    if (metrics.extra !== undefined && metrics.extra !== null && !isObject(metrics.extra)) return null;
  }
  // Valid: normalized as the schema's defaults and transforms would.
  const normalOutputs: StageOutput[] = [];
  for (const output of (outputs ?? []) as Json[]) {
    output.metadata ??= {};
    normalOutputs.push(output as StageOutput);
  }
  let normalMetrics: StageMetrics | null = null;
  if (isObject(metrics)) {
    metrics.duration_ms ??= null;
    metrics.memory_limit_mb ??= null;
    metrics.cold_start ??= null;
    metrics.cost_unit ??= null;
    normalMetrics = metrics as StageMetrics;
  }
  json.outputs = normalOutputs;
  json.metrics = normalMetrics;
  json.message = message ?? null;
  return json as StageResponse;
}
