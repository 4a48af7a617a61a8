import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createApp } from '../src/app.ts';
import { FinalResultSchema, type FinalResult } from '../src/contracts/result.ts';
import { makeNotAVideo, makeSilentVideo, makeToneBurstVideo } from './support/media.ts';
import { runFave } from './support/child.ts';

/** The real pipeline on generated media, with the local stages: embedded and over `fave gateway`. */

const BURSTS: Array<[number, number]> = [
  [1, 3],
  [5, 7.5],
  [9, 11],
];

let dir: string;
let video: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fave-embedded-'));
  video = join(dir, 'bursts.mp4');
  await makeToneBurstVideo(video, { bursts: BURSTS, duration: 12 });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function expectBurstClips(result: FinalResult): void {
  expect(result.status).toBe('COMPLETED');
  expect(result.clips).toHaveLength(3);
  result.clips.forEach((clip, i) => {
    const [start, end] = BURSTS[i]!;
    expect(Math.abs(clip.start_s! - start)).toBeLessThanOrEqual(0.25);
    expect(Math.abs(clip.end_s! - end)).toBeLessThanOrEqual(0.25);
    // Frames at the default 1 fps: duration × fps, ±1.
    expect(Math.abs(clip.frames - (clip.end_s! - clip.start_s!) * 1)).toBeLessThanOrEqual(1);
    expect(clip.transcript).toBeNull();
    expect(clip.transcript_note).toContain('no speech engine configured');
    expect(clip.objects).toEqual([]);
    expect(clip.objects_note).toContain('no detector model configured');
  });
}

describe('the embedded default', () => {
  it('`fave run <video>` with no GATEWAY_URL finds the three tone bursts', async () => {
    const out = await runFave(['run', video, '--json', '--request-id', 'embedded'], { FAVE_DATA_DIR: join(dir, 'embedded'), LOG_LEVEL: 'warn' }).exit;
    expect(out.code, out.stderr).toBe(0);
    expectBurstClips(FinalResultSchema.parse(JSON.parse(out.stdout)));
  });

  it('the same through `fave gateway` over HTTP', async () => {
    const data = join(dir, 'over-http');
    const gateway = runFave(['gateway', '--port', '0'], { FAVE_DATA_DIR: data, LOG_LEVEL: 'warn' });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let seen = '';
        gateway.child.stdout!.on('data', (d: Buffer) => {
          seen += d.toString();
          const m = /GATEWAY_URL=(\S+)/.exec(seen);
          if (m) resolve(m[1]!);
        });
        void gateway.exit.then((e) => reject(new Error(`gateway exited: ${e.stderr}`)));
      });
      const out = await runFave(['run', video, '--json'], { FAVE_DATA_DIR: data, GATEWAY_URL: url, LOG_LEVEL: 'warn' }).exit;
      expect(out.code, out.stderr).toBe(0);
      const result = FinalResultSchema.parse(JSON.parse(out.stdout));
      expectBurstClips(result);
      expect(result.metrics.stages['stage-ffmpeg-2']!.count).toBe(3);
    } finally {
      gateway.child.kill('SIGTERM');
      await gateway.exit;
    }
  });

  it('a video with no audio track completes with one clip; a file that is not a video fails at ffmpeg-0 with its reason', async () => {
    const silent = join(dir, 'silent.mp4');
    const junk = join(dir, 'junk.mp4');
    await makeSilentVideo(silent, { duration: 4 });
    await makeNotAVideo(junk);
    const app = await createApp({ env: { FAVE_DATA_DIR: join(dir, 'in-process'), OPENFAAS_SECRETS_DIR: '/nonexistent' }, logger: pino({ level: 'silent' }) });
    try {
      const ok = await (await app.orchestrator.submit({ video_uri: silent }, { allowLocalPath: true })).done;
      expect(ok.status).toBe('COMPLETED');
      expect(ok.result.clips).toHaveLength(1);
      expect(ok.result.clips[0]!.start_s).toBeCloseTo(0, 1);
      expect(ok.result.clips[0]!.end_s).toBeCloseTo(4, 0);

      const bad = await (await app.orchestrator.submit({ video_uri: junk }, { allowLocalPath: true })).done;
      expect(bad.status).toBe('FAILED');
      expect(bad.result.error).toMatchObject({ code: 'STAGE_REPORTED_ERROR', stage: 'stage-ffmpeg-0', attempts: 1 });
      expect(bad.result.error!.message).toMatch(/Invalid data found when processing input/);
    } finally {
      await app.close();
    }
  });
});
