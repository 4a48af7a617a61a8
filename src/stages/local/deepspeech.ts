import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packTarGz, type ArchiveMember } from './archive.ts';
import { SPEECH_AUDIO_RATE } from './ffmpeg2.ts';
import { probeMedia } from './probe.ts';
import { transcribe } from './speech.ts';
import { CLIP_VIDEO_NAMES, clipName, defineStage, type StageEnvironment, pickMember, StageRejection, VIDEO_EXTENSIONS, type LocalStageFunction } from './stage-kit.ts';
import { FFMPEG_QUIET, ToolFailure, runTool } from './tools.ts';
import { NO_SPEECH_ENGINE } from '../../domain/notes.ts';

/**
 * What the orchestrator reads as "no transcript": the `Dummy transcript` prefix FAVE's stages
 * write when they have no speech to give, with the reason after the colon.
 */
export const NO_ENGINE_TRANSCRIPT = `Dummy transcript: ${NO_SPEECH_ENGINE}`;
/** A clip whose audio peaks below SILENCE_DB: a stretch without speech, no engine is asked. */
export const SILENT_CLIP_TRANSCRIPT = 'Dummy transcript: no speech in this clip (a silent stretch)';
/** A clip whose video has no audio stream at all: nothing to listen to, no engine is asked. */
export const NO_AUDIO_TRANSCRIPT = 'Dummy transcript: no audio track in this video';
/** Peak level (dBFS) under which a clip's audio is silence. */
const SILENCE_DB = -50;

/** The audio's peak level in dBFS (ffmpeg's volumedetect); -Infinity when there is no audio. */
async function peakLevel(source: string, signal: AbortSignal): Promise<number> {
  const { stderr } = await runTool('ffmpeg', ['-hide_banner', '-nostdin', '-i', source, '-map', '0:a:0?', '-vn', '-af', 'volumedetect', '-f', 'null', '-'], { signal });
  const m = /max_volume:\s*(-?[\d.]+|-inf) dB/.exec(stderr);
  return !m || m[1] === '-inf' ? Number.NEGATIVE_INFINITY : Number(m[1]);
}

/**
 * stage-deepspeech: the ffmpeg-2 archive (or a WAV, or a video) → `clip_NNN.tar.gz` holding
 * `transcript.txt`, made by the configured speech command. Without one it writes the dummy
 * transcript that says so; it never makes text up. The clip video of the input archive is passed
 * along in the output archive, so stage-ffmpeg-3 can take either archive as its input.
 */
export function deepspeechStage(env: StageEnvironment, speechCommand: string | null): LocalStageFunction {
  return defineStage(env, async (ctx) => {
    const input = await ctx.openInput();
    let source: string;
    /** The clip's video, whose streams say whether there is sound at all. */
    let video: string | null = null;
    const passAlong: ArchiveMember[] = [];
    if (input.kind === 'file') {
      source = input.path;
      video = input.path;
    } else {
      const audioName = pickMember(input.names, ['audio.wav', 'clip.wav'], ['.wav']);
      const videoName = pickMember(input.names, CLIP_VIDEO_NAMES, VIDEO_EXTENSIONS);
      const chosen = audioName ?? videoName;
      if (!chosen) throw new StageRejection(`input archive ${ctx.request.input_uri} holds neither audio.wav nor a video (members: ${input.names.join(', ') || 'none'})`);
      source = join(input.dir, chosen);
      if (videoName) {
        video = join(input.dir, videoName);
        passAlong.push({ name: 'clip.mp4', path: video });
      }
    }
    // A video without sound got a silent track from ffmpeg-0 (named so) and a silent audio.wav
    // from ffmpeg-2; the clip's video tells that apart from a recording of silence.
    const soundless =
      video !== null &&
      (await probeMedia(video, ctx.signal).then(
        (info) => info.video !== null && (info.audio === null || info.audio.added),
        () => false,
      ));

    let transcript = NO_ENGINE_TRANSCRIPT;
    let engine: string | null = null;
    const peak = soundless ? Number.NEGATIVE_INFINITY : await peakLevel(source, ctx.signal).catch((err: unknown) => ctx.rejectTool(err, 'ffmpeg could not read the audio'));
    if (soundless) {
      transcript = NO_AUDIO_TRANSCRIPT;
    } else if (peak < SILENCE_DB) {
      transcript = SILENT_CLIP_TRANSCRIPT;
    } else if (speechCommand) {
      // Whatever the input's format, the engine gets the 16 kHz mono PCM it expects.
      const wav = ctx.path('speech.wav');
      await runTool('ffmpeg', [...FFMPEG_QUIET, '-i', source, '-map', '0:a:0', '-vn', '-ac', '1', '-ar', String(SPEECH_AUDIO_RATE), '-c:a', 'pcm_s16le', wav], {
        signal: ctx.signal,
      }).catch((err: unknown) => ctx.rejectTool(err, 'ffmpeg could not read the audio'));
      engine = speechCommand;
      try {
        transcript = await transcribe(speechCommand, wav, ctx.signal);
      } catch (err) {
        if (err instanceof ToolFailure) ctx.rejectTool(err, 'the speech command failed');
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'EACCES') throw new StageRejection(`the speech command cannot be started (${code}): ${speechCommand}`);
        throw err;
      }
    }

    const text = ctx.path('transcript.txt');
    await writeFile(text, transcript.length ? `${transcript}\n` : '');
    const name = `${clipName(ctx.clipIndex)}.tar.gz`;
    const archive = ctx.path(name);
    await packTarGz([{ name: 'transcript.txt', path: text }, ...passAlong], archive);
    const uri = await ctx.upload(name, archive, 'application/gzip');
    return [
      {
        type: 'archive',
        uri,
        metadata: { clip_index: ctx.clipIndex, engine: engine === null ? null : engineName(engine), peak_db: Number.isFinite(peak) ? peak : null },
      },
    ];
  });
}

/** The program's name only: a command line may carry paths or options nobody needs in results. */
function engineName(commandLine: string): string {
  return commandLine.trim().split(/\s+/)[0]?.split('/').at(-1) ?? 'command';
}
