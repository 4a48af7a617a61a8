/** A task run now and then again after each run ends, until stopped. */
export interface Periodic {
  /** No run starts after this; resolves once the run under way, if any, has ended. */
  stop(): Promise<void>;
}

/**
 * Runs `task` now, then again `delayMs()` after each run ends: runs never overlap, and the delay
 * is asked anew each time, so a caller can bring the next run forward. A failed run is handed to
 * `onError` and the schedule goes on. The timer keeps no process alive.
 */
export function startPeriodic(task: () => Promise<void>, delayMs: () => number, onError: (err: unknown) => void): Periodic {
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const run = () => {
    timer = null;
    running = task()
      .catch(onError)
      .finally(() => {
        if (stopped) return;
        timer = setTimeout(run, delayMs());
        timer.unref();
      });
  };
  run();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await running;
    },
  };
}
