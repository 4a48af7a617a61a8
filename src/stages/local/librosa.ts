import { writeFile } from 'node:fs/promises';
import { packTarGz } from './archive.ts';
import { probeMedia } from './probe.ts';
import { BlockEnergies, LIBROSA_SPLIT, formatTimestamps, frameMeanSquares, segmentAudio, shapeClips } from './segmentation.ts';
import type { SegmentationSettings } from './stage-config.ts';
import { defineStage, type StageEnvironment, pickMember, StageRejection, VIDEO_EXTENSIONS, type LocalStageFunction } from './stage-kit.ts';
import { runTool } from './tools.ts';

/** librosa.load's default rate. */
const ANALYSIS_RATE = 22050;

/**
 * stage-librosa: `{video.mp4, audio.wav}` → `segments.tar.gz` {video.mp4, timestamps.txt}, one line
 * `HH:MM:SS.mmm HH:MM:SS.mmm` per clip: the non-silent stretches of the audio and, unless turned
 * off, the silent stretches between them (see segmentation.ts).
 */
export function librosaStage(env: StageEnvironment, shape: SegmentationSettings): LocalStageFunction {
  return defineStage(env, async (ctx) => {
    const { dir, names } = await ctx.unpackInput();
    const videoName = pickMember(names, ['video.mp4'], VIDEO_EXTENSIONS);
    if (!videoName) throw new StageRejection(`input archive ${ctx.request.input_uri} holds no video (members: ${names.join(', ') || 'none'})`);
    const video = `${dir}/${videoName}`;
    const audioName = pickMember(names, ['audio.wav'], ['.wav']);

    const videoInfo = await probeMedia(video, ctx.signal).catch((err: unknown) => ctx.rejectTool(err, `${videoName} is not readable`));
    const source = audioName ? `${dir}/${audioName}` : videoInfo.audio ? video : null;

    let segmentation;
    if (source === null) {
      segmentation = segmentAudio(new Float64Array(0), 0, { sampleRate: ANALYSIS_RATE, duration: videoInfo.duration });
    } else {
      const energies = await decodeEnergies(source, ctx.signal).catch((err: unknown) => ctx.rejectTool(err, 'ffmpeg could not decode the audio'));
      const meanSquares = frameMeanSquares(energies.blocks, energies.samples, LIBROSA_SPLIT);
      segmentation = segmentAudio(meanSquares, energies.samples, {
        sampleRate: ANALYSIS_RATE,
        duration: videoInfo.duration,
      });
    }

    const duration = videoInfo.duration && videoInfo.duration > 0 ? videoInfo.duration : Math.max(0, ...segmentation.clips.map((c) => c.end_s));
    // No sound at all: nothing was found to split on, so there is no speech to keep apart.
    const speech = segmentation.top_db === null ? [] : segmentation.clips;
    const clips = shapeClips(speech, { duration, maxClipS: 30, ...shape });
    const timestamps = ctx.path('timestamps.txt');
    await writeFile(timestamps, formatTimestamps(clips));
    const archive = ctx.path('segments.tar.gz');
    await packTarGz(
      [
        { name: 'video.mp4', path: video },
        { name: 'timestamps.txt', path: timestamps },
      ],
      archive,
    );
    const uri = await ctx.upload('segments.tar.gz', archive, 'application/gzip');
    return [
      {
        type: 'archive',
        uri,
        metadata: {
          clips: clips.length,
          silent_clips: clips.filter((c) => !c.speech).length,
          top_db: segmentation.top_db,
          ...(segmentation.note ? { note: segmentation.note } : {}),
        },
      },
    ];
  });
}

/** Decodes to mono float PCM and reduces it to per-hop energies as it streams. */
async function decodeEnergies(path: string, signal: AbortSignal): Promise<{ blocks: Float64Array; samples: number }> {
  const energies = new BlockEnergies(LIBROSA_SPLIT.hopLength);
  let carry = Buffer.alloc(0);
  await runTool('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-i', path, '-map', '0:a:0', '-vn', '-ac', '1', '-ar', String(ANALYSIS_RATE), '-f', 'f32le', '-'], {
    signal,
    onStdout: (chunk) => {
      const bytes = carry.length ? Buffer.concat([carry, chunk]) : chunk;
      const usable = bytes.length - (bytes.length % 4);
      // Copy into an aligned buffer: a Float32Array view needs a 4-byte aligned offset.
      const aligned = new Float32Array(usable / 4);
      Buffer.from(aligned.buffer).set(bytes.subarray(0, usable));
      energies.push(aligned);
      carry = Buffer.from(bytes.subarray(usable));
    },
  });
  return { blocks: energies.finish(), samples: energies.samples };
}
