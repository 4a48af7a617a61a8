/**
 * Notices that this process did not run for a while: a SIGSTOP, a long garbage-collection pause,
 * a CPU-throttled container, a descheduled VM. A timer ticks at a short interval; a gap between
 * ticks much longer than the interval is a stall.
 *
 * After such a pause Node first handles the I/O that piled up (stage answers waiting in their
 * sockets) and only then its timers, so a tick alone would report the stall too late: `check()`
 * also reads the time since the last tick synchronously, and whoever is about to act on a belief
 * that may have gone stale calls it first.
 *
 * Both clocks are read: the monotonic one does not move while the whole machine is suspended,
 * the wall clock does.
 */

export interface StallClock {
  /** Monotonic milliseconds (performance.now). */
  monotonic(): number;
  /** Wall-clock epoch milliseconds (Date.now). */
  wall(): number;
}

export const systemClock: StallClock = {
  monotonic: () => performance.now(),
  wall: () => Date.now(),
};

export interface Stall {
  /** How long the process did not run, beyond the tick interval (ms). */
  ms: number;
  /** Monotonic time at which it was noticed. */
  noticedAt: number;
}

export interface StallDetectorOptions {
  /** A gap longer than this beyond the tick interval is a stall (ms). */
  thresholdMs: number;
  /** Default 50 ms, at most a fifth of the threshold. */
  intervalMs?: number;
  clock?: StallClock;
  /** Arms the ticking timer; tests drive `tick()` themselves and pass false. Default true. */
  timer?: boolean;
}

export class StallDetector {
  readonly thresholdMs: number;
  private readonly intervalMs: number;
  private readonly clock: StallClock;
  private readonly listeners = new Set<(stall: Stall) => void>();
  private timer: NodeJS.Timeout | null = null;
  private lastMono: number;
  private lastWall: number;

  constructor(options: StallDetectorOptions) {
    this.thresholdMs = options.thresholdMs;
    this.intervalMs = Math.max(1, Math.min(options.intervalMs ?? 50, Math.floor(options.thresholdMs / 5)));
    this.clock = options.clock ?? systemClock;
    this.lastMono = this.clock.monotonic();
    this.lastWall = this.clock.wall();
    if (options.timer !== false) {
      this.timer = setInterval(() => this.tick(), this.intervalMs);
      // Watching for stalls never keeps a process alive.
      this.timer.unref();
    }
  }

  /** Told of every stall, synchronously, as it is noticed. */
  onStall(listener: (stall: Stall) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Reports a stall that ended just now, before the timers have had their turn; answers whether
   * there was one. Cheap: two clock reads.
   */
  check(): boolean {
    return this.tick();
  }

  /** One tick: measures the gap since the previous one. */
  tick(): boolean {
    const mono = this.clock.monotonic();
    const wall = this.clock.wall();
    const gap = Math.max(mono - this.lastMono, wall - this.lastWall) - this.intervalMs;
    this.lastMono = mono;
    this.lastWall = wall;
    if (gap <= this.thresholdMs) return false;
    const stall = { ms: Math.round(gap), noticedAt: mono };
    for (const listener of [...this.listeners]) listener(stall);
    return true;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.listeners.clear();
  }
}
