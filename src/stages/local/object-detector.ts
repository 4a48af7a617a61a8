import { basename } from 'node:path';
import type { DetectionDocument } from './detection.ts';
import { DetectorFailure, type DetectorPool } from './detector-pool.ts';
import { clipName, defineStage, type StageEnvironment, frameName, StageRejection, type LocalStageFunction, type StageContext } from './stage-kit.ts';
import { ToolFailure } from './tools.ts';
import { NO_DETECTOR_MODEL_NOTE } from '../../domain/notes.ts';

export type { DetectionDocument } from './detection.ts';

export const NO_MODEL_NOTE = NO_DETECTOR_MODEL_NOTE;

export interface DetectorSettings {
  /** The ONNX model (`modelPath`), the COCO detector on tfjs, or none. */
  engine: 'onnx' | 'coco' | 'none';
  modelPath: string | null;
  confidenceThreshold: number;
  iouThreshold?: number;
  /** The worker threads the pictures are looked at in. */
  pool: DetectorPool;
}

/**
 * stage-object-detector: a frame picture → a JSON document `{detections: [{label, confidence,
 * box}], model, note?}` at `clip_NNN/frame_NNNN.json`, returned as the single output. A YOLO ONNX
 * model runs on CPU; without one the document has no detections and a note that says why. The
 * picture is looked at in one of the detector's worker threads, never on the main thread.
 */
export function objectDetectorStage(env: StageEnvironment, settings: DetectorSettings): LocalStageFunction {
  return defineStage(env, async (ctx) => {
    const document =
      settings.engine === 'none' || (settings.engine === 'onnx' && !settings.modelPath) ? { detections: [], model: null, note: NO_MODEL_NOTE } : await detect(ctx, settings);
    const uri = await ctx.uploadBody(`${outputName(ctx)}.json`, `${JSON.stringify(document, null, 2)}\n`, 'application/json');
    const fanout = ctx.request.fanout;
    return [
      {
        type: 'json',
        uri,
        metadata: {
          clip: fanout?.clip_index ?? null,
          frame_index: fanout?.frame_index ?? null,
          detection_count: document.detections.length,
        },
      },
    ];
  });
}

async function detect(ctx: StageContext, settings: DetectorSettings): Promise<DetectionDocument> {
  const image = await ctx.downloadInput();
  const job = {
    engine: settings.engine === 'onnx' ? ('onnx' as const) : ('coco' as const),
    image,
    inputUri: ctx.request.input_uri,
    modelPath: settings.modelPath,
    confidenceThreshold: settings.confidenceThreshold,
    iouThreshold: settings.iouThreshold ?? 0.45,
  };
  try {
    return await settings.pool.detect(job, ctx.signal);
  } catch (err) {
    if (!(err instanceof DetectorFailure)) throw err;
    const { failure } = err;
    if (failure.kind === 'rejection') throw new StageRejection(failure.message);
    return ctx.rejectTool(new ToolFailure(failure.tool, failure.exitCode, failure.reason, failure.stderr), failure.what);
  }
}

/** `clip_002/frame_0007` from the fan-out block, else the input's own name. */
function outputName(ctx: StageContext): string {
  const { clip_index: clip, frame_index: frame } = ctx.request.fanout;
  if (clip !== undefined && frame !== undefined) return `${clipName(clip)}/${frameName(frame)}`;
  const base =
    basename(ctx.input.key)
      .replace(/\.[^.]*$/, '')
      .replace(/[^A-Za-z0-9_.-]/g, '_') || 'frame';
  return clip !== undefined ? `${clipName(clip)}/${base}` : base;
}
