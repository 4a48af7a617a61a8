import type { ClipProgress, ClipState } from '../domain/context.ts';
import { type StageKey, type StageFacts } from '../domain/stage.ts';

/**
 * One clip's chain: compress (ffmpeg-2) → transcribe (deepspeech) → extract frames (ffmpeg-3).
 * Each step's input is the last output of the step before it (the clip itself for the first).
 * A clip's progress says which steps are done, so a restored or redriven clip starts at the
 * first step it has not finished.
 */
export const CLIP_CHAIN = ['ffmpeg2', 'deepspeech', 'ffmpeg3'] as const satisfies readonly StageKey[];
export type ClipStep = (typeof CLIP_CHAIN)[number];

export function nextStep(progress: ClipProgress): ClipStep | null {
  if (progress.compressed_uri === null) return 'ffmpeg2';
  if (progress.transcript_uri === null) return 'deepspeech';
  if (progress.frames === null) return 'ffmpeg3';
  return null;
}

export function stepInput(step: ClipStep, clip: Pick<ClipState, 'uri'>, progress: ClipProgress): string {
  switch (step) {
    case 'ffmpeg2':
      return clip.uri;
    case 'deepspeech':
      return progress.compressed_uri ?? clip.uri;
    case 'ffmpeg3':
      return progress.transcript_uri ?? progress.compressed_uri ?? clip.uri;
  }
}

/** What a finished step adds to the clip's progress. */
export function applyStepFacts(progress: ClipProgress, facts: StageFacts): ClipProgress {
  switch (facts.kind) {
    case 'output':
      return { ...progress, compressed_uri: facts.uri };
    case 'transcript':
      return { ...progress, transcript_uri: facts.uri, transcript: facts.transcript, transcript_note: facts.note };
    case 'frames':
      return { ...progress, frames: facts.frames };
    default:
      return progress;
  }
}
