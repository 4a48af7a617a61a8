import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../src/persistence/fs-store.ts';
import { parseS3Uri } from '../src/persistence/store.ts';
import { COCO_LABELS } from '../src/domain/query/coco.ts';
import { closeLocalStages, createLocalStages } from '../src/stages/local/index.ts';
import { loadOnnxRuntime } from '../src/stages/local/onnx-runtime.ts';
import { decodeYolo, detectLayout, iou, letterbox, nonMaxSuppression, rgbToChw, toDetections, type RawBox } from '../src/stages/local/yolo.ts';
import { makeImage } from './support/media.ts';

const CLASSES = 80;
const PERSON = 0;
const CAR = 2;
const DOG = 16;

interface Candidate {
  cx: number;
  cy: number;
  w: number;
  h: number;
  cls: number;
  score: number;
  objectness?: number;
}

/** A YOLOv8 head `[1, 84, N]`: channel-major, value c of candidate i at c·N + i. */
function v8Tensor(candidates: Candidate[]): { data: Float32Array; dims: number[] } {
  const n = candidates.length;
  const data = new Float32Array((4 + CLASSES) * n);
  candidates.forEach((c, i) => {
    data[0 * n + i] = c.cx;
    data[1 * n + i] = c.cy;
    data[2 * n + i] = c.w;
    data[3 * n + i] = c.h;
    data[(4 + c.cls) * n + i] = c.score;
    // A runner-up class, so "best class" has something to beat.
    data[(4 + ((c.cls + 1) % CLASSES)) * n + i] = c.score / 2;
  });
  return { data, dims: [1, 4 + CLASSES, n] };
}

/** A YOLOv5 head `[1, N, 85]`: per candidate cx, cy, w, h, objectness, 80 class probabilities. */
function v5Tensor(candidates: Candidate[]): { data: Float32Array; dims: number[] } {
  const stride = 5 + CLASSES;
  const data = new Float32Array(stride * candidates.length);
  candidates.forEach((c, i) => {
    data.set([c.cx, c.cy, c.w, c.h, c.objectness ?? 1], i * stride);
    data[i * stride + 5 + c.cls] = c.score;
  });
  return { data, dims: [1, candidates.length, stride] };
}

const box = (x1: number, y1: number, x2: number, y2: number, classId = 0, score = 1): RawBox => ({ x1, y1, x2, y2, classId, score });

describe('letterbox geometry', () => {
  it('fits a landscape picture to the width and centres it vertically', () => {
    expect(letterbox(320, 240, 640)).toEqual({ size: 640, sourceWidth: 320, sourceHeight: 240, scale: 2, width: 640, height: 480, padX: 0, padY: 80 });
  });

  it('fits a portrait picture to the height and centres it horizontally', () => {
    const lb = letterbox(1080, 1920, 640);
    expect(lb.scale).toBeCloseTo(640 / 1920);
    expect([lb.width, lb.height, lb.padX, lb.padY]).toEqual([360, 640, 140, 0]);
  });

  it('refuses an empty picture', () => {
    expect(() => letterbox(0, 10)).toThrow(RangeError);
  });
});

describe('YOLO output decoding', () => {
  const candidates: Candidate[] = [
    { cx: 320, cy: 320, w: 200, h: 100, cls: CAR, score: 0.9 },
    { cx: 325, cy: 322, w: 200, h: 100, cls: CAR, score: 0.8 },
    { cx: 320, cy: 320, w: 200, h: 100, cls: PERSON, score: 0.7 },
    { cx: 100, cy: 100, w: 50, h: 50, cls: DOG, score: 0.1 },
  ];

  it('recognises the three head layouts by shape', () => {
    expect(detectLayout([1, 84, 8400])).toEqual({ layout: 'v8', candidates: 8400 });
    expect(detectLayout([1, 25200, 85])).toEqual({ layout: 'v5', candidates: 25200 });
    expect(detectLayout([1, 8400, 84])).toEqual({ layout: 'v8-transposed', candidates: 8400 });
    expect(detectLayout([84, 3])).toEqual({ layout: 'v8', candidates: 3 });
    expect(detectLayout([1, 10, 10])).toBeNull();
    expect(detectLayout([2, 84, 3])).toBeNull();
  });

  it('decodes a [1, 84, N] tensor into corner boxes with the best class, dropping low scores', () => {
    const { data, dims } = v8Tensor(candidates);
    const boxes = decodeYolo(data, dims, { confidenceThreshold: 0.25 });
    expect(boxes).toHaveLength(3);
    expect(boxes[0]).toMatchObject({ x1: 220, y1: 270, x2: 420, y2: 370, classId: CAR });
    expect(boxes[0]!.score).toBeCloseTo(0.9, 6);
    expect(boxes[2]).toMatchObject({ classId: PERSON });
    expect(boxes.some((b) => b.classId === DOG)).toBe(false);
  });

  it('decodes the transposed [1, N, 84] layout the same way', () => {
    const { data } = v8Tensor(candidates);
    const n = candidates.length;
    const transposed = new Float32Array(data.length);
    for (let i = 0; i < n; i++) for (let c = 0; c < 84; c++) transposed[i * 84 + c] = data[c * n + i]!;
    const a = decodeYolo(data, [1, 84, n], { confidenceThreshold: 0.25 });
    const b = decodeYolo(transposed, [1, n, 84], { confidenceThreshold: 0.25 });
    expect(b).toEqual(a);
  });

  it('decodes a YOLOv5 [1, N, 85] tensor, scoring objectness × class probability', () => {
    const { data, dims } = v5Tensor([
      { cx: 100, cy: 100, w: 20, h: 40, cls: DOG, score: 0.8, objectness: 0.5 },
      { cx: 300, cy: 300, w: 10, h: 10, cls: CAR, score: 0.9, objectness: 0.2 },
    ]);
    const boxes = decodeYolo(data, dims, { confidenceThreshold: 0.25 });
    expect(boxes).toHaveLength(1);
    expect(boxes[0]).toMatchObject({ x1: 90, y1: 80, x2: 110, y2: 120, classId: DOG });
    expect(boxes[0]!.score).toBeCloseTo(0.4, 6);
  });

  it('rejects a shape that is no detection head, and data shorter than its shape', () => {
    expect(() => decodeYolo(new Float32Array(100), [1, 10, 10], { confidenceThreshold: 0.25 })).toThrow(/not a YOLO detection head/);
    expect(() => decodeYolo(new Float32Array(10), [1, 84, 3], { confidenceThreshold: 0.25 })).toThrow(/needs 252/);
  });
});

describe('non-maximum suppression', () => {
  it('computes intersection over union', () => {
    expect(iou(box(0, 0, 10, 10), box(0, 0, 10, 10))).toBe(1);
    expect(iou(box(0, 0, 10, 10), box(5, 0, 15, 10))).toBeCloseTo(50 / 150);
    expect(iou(box(0, 0, 10, 10), box(20, 20, 30, 30))).toBe(0);
  });

  it('keeps the best of overlapping boxes per class, and overlapping boxes of other classes', () => {
    const kept = nonMaxSuppression([
      box(0, 0, 100, 100, CAR, 0.8),
      box(2, 2, 102, 102, CAR, 0.9),
      box(0, 0, 100, 100, PERSON, 0.7),
      box(60, 0, 160, 100, CAR, 0.6), // IoU with the best car ≈ 0.26 < 0.45
      box(200, 200, 250, 250, CAR, 0.5),
    ]);
    expect(kept.map((b) => [b.classId, b.score])).toEqual([
      [CAR, 0.9],
      [PERSON, 0.7],
      [CAR, 0.6],
      [CAR, 0.5],
    ]);
  });

  it('honours the IoU threshold and the cap on detections', () => {
    const pair = [box(0, 0, 10, 10, CAR, 0.9), box(5, 0, 15, 10, CAR, 0.8)]; // IoU 1/3
    expect(nonMaxSuppression(pair, 0.45)).toHaveLength(2);
    expect(nonMaxSuppression(pair, 0.3)).toHaveLength(1);
    expect(nonMaxSuppression([box(0, 0, 1, 1, 1, 0.5), box(5, 5, 6, 6, 2, 0.6), box(9, 9, 10, 10, 3, 0.7)], 0.45, 2).map((b) => b.classId)).toEqual([3, 2]);
  });

  it('decode + NMS on a fixed tensor yields exactly the expected detections in picture pixels', () => {
    const { data, dims } = v8Tensor([
      { cx: 320, cy: 320, w: 200, h: 100, cls: CAR, score: 0.9 },
      { cx: 325, cy: 322, w: 200, h: 100, cls: CAR, score: 0.8 },
      { cx: 320, cy: 320, w: 200, h: 100, cls: PERSON, score: 0.7 },
      { cx: 630, cy: 100, w: 40, h: 40, cls: DOG, score: 0.5 },
    ]);
    const lb = letterbox(320, 240, 640);
    const detections = toDetections(nonMaxSuppression(decodeYolo(data, dims, { confidenceThreshold: 0.25 })), lb, COCO_LABELS);
    expect(detections).toEqual([
      { label: 'car', confidence: 0.9, box: [110, 95, 210, 145], class_id: CAR },
      { label: 'person', confidence: 0.7, box: [110, 95, 210, 145], class_id: PERSON },
      // Partly outside the picture: clipped to its edges.
      { label: 'dog', confidence: 0.5, box: [305, 0, 320, 20], class_id: DOG },
    ]);
  });
});

describe('pre-processing', () => {
  it('turns packed RGB into normalized planar CHW', () => {
    const rgb = new Uint8Array([255, 0, 51, 0, 255, 102, 0, 0, 0, 255, 255, 255]);
    expect(Array.from(rgbToChw(rgb, 2), (v) => Math.round(v * 100) / 100)).toEqual([1, 0, 0, 1, 0, 1, 0, 1, 0.2, 0.4, 0, 1]);
    expect(() => rgbToChw(rgb, 3)).toThrow(RangeError);
  });
});

// ---- A hand-encoded ONNX model, so the runtime path is tested without any downloaded weights ----

function varint(value: number): number[] {
  const out: number[] = [];
  let v = BigInt(value);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return out;
}
const key = (field: number, wire: number) => varint((field << 3) | wire);
const int = (field: number, value: number) => [...key(field, 0), ...varint(value)];
const bytes = (field: number, payload: ArrayLike<number>) => [...key(field, 2), ...varint(payload.length), ...Array.from(payload)];
const str = (field: number, text: string) => bytes(field, Buffer.from(text, 'utf8'));

const FLOAT = 1;
const ATTRIBUTE_TENSOR = 4;

function tensorProto(name: string, dims: number[], values: Float32Array): number[] {
  const raw = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return [...dims.flatMap((d) => int(1, d)), ...int(2, FLOAT), ...str(8, name), ...bytes(9, raw)];
}

function valueInfo(name: string, dims: number[]): number[] {
  const shape = dims.flatMap((d) => bytes(1, int(1, d)));
  const tensorType = [...int(1, FLOAT), ...bytes(2, shape)];
  return [...str(1, name), ...bytes(2, bytes(1, tensorType))];
}

function node(op: string, inputs: string[], outputs: string[], attributes: number[][] = []): number[] {
  return [...inputs.flatMap((i) => str(1, i)), ...outputs.flatMap((o) => str(2, o)), ...str(4, op), ...attributes.flatMap((a) => bytes(5, a))];
}

/**
 * A model taking `images` [1, 3, 640, 640] and answering the fixed YOLOv8 head `head`:
 * output0 = head + 0 · ReduceSum(images), so the answer depends on the input being fed.
 */
function constantYoloModel(head: { data: Float32Array; dims: number[] }): Uint8Array {
  const constant = node('Constant', [], ['head'], [[...str(1, 'value'), ...bytes(5, tensorProto('head', head.dims, head.data)), ...int(20, ATTRIBUTE_TENSOR)]]);
  const sum = node('ReduceSum', ['images'], ['total'], [[...str(1, 'keepdims'), ...int(3, 0), ...int(20, 2)]]);
  const zeroed = node('Mul', ['total', 'zero'], ['nothing']);
  const add = node('Add', ['head', 'nothing'], ['output0']);
  const graph = [
    ...bytes(1, constant),
    ...bytes(1, sum),
    ...bytes(1, zeroed),
    ...bytes(1, add),
    ...str(2, 'constant-yolo'),
    ...bytes(5, tensorProto('zero', [], new Float32Array([0]))),
    ...bytes(11, valueInfo('images', [1, 3, 640, 640])),
    ...bytes(12, valueInfo('output0', head.dims)),
  ];
  const model = [...int(1, 8), ...str(2, 'fave-test'), ...bytes(7, graph), ...bytes(8, [...str(1, ''), ...int(2, 13)])];
  return Uint8Array.from(model);
}

const runtime = await loadOnnxRuntime().then(
  () => null,
  (err: unknown) => (err as Error).message,
);
if (runtime) console.warn(`skipping the ONNX runtime test: ${runtime}`);

describe('object detector stage', () => {
  let dir: string;
  let store: FsStore;
  const bucket = 'fave-artifacts';
  const frameUri = `s3://${bucket}/requests/det-1/stage-ffmpeg-3/clip_002/frame_0007.jpg`;
  const request = (stage = 'stage-object-detector') => ({
    request_id: 'det-1',
    stage,
    input_uri: frameUri,
    output_hint: null,
    config: {},
    fanout: { clip_index: 2, frame_index: 7, frame_uri: frameUri },
  });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fave-detector-'));
    store = new FsStore(join(dir, 'data'), bucket);
    await makeImage(join(dir, 'frame.jpg'), { size: '320x240' });
    await store.put(parseS3Uri(frameUri), await readFile(join(dir, 'frame.jpg')));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('answers a model path that does not exist with status error', async () => {
    const stages = createLocalStages({ store, detectorModel: join(dir, 'missing.onnx') });
    const response = await stages['stage-object-detector']!(request(), AbortSignal.timeout(30_000));
    expect(response.status).toBe('error');
    expect(response.message).toMatch(/missing\.onnx cannot be used/);
  });

  it.skipIf(runtime !== null)('runs a YOLOv8 ONNX model on CPU end to end: letterbox, decode, NMS, picture coordinates', async () => {
    const modelPath = join(dir, 'constant-yolo.onnx');
    await writeFile(
      modelPath,
      constantYoloModel(
        v8Tensor([
          { cx: 320, cy: 320, w: 200, h: 100, cls: CAR, score: 0.9 },
          { cx: 325, cy: 322, w: 200, h: 100, cls: CAR, score: 0.8 },
          { cx: 320, cy: 320, w: 200, h: 100, cls: PERSON, score: 0.7 },
          { cx: 100, cy: 100, w: 20, h: 20, cls: DOG, score: 0.1 },
        ]),
      ),
    );
    const stages = createLocalStages({ store, detectorModel: modelPath, detectorConfidence: 0.25 });
    try {
      const response = await stages['stage-object-detector']!(request(), AbortSignal.timeout(30_000));
      expect(response.message).toBeNull();
      expect(response.status).toBe('success');
      expect(response.outputs).toHaveLength(1);
      const out = response.outputs[0]!;
      expect(out.uri).toBe(`s3://${bucket}/requests/det-1/stage-object-detector/clip_002/frame_0007.json`);
      expect(out.metadata).toMatchObject({ clip: 2, frame_index: 7, detection_count: 2 });
      const document = JSON.parse((await store.get(parseS3Uri(out.uri))).toString('utf8')) as Record<string, unknown>;
      expect(document).toMatchObject({
        model: 'constant-yolo.onnx',
        image: { width: 320, height: 240 },
        input_size: 640,
        output_shape: [1, 84, 4],
        detections: [
          { label: 'car', confidence: 0.9, box: [110, 95, 210, 145] },
          { label: 'person', confidence: 0.7, box: [110, 95, 210, 145] },
        ],
      });
      expect(document).not.toHaveProperty('note');
    } finally {
      await closeLocalStages(stages);
    }
  });
});
