import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { z } from 'zod';
import { FaveFailure, faveError } from '../../domain/errors.ts';
import { envBoolean, readEnv } from '../../lib/env.ts';

/** Settings of the local stages. Options given in code win over the environment. */
export interface LocalStageSettings {
  /** Frames per second extracted by stage-ffmpeg-3. */
  frameFps: number;
  /** Speech-to-text command line with a `{wav}` placeholder; null: no engine. */
  speechCommand: string | null;
  /** Where the speech command came from: set, or pocketsphinx found on this machine. */
  speechSource: 'configured' | 'pocketsphinx' | null;
  /** Path of a YOLO ONNX model; null: none. */
  detectorModel: string | null;
  /**
   * Which detector runs: the ONNX model, the optional COCO detector on tfjs (when no model is
   * configured), or none.
   */
  detector: 'onnx' | 'coco' | 'none';
  /** Detections below this confidence are dropped. */
  detectorConfidence: number;
  /** The most worker threads detecting at once (each holds its own copy of the model). */
  detectorWorkers: number;
  /** How stage-librosa shapes clips out of the speech it finds. */
  segmentation: SegmentationSettings;
}

export interface SegmentationSettings {
  /** Pauses in speech shorter than this do not split a clip (seconds). */
  minGapS: number;
  /** The shortest clip (seconds); shorter speech joins a neighbour or counts as silence. */
  minClipS: number;
  /** Stretches without speech become clips too (marked as such), so their frames are examined. */
  silentClips: boolean;
}

export interface LocalStageSettingsInput {
  frameFps?: number;
  /** `null` turns the engine off even when FAVE_SPEECH_COMMAND is set. */
  speechCommand?: string | null;
  /** `null` turns the detector off even when FAVE_DETECTOR_MODEL is set. */
  detectorModel?: string | null;
  /** `auto` (the default): the ONNX model when one is configured, else the COCO detector on tfjs. */
  detector?: 'auto' | 'onnx' | 'coco' | 'none';
  detectorConfidence?: number;
  detectorWorkers?: number;
  segmentation?: Partial<SegmentationSettings>;
}

/** Each thread holds a model (tens to hundreds of MB): more than this is a mistake. */
export const MAX_DETECTOR_WORKERS = 16;

/** One thread per core, up to two: detection must leave the main thread a core to answer on. */
export function defaultDetectorWorkers(): number {
  return Math.max(1, Math.min(2, availableParallelism()));
}

const EnvSchema = z.object({
  FAVE_FRAME_FPS: z.coerce.number().positive().max(120).default(1),
  FAVE_SPEECH_COMMAND: z.string().trim().min(1).optional(),
  FAVE_DETECTOR_MODEL: z.string().trim().min(1).optional(),
  FAVE_DETECTOR: z.enum(['auto', 'onnx', 'coco', 'none']).default('auto'),
  FAVE_DETECTOR_CONFIDENCE: z.coerce.number().min(0).max(1).default(0.25),
  FAVE_DETECTOR_WORKERS: z.coerce.number().int().min(1).max(MAX_DETECTOR_WORKERS).optional(),
  FAVE_SEGMENT_MIN_GAP_S: z.coerce.number().min(0).max(60).default(0.3),
  FAVE_SEGMENT_MIN_CLIP_S: z.coerce.number().min(0).max(30).default(1.25),
  FAVE_SILENT_CLIPS: envBoolean.default(true),
});

/** Debian's `pocketsphinx` and `pocketsphinx-en-us` packages: the program and its US English model. */
export const POCKETSPHINX_PROGRAM = 'pocketsphinx_continuous';
export const POCKETSPHINX_MODEL_DIR = '/usr/share/pocketsphinx/model/en-us';
/** `{wav}` is the 16 kHz mono file; its log goes nowhere, so stdout is the transcript alone. */
export const POCKETSPHINX_COMMAND =
  `${POCKETSPHINX_PROGRAM} -infile {wav} -hmm ${POCKETSPHINX_MODEL_DIR}/en-us -lm ${POCKETSPHINX_MODEL_DIR}/en-us.lm.bin ` +
  `-dict ${POCKETSPHINX_MODEL_DIR}/cmudict-en-us.dict -logfn /dev/null`;
/** Says no engine runs, even where pocketsphinx is installed. */
export const NO_SPEECH_ENGINE = 'none';

/** pocketsphinx's command line when the program is on PATH and its US English model installed; else null. */
export function findPocketsphinx(env: NodeJS.ProcessEnv = process.env): string | null {
  const onPath = (env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, POCKETSPHINX_PROGRAM)));
  if (!onPath) return null;
  const model = ['en-us/mdef', 'en-us.lm.bin', 'cmudict-en-us.dict'].every((file) => existsSync(join(POCKETSPHINX_MODEL_DIR, file)));
  return model ? POCKETSPHINX_COMMAND : null;
}

export function resolveLocalStageSettings(input: LocalStageSettingsInput = {}, env: NodeJS.ProcessEnv = process.env): LocalStageSettings {
  const parsed = readEnv(EnvSchema, env, 'environment', 'FAVE_');
  if (!parsed.ok) throw new FaveFailure(faveError('BAD_CONFIG', `${parsed.variable} ${parsed.problem}`, { field: parsed.variable }));
  const e = parsed.data;
  const detectorModel = input.detectorModel === undefined ? (e.FAVE_DETECTOR_MODEL ?? null) : input.detectorModel;
  const choice = input.detectorModel === null ? 'none' : (input.detector ?? e.FAVE_DETECTOR);
  if (choice === 'onnx' && detectorModel === null) throw new FaveFailure(faveError('BAD_CONFIG', 'FAVE_DETECTOR=onnx needs FAVE_DETECTOR_MODEL (the path of a YOLO .onnx model)'));
  // Unset: the engine this machine has, if any; `none`: no engine.
  const configured = input.speechCommand === undefined ? (e.FAVE_SPEECH_COMMAND ?? null) : input.speechCommand;
  const found = input.speechCommand === undefined && e.FAVE_SPEECH_COMMAND === undefined ? findPocketsphinx(env) : null;
  const speechCommand = configured === NO_SPEECH_ENGINE ? null : (configured ?? found);
  const settings: LocalStageSettings = {
    frameFps: input.frameFps ?? e.FAVE_FRAME_FPS,
    speechCommand,
    speechSource: speechCommand === null ? null : found !== null && configured === null ? 'pocketsphinx' : 'configured',
    detectorModel,
    detector: choice === 'auto' ? (detectorModel !== null ? 'onnx' : 'coco') : choice,
    detectorConfidence: input.detectorConfidence ?? e.FAVE_DETECTOR_CONFIDENCE,
    detectorWorkers: input.detectorWorkers ?? e.FAVE_DETECTOR_WORKERS ?? defaultDetectorWorkers(),
    segmentation: {
      minGapS: input.segmentation?.minGapS ?? e.FAVE_SEGMENT_MIN_GAP_S,
      minClipS: input.segmentation?.minClipS ?? e.FAVE_SEGMENT_MIN_CLIP_S,
      silentClips: input.segmentation?.silentClips ?? e.FAVE_SILENT_CLIPS,
    },
  };
  if (!(settings.frameFps > 0 && settings.frameFps <= 120)) {
    throw new FaveFailure(faveError('BAD_CONFIG', `frameFps must be in (0, 120], got ${settings.frameFps}`));
  }
  if (!(settings.detectorConfidence >= 0 && settings.detectorConfidence <= 1)) {
    throw new FaveFailure(faveError('BAD_CONFIG', `detectorConfidence must be in [0, 1], got ${settings.detectorConfidence}`));
  }
  if (!(Number.isInteger(settings.detectorWorkers) && settings.detectorWorkers >= 1 && settings.detectorWorkers <= MAX_DETECTOR_WORKERS)) {
    throw new FaveFailure(faveError('BAD_CONFIG', `detectorWorkers must be an integer from 1 to ${MAX_DETECTOR_WORKERS}, got ${settings.detectorWorkers}`));
  }
  return settings;
}
