/**
 * Waits until `condition` answers something truthy and returns it, checking every `intervalMs`;
 * past `timeoutMs` it fails with `message` (and the last error the condition threw, if any).
 */
export async function until<T>(
  condition: () => T | Promise<T>,
  options: { timeoutMs: number; message: string; intervalMs?: number },
): Promise<NonNullable<T>> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${options.timeoutMs} ms: ${options.message}${cause}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
}
