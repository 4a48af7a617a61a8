import type { Logger } from 'pino';
import { REQUEST_ID_MESSAGE, REQUEST_ID_PATTERN } from '../domain/request.ts';
import { requestKeys, type Store } from '../persistence/store.ts';
import {
  CALLBACK_MAX_BODY_BYTES,
  TASK_ID_PATTERN,
  parseStartTime,
  verifyCallbackToken,
  type CallbackAddress,
  type CallbackInbox,
  type StoredCallback,
} from '../transport/callbacks.ts';
import type { HttpRequestLike } from './types.ts';
import { apiError, type ApiError, type RefusalCode } from './error-policy.ts';
import type { CallbackConfig } from '../config/config.ts';

/**
 * `POST /callbacks/{request_id}?task=…&run=…&attempt=…&token=…`: where OpenFaaS's queue-worker
 * posts the answer of an async stage call. The token (an HMAC of the address) is its
 * authentication, so it needs no bearer token. Any replica may receive it: the answer is stored
 * before it is acknowledged, and the request's owner picks it up.
 */
export const CALLBACK_PATH = '/callbacks/{id}';

export interface CallbackRouteDeps {
  callback: CallbackConfig | null;
  inbox: CallbackInbox | null;
  store: Store;
  bucket: string;
  /** True when this process runs the request (known without a store read). */
  runsHere: (requestId: string) => boolean;
  logger: Logger;
}

export type CallbackAnswer = { ok: true; status: number; body: Record<string, unknown> } | { ok: false; error: ApiError };

export async function receiveCallback(request: HttpRequestLike, requestId: string, deps: CallbackRouteDeps): Promise<CallbackAnswer> {
  if (!deps.callback || !deps.inbox) return refuse('NOT_FOUND', 'async stage calls are not configured here (CALLBACK_BASE_URL, CALLBACK_SECRET)');
  // The router has checked it already; a storage key is built from it below, so once more here.
  if (!REQUEST_ID_PATTERN.test(requestId)) return refuse('BAD_REQUEST', `request_id: ${REQUEST_ID_MESSAGE}`, 'request_id');
  const address = addressOf(request.query, requestId);
  if ('error' in address) return { ok: false, error: address.error };
  const size = request.body === undefined ? 0 : Buffer.byteLength(request.body);
  if (size > CALLBACK_MAX_BODY_BYTES) return refuse('PAYLOAD_TOO_LARGE', `body: ${size} bytes is more than the ${CALLBACK_MAX_BODY_BYTES} allowed`, 'body');
  if (!verifyCallbackToken(deps.callback.secret, address.value, request.query.token ?? '')) {
    deps.logger.warn({ request_id: requestId, event: 'callback_forged', task_id: address.value.task_id });
    return refuse('FORBIDDEN', 'token: does not match this callback address', 'token');
  }
  const status = Number(request.headers['x-function-status']);
  if (!Number.isInteger(status) || status < 100 || status > 599) {
    return refuse('BAD_REQUEST', 'X-Function-Status: must be the HTTP status of the function (100-599)', 'X-Function-Status');
  }
  if (!deps.runsHere(requestId) && !(await deps.store.head({ bucket: deps.bucket, key: requestKeys.state(requestId) }))) {
    return refuse('REQUEST_NOT_FOUND', `no request ${requestId}`);
  }
  const duration = Number(request.headers['x-duration-seconds']);
  const callback: StoredCallback = {
    format: 'fave-callback',
    ...address.value,
    received_at: Date.now(),
    call_id: header(request, 'x-call-id'),
    function_name: header(request, 'x-function-name'),
    function_status: status,
    duration_seconds: Number.isFinite(duration) && duration >= 0 ? duration : null,
    function_started_at: parseStartTime(request.headers['x-start-time']),
    content_type: header(request, 'content-type'),
    body: request.body === undefined ? '' : Buffer.isBuffer(request.body) ? request.body.toString('utf8') : request.body,
  };
  const outcome = await deps.inbox.accept(callback);
  // One line per call would be the busiest log of an async run; a duplicate is the one worth seeing.
  deps.logger[outcome === 'stored' ? 'debug' : 'info']({
    request_id: requestId,
    event: 'callback',
    task_id: callback.task_id,
    attempt: callback.attempt,
    function_status: status,
    outcome,
  });
  return { ok: true, status: 200, body: { request_id: requestId, task_id: callback.task_id, attempt: callback.attempt, status: outcome === 'stored' ? 'STORED' : 'DUPLICATE' } };
}

function addressOf(query: Record<string, string>, requestId: string): { value: CallbackAddress } | { error: ApiError } {
  const task = query.task ?? '';
  if (!TASK_ID_PATTERN.test(task)) return { error: apiError('BAD_REQUEST', 'task: not a task id of this orchestrator', 'task') };
  const run = intParam(query.run, 0, 1_000_000);
  if (run === null) return { error: apiError('BAD_REQUEST', 'run: must be an integer from 0', 'run') };
  const attempt = intParam(query.attempt, 1, 50);
  if (attempt === null) return { error: apiError('BAD_REQUEST', 'attempt: must be an integer from 1 to 50', 'attempt') };
  if (!query.token) return { error: apiError('BAD_REQUEST', 'token: missing', 'token') };
  return { value: { request_id: requestId, task_id: task, run, attempt } };
}

function intParam(value: string | undefined, min: number, max: number): number | null {
  if (value === undefined || !/^\d{1,7}$/.test(value)) return null;
  const n = Number(value);
  return n >= min && n <= max ? n : null;
}

function header(request: HttpRequestLike, name: string): string | null {
  const value = request.headers[name]?.trim();
  return value ? value.slice(0, 256) : null;
}

function refuse(code: RefusalCode, message: string, field?: string): CallbackAnswer {
  return { ok: false, error: apiError(code, message, field) };
}
