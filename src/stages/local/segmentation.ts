/**
 * Audio segmentation with the method of `librosa.effects.split`: frame RMS (centred frames,
 * zero padding), power in dB relative to the loudest frame, non-silent where above `-top_db`.
 * Pure functions over sample energies, so a long file can be reduced to per-hop sums while it
 * streams out of the decoder.
 */

export interface SplitParams {
  frameLength: number;
  hopLength: number;
}

export const LIBROSA_SPLIT: SplitParams = { frameLength: 2048, hopLength: 512 };

/** librosa's `amin` in `power_to_db`. */
const AMIN = 1e-10;

/**
 * Sums of squared samples per hop-sized block, fed chunk by chunk. The last block may be
 * partial; `samples` counts every sample seen.
 */
export class BlockEnergies {
  private readonly sums: number[] = [];
  private current = 0;
  private filled = 0;
  samples = 0;

  constructor(readonly hopLength: number) {}

  push(chunk: Float32Array): void {
    for (let i = 0; i < chunk.length; i++) {
      const v = chunk[i]!;
      this.current += v * v;
      if (++this.filled === this.hopLength) {
        this.sums.push(this.current);
        this.current = 0;
        this.filled = 0;
      }
    }
    this.samples += chunk.length;
  }

  finish(): Float64Array {
    const out = Float64Array.from(this.filled > 0 ? [...this.sums, this.current] : this.sums);
    return out;
  }
}

/**
 * Mean square of every centred frame (librosa `rms(...) ** 2`, `center=True`): frame t spans
 * samples [t·hop − frame/2, t·hop + frame/2), zero outside the signal; there are
 * 1 + ⌊n / hop⌋ frames. `frameLength` must be an even multiple of `hopLength`.
 */
export function frameMeanSquares(blocks: Float64Array, sampleCount: number, params: SplitParams = LIBROSA_SPLIT): Float64Array {
  const { frameLength, hopLength } = params;
  const perFrame = frameLength / hopLength;
  if (!Number.isInteger(perFrame) || perFrame % 2 !== 0) throw new RangeError('frameLength must be an even multiple of hopLength');
  const half = perFrame / 2;
  const frames = 1 + Math.floor(sampleCount / hopLength);
  const out = new Float64Array(frames);
  for (let t = 0; t < frames; t++) {
    let sum = 0;
    for (let b = t - half; b < t + half; b++) if (b >= 0 && b < blocks.length) sum += blocks[b]!;
    out[t] = sum / frameLength;
  }
  return out;
}

/** Sample intervals [start, end) that are non-silent at `topDb` (librosa.effects.split). */
export function nonSilentIntervals(meanSquares: Float64Array, topDb: number, sampleCount: number, hopLength = LIBROSA_SPLIT.hopLength): Array<[number, number]> {
  let peak = 0;
  for (const v of meanSquares) if (v > peak) peak = v;
  const ref = 10 * Math.log10(Math.max(AMIN, peak));
  const intervals: Array<[number, number]> = [];
  let start = -1;
  for (let t = 0; t <= meanSquares.length; t++) {
    const loud = t < meanSquares.length && 10 * Math.log10(Math.max(AMIN, meanSquares[t]!)) - ref > -topDb;
    if (loud && start < 0) start = t;
    if (!loud && start >= 0) {
      intervals.push([Math.min(start * hopLength, sampleCount), Math.min(t * hopLength, sampleCount)]);
      start = -1;
    }
  }
  return intervals.filter(([s, e]) => e > s);
}

export interface Clip {
  start_s: number;
  end_s: number;
}

export interface SegmentationOptions {
  sampleRate: number;
  /** Length of the whole video in seconds; clips never pass it. Defaults to the audio length. */
  duration?: number | null;
  minClipS?: number;
  maxClipS?: number;
  /** The threshold tried first; the search moves away from it in 5 dB steps. */
  startTopDb?: number;
  maxClips?: number;
  params?: SplitParams;
}

export interface Segmentation {
  clips: Clip[];
  /** The threshold that was used; null when the audio is silent and the whole video is one clip. */
  top_db: number | null;
  note: string | null;
}

/** Below this peak mean square (≈ −90 dBFS) there is nothing to split on. */
const SILENT_PEAK = 1e-9;

/**
 * Splits the audio into clips between `minClipS` and `maxClipS`. Like the Python stage, which
 * walks `top_db` upwards from 24 dB until the clip count fits the duration, it searches the
 * threshold; here the test is on every clip's length: start at 30 dB and move in 5 dB steps
 * (alternately stricter and looser) until every interval is within bounds, else keep the
 * candidate with the fewest intervals out of bounds. Then intervals too short are dropped, too
 * long ones are cut into equal parts, and the closest neighbours are merged while there are
 * more than `maxClips`.
 */
export function segmentAudio(meanSquares: Float64Array, sampleCount: number, options: SegmentationOptions): Segmentation {
  const minClip = options.minClipS ?? 0.1;
  const maxClip = options.maxClipS ?? 30;
  const maxClips = options.maxClips ?? 1000;
  const hop = (options.params ?? LIBROSA_SPLIT).hopLength;
  const audioDuration = sampleCount / options.sampleRate;
  const duration = options.duration && options.duration > 0 ? options.duration : audioDuration;
  const whole = (note: string): Segmentation => ({ clips: [{ start_s: 0, end_s: round3(duration) }], top_db: null, note });

  let peak = 0;
  for (const v of meanSquares) if (v > peak) peak = v;
  if (sampleCount === 0 || peak < SILENT_PEAK) return whole('no sound: the whole video is one clip');

  const toClips = (intervals: Array<[number, number]>): Clip[] =>
    intervals.map(([s, e]) => ({ start_s: s / options.sampleRate, end_s: Math.min(e / options.sampleRate, duration) })).filter((c) => c.end_s > c.start_s);
  const outOfBounds = (clips: Clip[]) => clips.filter((c) => c.end_s - c.start_s < minClip || c.end_s - c.start_s > maxClip).length;

  let best: { topDb: number; clips: Clip[]; bad: number } | null = null;
  for (const topDb of topDbCandidates(options.startTopDb ?? 30)) {
    const clips = toClips(nonSilentIntervals(meanSquares, topDb, sampleCount, hop));
    if (clips.length === 0) continue;
    const bad = outOfBounds(clips);
    if (!best || bad < best.bad) best = { topDb, clips, bad };
    if (bad === 0) break;
  }
  if (!best) return whole('no non-silent interval found: the whole video is one clip');

  let clips = best.clips.filter((c) => c.end_s - c.start_s >= minClip);
  if (clips.length === 0) return whole(`only sounds shorter than ${minClip} s: the whole video is one clip`);
  clips = mergeClosest(cutLong(clips, maxClip), maxClips, maxClip);
  return { clips: clips.map((c) => ({ start_s: round3(c.start_s), end_s: round3(c.end_s) })), top_db: best.topDb, note: null };
}

export interface ShapeOptions {
  /** Length of the whole video in seconds. */
  duration: number;
  /** Speech separated by a pause shorter than this is one clip. */
  minGapS: number;
  /** No clip is shorter than this (unless the whole video is). */
  minClipS: number;
  maxClipS: number;
  /** The stretches without speech become clips too, so their frames are looked at. */
  silentClips: boolean;
}

export interface ShapedClip extends Clip {
  speech: boolean;
}

/**
 * Turns the non-silent intervals into the clips the pipeline examines: pauses shorter than
 * `minGapS` are bridged; a stretch of speech shorter than `minClipS` joins its nearer neighbour
 * when that is within `minClipS`, else it is treated as silence. With `silentClips`, the clips
 * then cover the whole video: a silent stretch at least `minClipS` long is a clip of its own
 * (marked `speech: false`), a shorter one is shared by the clips around it.
 */
export function shapeClips(speech: readonly Clip[], options: ShapeOptions): ShapedClip[] {
  const { duration, minGapS, minClipS, maxClipS } = options;
  const sorted = [...speech].sort((a, b) => a.start_s - b.start_s).map((c) => ({ ...c }));
  const bridged: Clip[] = [];
  for (const c of sorted) {
    const last = bridged.at(-1);
    if (last && c.start_s - last.end_s < minGapS && c.end_s - last.start_s <= maxClipS) last.end_s = Math.max(last.end_s, c.end_s);
    else bridged.push(c);
  }
  // Short stretches: joined to the nearer neighbour when it is close, else left to the silence.
  let spoken = bridged;
  for (let changed = true; changed;) {
    changed = false;
    const i = spoken.findIndex((c) => c.end_s - c.start_s < minClipS);
    if (i < 0) break;
    const c = spoken[i]!;
    const prev = spoken[i - 1];
    const next = spoken[i + 1];
    const gapPrev = prev ? c.start_s - prev.end_s : Infinity;
    const gapNext = next ? next.start_s - c.end_s : Infinity;
    const intoPrev = gapPrev <= gapNext;
    const target = intoPrev ? prev : next;
    const gap = Math.min(gapPrev, gapNext);
    const merged = target ? { start_s: Math.min(target.start_s, c.start_s), end_s: Math.max(target.end_s, c.end_s) } : null;
    if (merged && gap < minClipS && merged.end_s - merged.start_s <= maxClipS) {
      spoken = [...spoken.slice(0, intoPrev ? i - 1 : i), merged, ...spoken.slice(intoPrev ? i + 1 : i + 2)];
    } else {
      spoken = [...spoken.slice(0, i), ...spoken.slice(i + 1)];
    }
    changed = true;
  }
  const talk: ShapedClip[] = spoken.map((c) => ({ ...c, speech: true }));
  if (talk.length === 0 && !options.silentClips) return [{ start_s: 0, end_s: round3(duration), speech: false }];
  if (!options.silentClips) return talk;
  if (talk.length === 0) return cutLong([{ start_s: 0, end_s: duration }], maxClipS).map((c) => ({ ...c, speech: false }));

  const out: ShapedClip[] = [];
  let cursor = 0;
  for (let i = 0; i <= talk.length; i++) {
    const c = talk[i];
    const gapStart = cursor;
    const gapEnd = c ? c.start_s : duration;
    const gap = gapEnd - gapStart;
    if (gap >= minClipS) {
      out.push(...cutLong([{ start_s: gapStart, end_s: gapEnd }], maxClipS).map((s) => ({ ...s, speech: false })));
    } else if (gap > 0) {
      // Too short to be a clip: the clips on either side share it.
      const prev = out.at(-1);
      if (!prev) c!.start_s = 0;
      else if (!c) prev.end_s = duration;
      else {
        const mid = (gapStart + gapEnd) / 2;
        prev.end_s = mid;
        c.start_s = mid;
      }
    }
    if (c) {
      out.push(c);
      cursor = c.end_s;
    }
  }
  return out.map((c) => ({ start_s: round3(c.start_s), end_s: round3(c.end_s), speech: c.speech }));
}

/**
 * 30, 25, 35, 20, 40, … within [10, 60]. 60 dB (librosa's default) is the ceiling: beyond it
 * digital silence, floored at −100 dB, would count as sound next to a quiet recording.
 */
export function topDbCandidates(start: number, low = 10, high = 60): number[] {
  const out = [start];
  for (let step = 5; start - step >= low || start + step <= high; step += 5) {
    if (start - step >= low) out.push(start - step);
    if (start + step <= high) out.push(start + step);
  }
  return out;
}

function cutLong(clips: Clip[], maxClip: number): Clip[] {
  return clips.flatMap((c) => {
    const length = c.end_s - c.start_s;
    const parts = Math.ceil(length / maxClip - 1e-9);
    if (parts <= 1) return [c];
    const step = length / parts;
    return Array.from({ length: parts }, (_, i) => ({
      start_s: c.start_s + i * step,
      end_s: i === parts - 1 ? c.end_s : c.start_s + (i + 1) * step,
    }));
  });
}

/** Merges neighbours across the smallest gaps until at most `maxClips` remain (never past `maxClip` long). */
function mergeClosest(clips: Clip[], maxClips: number, maxClip: number): Clip[] {
  const out = clips.map((c) => ({ ...c }));
  while (out.length > maxClips) {
    let pick = -1;
    let smallest = Infinity;
    for (let i = 0; i + 1 < out.length; i++) {
      const gap = out[i + 1]!.start_s - out[i]!.end_s;
      if (gap < smallest && out[i + 1]!.end_s - out[i]!.start_s <= maxClip) {
        smallest = gap;
        pick = i;
      }
    }
    if (pick < 0) break;
    out.splice(pick, 2, { start_s: out[pick]!.start_s, end_s: out[pick + 1]!.end_s });
  }
  return out;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** `HH:MM:SS.mmm` */
export function formatTimestamp(seconds: number): string {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  const frac = ms % 1000;
  return `${pad(h, 2)}:${pad(m, 2)}:${pad(s, 2)}.${pad(frac, 3)}`;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** The lines of timestamps.txt: `HH:MM:SS.mmm HH:MM:SS.mmm`, one clip a line. */
export function formatTimestamps(clips: readonly Clip[]): string {
  return clips.map((c) => `${formatTimestamp(c.start_s)} ${formatTimestamp(c.end_s)}\n`).join('');
}

/** Reads `HH:MM:SS[.fff]`, `MM:SS[.fff]` or plain seconds; null if it is none of these. */
export function parseTimestamp(text: string): number | null {
  const parts = text.trim().split(':');
  if (parts.length > 3 || parts.some((p) => !/^\d+(\.\d+)?$/.test(p))) return null;
  return parts.reduce((acc, p) => acc * 60 + Number(p), 0);
}

/**
 * Parses timestamps.txt into clips. Blank lines and `#` comments are skipped; a line that is
 * not two times, or whose end is not after its start, is reported by its number.
 */
export function parseTimestampsFile(text: string): { clips: Clip[] } | { error: string } {
  const clips: Clip[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+-\s+|[\s,;]+/).filter(Boolean);
    const start = fields[0] === undefined ? null : parseTimestamp(fields[0]);
    const end = fields[1] === undefined ? null : parseTimestamp(fields[1]);
    if (fields.length !== 2 || start === null || end === null) return { error: `timestamps.txt line ${i + 1} is not "HH:MM:SS HH:MM:SS": ${JSON.stringify(line)}` };
    if (end <= start) return { error: `timestamps.txt line ${i + 1} ends before it starts: ${JSON.stringify(line)}` };
    clips.push({ start_s: start, end_s: end });
  }
  return { clips };
}
