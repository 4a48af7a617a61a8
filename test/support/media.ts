import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { runTool } from '../../src/stages/local/tools.ts';

/**
 * Tiny generated media for the stage tests: a 160x120 test pattern at a few frames per second,
 * so a whole pipeline run on it takes seconds.
 */

import { generationSignal as signal, quiet } from '../../src/stages/local/sample-media.ts';

export { makeToneBurstVideo, type ToneBurstOptions } from '../../src/stages/local/sample-media.ts';

/** Video with no audio stream at all. */
export async function makeSilentVideo(path: string, options: { duration: number; fps?: number; size?: string }): Promise<void> {
  await runTool(
    'ffmpeg',
    [
      ...quiet,
      '-f',
      'lavfi',
      '-i',
      `testsrc=size=${options.size ?? '160x120'}:rate=${options.fps ?? 10}:duration=${options.duration}`,
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-pix_fmt',
      'yuv420p',
      path,
    ],
    { signal: signal() },
  );
}

/** A file with a video extension that holds text. */
export async function makeNotAVideo(path: string): Promise<void> {
  await writeFile(path, 'this is a plain text file, not a video\n'.repeat(20));
}

/** One JPEG picture of the test pattern. */
export async function makeImage(path: string, options: { size?: string } = {}): Promise<void> {
  await runTool('ffmpeg', [...quiet, '-f', 'lavfi', '-i', `testsrc=size=${options.size ?? '320x240'}:rate=1:duration=1`, '-frames:v', '1', path], {
    signal: signal(),
  });
}

/** The real photograph the optional @vladmandic/human ships, or null where it is not installed. */
export function installedPhoto(): string | null {
  try {
    const path = join(dirname(dirname(createRequire(import.meta.url).resolve('@vladmandic/human'))), 'assets', 'samples.jpg');
    return existsSync(path) ? path : null;
  } catch {
    return null;
  }
}

/** A video of one still picture, `seconds` long at `fps` frames per second, 640 pixels wide. */
export async function makeStillVideo(path: string, picture: string, options: { seconds: number; fps: number }): Promise<void> {
  await runTool(
    'ffmpeg',
    [
      ...quiet,
      '-loop',
      '1',
      '-framerate',
      String(options.fps),
      '-i',
      picture,
      '-t',
      String(options.seconds),
      '-vf',
      'scale=640:-2,format=yuv420p',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      path,
    ],
    { signal: AbortSignal.timeout(60_000) },
  );
}
