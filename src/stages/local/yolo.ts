/**
 * YOLO post-processing as pure functions: letterbox geometry, decoding of the raw output tensor
 * (YOLOv8 `[1, 4+C, N]`, its transpose `[1, N, 4+C]`, and YOLOv5 `[1, N, 5+C]`), confidence
 * filtering and class-wise non-maximum suppression, and mapping boxes back onto the picture.
 */

/** How a picture of `sourceWidth × sourceHeight` sits inside the square model input. */
export interface Letterbox {
  size: number;
  sourceWidth: number;
  sourceHeight: number;
  scale: number;
  /** The scaled picture, before padding. */
  width: number;
  height: number;
  padX: number;
  padY: number;
}

export function letterbox(sourceWidth: number, sourceHeight: number, size = 640): Letterbox {
  if (!(sourceWidth > 0 && sourceHeight > 0)) throw new RangeError(`picture size must be positive, got ${sourceWidth}x${sourceHeight}`);
  const scale = Math.min(size / sourceWidth, size / sourceHeight);
  const width = Math.min(size, Math.max(1, Math.round(sourceWidth * scale)));
  const height = Math.min(size, Math.max(1, Math.round(sourceHeight * scale)));
  return { size, sourceWidth, sourceHeight, scale, width, height, padX: Math.floor((size - width) / 2), padY: Math.floor((size - height) / 2) };
}

/** A candidate in model-input pixels. */
export interface RawBox {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  classId: number;
  score: number;
}

export type YoloLayout = 'v8' | 'v8-transposed' | 'v5';

export interface DecodeOptions {
  confidenceThreshold: number;
  /** Number of classes the model predicts; COCO's 80 by default. */
  classCount?: number;
}

/** Which layout a raw output has; null when it is none of the YOLO shapes for `classCount`. */
export function detectLayout(dims: readonly number[], classCount = 80): { layout: YoloLayout; candidates: number } | null {
  const shape = dims.length === 2 ? [1, ...dims] : [...dims];
  if (shape.length !== 3 || shape[0] !== 1) return null;
  const [, a, b] = shape as [number, number, number];
  if (a === 4 + classCount) return { layout: 'v8', candidates: b };
  if (b === 5 + classCount) return { layout: 'v5', candidates: a };
  if (b === 4 + classCount) return { layout: 'v8-transposed', candidates: a };
  return null;
}

/** Decodes every candidate at or above the threshold (best class per candidate), boxes as corners. */
export function decodeYolo(data: ArrayLike<number>, dims: readonly number[], options: DecodeOptions): RawBox[] {
  const classCount = options.classCount ?? 80;
  const shape = detectLayout(dims, classCount);
  if (!shape) {
    throw new RangeError(`output shape [${dims.join(', ')}] is not a YOLO detection head for ${classCount} classes ([1, ${4 + classCount}, N] or [1, N, ${5 + classCount}])`);
  }
  const { layout, candidates: n } = shape;
  const expected = n * (layout === 'v5' ? 5 + classCount : 4 + classCount);
  if (data.length < expected) throw new RangeError(`output holds ${data.length} values, its shape needs ${expected}`);

  // v8 stores channel-major (value c of candidate i at c·N + i); the others candidate-major.
  const stride = layout === 'v5' ? 5 + classCount : 4 + classCount;
  const at = layout === 'v8' ? (i: number, c: number) => data[c * n + i]! : (i: number, c: number) => data[i * stride + c]!;
  const firstClass = layout === 'v5' ? 5 : 4;

  const boxes: RawBox[] = [];
  for (let i = 0; i < n; i++) {
    const objectness = layout === 'v5' ? at(i, 4) : 1;
    if (objectness < options.confidenceThreshold) continue;
    let classId = 0;
    let best = -Infinity;
    for (let c = 0; c < classCount; c++) {
      const s = at(i, firstClass + c);
      if (s > best) {
        best = s;
        classId = c;
      }
    }
    const score = objectness * best;
    if (!(score >= options.confidenceThreshold)) continue;
    const cx = at(i, 0);
    const cy = at(i, 1);
    const w = at(i, 2);
    const h = at(i, 3);
    boxes.push({ x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, classId, score });
  }
  return boxes;
}

export function iou(a: RawBox, b: RawBox): number {
  const iw = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1);
  const ih = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter;
  return union > 0 ? inter / union : 0;
}

/** Class-wise NMS: within a class, a box overlapping a better one by more than `iouThreshold` goes. */
export function nonMaxSuppression(boxes: readonly RawBox[], iouThreshold = 0.45, maxDetections = 300): RawBox[] {
  const sorted = [...boxes].sort((a, b) => b.score - a.score);
  const kept: RawBox[] = [];
  for (const box of sorted) {
    if (kept.length >= maxDetections) break;
    if (kept.some((k) => k.classId === box.classId && iou(k, box) > iouThreshold)) continue;
    kept.push(box);
  }
  return kept;
}

export interface Detection {
  label: string;
  confidence: number;
  /** `[x1, y1, x2, y2]` in pixels of the original picture. */
  box: [number, number, number, number];
  class_id: number;
}

/** Maps boxes from the letterboxed input back onto the picture, clipped to its edges. */
export function toDetections(boxes: readonly RawBox[], lb: Letterbox, labels: readonly string[]): Detection[] {
  const clamp = (v: number, max: number) => Math.min(max, Math.max(0, v));
  const round = (v: number) => Math.round(v * 10) / 10;
  return boxes.map((b) => ({
    label: labels[b.classId] ?? `class ${b.classId}`,
    confidence: Math.round(b.score * 10_000) / 10_000,
    box: [
      round(clamp((b.x1 - lb.padX) / lb.scale, lb.sourceWidth)),
      round(clamp((b.y1 - lb.padY) / lb.scale, lb.sourceHeight)),
      round(clamp((b.x2 - lb.padX) / lb.scale, lb.sourceWidth)),
      round(clamp((b.y2 - lb.padY) / lb.scale, lb.sourceHeight)),
    ],
    class_id: b.classId,
  }));
}

/** Packed RGB bytes (HWC) → normalized float CHW, the layout YOLO exports take. */
export function rgbToChw(rgb: Uint8Array, size: number): Float32Array {
  const plane = size * size;
  if (rgb.length !== plane * 3) throw new RangeError(`expected ${plane * 3} RGB bytes for ${size}x${size}, got ${rgb.length}`);
  const out = new Float32Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    out[p] = rgb[p * 3]! / 255;
    out[plane + p] = rgb[p * 3 + 1]! / 255;
    out[2 * plane + p] = rgb[p * 3 + 2]! / 255;
  }
  return out;
}
