import { FaveFailure, faveError } from '../../domain/errors.ts';
import type { Store } from '../../persistence/store.ts';
import { deepspeechStage } from './deepspeech.ts';
import { ffmpeg0Stage } from './ffmpeg0.ts';
import { ffmpeg1Stage } from './ffmpeg1.ts';
import { ffmpeg2Stage } from './ffmpeg2.ts';
import { ffmpeg3Stage } from './ffmpeg3.ts';
import { librosaStage } from './librosa.ts';
import { objectDetectorStage } from './object-detector.ts';
import { DetectorPool } from './detector-pool.ts';
import { resolveLocalStageSettings, type LocalStageSettingsInput } from './stage-config.ts';
import { speechArgv } from './speech.ts';
import type { LocalStageFunction } from './stage-kit.ts';
import { DEFAULT_STAGE_NAMES, STAGE_KEYS, type StageKey } from '../../domain/stage.ts';

export type { LocalStageFunction, LocalStageResponse, LocalStageOutput, LocalStageMetrics } from './stage-kit.ts';
export type { LocalStageSettings, LocalStageSettingsInput } from './stage-config.ts';

export interface LocalStagesOptions extends LocalStageSettingsInput {
  store: Store;
  /** Where settings not given here are read from (default: the process environment). */
  env?: NodeJS.ProcessEnv;
  /** Function names by stage; the defaults are the deployed FAVE functions' (`stage-ffmpeg-0` …). */
  stageNames?: Partial<Record<StageKey, string>>;
  /** Parent of the per-call temp dirs; the system's temp dir by default. */
  workRoot?: string;
}

/** The local stages by function name; what they hold open (the detector's threads) is closed by closeLocalStages. */
export type LocalStages = Record<string, LocalStageFunction>;

const poolsByStages = new WeakMap<LocalStages, DetectorPool>();
const warmUpByStages = new WeakMap<LocalStages, () => void>();

/**
 * The whole pipeline's stage functions, in-process: each takes a StageRequest and answers the
 * stage response JSON of the stage contract (`src/transport/contract.ts`, `docs/stages.md`), reading and writing artifacts in `store`. Settings not given
 * here come from the environment (FAVE_FRAME_FPS, FAVE_SPEECH_COMMAND, FAVE_DETECTOR_MODEL,
 * FAVE_DETECTOR_CONFIDENCE, FAVE_DETECTOR_WORKERS); invalid ones fail here with BAD_CONFIG.
 */
export function createLocalStages(options: LocalStagesOptions): LocalStages {
  const settings = resolveLocalStageSettings(options, options.env ?? process.env);
  if (settings.speechCommand !== null) {
    try {
      speechArgv(settings.speechCommand, 'audio.wav');
    } catch (err) {
      throw new FaveFailure(faveError('BAD_CONFIG', `FAVE_SPEECH_COMMAND is invalid: ${(err as Error).message}`));
    }
  }
  const env = { store: options.store, ...(options.workRoot ? { workRoot: options.workRoot } : {}) };
  const pool = new DetectorPool({ size: settings.detectorWorkers });
  const byKey: Record<StageKey, LocalStageFunction> = {
    ffmpeg0: ffmpeg0Stage(env),
    librosa: librosaStage(env, settings.segmentation),
    ffmpeg1: ffmpeg1Stage(env),
    ffmpeg2: ffmpeg2Stage(env),
    deepspeech: deepspeechStage(env, settings.speechCommand),
    ffmpeg3: ffmpeg3Stage(env, settings.frameFps),
    detector: objectDetectorStage(env, {
      engine: settings.detector,
      modelPath: settings.detectorModel,
      confidenceThreshold: settings.detectorConfidence,
      pool,
    }),
  };
  const stages: LocalStages = {};
  for (const key of STAGE_KEYS) {
    const name = options.stageNames?.[key] ?? DEFAULT_STAGE_NAMES[key];
    if (stages[name]) throw new FaveFailure(faveError('BAD_CONFIG', `two stages share the function name "${name}"`));
    stages[name] = byKey[key];
  }
  poolsByStages.set(stages, pool);
  // The detector's model is what takes long to load; the speech engine is a command started per
  // call, so there is nothing of it to keep loaded.
  const engine = settings.detector;
  if (engine !== 'none') warmUpByStages.set(stages, () => pool.warmUp(engine, settings.detectorModel));
  return stages;
}

/**
 * Starts loading the detector's model in its worker threads, so the first frame does not wait
 * for it; returns at once. A model that fails to load here fails the detector's own call as before.
 */
export function warmUpLocalStages(stages: LocalStages): void {
  warmUpByStages.get(stages)?.();
}

/** Releases what the stages hold: the detector's worker threads and their models. */
export async function closeLocalStages(stages: LocalStages): Promise<void> {
  await poolsByStages.get(stages)?.close();
}
