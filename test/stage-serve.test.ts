import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../src/persistence/fs-store.ts';
import { StageResponseSchema } from '../src/transport/contract.ts';
import { runFave } from './support/child.ts';
import { closeAfterTest } from './support/cleanup.ts';
import { freePort } from './support/free-port.ts';
import { makeToneBurstVideo } from './support/media.ts';
import { until } from './support/until.ts';

/** `fave stage serve <name>`: the stage image's fprocess, as of-watchdog in http mode reaches it. */

let dir: string;
let store: FsStore;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fave-stage-serve-'));
  store = new FsStore(join(dir, 'data'), 'fave-artifacts');
  await store.init();
  const video = join(dir, 'in.mp4');
  await makeToneBurstVideo(video, { bursts: [[0.5, 1.5]], duration: 2 });
  await store.put({ bucket: 'fave-artifacts', key: 'requests/r1/input/original.mp4' }, await readFile(video));
});

afterAll(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

const env = () => ({ FAVE_DATA_DIR: join(dir, 'data'), LOG_LEVEL: 'warn', OPENFAAS_SECRETS_DIR: join(dir, 'no-secrets') });

describe('fave stage serve', () => {
  it("listens where the watchdog's upstream_url points and answers one stage's calls at any path", async () => {
    const upstream = `http://127.0.0.1:${await freePort()}`;
    const run = runFave(['stage', 'serve', 'stage-ffmpeg-0'], { ...env(), upstream_url: upstream });
    closeAfterTest({
      close: async () => {
        run.child.kill('SIGTERM');
        await run.exit;
      },
    });
    await until(
      () =>
        fetch(`${upstream}/_/health`).then(
          (r) => r.ok || null,
          () => null,
        ),
      { timeoutMs: 30_000, message: 'the stage answers GET' },
    );

    const request = { request_id: 'r1', stage: 'stage-ffmpeg-0', input_uri: 's3://fave-artifacts/requests/r1/input/original.mp4', output_hint: null, config: {}, fanout: {} };
    const res = await fetch(`${upstream}/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) });
    expect(res.status).toBe(200);
    const body = StageResponseSchema.parse(await res.json());
    expect(body).toMatchObject({ status: 'success', stage: 'stage-ffmpeg-0', request_id: 'r1' });
    expect(body.outputs[0]!.uri).toMatch(/^s3:\/\/fave-artifacts\/requests\/r1\/stage-ffmpeg-0\//);

    const junk = await fetch(`${upstream}/anything`, { method: 'POST', body: 'not json' });
    expect(junk.status).toBe(200);
    expect(await junk.json()).toEqual({ status: 'error', message: 'request body is not JSON' });

    run.child.kill('SIGTERM');
    expect((await run.exit).code).toBe(0);
  });

  it('refuses a stage it does not have, naming the ones it has', async () => {
    const out = await runFave(['stage', 'serve', 'stage-ffmpeg-9', '--port', '0'], env()).exit;
    expect(out.code, out.stderr).toBe(2);
    expect(out.stderr).toContain('no stage is called "stage-ffmpeg-9" (known: stage-ffmpeg-0, stage-librosa');
  });
});
