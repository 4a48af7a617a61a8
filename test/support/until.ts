import { setTimeout as sleep } from 'node:timers/promises';

export interface UntilOptions {
  timeoutMs: number;
  /** What was awaited, for the failure; a function is asked only when it fails. */
  message: string | (() => string);
  /** Between checks (default 20 ms). */
  intervalMs?: number;
}

/**
 * Waits until `condition` holds (it may be async), checking every `intervalMs`; fails naming
 * `message` once `timeoutMs` has passed. Answers the condition's first truthy value.
 */
export async function until<T>(condition: () => T | Promise<T>, options: UntilOptions): Promise<NonNullable<T>> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) {
      const message = typeof options.message === 'function' ? options.message() : options.message;
      throw new Error(`timed out after ${options.timeoutMs} ms waiting until ${message}`);
    }
    await sleep(options.intervalMs ?? 20);
  }
}
