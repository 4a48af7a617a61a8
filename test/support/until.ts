/**
 * Waits until `condition` holds (it may be async), checking every `intervalMs`; fails with
 * `message` after `timeoutMs`. The one way tests wait on something that happens elsewhere.
 */
export async function until(
  condition: () => boolean | Promise<boolean>,
  { timeoutMs, message, intervalMs = 20 }: { timeoutMs: number; message: string; intervalMs?: number },
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${message}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
