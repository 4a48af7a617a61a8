import { basename } from 'node:path';
import { COCO_LABELS } from '../../domain/query/coco.ts';
import { COCO_TFJS_MAX_SIDE, COCO_TFJS_MODEL, COCO_TFJS_NOTE, CocoTfjsDetector, type CocoTfjsLoad } from './coco-tfjs.ts';
import { declaredInputSize, SessionCache } from './onnx-runtime.ts';
import { probeMedia } from './probe.ts';
import { FFMPEG_QUIET, runTool, ToolFailure } from './tools.ts';
import { decodeYolo, letterbox, nonMaxSuppression, rgbToChw, toDetections, type Detection, type Letterbox } from './yolo.ts';

/**
 * What the object detector computes, from a picture on disk to its detection document. It runs
 * in the detector's worker threads (`detector-worker.ts`): decoding to tensors, inference and
 * post-processing take long stretches of CPU that would otherwise stall every request, health
 * probe and lease renewal of the process.
 */

/** The document written at the output URI. */
export interface DetectionDocument {
  detections: Detection[];
  model: string | null;
  note?: string;
  image?: { width: number; height: number };
  input_size?: number;
  output_shape?: number[];
}

/** One picture to look at; everything in it crosses to a worker thread as plain data. */
export interface DetectionJob {
  engine: 'onnx' | 'coco';
  /** The picture, a file on this machine. */
  image: string;
  /** How the picture is named in messages (its input URI). */
  inputUri: string;
  modelPath: string | null;
  confidenceThreshold: number;
  iouThreshold: number;
}

/** The picture cannot be used, or the model cannot: the stage answers `{status: "error"}`. */
export class DetectionRejection extends Error {
  override name = 'DetectionRejection';
}

/** A tool failed on the picture; `what` says what was being done, the failure why. */
export class DetectionToolFailure extends Error {
  override name = 'DetectionToolFailure';
  constructor(
    readonly what: string,
    readonly failure: ToolFailure,
  ) {
    super(`${what}: ${failure.reason}`);
  }
}

/** Ultralytics pads with this grey. */
const PAD_COLOR = '0x727272';
const DEFAULT_INPUT_SIZE = 640;

/** Per thread: a model is loaded once and serves every picture the thread is given. */
const sessions = new SessionCache();
const cocoByOrigin = new Map<string, CocoTfjsDetector>();

function cocoDetector(cocoResolveFrom?: string): CocoTfjsDetector {
  const key = cocoResolveFrom ?? '';
  let coco = cocoByOrigin.get(key);
  if (!coco) {
    coco = cocoResolveFrom ? new CocoTfjsDetector(cocoResolveFrom) : new CocoTfjsDetector();
    cocoByOrigin.set(key, coco);
  }
  return coco;
}

export function runDetection(job: DetectionJob, signal: AbortSignal, cocoResolveFrom?: string): Promise<DetectionDocument> {
  if (job.engine === 'onnx') {
    if (job.modelPath === null) throw new DetectionRejection('the ONNX detector has no model path');
    return detectOnnx(job, job.modelPath, signal);
  }
  return detectCoco(job, cocoDetector(cocoResolveFrom), signal);
}

/**
 * Loads the model this thread will need, before its first picture arrives. A model that fails
 * to load here fails that picture's own call as it would have without the warm-up.
 */
export async function warmDetection(engine: DetectionJob['engine'], modelPath: string | null, cocoResolveFrom?: string): Promise<void> {
  if (engine === 'onnx') {
    if (modelPath !== null) await sessions.get(modelPath);
    return;
  }
  await cocoDetector(cocoResolveFrom).load();
}

/** Releases the models this thread holds. */
export async function releaseDetection(): Promise<void> {
  await sessions.close();
}

function rejectTool(what: string): (err: unknown) => never {
  return (err) => {
    if (err instanceof ToolFailure) throw new DetectionToolFailure(what, err);
    throw err;
  };
}

async function detectOnnx(job: DetectionJob, modelPath: string, signal: AbortSignal): Promise<DetectionDocument> {
  let loaded;
  try {
    loaded = await sessions.get(modelPath);
  } catch (err) {
    throw new DetectionRejection(`detector model ${modelPath} cannot be used: ${(err as Error).message.split('\n')[0]}`);
  }
  const { ort, session } = loaded;
  const size = declaredInputSize(session) ?? DEFAULT_INPUT_SIZE;

  const info = await probeMedia(job.image, signal).catch(rejectTool('input is not a readable picture'));
  if (!info.video || info.video.width <= 0 || info.video.height <= 0) throw new DetectionRejection(`input ${job.inputUri} is not a picture`);
  const lb = letterbox(info.video.width, info.video.height, size);
  const rgb = await letterboxedRgb(job, lb, signal);

  const inputName = session.inputNames[0];
  if (!inputName) throw new DetectionRejection(`detector model ${modelPath} declares no input`);
  const outputs = await session.run({ [inputName]: new ort.Tensor('float32', rgbToChw(rgb, size), [1, 3, size, size]) });
  const outputName = session.outputNames[0];
  const raw = outputName === undefined ? undefined : outputs[outputName];
  if (!raw || !(raw.data instanceof Float32Array)) throw new DetectionRejection(`detector model ${modelPath} produced no float32 output`);

  let boxes;
  try {
    boxes = decodeYolo(raw.data, raw.dims, { confidenceThreshold: job.confidenceThreshold, classCount: COCO_LABELS.length });
  } catch (err) {
    throw new DetectionRejection(`detector model ${modelPath}: ${(err as Error).message}`);
  }
  const kept = nonMaxSuppression(boxes, job.iouThreshold);
  return {
    detections: toDetections(kept, lb, COCO_LABELS),
    model: basename(modelPath),
    image: { width: lb.sourceWidth, height: lb.sourceHeight },
    input_size: size,
    output_shape: [...raw.dims],
  };
}

/** The COCO detector on tfjs: the picture as raw RGB, at most COCO_TFJS_MAX_SIDE on its longer side. */
async function detectCoco(job: DetectionJob, coco: CocoTfjsDetector, signal: AbortSignal): Promise<DetectionDocument> {
  const loaded = await coco.load().catch((err: unknown): CocoTfjsLoad => ({ ok: false, reason: `the COCO detector failed to load: ${(err as Error).message.split('\n')[0]}` }));
  if (!loaded.ok) return { detections: [], model: null, note: loaded.reason };
  const info = await probeMedia(job.image, signal).catch(rejectTool('input is not a readable picture'));
  if (!info.video || info.video.width <= 0 || info.video.height <= 0) throw new DetectionRejection(`input ${job.inputUri} is not a picture`);
  const { width: sourceWidth, height: sourceHeight } = info.video;
  const factor = Math.min(1, COCO_TFJS_MAX_SIDE / Math.max(sourceWidth, sourceHeight));
  const width = Math.max(2, Math.round((sourceWidth * factor) / 2) * 2);
  const height = Math.max(2, Math.round((sourceHeight * factor) / 2) * 2);
  const { stdout } = await runTool('ffmpeg', [...FFMPEG_QUIET, '-i', job.image, '-frames:v', '1', '-vf', `scale=${width}:${height}`, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], {
    signal,
  }).catch(rejectTool('ffmpeg could not decode the picture'));
  if (stdout.length !== width * height * 3) throw new DetectionRejection(`decoding ${job.inputUri} gave ${stdout.length} bytes, expected ${width * height * 3}`);
  const detections = await coco.detect(loaded.human, stdout, width, height, { minConfidence: job.confidenceThreshold, scale: sourceWidth / width });
  return {
    detections,
    model: COCO_TFJS_MODEL,
    note: COCO_TFJS_NOTE,
    image: { width: sourceWidth, height: sourceHeight },
    input_size: Math.max(width, height),
  };
}

/** Decodes the picture with ffmpeg straight into the letterboxed RGB the model takes. */
async function letterboxedRgb(job: DetectionJob, lb: Letterbox, signal: AbortSignal): Promise<Uint8Array> {
  const filter = `scale=${lb.width}:${lb.height},pad=${lb.size}:${lb.size}:${lb.padX}:${lb.padY}:color=${PAD_COLOR}`;
  const { stdout } = await runTool('ffmpeg', [...FFMPEG_QUIET, '-i', job.image, '-frames:v', '1', '-vf', filter, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], {
    signal,
  }).catch(rejectTool('ffmpeg could not decode the picture'));
  const expected = lb.size * lb.size * 3;
  if (stdout.length !== expected) throw new DetectionRejection(`decoding ${job.inputUri} gave ${stdout.length} bytes, expected ${expected}`);
  return stdout;
}
