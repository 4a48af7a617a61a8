import { z } from 'zod';
import { perStage } from './stage.ts';

/** How a stage is called: held open through `/function/…`, or queued through `/async-function/…` with a callback. */
export const CALL_MODES = ['sync', 'async'] as const;
export const CallModeSchema = z.enum(CALL_MODES);
export type CallMode = z.infer<typeof CallModeSchema>;

export const RetryPolicySchema = z.object({
  max_attempts: z.number().int().min(1).max(50),
  base_delay_ms: z.number().int().min(0),
  max_delay_ms: z.number().int().min(0),
  /**
   * Stop retrying a call whose last two attempts failed with the same HTTP status and the same
   * body: a stage answers every exception with HTTP 500 and its text, so a repeat is deterministic.
   * Absent from requests started before the setting existed: on, its default.
   */
  stop_on_repeated_error: z.boolean().default(true),
});
export type RetryPolicy = z.infer<typeof RetryPolicySchema>;

/** The resolved configuration of one request, fixed when it starts so a resume behaves the same. */
export const SettingsSchema = z.object({
  bucket: z.string(),
  profile: z.string(),
  stage_names: perStage(z.string()),
  timeouts_ms: perStage(z.number().positive()),
  retry: RetryPolicySchema,
  max_concurrency: z.number().int().min(1),
  tolerated_failure_pct: z.number().min(0).max(100),
  detector_enabled: z.boolean(),
  min_confidence: z.number(),
  /** Epoch ms: the whole-request deadline. */
  deadline_at: z.number(),
  /** How each stage is called; absent in requests started before async calls existed (all sync). */
  call_modes: perStage(CallModeSchema).optional(),
});
export type Settings = z.infer<typeof SettingsSchema>;
