import { z } from 'zod';

/** The pipeline machine's top-level states; the running ones are the pipeline's steps. */
export const TOP_LEVEL_STATES = ['INIT', 'FFMPEG0', 'LIBROSA', 'CLIP', 'FANOUT', 'DETECT', 'COMPLETED', 'FAILED'] as const;
export const TopLevelStateSchema = z.enum(TOP_LEVEL_STATES);
export type TopLevelState = z.infer<typeof TopLevelStateSchema>;
export const RunningStateSchema = TopLevelStateSchema.exclude(['COMPLETED', 'FAILED']);
export type RunningState = z.infer<typeof RunningStateSchema>;
