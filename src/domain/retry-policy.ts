import { faveError, type FaveError } from './errors.ts';
import type { InvocationRecord } from './invocations.ts';
import type { StageCallInput } from './context.ts';
import type { RetryPolicy } from './settings.ts';

/**
 * When a failed stage call is tried again, and when. The loop that performs the attempts is the
 * orchestrator's (`callWithRetries` in `src/orchestrator/actors.ts`), the attempt itself is the
 * transport's (`src/transport/stage-call.ts`, which marks each failure `transient` or not); the
 * decisions are all here:
 *
 * - what is retried: a failure marked transient (transport errors, timeouts, HTTP 408, 429 and
 *   5xx, see `isTransientStatus`), while attempts are left and the request's deadline has not
 *   passed;
 * - how long to wait: exponential backoff with full jitter, never past the deadline;
 * - when to stop early: the same 5xx answer twice in a row is a deterministic failure.
 *
 * The failed attempts of a call are persisted as it goes (`retrying` in the context), so a call
 * resumed after a restart continues its count here rather than starting over.
 */

/** HTTP statuses a later attempt may get past: the stage or the gateway was busy, slow or restarting. */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Transient, attempts left, and time left before the request deadline. */
export function mayRetry(error: FaveError, attempt: number, call: Pick<StageCallInput, 'retry' | 'deadline_at'>, now = Date.now()): boolean {
  return error.transient === true && attempt < call.retry.max_attempts && now < call.deadline_at;
}

/** Full-jitter exponential backoff: uniform in [0, min(max, base·2^(attempt-1))]. */
export function backoffDelayMs(attempt: number, policy: Pick<RetryPolicy, 'base_delay_ms' | 'max_delay_ms'>, random = Math.random): number {
  const cap = Math.min(policy.max_delay_ms, policy.base_delay_ms * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * cap);
}

/**
 * A call whose last two attempts failed with the same HTTP status and the same body will fail
 * the same way again: the stages answer every exception with HTTP 500 and its text (ffmpeg
 * refusing a file says the same thing every time). 502, 503 and 504 are left out: the gateway
 * answers those alike while a function is not ready, is scaling or is slow, and they heal.
 */
const GATEWAY_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);

export function isRepeatedFailure(records: readonly InvocationRecord[]): boolean {
  const last = records.at(-1);
  const before = records.at(-2);
  if (!last || !before || last.attempt !== before.attempt + 1) return false;
  if (last.outcome !== 'error' || before.outcome !== 'error') return false;
  const status = last.http_status;
  if (status === null || status < 500 || GATEWAY_STATUSES.has(status) || before.http_status !== status) return false;
  return last.response_digest !== undefined && last.response_digest === before.response_digest;
}

/** The failure of a call stopped for a repeated answer: final, with the answer's own text. */
export function repeatedFailureError(error: FaveError, attempt: number): FaveError {
  const { code, message, ...where } = error;
  return faveError(code, `${message} (the same answer on attempts ${attempt - 1} and ${attempt}: a deterministic failure, not retried further)`, {
    ...where,
    transient: false,
    attempts: attempt,
  });
}

/** What follows a failed attempt: another one after `delayMs`, or the call's final error. */
export type RetryDecision = { retry: true; delayMs: number } | { retry: false; error: FaveError };

/**
 * The decision after attempt `attempt` of a call failed with `error`; `records` are all its
 * attempts so far, the failed one last (when it made one).
 */
export function afterFailedAttempt(
  call: Pick<StageCallInput, 'retry' | 'deadline_at'>,
  attempt: number,
  error: FaveError,
  records: readonly InvocationRecord[],
  now = Date.now(),
  random = Math.random,
): RetryDecision {
  // A call restored from a state file older than the setting has none in its input: on.
  if (error.transient && call.retry.stop_on_repeated_error !== false && isRepeatedFailure(records)) {
    return { retry: false, error: repeatedFailureError(error, attempt) };
  }
  if (!mayRetry(error, attempt, call, now)) return { retry: false, error: { ...error, attempts: attempt } };
  return { retry: true, delayMs: Math.max(0, Math.min(backoffDelayMs(attempt, call.retry, random), call.deadline_at - now)) };
}
