import { z } from 'zod';
import { runTool } from './tools.ts';

/** What the stages need to know about a media file, read with ffprobe. */
export interface MediaInfo {
  /** Seconds; null when the container does not say. */
  duration: number | null;
  video: { codec: string; width: number; height: number; fps: number | null } | null;
  /** `added`: the silent track stage-ffmpeg-0 gives a video that had no sound (its handler name says so). */
  audio: { codec: string; sampleRate: number | null; channels: number | null; added: boolean } | null;
}

/** The handler name of the silent track stage-ffmpeg-0 adds to a video without sound; re-encoding keeps it. */
export const ADDED_SILENCE_HANDLER = 'FAVE: no audio track';

const numeric = z
  .union([z.number(), z.string()])
  .optional()
  .transform((v) => {
    const n = typeof v === 'string' ? Number(v) : v;
    return n !== undefined && Number.isFinite(n) ? n : null;
  });

const ProbeSchema = z.looseObject({
  streams: z
    .array(
      z.looseObject({
        codec_type: z.string().optional(),
        codec_name: z.string().optional(),
        width: z.number().optional(),
        height: z.number().optional(),
        avg_frame_rate: z.string().optional(),
        sample_rate: numeric,
        channels: z.number().optional(),
        duration: numeric,
        disposition: z.looseObject({ attached_pic: z.number().optional() }).optional(),
        tags: z.looseObject({ handler_name: z.string().optional() }).optional(),
      }),
    )
    .default([]),
  format: z.looseObject({ duration: numeric }).optional(),
});

export async function probeMedia(path: string, signal: AbortSignal): Promise<MediaInfo> {
  const { stdout } = await runTool('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', path], { signal });
  const parsed = ProbeSchema.parse(JSON.parse(stdout.toString('utf8')));
  // Cover art in audio files is a "video" stream of one picture: not a video.
  const video = parsed.streams.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
  const audio = parsed.streams.find((s) => s.codec_type === 'audio');
  const durations = [parsed.format?.duration, video?.duration, audio?.duration].filter((d): d is number => typeof d === 'number' && d > 0);
  return {
    duration: durations[0] ?? null,
    video: video ? { codec: video.codec_name ?? 'unknown', width: video.width ?? 0, height: video.height ?? 0, fps: parseRate(video.avg_frame_rate) } : null,
    audio: audio
      ? { codec: audio.codec_name ?? 'unknown', sampleRate: audio.sample_rate, channels: audio.channels ?? null, added: audio.tags?.handler_name === ADDED_SILENCE_HANDLER }
      : null,
  };
}

function parseRate(rate: string | undefined): number | null {
  if (!rate) return null;
  const [num, den] = rate.split('/').map(Number);
  if (num === undefined || !Number.isFinite(num)) return null;
  const value = den === undefined ? num : den === 0 ? NaN : num / den;
  return Number.isFinite(value) && value > 0 ? value : null;
}
