import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.ts';
import { FsStore } from '../src/persistence/fs-store.ts';
import { installedPhoto, makeImage, makeStillVideo } from './support/media.ts';
import { parseS3Uri } from '../src/persistence/store.ts';
import { COCO_LABELS } from '../src/domain/query/coco.ts';
import { COCO_TFJS_MISSING, COCO_TFJS_MODEL, CocoTfjsDetector } from '../src/stages/local/coco-tfjs.ts';
import { objectDetectorStage } from '../src/stages/local/object-detector.ts';
import { DetectorPool } from '../src/stages/local/detector-pool.ts';
import { closeAfterTest } from './support/cleanup.ts';

/**
 * The optional COCO detector of the embedded default: a real photograph (one that
 * @vladmandic/human ships) made into a short video and run through the local stages.
 */

const photo = installedPhoto();
if (!photo) console.log('skipping the COCO detector run: the optional @vladmandic/human is not installed');

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fave-coco-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the COCO detector on tfjs', () => {
  it.skipIf(!photo)(
    'finds COCO objects in a video of a photograph, naming its model',
    async () => {
      const video = join(dir, 'photo.mp4');
      await makeStillVideo(video, photo!, { seconds: 2, fps: 5 });
      const env = { FAVE_DATA_DIR: join(dir, 'data'), FAVE_DETECTOR: 'coco', LOG_LEVEL: 'silent', OPENFAAS_SECRETS_DIR: join(dir, 'none') };
      const app = await createApp({ env, logger: pino({ level: 'silent' }) });
      try {
        const outcome = await (await app.orchestrator.submit({ video_uri: video, query: 'people', request_id: 'coco' }, { allowLocalPath: true })).done;
        expect(outcome.status).toBe('COMPLETED');
        const objects = outcome.result.clips.flatMap((c) => c.objects);
        expect(objects.length, JSON.stringify(outcome.result.clips)).toBeGreaterThan(0);
        for (const o of objects) expect(COCO_LABELS).toContain(o.label);
        expect(objects.map((o) => o.label)).toContain('person');
        expect(outcome.result.matches.length).toBeGreaterThan(0);
        // Every detection document names the model that made it.
        const keys = await app.store.list('fave-artifacts', 'requests/coco/stage-object-detector/');
        expect(keys.length).toBeGreaterThan(0);
        for (const key of keys) {
          const doc = JSON.parse((await app.store.get({ bucket: 'fave-artifacts', key })).toString('utf8')) as { model: string; note: string };
          expect(doc.model).toBe(COCO_TFJS_MODEL);
          expect(doc.note).toContain('centernet');
        }
      } finally {
        await app.close();
      }
    },
    120_000,
  );

  it('says exactly what to install when the package is not there', async () => {
    // Resolved from a directory with no node_modules above it.
    const elsewhere = join(dir, 'elsewhere');
    await mkdir(elsewhere, { recursive: true });
    const missing = new CocoTfjsDetector(pathToFileURL(join(elsewhere, 'x.js')).href);
    expect(await missing.load()).toEqual({ ok: false, reason: COCO_TFJS_MISSING });
    expect(COCO_TFJS_MISSING).toContain('npm install @vladmandic/human@3.3.6 @tensorflow/tfjs-core@4.22.0 @tensorflow/tfjs-converter@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0');

    // The stage answers a document with no detections that says so.
    const store = new FsStore(join(dir, 'store'), 'fave-artifacts');
    await store.init();
    const frameKey = 'requests/nopkg/stage-ffmpeg-3/clip_000/frame_0000.jpg';
    await makeImage(join(dir, 'f.jpg'), { size: '160x120' });
    await store.put({ bucket: 'fave-artifacts', key: frameKey }, await (await import('node:fs/promises')).readFile(join(dir, 'f.jpg')));
    const pool = closeAfterTest(new DetectorPool({ size: 1, cocoResolveFrom: pathToFileURL(join(elsewhere, 'x.js')).href }));
    const stage = objectDetectorStage({ store, workRoot: dir }, { engine: 'coco', modelPath: null, confidenceThreshold: 0.25, pool });
    const response = await stage(
      {
        request_id: 'nopkg',
        stage: 'stage-object-detector',
        input_uri: `s3://fave-artifacts/${frameKey}`,
        output_hint: null,
        config: { profile: 'default' },
        fanout: { clip_index: 0, frame_index: 0 },
      },
      AbortSignal.timeout(30_000),
    );
    expect(response.status).toBe('success');
    const doc = JSON.parse((await store.get(parseS3Uri(response.outputs[0]!.uri))).toString('utf8')) as { detections: unknown[]; note: string };
    expect(doc.detections).toEqual([]);
    expect(doc.note).toBe(COCO_TFJS_MISSING);
  });
});
