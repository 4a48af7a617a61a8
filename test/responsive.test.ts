import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FinalResultSchema } from '../src/domain/result.ts';
import { FsStore } from '../src/persistence/fs-store.ts';
import { installedPhoto, makeStillVideo } from './support/media.ts';
import { serveFave } from './support/child.ts';
import { until } from './support/until.ts';

/**
 * The embedded default detects objects in worker threads: while it works on three requests of a
 * video of photographs, `fave serve` (a real child process) still answers its health probe at
 * once.
 */

const photo = installedPhoto();
if (!photo) console.log('skipping the health probe during detection: the optional @vladmandic/human is not installed');

/** The bound the health probe must keep while the detector works. */
const WORST_PROBE_MS = 500;
const REQUESTS = 3;

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fave-responsive-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a free event loop while the embedded detector works', () => {
  it.skipIf(!photo)(
    `/healthz answers within ${WORST_PROBE_MS} ms while ${REQUESTS} requests are being detected`,
    async () => {
      const video = join(dir, 'photos.mp4');
      await makeStillVideo(video, photo!, { seconds: 6, fps: 2 });
      const store = new FsStore(join(dir, 'data'), 'fave-artifacts');
      await store.init();
      await store.put({ bucket: 'fave-artifacts', key: 'uploads/photos.mp4' }, await readFile(video));

      const { run: server, base, log: serverLog } = await serveFave(dir, { FAVE_DETECTOR: 'coco', FAVE_FRAME_FPS: '1' });
      try {
        await until(
          () =>
            fetch(`${base}/healthz`).then(
              (r) => r.ok,
              () => false,
            ),
          { timeoutMs: 30_000, everyMs: 100, message: 'fave serve to answer' },
        );

        for (let i = 0; i < REQUESTS; i++) {
          const res = await fetch(`${base}/?async=true`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ video_uri: 's3://fave-artifacts/uploads/photos.mp4', query: 'people', request_id: `busy-${i}` }),
          });
          expect(res.status, await res.text()).toBe(202);
        }

        // One probe every 150 ms until no request runs; a probe that fails counts as its timeout.
        const probes: number[] = [];
        await until(
          async () => {
            const started = performance.now();
            const body = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(5_000) }).then(
              (r) => r.json() as Promise<{ requests_running: number }>,
              () => null,
            );
            probes.push(performance.now() - started);
            return body !== null && body.requests_running === 0;
          },
          { timeoutMs: 240_000, everyMs: 150, message: () => `the ${REQUESTS} requests to finish; stderr: ${serverLog()}` },
        );

        const detectorLatencies: number[] = [];
        for (let i = 0; i < REQUESTS; i++) {
          const result = FinalResultSchema.parse(await (await fetch(`${base}/requests/busy-${i}/result`)).json());
          expect(result.status).toBe('COMPLETED');
          expect(result.clips.flatMap((c) => c.objects.map((o) => o.label))).toContain('person');
          const detector = Object.entries(result.metrics.stages).find(([name]) => name.includes('detector'))?.[1];
          expect(detector?.count).toBeGreaterThan(0);
          detectorLatencies.push(detector!.max_ms);
        }

        const worst = Math.max(...probes);
        const longestDetection = Math.max(...detectorLatencies);
        console.log(`health probes: ${probes.length}, worst ${Math.round(worst)} ms; longest detector call ${Math.round(longestDetection)} ms`);
        expect(probes.length).toBeGreaterThan(10);
        expect(worst).toBeLessThan(WORST_PROBE_MS);
      } finally {
        server.child.kill('SIGTERM');
        await server.exit;
      }
    },
    300_000,
  );
});
