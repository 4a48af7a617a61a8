import { runTool } from './tools.ts';

/**
 * Generated media: the sample video `fave run --sample` analyses, and the test videos. A test
 * pattern with a tone during given bursts and silence between them, so the segmentation has
 * something real to find.
 */

export const quiet = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y'];

export function generationSignal(): AbortSignal {
  return AbortSignal.timeout(60_000);
}

export interface ToneBurstOptions {
  /** `[start_s, end_s]` ranges where a 440 Hz tone plays; silence elsewhere. */
  bursts: ReadonlyArray<readonly [number, number]>;
  duration: number;
  fps?: number;
  size?: string;
}

/** Video (testsrc) with sound: tone during the bursts, digital silence in between. */
export async function makeToneBurstVideo(path: string, options: ToneBurstOptions): Promise<void> {
  const gate = options.bursts.length ? options.bursts.map(([s, e]) => `between(t,${s},${e})`).join('+') : '0';
  const audio = `aevalsrc='(${gate})*0.5*sin(2*PI*440*t)':s=22050:d=${options.duration}`;
  await runTool(
    'ffmpeg',
    [
      ...quiet,
      '-f',
      'lavfi',
      '-i',
      `testsrc=size=${options.size ?? '160x120'}:rate=${options.fps ?? 10}:duration=${options.duration}`,
      '-f',
      'lavfi',
      '-i',
      audio,
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-pix_fmt',
      'yuv420p',
      '-c:a',
      'aac',
      '-b:a',
      '64k',
      '-shortest',
      path,
    ],
    { signal: generationSignal() },
  );
}

/** The sample: 12 s, three tone bursts, 320x240 at 10 fps. */
export const SAMPLE_BURSTS: ReadonlyArray<readonly [number, number]> = [
  [1, 3],
  [5, 7.5],
  [9, 11],
];

export async function makeSampleVideo(path: string): Promise<void> {
  await makeToneBurstVideo(path, { bursts: SAMPLE_BURSTS, duration: 12, size: '320x240', fps: 10 });
}
