/**
 * Formatting shared by the server's pages and the pages' own script (`src/ui/browser/`): no
 * imports, so it bundles into the script as it is.
 */

/** `340 ms`, `2.45 s`, `61.3 s`; `—` when there is no figure yet. */
export function duration(ms: number | null): string {
  if (ms === null) return '—';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}
