/** A counting semaphore: the process-wide cap on stage calls, or a request's own within it. */
export interface Limiter {
  /** Runs `fn` in a slot, freed when `fn` settles or, earlier, when `fn` calls `release`. */
  run<T>(fn: (release: () => void) => Promise<T>): Promise<T>;
  readonly active: number;
  readonly pending: number;
}

/**
 * First come, first served. A call that finds a free slot starts in the same turn, and a slot
 * freed goes straight to the longest waiter: every stage call passes through here, so it costs
 * one `await` rather than the handful of promises a general-purpose limiter makes per call.
 */
export function createLimiter(concurrency: number): Limiter {
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`limiter concurrency must be a positive integer, got ${concurrency}`);
  let active = 0;
  // A queue as an array and a head index: shifting a long array per call would copy it.
  let waiting: Array<() => void> = [];
  let head = 0;
  const release = () => {
    if (head < waiting.length) {
      const next = waiting[head]!;
      waiting[head++] = noop;
      if (head === waiting.length) {
        waiting = [];
        head = 0;
      } else if (head > 1024 && head * 2 > waiting.length) {
        waiting = waiting.slice(head);
        head = 0;
      }
      next();
    } else {
      active--;
    }
  };
  return {
    async run<T>(fn: (release: () => void) => Promise<T>): Promise<T> {
      if (active < concurrency) active++;
      // The slot is handed over by `release`, so `active` already counts this call.
      else await new Promise<void>((resolve) => waiting.push(resolve));
      let held = true;
      const free = () => {
        if (!held) return;
        held = false;
        release();
      };
      try {
        return await fn(free);
      } finally {
        free();
      }
    },
    get active() {
      return active;
    },
    get pending() {
      return waiting.length - head;
    },
  };
}

function noop(): void {}

/**
 * A slot of `outer` and then one of `inner` for each run, both freed together: a request's own
 * bound within the process-wide one. Its counts are `outer`'s.
 */
export function nestedLimiter(outer: Limiter, inner: Limiter): Limiter {
  return {
    run: <T>(fn: (release: () => void) => Promise<T>) =>
      outer.run((releaseOuter) =>
        inner.run((releaseInner) =>
          fn(() => {
            releaseInner();
            releaseOuter();
          }),
        ),
      ),
    get active() {
      return outer.active;
    },
    get pending() {
      return outer.pending;
    },
  };
}

/** `fn` over `items`, at most `concurrency` at once, results in order. */
export async function mapLimited<T, R>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}
