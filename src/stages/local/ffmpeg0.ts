import { packTarGz } from './archive.ts';
import { ADDED_SILENCE_HANDLER, probeMedia, type MediaInfo } from './probe.ts';
import { defineStage, type StageEnvironment, StageRejection, type LocalStageFunction } from './stage-kit.ts';
import { EVEN_DIMENSIONS, FFMPEG_QUIET, runTool } from './tools.ts';

/** Sample rate of audio.wav: what librosa loads by default, so the segmentation sees the same signal. */
export const ARCHIVE_AUDIO_RATE = 22050;

/**
 * stage-ffmpeg-0: input video → `media.tar.gz` {video.mp4, audio.wav}. video.mp4 is H.264 +
 * AAC (the H.264 stream is copied when the input already has one); audio.wav is mono 16-bit PCM.
 * A video without sound gets a silent track in both, so every later stage finds audio.
 */
export function ffmpeg0Stage(env: StageEnvironment): LocalStageFunction {
  return defineStage(env, async (ctx) => {
    const input = await ctx.downloadInput();
    const info = await probeMedia(input, ctx.signal).catch((err: unknown) => ctx.rejectTool(err, 'input is not readable media'));
    if (!info.video) throw new StageRejection(`input ${ctx.request.input_uri} has no video stream`);

    const video = ctx.path('video.mp4');
    await runTool('ffmpeg', videoArgs(input, info, video), { signal: ctx.signal }).catch((err: unknown) => ctx.rejectTool(err, 'ffmpeg could not convert the input'));
    const audio = ctx.path('audio.wav');
    // From the original when it has sound (no AAC round trip); else the silent track just made.
    const audioSource = info.audio ? input : video;
    await runTool('ffmpeg', [...FFMPEG_QUIET, '-i', audioSource, '-map', '0:a:0', '-vn', '-ac', '1', '-ar', String(ARCHIVE_AUDIO_RATE), '-c:a', 'pcm_s16le', audio], {
      signal: ctx.signal,
    }).catch((err: unknown) => ctx.rejectTool(err, 'ffmpeg could not extract the audio'));

    const archive = ctx.path('media.tar.gz');
    await packTarGz(
      [
        { name: 'video.mp4', path: video },
        { name: 'audio.wav', path: audio },
      ],
      archive,
    );
    const uri = await ctx.upload('media.tar.gz', archive, 'application/gzip');
    return [{ type: 'archive', uri, metadata: { has_audio: info.audio !== null, duration_s: info.duration } }];
  });
}

function videoArgs(input: string, info: MediaInfo, output: string): string[] {
  const copyVideo = info.video?.codec === 'h264';
  const videoCodec = copyVideo ? ['-c:v', 'copy'] : ['-vf', EVEN_DIMENSIONS, '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23', '-pix_fmt', 'yuv420p'];
  const args = [...FFMPEG_QUIET, '-i', input];
  if (info.audio) {
    args.push('-map', '0:v:0', '-map', '0:a:0');
  } else {
    // Named, so the later stages can tell this track from a recording of silence.
    args.push('-f', 'lavfi', '-i', `anullsrc=channel_layout=mono:sample_rate=${ARCHIVE_AUDIO_RATE}`, '-map', '0:v:0', '-map', '1:a:0', '-shortest');
    args.push('-metadata:s:a:0', `handler_name=${ADDED_SILENCE_HANDLER}`);
  }
  return [...args, ...videoCodec, '-c:a', 'aac', '-b:a', '128k', '-movflags', '+faststart', '-f', 'mp4', output];
}
