/**
 * Crash points for the tests that kill a process between two writes which must survive any
 * order of failure (state.json and the request index). `FAVE_TEST_CRASH_AT=<point>` makes the
 * process SIGKILL itself there; it is honoured only with `NODE_ENV=test`, so no deployment can
 * trip it by accident.
 */
export type FaultPoint = 'index:claimed-before-marker' | 'index:finished-before-unmark';

export function crashPoint(point: FaultPoint): void {
  if (process.env.NODE_ENV !== 'test' || process.env.FAVE_TEST_CRASH_AT !== point) return;
  process.kill(process.pid, 'SIGKILL');
}
