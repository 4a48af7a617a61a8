import { DEFAULT_STAGE_NAMES, STAGE_KEYS, type StageKey } from '../../src/domain/stage.ts';

/**
 * The pure half of the scripted test gateway: what each stage produces for a given set of
 * options, so tests can state the exact result a correct orchestrator must reach.
 */

export interface Detection {
  label: string;
  confidence: number;
  /** [x1, y1, x2, y2] in pixels. */
  box: [number, number, number, number];
}

export type TranscriptMode = 'archive' | 'txt' | 'inline' | 'dummy';
export type DetectorMode = 'detections' | 'placeholder';
export type ClipTimesIn = 'metadata' | 'timestamps';

export interface ScriptOptions {
  /** Bucket the stages write into; defaults to the store's bucket. */
  bucket?: string;
  clips?: number;
  framesPerClip?: number;
  /** Clips ffmpeg-3 extracts no frame from (too short for the sampling rate): no outputs at all. */
  clipsWithoutFrames?: number[];
  clipSeconds?: number;
  /**
   * 'metadata': stage-ffmpeg-1 puts `start_s`/`end_s` on each clip output.
   * 'timestamps': only `timestamps.txt` in the stage-librosa archive carries the times.
   */
  clipTimesIn?: ClipTimesIn;
  transcript?: (clip: number) => string;
  transcriptMode?: TranscriptMode;
  detections?: (clip: number, frame: number) => Detection[];
  detectorMode?: DetectorMode;
  stageNames?: Partial<Record<StageKey, string>>;
}

export interface Script {
  bucket: string;
  clips: number;
  framesPerClip: number;
  clipsWithoutFrames: number[];
  clipSeconds: number;
  clipTimesIn: ClipTimesIn;
  transcript: (clip: number) => string;
  transcriptMode: TranscriptMode;
  detections: (clip: number, frame: number) => Detection[];
  detectorMode: DetectorMode;
  stageNames: Record<StageKey, string>;
}

export const DEFAULT_BUCKET = 'fave-artifacts';
export const DUMMY_PREFIX = 'Dummy transcript: ';
export const DUMMY_REASON = 'no model loaded';
export const PLACEHOLDER_NOTE = 'prototype detector: raw output tensors are not decoded into detections';

/**
 * Clip 0, 3, 6… mention a red car; 1, 4, 7… a dog; 2, 5, 8… say nothing that matches a label,
 * so a query for "car" matches clip 0 by transcript and the even clips by detection.
 */
export function defaultTranscript(clip: number): string {
  switch (clip % 3) {
    case 0:
      return `clip ${clip} mentions a red car`;
    case 1:
      return `clip ${clip} has a dog barking in the distance`;
    default:
      return `clip ${clip} is a quiet street at night`;
  }
}

const CAR_CONFIDENCE = [0.91, 0.87, 0.83, 0.79] as const;

/** A car in every frame of even clips, a person in every odd frame of any clip. */
export function defaultDetections(clip: number, frame: number): Detection[] {
  const found: Detection[] = [];
  if (clip % 2 === 0) found.push({ label: 'car', confidence: CAR_CONFIDENCE[frame % CAR_CONFIDENCE.length]!, box: [10, 20, 110, 90] });
  if (frame % 2 === 1) found.push({ label: 'person', confidence: 0.75, box: [200, 40, 260, 180] });
  return found;
}

/**
 * The detector's wire form: a third of the detections use `class`+`score` and a third
 * `name`+`score`, so a reader that only knows `label`/`confidence` loses them.
 */
export function wireDetection(d: Detection, clip: number, frame: number, index: number): Record<string, unknown> {
  switch ((clip + frame + index) % 3) {
    case 0:
      return { label: d.label, confidence: d.confidence, box: d.box };
    case 1:
      return { class: d.label, score: d.confidence, box: d.box };
    default:
      return { name: d.label, score: d.confidence, box: d.box };
  }
}

/** How many frames ffmpeg-3 extracts from a clip. */
export function framesOf(script: Script, clip: number): number {
  return script.clipsWithoutFrames.includes(clip) ? 0 : script.framesPerClip;
}

export function resolveScript(options: ScriptOptions, storeBucket?: string): Script {
  const stageNames = { ...DEFAULT_STAGE_NAMES, ...options.stageNames };
  return {
    bucket: options.bucket ?? storeBucket ?? DEFAULT_BUCKET,
    clips: options.clips ?? 3,
    framesPerClip: options.framesPerClip ?? 2,
    clipsWithoutFrames: options.clipsWithoutFrames ?? [],
    clipSeconds: options.clipSeconds ?? 4,
    clipTimesIn: options.clipTimesIn ?? 'metadata',
    transcript: options.transcript ?? defaultTranscript,
    transcriptMode: options.transcriptMode ?? 'archive',
    detections: options.detections ?? defaultDetections,
    detectorMode: options.detectorMode ?? 'detections',
    stageNames,
  };
}

/** Which stage a function name (or a stage key) designates, if any. */
export function stageKeyOf(script: Pick<Script, 'stageNames'>, nameOrKey: string): StageKey | null {
  for (const key of STAGE_KEYS) {
    if (script.stageNames[key] === nameOrKey || key === nameOrKey) return key;
  }
  return null;
}

/** `HH:MM:SS` of whole seconds, as in librosa's timestamps.txt. */
export function formatHms(seconds: number): string {
  const s = Math.round(seconds);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
}

/** Clip i spans [i·clipSeconds, (i+1)·clipSeconds]. */
export function clipTimes(script: Pick<Script, 'clipSeconds'>, clip: number): { start_s: number; end_s: number } {
  return { start_s: clip * script.clipSeconds, end_s: (clip + 1) * script.clipSeconds };
}

export function timestampsTxt(script: Pick<Script, 'clips' | 'clipSeconds'>): string {
  const lines: string[] = [];
  for (let i = 0; i < script.clips; i++) {
    const { start_s, end_s } = clipTimes(script, i);
    lines.push(`${formatHms(start_s)} ${formatHms(end_s)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The text the deepspeech stage writes for a clip, dummy marker included. */
export function transcriptText(script: Pick<Script, 'transcript' | 'transcriptMode'>, clip: number): string {
  return script.transcriptMode === 'dummy' ? `${DUMMY_PREFIX}${DUMMY_REASON}` : script.transcript(clip);
}

/** Object keys the stages write under, `requests/{id}/{stage}/…`. */
export const artifactKeys = {
  media: (s: Script, id: string) => `requests/${id}/${s.stageNames.ffmpeg0}/media.tar.gz`,
  segments: (s: Script, id: string) => `requests/${id}/${s.stageNames.librosa}/segments.tar.gz`,
  clip: (s: Script, id: string, clip: number) => `requests/${id}/${s.stageNames.ffmpeg1}/clip_${pad3(clip)}.mp4`,
  compressed: (s: Script, id: string, clip: number) => `requests/${id}/${s.stageNames.ffmpeg2}/clip_${pad3(clip)}.tar.gz`,
  transcriptArchive: (s: Script, id: string, clip: number) => `requests/${id}/${s.stageNames.deepspeech}/clip_${pad3(clip)}.tar.gz`,
  transcriptTxt: (s: Script, id: string, clip: number) => `requests/${id}/${s.stageNames.deepspeech}/clip_${pad3(clip)}.txt`,
  frame: (s: Script, id: string, clip: number, frame: number) => `requests/${id}/${s.stageNames.ffmpeg3}/clip_${pad3(clip)}/frame_${pad3(frame)}.jpg`,
  detections: (s: Script, id: string, clip: number, frame: number) => `requests/${id}/${s.stageNames.detector}/clip_${pad3(clip)}/frame_${pad3(frame)}.json`,
};

export function pad3(n: number): string {
  return String(n).padStart(3, '0');
}

export interface ExpectedFrame {
  frame_index: number;
  /** Canonical form (`label`/`confidence`), whatever alias the detector wrote. */
  detections: Detection[];
}

export interface ExpectedClip {
  index: number;
  start_s: number;
  end_s: number;
  /** `s3://…/clip_{iii}.mp4` when a request id was given, else null. */
  uri: string | null;
  /** Null when the stage wrote a dummy transcript. */
  transcript: string | null;
  /** The reason a dummy transcript gave (e.g. "no model loaded"), else null. */
  transcript_note: string | null;
  frames: ExpectedFrame[];
  /** The placeholder detector's note when it produced no detections, else null. */
  detections_note: string | null;
}

/**
 * What a correct orchestrator learns about every clip from a test gateway started with the same
 * options. Times come from timestamps.txt (whole seconds) when ffmpeg-1 does not report them.
 */
export function expectedClips(options: ScriptOptions & { store?: { bucket: string } }, requestId?: string): ExpectedClip[] {
  const script = resolveScript(options, options.store?.bucket);
  const clips: ExpectedClip[] = [];
  for (let i = 0; i < script.clips; i++) {
    const exact = clipTimes(script, i);
    const times = script.clipTimesIn === 'metadata' ? exact : { start_s: Math.round(exact.start_s), end_s: Math.round(exact.end_s) };
    const text = transcriptText(script, i);
    const dummy = text.startsWith(DUMMY_PREFIX);
    const frames: ExpectedFrame[] = [];
    for (let f = 0; f < framesOf(script, i); f++) {
      frames.push({ frame_index: f, detections: script.detectorMode === 'detections' ? script.detections(i, f) : [] });
    }
    clips.push({
      index: i,
      ...times,
      uri: requestId === undefined ? null : `s3://${script.bucket}/${artifactKeys.clip(script, requestId, i)}`,
      transcript: dummy ? null : text,
      transcript_note: dummy ? text.slice(DUMMY_PREFIX.length) : null,
      frames,
      detections_note: script.detectorMode === 'placeholder' ? PLACEHOLDER_NOTE : null,
    });
  }
  return clips;
}
