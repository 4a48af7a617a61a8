import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createApp } from '../src/app.ts';
import { FinalResultSchema, type FinalResult } from '../src/domain/result.ts';
import { makeNotAVideo, makeSilentVideo, makeToneBurstVideo } from './support/media.ts';
import { runFave } from './support/child.ts';

/** The real pipeline on generated media, with the local stages: embedded and over `fave gateway`. */

const BURSTS: Array<[number, number]> = [
  [1, 3],
  [5, 7.5],
  [9, 11],
];

// The COCO detector has its own test (coco-detector.test.ts); here frames get the empty document.
/** No detector, and no speech engine even where pocketsphinx is installed: the notes saying so are checked. */
const NO_DETECTOR = { FAVE_DETECTOR: 'none', FAVE_SPEECH_COMMAND: 'none' };

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

/**
 * The bursts and the silence between them, covering the whole video: 0–1 s and 11–12 s are
 * shorter than a clip and join the bursts next to them; 3–5 s and 7.5–9 s are clips of their own.
 */
const EXPECTED: Array<{ start: number; end: number; speech: boolean }> = [
  { start: 0, end: 3, speech: true },
  { start: 3, end: 5, speech: false },
  { start: 5, end: 7.5, speech: true },
  { start: 7.5, end: 9, speech: false },
  { start: 9, end: 12, speech: true },
];

function expectBurstClips(result: FinalResult): void {
  expect(result.status).toBe('COMPLETED');
  expect(result.clips).toHaveLength(EXPECTED.length);
  result.clips.forEach((clip, i) => {
    const { start, end, speech } = EXPECTED[i]!;
    expect(Math.abs(clip.start_s! - start)).toBeLessThanOrEqual(0.25);
    expect(Math.abs(clip.end_s! - end)).toBeLessThanOrEqual(0.25);
    // Frames at the default 1 fps: duration × fps, ±1.
    expect(Math.abs(clip.frames - (clip.end_s! - clip.start_s!) * 1)).toBeLessThanOrEqual(1);
    expect(clip.transcript).toBeNull();
    expect(clip.transcript_note).toContain(speech ? 'no speech engine configured' : 'no speech in this clip');
    expect(clip.objects).toEqual([]);
    expect(clip.objects_note).toContain('no detector model configured');
  });
}

describe('the embedded default', () => {
  it('`fave run <video>` with no GATEWAY_URL finds the three tone bursts', async () => {
    const out = await runFave(['run', video, '--json', '--request-id', 'embedded'], { FAVE_DATA_DIR: join(dir, 'embedded'), LOG_LEVEL: 'warn', ...NO_DETECTOR }).exit;
    expect(out.code, out.stderr).toBe(0);
    expectBurstClips(FinalResultSchema.parse(JSON.parse(out.stdout)));
  });

  it('the same through `fave gateway` over HTTP', async () => {
    const data = join(dir, 'over-http');
    const gateway = runFave(['gateway', '--port', '0'], { FAVE_DATA_DIR: data, LOG_LEVEL: 'warn', ...NO_DETECTOR });
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
      expect(result.metrics.stages['stage-ffmpeg-2']!.count).toBe(EXPECTED.length);
    } finally {
      gateway.child.kill('SIGTERM');
      await gateway.exit;
    }
  });

  it('looks at the silent stretch between two stretches of speech: a clip of its own, with frames', async () => {
    // Speech at 2–5 s and 9–12 s; the test pattern moves all along, also in the silent 5–9 s.
    const speechAndSilence = join(dir, 'speech-and-silence.mp4');
    await makeToneBurstVideo(speechAndSilence, {
      bursts: [
        [2, 5],
        [9, 12],
      ],
      duration: 14,
    });
    const app = await createApp({
      env: { FAVE_DATA_DIR: join(dir, 'silence'), OPENFAAS_SECRETS_DIR: '/nonexistent', LOG_LEVEL: 'silent', ...NO_DETECTOR },
      logger: pino({ level: 'silent' }),
    });
    try {
      const outcome = await (await app.orchestrator.submit({ video_uri: speechAndSilence }, { allowLocalPath: true })).done;
      expect(outcome.status).toBe('COMPLETED');
      const silent = outcome.result.clips.find((c) => Math.abs(c.start_s! - 5) <= 0.25 && Math.abs(c.end_s! - 9) <= 0.25);
      expect(silent, JSON.stringify(outcome.result.clips.map((c) => [c.start_s, c.end_s]))).toBeDefined();
      expect(silent!.frames).toBeGreaterThanOrEqual(3);
      expect(silent!.transcript_note).toContain('no speech in this clip');
      // Its frames reached the detector.
      expect(outcome.result.metrics.stages['stage-object-detector']!.count).toBe(outcome.result.clips.reduce((n, c) => n + c.frames, 0));
      // And the whole video is covered, clip after clip.
      outcome.result.clips.forEach((c, i) => {
        expect(c.start_s!).toBeCloseTo(i === 0 ? 0 : outcome.result.clips[i - 1]!.end_s!, 1);
      });
      expect(outcome.result.clips.at(-1)!.end_s!).toBeCloseTo(14, 0);
    } finally {
      await app.close();
    }
  });

  it('a video with no audio track completes with one clip; a file that is not a video fails at ffmpeg-0 with its reason', async () => {
    const silent = join(dir, 'silent.mp4');
    const junk = join(dir, 'junk.mp4');
    await makeSilentVideo(silent, { duration: 4 });
    await makeNotAVideo(junk);
    const app = await createApp({ env: { FAVE_DATA_DIR: join(dir, 'in-process'), OPENFAAS_SECRETS_DIR: '/nonexistent', ...NO_DETECTOR }, logger: pino({ level: 'silent' }) });
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
