/** How big each scenario is: the full run the figures come from, and a seconds-long smoke run. */

export interface Sizes {
  mode: 'full' | 'smoke';
  /** MAX_CONCURRENT_INVOCATIONS for every request, and the raw client's concurrency. */
  concurrency: number;
  /**
   * `warmup` untimed requests (and as many raw replays) come first: a process that orchestrates
   * for hours runs the hot paths optimized, and V8 needs a few thousand calls to get there.
   */
  overhead: { clips: number; framesPerClip: number; warmup: number; reps: number };
  fanout: { clips: number; framesPerClip: number; latencyMs: number };
  /** The fan-out request with sync and with async (queued, called back) stage calls. */
  asyncFanout: { clips: number; framesPerClip: number; latencyMs: number };
  versus: { clips: number; framesPerClip: number; latencyMs: number };
  scaling: { requests: number; clips: number; framesPerClip: number; latencyMs: number };
  /** Requests stored for the orphan-sweep scenario: finished ones, and running ones held by a live owner. */
  sweep: { finished: number; running: number };
  /** Cold starts on the gateway's replica model (see bench/scenarios/coldstart.ts). */
  coldstart: { coldStartMs: number; latencyMs: number; clips: number; framesPerClip: number; maxInflight: number; maxReplicas: number; burst: number };
  resumeReps: number;
  /** Fraction of frames detected when the worker copies the in-flight state.json. */
  captureAt: number;
}

export const FULL: Sizes = {
  mode: 'full',
  concurrency: 64,
  // 3 + 153 × (3 + 10) = 1,992 invocations.
  overhead: { clips: 153, framesPerClip: 10, warmup: 5, reps: 7 },
  // 3 + 1,000 × (3 + 10) = 13,003 invocations.
  fanout: { clips: 1000, framesPerClip: 10, latencyMs: 20 },
  // 3 + 200 × (3 + 10) = 2,603 invocations, each mode; every async answer is a stored callback.
  asyncFanout: { clips: 200, framesPerClip: 10, latencyMs: 20 },
  // 653 invocations: the sequential baseline needs ≥ 13 s of pure latency for it.
  versus: { clips: 50, framesPerClip: 10, latencyMs: 20 },
  scaling: { requests: 50, clips: 20, framesPerClip: 4, latencyMs: 20 },
  sweep: { finished: 10_000, running: 10 },
  coldstart: { coldStartMs: 2500, latencyMs: 200, clips: 6, framesPerClip: 2, maxInflight: 2, maxReplicas: 10, burst: 5 },
  resumeReps: 3,
  captureAt: 0.9,
};

export const SMOKE: Sizes = {
  mode: 'smoke',
  concurrency: 8,
  overhead: { clips: 4, framesPerClip: 2, warmup: 1, reps: 1 },
  fanout: { clips: 8, framesPerClip: 3, latencyMs: 2 },
  asyncFanout: { clips: 4, framesPerClip: 2, latencyMs: 2 },
  versus: { clips: 3, framesPerClip: 2, latencyMs: 2 },
  scaling: { requests: 3, clips: 2, framesPerClip: 1, latencyMs: 2 },
  sweep: { finished: 200, running: 3 },
  coldstart: { coldStartMs: 200, latencyMs: 20, clips: 2, framesPerClip: 1, maxInflight: 2, maxReplicas: 4, burst: 2 },
  resumeReps: 1,
  captureAt: 0.5,
};
