/**
 * Waits until `condition` answers a value other than null/undefined/false, checking every
 * `everyMs`; fails with `message` after `timeoutMs`.
 */
export async function until<T>(
  condition: () => T | null | undefined | false | Promise<T | null | undefined | false>,
  options: { timeoutMs: number; message: string; everyMs?: number },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== null && value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${options.timeoutMs} ms: ${options.message}`);
    await new Promise((r) => setTimeout(r, options.everyMs ?? 20));
  }
}
