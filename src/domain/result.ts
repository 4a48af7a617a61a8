import { z } from 'zod';

/** final.json and the `result` of a synchronous HTTP answer (`docs/api.md`). */

export const ObjectSummarySchema = z.object({
  label: z.string(),
  /** Detections summed over the clip's frames: one object seen in 7 frames counts 7. */
  count: z.number().int(),
  /** The most seen in any one frame: how many there are, as far as the frames tell. Absent in older results. */
  max_in_frame: z.number().int().optional(),
  max_confidence: z.number(),
  frames: z.array(z.number().int()),
});
export type ObjectSummary = z.infer<typeof ObjectSummarySchema>;

export const ErrorSchema = z.object({
  code: z.string(),
  message: z.string(),
  stage: z.string().optional(),
  clip_index: z.number().optional(),
  frame_index: z.number().optional(),
  attempts: z.number().optional(),
  http_status: z.number().optional(),
  transient: z.boolean().optional(),
});

export const ClipResultSchema = z.object({
  index: z.number().int(),
  start_s: z.number().nullable(),
  end_s: z.number().nullable(),
  uri: z.string(),
  transcript: z.string().nullable(),
  transcript_note: z.string().nullable(),
  objects: z.array(ObjectSummarySchema),
  objects_note: z.string().nullable(),
  frames: z.number().int(),
  status: z.enum(['done', 'failed', 'pending']),
  error: ErrorSchema.nullable(),
});
export type ClipResult = z.infer<typeof ClipResultSchema>;

export const MatchReasonSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('object'), label: z.string(), confidence: z.number() }),
  z.object({ type: z.literal('transcript'), word: z.string() }),
]);
export type MatchReason = z.infer<typeof MatchReasonSchema>;

export const MatchSchema = z.object({
  clip_index: z.number().int(),
  start_s: z.number().nullable(),
  end_s: z.number().nullable(),
  score: z.number(),
  reasons: z.array(MatchReasonSchema),
});
export type Match = z.infer<typeof MatchSchema>;

export const StageSummarySchema = z.object({
  count: z.number().int(),
  failures: z.number().int(),
  retries: z.number().int(),
  p50_ms: z.number(),
  p95_ms: z.number(),
  max_ms: z.number(),
  cold_starts: z.number().int(),
  cost_units: z.number(),
});
export type StageSummary = z.infer<typeof StageSummarySchema>;

export const MetricsSummarySchema = z.object({
  wall_ms: z.number(),
  invocations: z.number().int(),
  retries: z.number().int(),
  cold_starts: z.number().int(),
  cost_units: z.number(),
  stages: z.record(z.string(), StageSummarySchema),
  /** In an answer: the clips that got no frame from ffmpeg-3 (too short for its sampling rate). */
  clips_without_frames: z.number().int().optional(),
});
export type MetricsSummary = z.infer<typeof MetricsSummarySchema>;

export const FinalResultSchema = z.object({
  request_id: z.string(),
  status: z.enum(['COMPLETED', 'FAILED']),
  video_uri: z.string(),
  query: z.string().nullable(),
  profile: z.string(),
  partial: z.boolean(),
  clips: z.array(ClipResultSchema),
  matches: z.array(MatchSchema),
  failed_clips: z.array(z.object({ clip_index: z.number().int(), error: ErrorSchema })),
  error: ErrorSchema.nullable(),
  metrics: MetricsSummarySchema,
});
export type FinalResult = z.infer<typeof FinalResultSchema>;
