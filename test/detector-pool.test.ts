import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaveFailure } from '../src/domain/errors.ts';
import { COCO_TFJS_MISSING } from '../src/stages/local/coco-tfjs.ts';
import type { DetectionJob } from '../src/stages/local/detection.ts';
import { DetectorFailure, DetectorPool } from '../src/stages/local/detector-pool.ts';
import { defaultDetectorWorkers, resolveLocalStageSettings } from '../src/stages/local/stage-config.ts';
import { closeAfterTest } from './support/cleanup.ts';
import { makeImage } from './support/media.ts';

/** The detector's worker threads: bounded, reused, closed, and failing with typed errors. */

const require = createRequire(import.meta.url);
const cocoInstalled = (() => {
  try {
    return existsSync(require.resolve('@vladmandic/human'));
  } catch {
    return false;
  }
})();

let dir: string;
let picture: string;
/** Resolves the optional COCO packages from a folder without them: each picture is answered at once. */
let nowhere: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fave-pool-'));
  picture = join(dir, 'frame.jpg');
  await makeImage(picture);
  await mkdir(join(dir, 'elsewhere'));
  nowhere = pathToFileURL(join(dir, 'elsewhere', 'x.js')).href;
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function job(overrides: Partial<DetectionJob> = {}): DetectionJob {
  return { engine: 'coco', image: picture, inputUri: 's3://fave-artifacts/frame.jpg', modelPath: null, confidenceThreshold: 0.25, iouThreshold: 0.45, ...overrides };
}

describe('the detector pool', () => {
  it('starts at most `size` threads and reuses them for the pictures after', async () => {
    const pool = closeAfterTest(new DetectorPool({ size: 2, cocoResolveFrom: nowhere }));
    const pending = Array.from({ length: 5 }, () => pool.detect(job(), AbortSignal.timeout(30_000)));
    expect(pool.stats).toEqual({ threads: 2, busy: 2, queued: 3, started: 2 });
    const documents = await Promise.all(pending);
    for (const document of documents) expect(document).toEqual({ detections: [], model: null, note: COCO_TFJS_MISSING });
    await pool.detect(job(), AbortSignal.timeout(30_000));
    expect(pool.stats).toEqual({ threads: 2, busy: 0, queued: 0, started: 2 });
  });

  it('carries a model that cannot be used back as a typed rejection', async () => {
    const pool = closeAfterTest(new DetectorPool({ size: 1 }));
    const failure = await pool.detect(job({ engine: 'onnx', modelPath: join(dir, 'missing.onnx') }), AbortSignal.timeout(30_000)).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(DetectorFailure);
    expect((failure as DetectorFailure).failure).toMatchObject({
      kind: 'rejection',
      message: expect.stringContaining(`detector model ${join(dir, 'missing.onnx')} cannot be used`),
    });
  });

  it.skipIf(!cocoInstalled)('carries a picture it cannot read back as a typed failure: a tool with its reason, or a rejection', async () => {
    const pool = closeAfterTest(new DetectorPool({ size: 1 }));
    const gone = await pool.detect(job({ image: join(dir, 'gone.jpg') }), AbortSignal.timeout(60_000)).catch((err: unknown) => err);
    expect(gone).toBeInstanceOf(DetectorFailure);
    expect((gone as DetectorFailure).failure).toMatchObject({
      kind: 'tool',
      tool: 'ffprobe',
      what: 'input is not a readable picture',
      reason: expect.stringContaining('No such file'),
    });

    const text = join(dir, 'not-a-picture.jpg');
    await writeFile(text, 'plain text\n'.repeat(10));
    const notPicture = await pool.detect(job({ image: text }), AbortSignal.timeout(60_000)).catch((err: unknown) => err);
    expect(notPicture).toBeInstanceOf(DetectorFailure);
    expect((notPicture as DetectorFailure).failure).toEqual({ kind: 'rejection', message: 'input s3://fave-artifacts/frame.jpg is not a picture' });
    // The same thread took both.
    expect(pool.stats.started).toBe(1);
  });

  it('drops a picture whose caller gave up while it waited, and goes on with the others', async () => {
    const pool = closeAfterTest(new DetectorPool({ size: 1, cocoResolveFrom: nowhere }));
    const first = pool.detect(job(), AbortSignal.timeout(30_000));
    const giveUp = new AbortController();
    const second = pool.detect(job(), giveUp.signal);
    giveUp.abort(new Error('the request was cancelled'));
    await expect(second).rejects.toThrow('the request was cancelled');
    expect(pool.stats.queued).toBe(0);
    await expect(first).resolves.toMatchObject({ detections: [] });
  });

  it('stops its threads on close and takes no picture after', async () => {
    const pool = new DetectorPool({ size: 2, cocoResolveFrom: nowhere });
    await Promise.all([pool.detect(job(), AbortSignal.timeout(30_000)), pool.detect(job(), AbortSignal.timeout(30_000))]);
    expect(pool.stats.threads).toBe(2);
    await pool.close();
    expect(pool.stats.threads).toBe(0);
    await expect(pool.detect(job(), AbortSignal.timeout(30_000))).rejects.toBeInstanceOf(FaveFailure);
  });
});

describe('FAVE_DETECTOR_WORKERS', () => {
  it('bounds the threads: one per core up to two by default, the setting when given', () => {
    expect(defaultDetectorWorkers()).toBe(Math.min(2, availableParallelism()));
    expect(resolveLocalStageSettings({}, {}).detectorWorkers).toBe(defaultDetectorWorkers());
    expect(resolveLocalStageSettings({}, { FAVE_DETECTOR_WORKERS: '3' }).detectorWorkers).toBe(3);
    expect(resolveLocalStageSettings({ detectorWorkers: 1 }, { FAVE_DETECTOR_WORKERS: '3' }).detectorWorkers).toBe(1);
  });

  it('refuses a count that is not a whole number from 1 to 16, naming the variable', () => {
    for (const value of ['0', '1.5', '17', 'many']) {
      let error: unknown = null;
      try {
        resolveLocalStageSettings({}, { FAVE_DETECTOR_WORKERS: value });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(FaveFailure);
      expect((error as FaveFailure).error).toMatchObject({ code: 'BAD_CONFIG', message: expect.stringMatching(/^FAVE_DETECTOR_WORKERS is invalid/) });
    }
  });
});
