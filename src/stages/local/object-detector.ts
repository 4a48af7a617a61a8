import { basename } from 'node:path';
import { COCO_LABELS } from '../../domain/query/coco.ts';
import { COCO_TFJS_MAX_SIDE, COCO_TFJS_MODEL, COCO_TFJS_NOTE, type CocoTfjsDetector, type CocoTfjsLoad } from './coco-tfjs.ts';
import { declaredInputSize, type SessionCache } from './onnx-runtime.ts';
import { probeMedia } from './probe.ts';
import { clipName, defineStage, type StageEnvironment, frameName, StageRejection, type LocalStageFunction, type StageContext } from './stage-kit.ts';
import { FFMPEG_QUIET, runTool } from './tools.ts';
import { decodeYolo, letterbox, nonMaxSuppression, rgbToChw, toDetections, type Detection, type Letterbox } from './yolo.ts';
import { NO_DETECTOR_MODEL_NOTE } from '../../domain/notes.ts';

export const NO_MODEL_NOTE = NO_DETECTOR_MODEL_NOTE;

/** The document written at the output URI. */
export interface DetectionDocument {
  detections: Detection[];
  model: string | null;
  note?: string;
  image?: { width: number; height: number };
  input_size?: number;
  output_shape?: number[];
}

export interface DetectorSettings {
  /** The ONNX model (`modelPath`), the COCO detector on tfjs, or none. */
  engine: 'onnx' | 'coco' | 'none';
  coco: CocoTfjsDetector;
  modelPath: string | null;
  confidenceThreshold: number;
  iouThreshold?: number;
  sessions: SessionCache;
}

/** Ultralytics pads with this grey. */
const PAD_COLOR = '0x727272';
const DEFAULT_INPUT_SIZE = 640;

/**
 * stage-object-detector: a frame picture → a JSON document `{detections: [{label, confidence,
 * box}], model, note?}` at `clip_NNN/frame_NNNN.json`, returned as the single output. A YOLO ONNX
 * model runs on CPU; without one the document has no detections and a note that says why.
 */
export function objectDetectorStage(env: StageEnvironment, settings: DetectorSettings): LocalStageFunction {
  return defineStage(env, async (ctx) => {
    const document =
      settings.engine === 'onnx' && settings.modelPath
        ? await detect(ctx, settings.modelPath, settings)
        : settings.engine === 'coco'
          ? await detectCoco(ctx, settings)
          : { detections: [], model: null, note: NO_MODEL_NOTE };
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

async function detect(ctx: StageContext, modelPath: string, settings: DetectorSettings): Promise<DetectionDocument> {
  let loaded;
  try {
    loaded = await settings.sessions.get(modelPath);
  } catch (err) {
    throw new StageRejection(`detector model ${modelPath} cannot be used: ${(err as Error).message.split('\n')[0]}`);
  }
  const { ort, session } = loaded;
  const size = declaredInputSize(session) ?? DEFAULT_INPUT_SIZE;

  const image = await ctx.downloadInput();
  const info = await probeMedia(image, ctx.signal).catch((err: unknown) => ctx.rejectTool(err, 'input is not a readable picture'));
  if (!info.video || info.video.width <= 0 || info.video.height <= 0) throw new StageRejection(`input ${ctx.request.input_uri} is not a picture`);
  const lb = letterbox(info.video.width, info.video.height, size);
  const rgb = await letterboxedRgb(ctx, image, lb);

  const inputName = session.inputNames[0];
  if (!inputName) throw new StageRejection(`detector model ${modelPath} declares no input`);
  const outputs = await session.run({ [inputName]: new ort.Tensor('float32', rgbToChw(rgb, size), [1, 3, size, size]) });
  const outputName = session.outputNames[0];
  const raw = outputName === undefined ? undefined : outputs[outputName];
  if (!raw || !(raw.data instanceof Float32Array)) throw new StageRejection(`detector model ${modelPath} produced no float32 output`);

  let boxes;
  try {
    boxes = decodeYolo(raw.data, raw.dims, { confidenceThreshold: settings.confidenceThreshold, classCount: COCO_LABELS.length });
  } catch (err) {
    throw new StageRejection(`detector model ${modelPath}: ${(err as Error).message}`);
  }
  const kept = nonMaxSuppression(boxes, settings.iouThreshold ?? 0.45);
  return {
    detections: toDetections(kept, lb, COCO_LABELS),
    model: basename(modelPath),
    image: { width: lb.sourceWidth, height: lb.sourceHeight },
    input_size: size,
    output_shape: [...raw.dims],
  };
}

/** The COCO detector on tfjs: the picture as raw RGB, at most COCO_TFJS_MAX_SIDE on its longer side. */
async function detectCoco(ctx: StageContext, settings: DetectorSettings): Promise<DetectionDocument> {
  const loaded = await settings.coco.load().catch((err: unknown): CocoTfjsLoad => ({ ok: false, reason: `the COCO detector failed to load: ${(err as Error).message.split('\n')[0]}` }));
  if (!loaded.ok) return { detections: [], model: null, note: loaded.reason };
  const image = await ctx.downloadInput();
  const info = await probeMedia(image, ctx.signal).catch((err: unknown) => ctx.rejectTool(err, 'input is not a readable picture'));
  if (!info.video || info.video.width <= 0 || info.video.height <= 0) throw new StageRejection(`input ${ctx.request.input_uri} is not a picture`);
  const { width: sourceWidth, height: sourceHeight } = info.video;
  const factor = Math.min(1, COCO_TFJS_MAX_SIDE / Math.max(sourceWidth, sourceHeight));
  const width = Math.max(2, Math.round((sourceWidth * factor) / 2) * 2);
  const height = Math.max(2, Math.round((sourceHeight * factor) / 2) * 2);
  const { stdout } = await runTool('ffmpeg', [...FFMPEG_QUIET, '-i', image, '-frames:v', '1', '-vf', `scale=${width}:${height}`, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], {
    signal: ctx.signal,
  }).catch((err: unknown) => ctx.rejectTool(err, 'ffmpeg could not decode the picture'));
  if (stdout.length !== width * height * 3) throw new StageRejection(`decoding ${ctx.request.input_uri} gave ${stdout.length} bytes, expected ${width * height * 3}`);
  const detections = await settings.coco.detect(loaded.human, stdout, width, height, { minConfidence: settings.confidenceThreshold, scale: sourceWidth / width });
  return {
    detections,
    model: COCO_TFJS_MODEL,
    note: COCO_TFJS_NOTE,
    image: { width: sourceWidth, height: sourceHeight },
    input_size: Math.max(width, height),
  };
}

/** Decodes the picture with ffmpeg straight into the letterboxed RGB the model takes. */
async function letterboxedRgb(ctx: StageContext, image: string, lb: Letterbox): Promise<Uint8Array> {
  const filter = `scale=${lb.width}:${lb.height},pad=${lb.size}:${lb.size}:${lb.padX}:${lb.padY}:color=${PAD_COLOR}`;
  const { stdout } = await runTool('ffmpeg', [...FFMPEG_QUIET, '-i', image, '-frames:v', '1', '-vf', filter, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], {
    signal: ctx.signal,
  }).catch((err: unknown) => ctx.rejectTool(err, 'ffmpeg could not decode the picture'));
  const expected = lb.size * lb.size * 3;
  if (stdout.length !== expected) throw new StageRejection(`decoding ${ctx.request.input_uri} gave ${stdout.length} bytes, expected ${expected}`);
  return stdout;
}

/** `clip_002/frame_0007` from the fan-out block, else the input's own name. */
function outputName(ctx: StageContext): string {
  const { clip_index: clip, frame_index: frame } = ctx.request.fanout;
  if (clip !== undefined && frame !== undefined) return `${clipName(clip)}/${frameName(frame)}`;
  const base = basename(ctx.input.key).replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9_.-]/g, '_') || 'frame';
  return clip !== undefined ? `${clipName(clip)}/${base}` : base;
}
