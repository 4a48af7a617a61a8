import { FaveFailure, isFaveError, toFaveError, type ErrorCode, type FaveError } from '../domain/errors.ts';
import { renderMessagePage } from '../ui/page.ts';
import { htmlAnswer, jsonAnswer } from './answers.ts';
import type { HttpResponseLike } from './types.ts';

/**
 * How every route of this service fails: one table from an error code to an HTTP status, and
 * one rendering of the error, as JSON for API routes and as an HTML page for the UI's pages. The
 * content type follows the route; the status never does.
 */

/**
 * Codes of the HTTP surface's own refusals, beside the codes of the pipeline's errors (which
 * include NOT_FOUND, the store's missing object, used here for a missing route or artifact too).
 */
export const SURFACE_CODES = [
  'METHOD_NOT_ALLOWED',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'FOREIGN_ORIGIN',
  'UNSUPPORTED_MEDIA_TYPE',
  'PAYLOAD_TOO_LARGE',
  'RESULT_NOT_READY',
  'ALREADY_FINISHED',
  'UPLOADS_DISABLED',
  'FOREIGN_HOST',
  'AUTH_THROTTLED',
  'UPLOAD_STORE_FULL',
] as const;
export type SurfaceCode = (typeof SURFACE_CODES)[number];
export type RefusalCode = ErrorCode | SurfaceCode;

const STATUS: Record<RefusalCode, number> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  FOREIGN_ORIGIN: 403,
  // A Host that is not a name of this service, for a caller without a token (a DNS rebind).
  FOREIGN_HOST: 403,
  UPLOADS_DISABLED: 403,
  NOT_FOUND: 404,
  REQUEST_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  RESULT_NOT_READY: 409,
  ALREADY_FINISHED: 409,
  // A request someone else drives right now: try again later, or elsewhere.
  LEASE_HELD: 409,
  // A store write another writer's got ahead of, where no caller said what it meant for the request.
  PRECONDITION_FAILED: 409,
  CANCELLED: 409,
  PAYLOAD_TOO_LARGE: 413,
  AUTH_THROTTLED: 429,
  // The uploads together fill their quota: the store has no room for this one, the request is fine.
  UPLOAD_STORE_FULL: 507,
  UNSUPPORTED_MEDIA_TYPE: 415,
  // A video that is not there is a request body that cannot be acted on, not a missing resource.
  INPUT_NOT_FOUND: 422,
  BAD_CONFIG: 500,
  STORE_ERROR: 500,
  STATE_CORRUPT: 500,
  STATE_VERSION: 500,
  INTERNAL: 500,
  // What a stage (or the video's source) did wrong: this service is their gateway.
  INPUT_IMPORT_FAILED: 502,
  STAGE_NOT_FOUND: 502,
  STAGE_HTTP_ERROR: 502,
  STAGE_UNAVAILABLE: 502,
  STAGE_TRANSPORT: 502,
  STAGE_REPORTED_ERROR: 502,
  STAGE_CONTRACT: 502,
  ARTIFACT_UNREADABLE: 502,
  TOO_MANY_FAILURES: 502,
  STAGE_TIMEOUT: 504,
  DEADLINE_EXCEEDED: 504,
};

/** The HTTP status of an error raised while answering a call. */
export function statusOf(code: RefusalCode): number {
  return STATUS[code];
}

/**
 * The HTTP status of a request that ran and ended FAILED. Input found bad while it ran had passed
 * the checks of the call (400) and is unprocessable (422); a lease lost while it ran is a fault of
 * this service (500), not a conflict of the caller's making.
 */
export function statusOfFailedRequest(code: ErrorCode): number {
  if (code === 'BAD_REQUEST') return 422;
  if (code === 'LEASE_HELD') return 500;
  return STATUS[code];
}

/**
 * The HTTP status for a caller whose request this process stopped driving before it ended (shutdown,
 * a store that refuses writes): the request is resumable, so the service is only unavailable.
 */
export function statusOfInterrupted(code: ErrorCode): number {
  return code === 'CANCELLED' || code === 'STORE_ERROR' ? 503 : statusOfFailedRequest(code);
}

/**
 * A process that could not make its app (the OpenFaaS handler's first call): a configuration it
 * cannot start with is a service unavailable until it is fixed (503), anything else a fault.
 */
export function startFailure(err: unknown): ApiError {
  const error = toFaveError(err);
  return { ...apiError(error.code, error.message), ...(error.code === 'BAD_CONFIG' ? { status: 503 } : {}) };
}

/** A refusal: its status (from the table), its code, a message naming the problem and the input at fault. */
export interface ApiError {
  status: number;
  code: RefusalCode;
  message: string;
  field?: string;
}

export function apiError(code: RefusalCode, message: string, field?: string): ApiError {
  return { status: statusOf(code), code, message, ...(field !== undefined ? { field } : {}) };
}

/** JSON for API routes (and the UI's own JSON), an HTML page for the UI's pages. */
export type AnswerFormat = 'json' | 'html';

/** The UI's pages are everything under `/ui` but its JSON under `/ui/api/`; a path with no route answers alike. */
export function answerFormatOf(path: string): AnswerFormat {
  const page = path === '/ui' || (path.startsWith('/ui/') && path !== '/ui/api' && !path.startsWith('/ui/api/'));
  return page ? 'html' : 'json';
}

const PAGE_TITLES: Record<number, string> = {
  400: 'Bad request',
  401: 'Sign in',
  403: 'Not allowed',
  404: 'Not found',
  405: 'Method not allowed',
  409: 'Not now',
  413: 'Too large',
  415: 'Unsupported content',
  422: 'Not processable',
  429: 'Too many attempts',
};

export interface ErrorAnswerOptions {
  /** Fields beside `error` in a JSON answer (the request's status, links); a page shows only the error. */
  extra?: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** `{error: {code, message, field?}}` as JSON, or the same code and message on an HTML page, with the same status. */
export function errorAnswer(error: ApiError, format: AnswerFormat, options: ErrorAnswerOptions = {}): HttpResponseLike {
  const { status, code, message, field } = error;
  if (format === 'html') {
    const title = PAGE_TITLES[status] ?? (status >= 500 ? 'Error' : 'Not available');
    return htmlAnswer(status, renderMessagePage(title, `${code}: ${message}`), { ...(options.headers ? { headers: options.headers } : {}) });
  }
  return jsonAnswer(status, { error: { code, message, ...(field !== undefined ? { field } : {}) }, ...options.extra }, options.headers);
}

/**
 * Anything a route threw, as a refusal. A FaveError keeps its code and message; anything else is
 * a fault of this service whose text stays in the log (it may name internals), not in the answer.
 */
export function thrownError(err: unknown): { error: ApiError; fault: FaveError | null } {
  const error = toFaveError(err);
  const ours = err instanceof FaveFailure || isFaveError(err);
  const message = ours ? error.message : 'this service failed to answer; its log has the details';
  const refusal = apiError(error.code, message, ours ? error.field : undefined);
  return { error: refusal, fault: refusal.status >= 500 ? error : null };
}
