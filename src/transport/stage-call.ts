import { createHash } from 'node:crypto';
import { callLocation, describeLocation, faveError, type ErrorLocation, type FaveError } from '../domain/errors.ts';
import type { StageCallInput } from '../domain/context.ts';
import { parseStageResponse, type StageRequest, type StageResponse } from './contract.ts';
import { buildStageRequest } from './contract.ts';
import type { InvocationRecord, StageCallFailure } from '../domain/invocations.ts';
import { StageResponseTooLarge, StageTimeout, type StageTransport } from './transport.ts';
import type { Limiter } from '../lib/limiter.ts';
import { describeZodIssue } from '../lib/zod-issue.ts';
import { isTransientStatus } from '../domain/retry-policy.ts';

/**
 * What one attempt needs of a stage call, as the machine planned it: the function, its task (the
 * input and where it belongs in the fan-out), the per-stage timeout and the request's deadline.
 */
export type StageCall = Pick<StageCallInput, 'request_id' | 'profile' | 'function_name' | 'task' | 'timeout_ms' | 'deadline_at'>;

/**
 * Whether a call may leave this process now: the request's lease, checked at the very instant
 * of the send.
 */
export interface SendGate {
  /** Synchronous, so nothing can run between the answer and the send. */
  clear(): boolean;
  /**
   * Waits until the way may have re-opened (true: `clear()` is asked again), or never will (false:
   * the request stopped running here, or `signal` aborted).
   */
  opened(signal: AbortSignal): Promise<boolean>;
}

/** Which attempt of the call this is. */
export interface StageAttempt {
  attempt: number;
  /** Makes the attempt known durably (the dispatch journal) right before it is sent. */
  dispatch?: { id: string; record(): Promise<void>; unsent(): Promise<void> };
  /** Held closed while this process may no longer hold the request's lease. */
  gate?: SendGate | null;
}

/** One attempt of one call: the planned call, which attempt it is, and the wire request made from it. */
interface Spec extends StageAttempt {
  call: StageCall;
  request: StageRequest;
}

export interface StageCallSuccess {
  response: StageResponse;
  record: InvocationRecord;
}

/**
 * Performs one attempt: waits for a process-wide slot, POSTs the stage request with the
 * per-stage timeout, and classifies the outcome, marking the failures a later attempt may get
 * past as `transient`. Whether and when there is a later attempt is the retry policy's
 * (`src/domain/retry-policy.ts`), decided by the caller's loop.
 */
export function callStageOnce(transport: StageTransport, limiter: Limiter, call: StageCall, attempt: StageAttempt, signal: AbortSignal): Promise<StageCallSuccess> {
  const queuedAt = Date.now();
  const spec: Spec = { ...attempt, call, request: buildStageRequest(call) };
  return limiter.run((release) => attemptNow(transport, spec, signal, queuedAt, release));
}

interface HttpFacts {
  http_status: number;
  call_id: string | null;
  gateway_duration_ms: number | null;
}

/** The invocation record of one attempt; built field by field, as it is made for every call. */
function recordOf(
  spec: Spec,
  queuedAt: number,
  startedAt: number,
  http: HttpFacts | null,
  metrics: StageResponse['metrics'],
  outcome: InvocationRecord['outcome'],
  error: FaveError | null,
): InvocationRecord {
  const endedAt = Date.now();
  const record: InvocationRecord = {
    stage: spec.call.function_name,
    clip_index: spec.call.task.fanout.clip_index ?? null,
    frame_index: spec.call.task.fanout.frame_index ?? null,
    attempt: spec.attempt,
    queued_at: queuedAt,
    started_at: startedAt,
    ended_at: endedAt,
    latency_ms: endedAt - startedAt,
    reported_duration_ms: metrics?.duration_ms ?? null,
    gateway_duration_ms: http?.gateway_duration_ms ?? null,
    call_id: http?.call_id ?? null,
    cold_start: metrics?.cold_start ?? null,
    memory_limit_mb: metrics?.memory_limit_mb ?? null,
    cost_unit: metrics?.cost_unit ?? null,
    http_status: http?.http_status ?? null,
    outcome,
    error,
  };
  if (spec.dispatch) record.dispatch_id = spec.dispatch.id;
  return record;
}

function failure(spec: Spec, queuedAt: number, startedAt: number, error: FaveError, http: HttpFacts | null = null, metrics: StageResponse['metrics'] = null): StageCallFailure {
  const withAttempts = { ...error, attempts: spec.attempt };
  return { error: withAttempts, record: recordOf(spec, queuedAt, startedAt, http, metrics, 'error', withAttempts) };
}

async function attemptNow(transport: StageTransport, spec: Spec, signal: AbortSignal, queuedAt: number, answered: () => void): Promise<StageCallSuccess> {
  const startedAt = Date.now();
  const where = callLocation(spec.call.function_name, spec.call.task.fanout);
  const remaining = spec.call.deadline_at - startedAt;
  if (remaining <= 0) {
    throw failure(spec, queuedAt, startedAt, faveError('DEADLINE_EXCEEDED', `request deadline passed before ${describe(where)} could start`, where));
  }
  if (signal.aborted) throw failure(spec, queuedAt, startedAt, faveError('CANCELLED', `request cancelled before ${describe(where)} started`, where));
  let timeoutMs = Math.min(spec.call.timeout_ms, remaining);
  const gate = spec.gate ?? null;
  // Looked at before the marker too: a call held back there leaves no marker that a resume
  // elsewhere would count as sent.
  // Asked here first: a clear way, nearly every time, costs no wait of a turn.
  if (gate && !gate.clear() && !(await passGate(gate, signal))) return refused(spec, queuedAt, startedAt, where, false);
  if (spec.dispatch) {
    try {
      await spec.dispatch.record();
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw failure(
        spec,
        queuedAt,
        startedAt,
        faveError('STORE_ERROR', `${describe(where)} was not sent: its dispatch could not be recorded (${reason})`, { ...where, transient: true }),
      );
    }
    // Stopped while its marker was written: it will not be sent, so the marker is taken back.
    if (signal.aborted) {
      await spec.dispatch.unsent().catch(() => undefined);
      throw failure(spec, queuedAt, startedAt, faveError('CANCELLED', `request cancelled before ${describe(where)} was sent`, where));
    }
  }

  // The lease is checked last, after every await: from this answer to the send nothing else runs.
  if (gate && !gate.clear()) {
    if (!(await passGate(gate, signal))) return refused(spec, queuedAt, startedAt, where, spec.dispatch !== undefined);
    // The wait counts against the request's deadline like any other.
    timeoutMs = Math.min(spec.call.timeout_ms, spec.call.deadline_at - Date.now());
    if (timeoutMs <= 0) {
      await spec.dispatch?.unsent().catch(() => undefined);
      throw failure(spec, queuedAt, startedAt, faveError('DEADLINE_EXCEEDED', `request deadline passed before ${describe(where)} could start`, where));
    }
  }
  let http;
  try {
    http = await transport.call(spec.call.function_name, spec.request, { signal, timeoutMs, answered });
  } catch (err) {
    if (signal.aborted) throw failure(spec, queuedAt, startedAt, faveError('CANCELLED', `${describe(where)} was cancelled in flight`, where));
    if (err instanceof StageTimeout) {
      const deadline = timeoutMs < spec.call.timeout_ms;
      throw failure(
        spec,
        queuedAt,
        startedAt,
        deadline
          ? faveError('DEADLINE_EXCEEDED', `${describe(where)} was cut off at the request deadline`, where)
          : faveError('STAGE_TIMEOUT', `${describe(where)} did not answer within ${timeoutMs} ms (stage timeout)`, { ...where, transient: true }),
      );
    }
    if (err instanceof StageResponseTooLarge) {
      // The same stage would answer the same body again: not worth a retry.
      throw failure(
        spec,
        queuedAt,
        startedAt,
        faveError('STAGE_CONTRACT', `${describe(where)} answered with a body larger than ${err.limitBytes} bytes (STAGE_RESPONSE_MAX_BYTES); reading stopped there`, where),
      );
    }
    const reason = err instanceof Error ? `${(err as NodeJS.ErrnoException).code ?? err.name}: ${err.message}` : String(err);
    throw failure(spec, queuedAt, startedAt, faveError('STAGE_TRANSPORT', `${describe(where)} failed in transport (${reason})`, { ...where, transient: true }));
  }

  const facts: HttpFacts = {
    http_status: http.status,
    call_id: http.headers['x-call-id'] ?? null,
    gateway_duration_ms: parseDurationHeader(http.headers['x-duration-seconds']),
  };
  if (http.status !== 200) {
    const failed = failure(spec, queuedAt, startedAt, classifyHttpStatus(http.status, http.body, where), facts);
    failed.record.response_digest = createHash('sha256').update(http.body).digest('hex').slice(0, 16);
    throw failed;
  }

  let json: unknown;
  try {
    json = JSON.parse(http.body);
  } catch {
    throw failure(spec, queuedAt, startedAt, faveError('STAGE_CONTRACT', `${describe(where)} answered HTTP 200 with a body that is not JSON: ${snippet(http.body)}`, where), facts);
  }
  const parsed = parseStageResponse(json);
  if (!parsed.success) {
    throw failure(spec, queuedAt, startedAt, faveError('STAGE_CONTRACT', `${describe(where)} broke the response contract at ${describeZodIssue(parsed.error)}`, where), facts);
  }
  const response = parsed.data;
  if (response.status === 'error') {
    throw failure(
      spec,
      queuedAt,
      startedAt,
      faveError('STAGE_REPORTED_ERROR', `${describe(where)} reported an error: ${response.message ?? '(no message)'}`, where),
      facts,
      response.metrics,
    );
  }
  return { response, record: recordOf(spec, queuedAt, startedAt, facts, response.metrics, response.status, null) };
}

/** The attempt is not sent: the lease is no longer this process's. A marker written for it is taken back. */
async function refused(spec: Spec, queuedAt: number, startedAt: number, where: ErrorLocation, marked: boolean): Promise<never> {
  if (marked) await spec.dispatch?.unsent().catch(() => undefined);
  throw failure(spec, queuedAt, startedAt, faveError('CANCELLED', `${describe(where)} was not sent: this process no longer holds the request's lease`, where));
}

/**
 * Waits, once the caller's own `clear()` said no, until the gate lets a call through (true) or
 * never will (false). Ends with a synchronous `clear()` that said yes, so a caller that sends
 * right after it sends within the same turn.
 */
async function passGate(gate: SendGate, signal: AbortSignal): Promise<boolean> {
  do {
    if (!(await gate.opened(signal)) || signal.aborted) return false;
  } while (!gate.clear());
  return true;
}

/** 404 is final; 408, 429 and 5xx may heal (`isTransientStatus`); other 4xx are the caller's fault and final. */
export function classifyHttpStatus(status: number, body: string, where: Omit<FaveError, 'code' | 'message'>): FaveError {
  const detail = `${describe(where)} answered HTTP ${status}${body ? `: ${snippet(body)}` : ''}`;
  if (status === 404) return faveError('STAGE_NOT_FOUND', `${detail} (is the function deployed under that name?)`, { ...where, http_status: status });
  if (status === 502 || status === 503) return faveError('STAGE_UNAVAILABLE', detail, { ...where, http_status: status, transient: true });
  if (status === 504) return faveError('STAGE_TIMEOUT', detail, { ...where, http_status: status, transient: true });
  return faveError('STAGE_HTTP_ERROR', detail, { ...where, http_status: status, transient: isTransientStatus(status) });
}

function describe(where: ErrorLocation): string {
  return describeLocation(where, 'stage');
}

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat || '(empty body)';
}

function parseDurationHeader(value: string | undefined): number | null {
  if (!value) return null;
  const seconds = Number(value);
  return Number.isFinite(seconds) ? Math.round(seconds * 1000) : null;
}
