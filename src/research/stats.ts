/**
 * Order statistics of latency samples. The median is the usual one (the mean of the two middle
 * values of an even count). Other percentiles interpolate linearly between the closest ranks
 * (the "inclusive" method: numpy's default, R's type 7, Python's `method="inclusive"`), so they
 * never leave the range of the samples. FAVE's scripts report P90 as
 * `statistics.quantiles(n=10)[8]`, the "exclusive" method (R's type 6), which does exceed the
 * maximum on a handful of samples: `exclusiveQuantile` gives that figure for comparisons.
 */

function sorted(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const s = sorted(values);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Inclusive (type 7) percentile, `p` in [0, 100]. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const s = sorted(values);
  const h = ((s.length - 1) * p) / 100;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo]! + (h - lo) * (s[hi]! - s[lo]!);
}

/**
 * Python's `statistics.quantiles(values, n)[i - 1]` with its default exclusive method: the cut
 * point i of n. Python refuses fewer than two samples; so does this (null).
 */
export function exclusiveQuantile(values: readonly number[], n: number, i: number): number | null {
  if (values.length < 2) return null;
  const s = sorted(values);
  const m = s.length + 1;
  // Clamped to [1, len - 1] before the remainder is taken, as Python does: past the ends the
  // remainder grows beyond n and the line through the two outer samples is extended.
  const k = Math.max(1, Math.min(Math.floor((i * m) / n), s.length - 1));
  const d = i * m - k * n;
  return (s[k - 1]! * (n - d) + s[k]! * d) / n;
}

export function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  return values.reduce((a, b) => a + b, 0) / values.length;
}
