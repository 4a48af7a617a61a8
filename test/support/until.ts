import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Waits until `condition` holds (checked every `everyMs`), or fails with `message` after
 * `timeoutMs`. For tests: wait on what must become true, never on a bare sleep.
 */
export async function until(
  condition: () => boolean | Promise<boolean>,
  { timeoutMs = 10_000, everyMs = 10, message = 'condition' }: { timeoutMs?: number; everyMs?: number; message?: string } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}`);
    await sleep(everyMs);
  }
}
