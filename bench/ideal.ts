/**
 * The ideal wall time of one request on an infinitely fast orchestrator and gateway, where only
 * stage latency and the concurrency bound cost time. The pipeline has three phases separated by
 * barriers (DESIGN §2): three single calls in a row, then the per-clip chains (FANOUT), then the
 * per-frame calls (DETECT). For each fan-out phase the list-scheduling lower bound applies:
 * no schedule on P slots beats max(critical path, total work / P).
 */

export interface Workload {
  clips: number;
  framesPerClip: number;
  latencyMs: number;
  concurrency: number;
}

export interface IdealTime {
  single_ms: number;
  fanout_ms: number;
  detect_ms: number;
  total_ms: number;
}

/** Per-clip chain: stage-ffmpeg-2 → stage-deepspeech → stage-ffmpeg-3. */
export const CLIP_CHAIN = 3;
/** stage-ffmpeg-0 → stage-librosa → stage-ffmpeg-1. */
export const SINGLE_STAGES = 3;

export function invocations(w: Pick<Workload, 'clips' | 'framesPerClip'>): number {
  return SINGLE_STAGES + w.clips * (CLIP_CHAIN + w.framesPerClip);
}

export function idealTime(w: Workload): IdealTime {
  const single = SINGLE_STAGES * w.latencyMs;
  const fanout = w.clips === 0 ? 0 : Math.max(CLIP_CHAIN * w.latencyMs, (w.clips * CLIP_CHAIN * w.latencyMs) / w.concurrency);
  const frames = w.clips * w.framesPerClip;
  const detect = frames === 0 ? 0 : Math.max(w.latencyMs, (frames * w.latencyMs) / w.concurrency);
  return { single_ms: single, fanout_ms: fanout, detect_ms: detect, total_ms: single + fanout + detect };
}
