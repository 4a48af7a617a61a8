import pLimit, { type LimitFunction } from 'p-limit';

/** A counting semaphore shared by every request of the process (the process-wide cap). */
export interface Limiter {
  run<T>(fn: () => Promise<T>): Promise<T>;
  readonly active: number;
  readonly pending: number;
}

export function createLimiter(concurrency: number): Limiter {
  const limit: LimitFunction = pLimit(concurrency);
  return {
    run: (fn) => limit(fn),
    get active() {
      return limit.activeCount;
    },
    get pending() {
      return limit.pendingCount;
    },
  };
}
