import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { probeMedia } from './probe.ts';
import { CLIP_VIDEO_NAMES, clipName, defineStage, type StageEnvironment, frameName, StageRejection, type LocalStageFunction, type LocalStageOutput } from './stage-kit.ts';
import { FFMPEG_QUIET, runTool } from './tools.ts';

/**
 * stage-ffmpeg-3: a clip (or an archive holding `clip.mp4`) → JPEG frames at `fps` per second,
 * one `{type: "image", metadata: {clip, frame_index, time_s}}` per frame, about duration × fps of
 * them and never none.
 */
export function ffmpeg3Stage(env: StageEnvironment, fps: number): LocalStageFunction {
  return defineStage(env, async (ctx) => {
    const source = await ctx.videoInput(CLIP_VIDEO_NAMES);
    const info = await probeMedia(source, ctx.signal).catch((err: unknown) => ctx.rejectTool(err, 'input clip is not readable media'));
    if (!info.video) throw new StageRejection(`input ${ctx.request.input_uri} has no video stream`);

    const dir = ctx.path('frames');
    await mkdir(dir);
    const pattern = join(dir, 'frame_%05d.jpg');
    const extract = (extra: string[]) =>
      runTool('ffmpeg', [...FFMPEG_QUIET, '-i', source, '-map', '0:v:0', ...extra, '-q:v', '3', '-start_number', '0', pattern], {
        signal: ctx.signal,
      }).catch((err: unknown) => ctx.rejectTool(err, 'ffmpeg could not extract frames'));
    await extract(['-vf', `fps=${fps}`]);
    let files = (await readdir(dir)).filter((f) => f.endsWith('.jpg')).sort();
    // A clip shorter than one frame interval can come out empty: the detector still gets its first picture.
    if (files.length === 0) {
      await extract(['-frames:v', '1']);
      files = (await readdir(dir)).filter((f) => f.endsWith('.jpg')).sort();
    }
    if (files.length === 0) throw new StageRejection(`input ${ctx.request.input_uri} yielded no video frame`);

    const clip = ctx.clipIndex;
    const outputs: LocalStageOutput[] = [];
    for (const [index, file] of files.entries()) {
      const uri = await ctx.upload(`${clipName(clip)}/${frameName(index)}.jpg`, join(dir, file), 'image/jpeg');
      outputs.push({ type: 'image', uri, metadata: { clip, frame_index: index, time_s: Math.round((index / fps) * 1000) / 1000 } });
    }
    return outputs;
  });
}
