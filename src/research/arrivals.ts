/**
 * Open-loop arrival times: when each request is due, decided before the run and never moved by
 * how earlier requests fare (a closed loop that waits for a free worker before it paces the next
 * start hides the queueing it causes).
 */

export const REGIMES = ['steady', 'ramp', 'burst'] as const;
export type Regime = (typeof REGIMES)[number];

/** Milliseconds from the run's start at which request i is due, for i in 0..count-1. */
export function arrivalOffsets(regime: Regime, count: number, ratePerSecond: number): number[] {
  return Array.from({ length: count }, (_, i) => {
    switch (regime) {
      case 'burst':
        return 0;
      case 'steady':
        return (i * 1000) / ratePerSecond;
      case 'ramp':
        // The rate rises linearly from 0 to R over the run: with λ(t) = R·t/T and N arrivals in
        // T, T = 2N/R and the i-th arrival is where R·t²/(2T) = i, t = 2·√(N·i)/R.
        return (2000 * Math.sqrt(count * i)) / ratePerSecond;
    }
  });
}
