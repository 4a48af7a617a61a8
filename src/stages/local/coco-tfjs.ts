import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { COCO_LABELS } from '../../domain/query/coco.ts';
import { cocoLabelForTerm } from '../../domain/query/coco.ts';
import type { Detection } from './yolo.ts';

/**
 * The COCO-80 detector that runs from npm alone: the CenterNet (MobileNetV3) model shipped in
 * `@vladmandic/human`, on TensorFlow.js with its WebAssembly backend. No install script, no
 * download, no native code. It is an optional dependency, loaded on the first frame, and never
 * part of the container image.
 */

export const COCO_TFJS_PACKAGES = ['@vladmandic/human@3.3.6', '@tensorflow/tfjs-core@4.22.0', '@tensorflow/tfjs-converter@4.22.0', '@tensorflow/tfjs-backend-wasm@4.22.0'] as const;

export const COCO_TFJS_MODEL = 'centernet (MobileNetV3-CenterNet, COCO-80, from @vladmandic/human 3.3.6 on tfjs-wasm)';

/** Said on every document it writes: which model looked, and what to expect of it. */
export const COCO_TFJS_NOTE = `detected by ${COCO_TFJS_MODEL}; a small model: expect misses and confusions (set FAVE_DETECTOR_MODEL to a YOLO .onnx model for better ones)`;

export const COCO_TFJS_MISSING =
  `no detector available: the optional COCO detector is not installed (run: npm install ${COCO_TFJS_PACKAGES.join(' ')}), ` + 'or set FAVE_DETECTOR_MODEL to a YOLO .onnx model';

/** The largest side frames are scaled down to before detection: bounds time and memory per frame. */
export const COCO_TFJS_MAX_SIDE = 640;

interface HumanObject {
  score: number;
  label: string;
  /** `[x, y, width, height]` in pixels of the input. */
  box: number[];
}

interface Tensor {
  dispose(): void;
}

interface TfNamespace {
  tensor(values: Float32Array, shape: number[], dtype: 'float32'): Tensor;
  io: { registerLoadRouter(router: (url: string | string[]) => { load(): Promise<unknown> } | null): void };
}

interface HumanInstance {
  tf: TfNamespace;
  load(): Promise<void>;
  detect(input: Tensor): Promise<{ object?: HumanObject[]; error?: string | null }>;
}

type HumanConstructor = new (config: Record<string, unknown>) => HumanInstance;

function humanConstructorOf(mod: unknown): HumanConstructor | null {
  if (typeof mod !== 'object' || mod === null) return null;
  const candidate = (mod as { Human?: unknown; default?: unknown }).Human ?? (mod as { default?: unknown }).default;
  return typeof candidate === 'function' ? (candidate as HumanConstructor) : null;
}

/** tfjs-core reads no `file://` URL without tfjs-node: the model JSON and weights are read here. */
function fileLoadRouter(url: string | string[]): { load(): Promise<unknown> } | null {
  const first = Array.isArray(url) ? url[0] : url;
  if (typeof first !== 'string' || !first.startsWith('file://')) return null;
  const path = decodeURIComponent(first.slice('file://'.length));
  return {
    async load() {
      const json = JSON.parse(await readFile(path, 'utf8')) as {
        modelTopology: unknown;
        weightsManifest: Array<{ paths: string[]; weights: unknown[] }>;
        format?: string;
        generatedBy?: string;
        convertedBy?: string;
        signature?: unknown;
        userDefinedMetadata?: unknown;
      };
      const weights = await Promise.all(json.weightsManifest.flatMap((group) => group.paths.map((p) => readFile(join(dirname(path), p)))));
      const all = Buffer.concat(weights);
      return {
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest.flatMap((group) => group.weights),
        weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        signature: json.signature,
        userDefinedMetadata: json.userDefinedMetadata,
      };
    },
  };
}

export type CocoTfjsLoad = { ok: true; human: HumanInstance } | { ok: false; reason: string };

/**
 * One detector per process, loaded on first use. Calls are run one at a time: the WebAssembly
 * backend is single-threaded, so queuing them costs nothing and bounds memory.
 */
export class CocoTfjsDetector {
  private loading: Promise<CocoTfjsLoad> | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly resolveFrom: string = import.meta.url) {}

  load(): Promise<CocoTfjsLoad> {
    this.loading ??= this.open();
    return this.loading;
  }

  private async open(): Promise<CocoTfjsLoad> {
    const require = createRequire(this.resolveFrom);
    let humanDir: string;
    let wasmDir: string;
    try {
      for (const name of ['@tensorflow/tfjs-core', '@tensorflow/tfjs-converter']) require.resolve(name);
      // The package's exports map refuses its node-wasm build: it is reached by its path.
      humanDir = dirname(dirname(require.resolve('@vladmandic/human')));
      wasmDir = `${dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}/`;
    } catch {
      return { ok: false, reason: COCO_TFJS_MISSING };
    }
    const Human = humanConstructorOf(require(join(humanDir, 'dist', 'human.node-wasm.js')));
    if (!Human) return { ok: false, reason: `${COCO_TFJS_MISSING} (the installed @vladmandic/human exports no Human class)` };
    const human = new Human({
      backend: 'wasm',
      wasmPath: wasmDir,
      modelBasePath: `file://${join(humanDir, 'models')}/`,
      debug: false,
      async: false,
      warmup: 'none',
      cacheSensitivity: 0,
      face: { enabled: false },
      body: { enabled: false },
      hand: { enabled: false },
      gesture: { enabled: false },
      segmentation: { enabled: false },
      filter: { enabled: false },
      object: { enabled: true, modelPath: 'centernet.json', minConfidence: 0.2, iouThreshold: 0.4, maxDetected: 20, skipFrames: 0 },
    });
    human.tf.io.registerLoadRouter(fileLoadRouter);
    await human.load();
    return { ok: true, human };
  }

  /** Objects in one RGB picture (`width`×`height`×3 bytes), boxes `[x1, y1, x2, y2]` scaled by `scale`. */
  detect(human: HumanInstance, rgb: Uint8Array, width: number, height: number, options: { minConfidence: number; scale: number }): Promise<Detection[]> {
    const run = async (): Promise<Detection[]> => {
      const input = human.tf.tensor(Float32Array.from(rgb), [1, height, width, 3], 'float32');
      try {
        const result = await human.detect(input);
        if (result.error) throw new Error(result.error);
        return (result.object ?? [])
          .filter((o) => o.score >= options.minConfidence)
          .map((o) => {
            const label = (COCO_LABELS as readonly string[]).includes(o.label) ? o.label : (cocoLabelForTerm(o.label) ?? o.label);
            const [x = 0, y = 0, w = 0, h = 0] = o.box;
            const s = options.scale;
            return {
              label,
              confidence: Math.round(o.score * 1000) / 1000,
              box: [x * s, y * s, (x + w) * s, (y + h) * s].map((v) => Math.round(v * 10) / 10) as [number, number, number, number],
              class_id: COCO_LABELS.indexOf(label as (typeof COCO_LABELS)[number]),
            };
          });
      } finally {
        input.dispose();
      }
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }
}
