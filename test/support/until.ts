/**
 * Waits until `condition` returns a truthy value and answers it; fails with `message` (and the
 * last error the condition threw, if any) when `timeoutMs` passes first.
 */
export async function until<T>(
  condition: () => T | Promise<T>,
  { timeoutMs, message, intervalMs = 25 }: { timeoutMs: number; message: string; intervalMs?: number },
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const cause = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting until ${message}${cause}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
