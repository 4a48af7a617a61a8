import { faveError, type FaveError } from './errors.ts';
import type { InvocationRecord } from './invocations.ts';

/**
 * A call whose last two attempts failed with the same HTTP status and the same body will fail
 * the same way again: the stages answer every exception with HTTP 500 and its text (ffmpeg
 * refusing a file says the same thing every time). 502, 503 and 504 are left out: the gateway
 * answers those alike while a function is not ready, is scaling or is slow, and they heal.
 */
const GATEWAY_STATUSES = new Set([502, 503, 504]);

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
