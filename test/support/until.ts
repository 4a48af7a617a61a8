import { setTimeout as sleep } from 'node:timers/promises';

export interface UntilOptions {
  /** Default 10 s. */
  timeoutMs?: number;
  /** Between checks (default 10 ms). */
  everyMs?: number;
  /** What was awaited, for the failure; a function is asked only when it fails. */
  message?: string | (() => string);
}

/**
 * Waits until `condition` gives a truthy value (checked every `everyMs`) and answers it, or fails
 * with `message` after `timeoutMs`. For tests: wait on what must become true, never on a bare
 * sleep.
 */
export async function until<T>(condition: () => T | Promise<T>, { timeoutMs = 10_000, everyMs = 10, message = 'condition' }: UntilOptions = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof message === 'function' ? message() : message}`);
    await sleep(everyMs);
  }
}
