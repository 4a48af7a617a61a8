import { z } from 'zod';

/** The stages of the pipeline, by the key the machine uses, with their FAVE function names. */
export const STAGE_KEYS = ['ffmpeg0', 'librosa', 'ffmpeg1', 'ffmpeg2', 'deepspeech', 'ffmpeg3', 'detector'] as const;
export const StageKeySchema = z.enum(STAGE_KEYS);
export type StageKey = z.infer<typeof StageKeySchema>;

export const DEFAULT_STAGE_NAMES: Record<StageKey, string> = {
  ffmpeg0: 'stage-ffmpeg-0',
  librosa: 'stage-librosa',
  ffmpeg1: 'stage-ffmpeg-1',
  ffmpeg2: 'stage-ffmpeg-2',
  deepspeech: 'stage-deepspeech',
  ffmpeg3: 'stage-ffmpeg-3',
  detector: 'stage-object-detector',
};

/** A value for every stage. */
export const perStage = <T extends z.ZodType>(value: T) =>
  z.object({ ffmpeg0: value, librosa: value, ffmpeg1: value, ffmpeg2: value, deepspeech: value, ffmpeg3: value, detector: value });

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

/** What the pipeline asks one stage to do. */
export const StageTaskSchema = z.object({
  stage: StageKeySchema,
  input_uri: z.string(),
  fanout: FanoutSchema,
});
export type StageTask = z.infer<typeof StageTaskSchema>;

/** One artifact a stage produced. */
export const StageOutputSchema = z.looseObject({
  type: z.string(),
  uri: z.string(),
  metadata: z
    .record(z.string(), z.unknown())
    .nullish()
    .transform((m) => m ?? {}),
});
export type StageOutput = z.infer<typeof StageOutputSchema>;

export const ClipTimeSchema = z.object({ start_s: z.number(), end_s: z.number() });
export type ClipTime = z.infer<typeof ClipTimeSchema>;

export const DetectionSchema = z.object({ label: z.string(), confidence: z.number() });
export type Detection = z.infer<typeof DetectionSchema>;

export const FrameRefSchema = z.object({ index: z.number().int().nonnegative(), uri: z.string() });
export type FrameRef = z.infer<typeof FrameRefSchema>;

/**
 * What the orchestrator keeps of one stage's answer: small plain JSON, read from the stage's
 * artifacts once, so the machine never reads an artifact itself.
 */
export type StageFacts =
  | { kind: 'output'; uri: string }
  | { kind: 'timestamps'; uri: string; clip_times: ClipTime[] | null }
  | { kind: 'clips'; uri: string; clips: Array<{ index: number; uri: string; start_s: number | null; end_s: number | null }> }
  | { kind: 'transcript'; uri: string; transcript: string | null; note: string | null }
  | { kind: 'frames'; uri: string; frames: FrameRef[] }
  | { kind: 'detections'; uri: string; detections: Detection[]; note: string | null };
