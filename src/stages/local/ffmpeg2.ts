import { packTarGz } from './archive.ts';
import { probeMedia } from './probe.ts';
import { CLIP_VIDEO_NAMES, clipName, defineStage, type StageEnvironment, StageRejection, type LocalStageFunction } from './stage-kit.ts';
import { FFMPEG_QUIET, runTool } from './tools.ts';

/** What speech engines expect: 16 kHz, mono, 16-bit PCM. */
export const SPEECH_AUDIO_RATE = 16000;

/** Small enough for frames and detection, large enough to recognise objects. */
const COMPRESSED_WIDTH = 640;

/**
 * stage-ffmpeg-2: a clip (or an archive holding one) → `clip_NNN.tar.gz` {clip.mp4, audio.wav}:
 * the clip scaled down to at most 640 px wide at H.264 CRF 32, and its sound as 16 kHz mono.
 * `fanout.clip_index` names the clip.
 */
export function ffmpeg2Stage(env: StageEnvironment): LocalStageFunction {
  return defineStage(env, async (ctx) => {
    const source = await ctx.videoInput(CLIP_VIDEO_NAMES);
    const info = await probeMedia(source, ctx.signal).catch((err: unknown) => ctx.rejectTool(err, 'input clip is not readable media'));
    if (!info.video) throw new StageRejection(`input ${ctx.request.input_uri} has no video stream`);

    const clip = ctx.path('clip.mp4');
    await runTool(
      'ffmpeg',
      [
        ...FFMPEG_QUIET,
        '-i',
        source,
        '-map',
        '0:v:0',
        '-map',
        '0:a:0?',
        '-vf',
        `scale='trunc(min(${COMPRESSED_WIDTH},iw)/2)*2':-2`,
        '-c:v',
        'libx264',
        '-preset',
        'veryfast',
        '-crf',
        '32',
        '-pix_fmt',
        'yuv420p',
        '-c:a',
        'aac',
        '-b:a',
        '64k',
        '-movflags',
        '+faststart',
        clip,
      ],
      { signal: ctx.signal },
    ).catch((err: unknown) => ctx.rejectTool(err, 'ffmpeg could not compress the clip'));

    const audio = ctx.path('audio.wav');
    const pcm = ['-ac', '1', '-ar', String(SPEECH_AUDIO_RATE), '-c:a', 'pcm_s16le', audio];
    const audioArgs = info.audio
      ? [...FFMPEG_QUIET, '-i', source, '-map', '0:a:0', '-vn', ...pcm]
      : [...FFMPEG_QUIET, '-f', 'lavfi', '-i', `anullsrc=channel_layout=mono:sample_rate=${SPEECH_AUDIO_RATE}`, '-t', String(info.duration ?? 0.1), ...pcm];
    await runTool('ffmpeg', audioArgs, { signal: ctx.signal }).catch((err: unknown) => ctx.rejectTool(err, 'ffmpeg could not extract the audio'));

    const name = `${clipName(ctx.clipIndex)}.tar.gz`;
    const archive = ctx.path(name);
    await packTarGz(
      [
        { name: 'clip.mp4', path: clip },
        { name: 'audio.wav', path: audio },
      ],
      archive,
    );
    const uri = await ctx.upload(name, archive, 'application/gzip');
    return [{ type: 'archive', uri, metadata: { clip_index: ctx.clipIndex } }];
  });
}
