import { readFile, rm, stat } from 'node:fs/promises';
import { probeMedia } from './probe.ts';
import { parseTimestampsFile } from './segmentation.ts';
import { clipName, defineStage, type StageEnvironment, pickMember, StageRejection, VIDEO_EXTENSIONS, type LocalStageFunction, type LocalStageOutput } from './stage-kit.ts';
import { EVEN_DIMENSIONS, FFMPEG_QUIET, runTool } from './tools.ts';

/** A clip every second of a ten-hour video is 36,000 lines of 30 bytes: about 1 MB. */
const MAX_TIMESTAMPS_BYTES = 8 * 1024 * 1024;

/**
 * stage-ffmpeg-1: `{video.mp4, timestamps.txt}` → one `clip_NNN.mp4` per timestamps line, output
 * `{type: "video", metadata: {clip_index, start_s, end_s}}`. Clips are re-encoded, so a cut lands
 * on the requested time rather than on the nearest key frame.
 */
export function ffmpeg1Stage(env: StageEnvironment): LocalStageFunction {
  return defineStage(env, async (ctx) => {
    const { dir, names } = await ctx.unpackInput();
    const videoName = pickMember(names, ['video.mp4'], VIDEO_EXTENSIONS);
    if (!videoName) throw new StageRejection(`input archive ${ctx.request.input_uri} holds no video (members: ${names.join(', ') || 'none'})`);
    if (!names.includes('timestamps.txt')) throw new StageRejection(`input archive ${ctx.request.input_uri} holds no timestamps.txt`);
    const video = `${dir}/${videoName}`;

    const timestamps = `${dir}/timestamps.txt`;
    const { size } = await stat(timestamps);
    if (size > MAX_TIMESTAMPS_BYTES)
      throw new StageRejection(`timestamps.txt in ${ctx.request.input_uri} is ${size} bytes, more than the ${MAX_TIMESTAMPS_BYTES} a list of clips takes`);
    const parsed = parseTimestampsFile(await readFile(timestamps, 'utf8'));
    if ('error' in parsed) throw new StageRejection(parsed.error);
    const info = await probeMedia(video, ctx.signal).catch((err: unknown) => ctx.rejectTool(err, `${videoName} is not readable`));
    if (!info.video) throw new StageRejection(`${videoName} in ${ctx.request.input_uri} has no video stream`);
    const duration = info.duration ?? Infinity;
    // The audio track can outlast the picture by a few milliseconds: clamp, and drop what starts past the end.
    const clips = parsed.clips.map((c) => ({ start_s: c.start_s, end_s: Math.min(c.end_s, duration) })).filter((c) => c.end_s - c.start_s >= 0.01);
    if (clips.length === 0) {
      throw new StageRejection(`timestamps.txt lists no clip inside the video (${info.duration ?? 'unknown'} s long)`);
    }

    const outputs: LocalStageOutput[] = [];
    for (const [index, clip] of clips.entries()) {
      const name = `${clipName(index)}.mp4`;
      const file = ctx.path(name);
      await runTool(
        'ffmpeg',
        [
          ...FFMPEG_QUIET,
          '-ss',
          clip.start_s.toFixed(3),
          '-i',
          video,
          '-t',
          (clip.end_s - clip.start_s).toFixed(3),
          '-map',
          '0:v:0',
          '-map',
          '0:a:0?',
          '-vf',
          EVEN_DIMENSIONS,
          '-c:v',
          'libx264',
          '-preset',
          'veryfast',
          '-crf',
          '20',
          '-pix_fmt',
          'yuv420p',
          '-c:a',
          'aac',
          '-b:a',
          '128k',
          '-movflags',
          '+faststart',
          file,
        ],
        { signal: ctx.signal },
      ).catch((err: unknown) => ctx.rejectTool(err, `ffmpeg could not cut clip ${index}`));
      const uri = await ctx.upload(name, file, 'video/mp4');
      await rm(file, { force: true });
      outputs.push({ type: 'video', uri, metadata: { clip_index: index, start_s: clip.start_s, end_s: clip.end_s } });
    }
    return outputs;
  });
}
