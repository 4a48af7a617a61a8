import { FaveFailure } from '../../src/domain/errors.ts';
import type { InvocationRecord } from '../../src/domain/invocations.ts';

/** A successful first attempt of `stage` that took 1 ms at time 0, with `over` applied. */
export function invocationRecord(stage: string, over: Partial<InvocationRecord> = {}): InvocationRecord {
  return {
    stage,
    clip_index: null,
    frame_index: null,
    attempt: 1,
    queued_at: 0,
    started_at: 0,
    ended_at: 1,
    latency_ms: 1,
    reported_duration_ms: null,
    gateway_duration_ms: null,
    call_id: null,
    cold_start: null,
    memory_limit_mb: null,
    cost_unit: null,
    http_status: 200,
    outcome: 'success',
    error: null,
    ...over,
  };
}

/** The FaveFailure a promise rejects with; fails the test if it resolves or rejects otherwise. */
export async function failureOf(promise: Promise<unknown>): Promise<FaveFailure> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof FaveFailure) return err;
    throw err;
  }
  throw new Error('expected a FaveFailure, but the call succeeded');
}
