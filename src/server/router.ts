import type { Logger } from 'pino';
import { z } from 'zod';
import { RESPONSE_FORMATS, type Config, type ResponseFormat } from '../config/config.ts';
import { REQUEST_ID_MESSAGE, REQUEST_ID_PATTERN } from '../domain/request.ts';
import { FaveFailure, toFaveError, type FaveError } from '../domain/errors.ts';
import type { ExecutionOutcome } from '../orchestrator/execution.ts';
import type { Handle, Orchestrator } from '../orchestrator/orchestrator.ts';
import { requestMetrics, type RequestView } from '../domain/request-view.ts';
import { faveV1Answer, faveV1Error } from '../domain/fave-v1.ts';
import { createUiPages } from './ui-pages.ts';
import { allows, cookieValue, foreignHost, foreignOrigin, identify, mediaType, SESSION_COOKIE, type Access, type HostPolicy } from './auth.ts';
import { AuthThrottle } from './auth-throttle.ts';
import { badPath } from './request-target.ts';
import type { ApiAuth } from '../config/api-tokens.ts';
import { serveArtifact } from './artifact-route.ts';
import { CALLBACK_PATH, receiveCallback } from './callback-route.ts';
import { receiveUpload, UploadQuota } from './upload-route.ts';
import type { FaveMetrics } from './metrics.ts';
import type { HttpRequestLike, HttpResponseLike } from './types.ts';
import { checkPipelineRequest, parseJsonBody, type HostLookup } from './validate.ts';
import { answerFormatOf, apiError, errorAnswer, statusOfFailedRequest, statusOfInterrupted, thrownError, type AnswerFormat, type ApiError } from './error-policy.ts';
import { jsonAnswer as json, withHeaders } from './answers.ts';
import { basePath } from './forwarded.ts';
import { zodIssue } from '../lib/zod-issue.ts';

export interface RouterDeps {
  orchestrator: Orchestrator;
  logger: Logger;
  metrics: FaveMetrics;
  config: Config;
  /** Overrides `config.allowPrivateSources`. */
  allowPrivateSources?: boolean;
  /** Resolves video hosts for the private-address check (tests inject one). */
  lookup?: HostLookup;
  /** How long `POST /requests/{id}/cancel` waits for the request to settle before answering 202. */
  cancelWaitMs?: number;
  /** Overrides `config.auth` (e.g. `fave serve` on loopback without tokens grants the anonymous role). */
  auth?: ApiAuth;
  /** The port callers reach this service on, checked in the Host of anonymous callers; unknown (null) behind of-watchdog. */
  port?: number | null;
  /** Failed authentication per client (tests set their own bounds). */
  throttle?: AuthThrottle;
}

/** `POST /uploads`: its body is streamed into the store (the server leaves it unread). */
export const STREAMED_UPLOAD_PATH = '/uploads';

export type Router = (request: HttpRequestLike) => Promise<HttpResponseLike>;

/** A refusal of an API route (always JSON: the UI's pages fail by throwing, through the router's one policy). */
function errorResponse(error: ApiError, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): HttpResponseLike {
  return errorAnswer(error, 'json', { extra, headers });
}

/** The FaveError fields a caller can act on; never anything else that may ride along. */
function publicError(error: FaveError): Record<string, unknown> {
  const { code, message, stage, step, clip_index, frame_index, attempts, http_status } = error;
  return Object.fromEntries(Object.entries({ code, message, stage, step, clip_index, frame_index, attempts, http_status }).filter(([, v]) => v !== undefined));
}

/**
 * The answer format of this call: `?format=` when given, else the deployment's RESPONSE_FORMAT.
 * `fave-v1` is the Python orchestrator's envelope, for FAVE's own client tools.
 */
function formatOf(request: HttpRequestLike, fallback: ResponseFormat): ResponseFormat | ApiError {
  const raw = request.query.format;
  if (raw === undefined || raw === '') return fallback;
  const value = raw.trim().toLowerCase();
  return (RESPONSE_FORMATS as readonly string[]).includes(value)
    ? (value as ResponseFormat)
    : apiError('BAD_REQUEST', `format: must be one of ${RESPONSE_FORMATS.join(', ')}`, 'format');
}

function flag(request: HttpRequestLike): boolean | ApiError {
  const raw = request.query.async ?? request.headers['x-fave-async'];
  if (raw === undefined || raw === '') return false;
  const value = raw.trim().toLowerCase();
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  return apiError('BAD_REQUEST', 'async: must be true or false', 'async');
}

function links(request: HttpRequestLike, requestId: string): { status_url: string; result_url: string } {
  const base = `${basePath(request)}/requests/${requestId}`;
  return { status_url: base, result_url: `${base}/result` };
}

const CancelBodySchema = z.strictObject({ reason: z.string().max(500).optional() });

/**
 * One routing for the OpenFaaS function and `fave serve`, API and UI alike. Input is checked before the
 * orchestrator sees it, every refusal is JSON naming the field, and nothing is stored for it.
 */
export function createRouter(deps: RouterDeps): Router {
  const { orchestrator, logger, metrics, config } = deps;
  const allowPrivateSources = deps.allowPrivateSources ?? config.allowPrivateSources;
  const cancelWaitMs = deps.cancelWaitMs ?? 15_000;
  const auth = deps.auth ?? config.auth;
  // Only where callers without a token get a role: with tokens only, a rebound page has nothing to use.
  const hostPolicy: HostPolicy | null = auth.anonymousRole === null ? null : { port: deps.port ?? null, extra: config.allowedHosts };
  const throttle = deps.throttle ?? new AuthThrottle();
  const uploadQuota = new UploadQuota(orchestrator.store, config.uploadStoreMaxBytes);

  async function answer(request: HttpRequestLike, handle: Handle, format: ResponseFormat): Promise<HttpResponseLike> {
    const async = flag(request);
    if (typeof async !== 'boolean') return errorResponse(async);
    if (async) {
      const where = links(request, handle.request_id);
      return json(202, { request_id: handle.request_id, status: 'ACCEPTED', ...where }, { location: where.status_url });
    }
    let outcome: ExecutionOutcome;
    try {
      outcome = await handle.done;
    } catch (err) {
      // Not a FAILED request but an execution this process stopped driving (shutdown, lost lease).
      const error = toFaveError(err);
      // FAVE's clients retry an HTTP error as a new request: in their format every end is a 200.
      if (format === 'fave-v1') return json(200, faveV1Error(handle.request_id, error.message));
      // Let go by this process (shutdown, or a store that refuses writes): it is resumed later.
      const status = statusOfInterrupted(error.code);
      return json(status, { request_id: handle.request_id, status: 'INTERRUPTED', error: publicError(error), ...links(request, handle.request_id) });
    }
    return format === 'fave-v1' ? json(200, faveV1Answer(outcome)) : outcomeResponse(outcome);
  }

  function outcomeResponse(outcome: ExecutionOutcome): HttpResponseLike {
    if (outcome.status === 'COMPLETED') return json(200, { request_id: outcome.request_id, status: 'COMPLETED', result: outcome.result });
    const error = toFaveError(outcome.result.error ?? { code: 'INTERNAL', message: 'the request failed without an error report' });
    return json(statusOfFailedRequest(error.code), { request_id: outcome.request_id, status: 'FAILED', error: publicError(error), result: outcome.result });
  }

  async function start(request: HttpRequestLike): Promise<HttpResponseLike> {
    const async = flag(request);
    if (typeof async !== 'boolean') return errorResponse(async);
    const format = formatOf(request, config.responseFormat);
    if (typeof format !== 'string') return errorResponse(format);
    const body = parseJsonBody(request.body, true);
    if (!body.ok) return errorResponse(body.error);
    const checked = await checkPipelineRequest(body.value, {
      config,
      headers: request.headers,
      allowPrivateSources,
      ...(deps.lookup ? { lookup: deps.lookup } : {}),
    });
    if (!checked.ok) return errorResponse(checked.error);
    const handle = await orchestrator.submit(checked.value, { allowLocalPath: false, allowPrivateNetwork: allowPrivateSources });
    logger.info({ request_id: handle.request_id, event: 'http_submit', local: handle.local });
    return answer(request, handle, format);
  }

  /** Status, current state, progress and a per-stage metrics summary. */
  async function status(request: HttpRequestLike, id: string): Promise<HttpResponseLike> {
    const view = await inspect(id);
    if (!view) return notFound(id);
    return json(200, {
      request_id: id,
      status: view.status,
      state: view.state,
      profile: view.context.settings.profile,
      query: view.context.query,
      progress: view.progress,
      metrics: requestMetrics(view),
      error: view.error ? publicError(view.error) : null,
      running_here: view.local,
      updated_at: view.updated_at === null ? null : new Date(view.updated_at).toISOString(),
      ...links(request, id),
    });
  }

  /** The one view of a request: live when it runs here, else from its state.json; null when unknown. */
  function inspect(id: string): Promise<RequestView | null> {
    return orchestrator.requests.view(id);
  }

  async function result(request: HttpRequestLike, id: string): Promise<HttpResponseLike> {
    const format = formatOf(request, config.responseFormat);
    if (typeof format !== 'string') return errorResponse(format);
    const view = await inspect(id);
    if (!view) return notFound(id);
    // A redriven request still has the final.json of its failed run: it is not the answer.
    if (view.status === 'RUNNING') {
      return errorResponse(apiError('RESULT_NOT_READY', `request ${id} is still running (${view.state})`), {
        request_id: id,
        status: view.status,
        state: view.state,
        progress: view.progress,
        ...links(request, id),
      });
    }
    const final = await orchestrator.requests.readResult(id);
    if (!final) return errorResponse(apiError('NOT_FOUND', `request ${id} is ${view.status} but has no metadata/final.json`));
    if (format === 'fave-v1') return json(200, faveV1Answer({ request_id: id, status: view.status, result: final, context: view.context }));
    return json(200, final);
  }

  async function resume(request: HttpRequestLike, id: string): Promise<HttpResponseLike> {
    const async = flag(request);
    if (typeof async !== 'boolean') return errorResponse(async);
    const format = formatOf(request, config.responseFormat);
    if (typeof format !== 'string') return errorResponse(format);
    const body = parseJsonBody(request.body, false);
    if (!body.ok) return errorResponse(body.error);
    let handle: Handle;
    try {
      handle = await orchestrator.resume(id, { allowLocalPath: false, allowPrivateNetwork: allowPrivateSources });
    } catch (err) {
      if (err instanceof FaveFailure && err.error.code === 'REQUEST_NOT_FOUND') return notFound(id);
      throw err;
    }
    logger.info({ request_id: id, event: 'http_resume', local: handle.local });
    return answer(request, handle, format);
  }

  async function cancel(request: HttpRequestLike, id: string): Promise<HttpResponseLike> {
    const body = parseJsonBody(request.body, false);
    if (!body.ok) return errorResponse(body.error);
    const parsed = CancelBodySchema.safeParse(body.value ?? {});
    if (!parsed.success) {
      const issue = zodIssue(parsed.error);
      const field = issue.path ?? 'body';
      return errorResponse(apiError('BAD_REQUEST', `${field}: ${issue.message}`, field));
    }
    const execution = orchestrator.get(id);
    if (!execution || !orchestrator.cancel(id, parsed.data.reason ?? 'cancelled through the HTTP API')) {
      const view = await inspect(id);
      if (!view) return notFound(id);
      if (view.status !== 'RUNNING') {
        return errorResponse(apiError('ALREADY_FINISHED', `request ${id} has already finished (${view.status})`), { request_id: id, status: view.status });
      }
      // Another process runs it: leave it a cancel it will read at its next lease renewal.
      await orchestrator.requestCancel(id, parsed.data.reason ?? 'cancelled through the HTTP API');
      logger.info({ request_id: id, event: 'http_cancel', where: 'another process' });
      return json(202, { request_id: id, status: 'CANCELLING', ...links(request, id) });
    }
    logger.info({ request_id: id, event: 'http_cancel' });
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      execution.done.then(
        (outcome) => outcome,
        (err: unknown) => toFaveError(err),
      ),
      new Promise<'waiting'>((resolve) => {
        timer = setTimeout(() => resolve('waiting'), cancelWaitMs);
      }),
    ]).finally(() => clearTimeout(timer));
    if (settled === 'waiting') return json(202, { request_id: id, status: 'CANCELLING', ...links(request, id) });
    if ('code' in settled) return json(503, { request_id: id, status: 'INTERRUPTED', error: publicError(settled) });
    const error = settled.result.error ? publicError(toFaveError(settled.result.error)) : null;
    return json(200, { request_id: id, status: settled.status, error, ...links(request, id) });
  }

  function notFound(id: string): HttpResponseLike {
    return errorResponse(apiError('REQUEST_NOT_FOUND', `no request ${id}`));
  }

  async function healthz(): Promise<HttpResponseLike> {
    return json(200, {
      status: 'ok',
      requests_running: orchestrator.running().length,
      invocations_active: orchestrator.limiter.active,
      invocations_queued: orchestrator.limiter.pending,
    });
  }

  async function prometheus(): Promise<HttpResponseLike> {
    return { status: 200, headers: { 'content-type': metrics.contentType, 'cache-control': 'no-store' }, body: await metrics.render() };
  }

  const ui = createUiPages({ orchestrator, auth, logger, maxUploadBytes: config.uploadMaxBytes });

  /**
   * Every route, API and UI, with who may call it. A state-changing route (any method but
   * GET/HEAD) also needs a body of one of the media types it `accepts` (JSON unless it says
   * otherwise) and no foreign `Origin`. `{id}` is a request id, checked before any handler runs.
   * The first route whose method and path match answers; every failure goes through one policy.
   */
  const routes: RouteSpec[] = [
    { method: 'GET', path: '/healthz', access: 'public', handle: healthz },
    { method: 'GET', path: '/metrics', access: 'read', handle: prometheus },
    { method: 'POST', path: '/', access: 'operate', handle: start },
    { method: 'GET', path: '/requests/{id}', access: 'read', handle: (r, { id }) => status(r, id!) },
    { method: 'GET', path: '/requests/{id}/result', access: 'read', handle: (r, { id }) => result(r, id!) },
    { method: 'POST', path: '/requests/{id}/resume', access: 'operate', handle: (r, { id }) => resume(r, id!) },
    { method: 'POST', path: '/requests/{id}/cancel', access: 'operate', handle: (r, { id }) => cancel(r, id!) },
    { method: 'GET', path: '/requests/{id}/artifacts/{name}', access: 'read', handle: (r, { id, name }) => artifact(r, id!, name!) },
    // Its body is streamed into the store, unread by the server until this check has passed.
    {
      method: 'POST',
      path: STREAMED_UPLOAD_PATH,
      access: 'operate',
      accepts: UPLOAD_TYPES,
      handle: (r) => receiveUpload({ store: orchestrator.store, request: r, maxBytes: config.uploadMaxBytes, quota: uploadQuota }),
    },
    { method: 'GET', path: '/ui', access: 'read', handle: (r) => ui.list(r) },
    { method: 'GET', path: '/ui/requests/{id}', access: 'read', handle: (_, { id }) => ui.page(id!) },
    { method: 'GET', path: '/ui/api/requests', access: 'read', handle: (r) => ui.listJson(r) },
    { method: 'GET', path: '/ui/api/requests/{id}', access: 'read', handle: (_, { id }) => ui.view(id!) },
    { method: 'GET', path: '/ui/login', access: 'public', handle: (r) => Promise.resolve(ui.signInForm(r)) },
    { method: 'POST', path: '/ui/login', access: 'public', accepts: FORM_TYPES, handle: (r) => Promise.resolve(signIn(r)) },
    { method: 'POST', path: '/ui/logout', access: 'public', accepts: FORM_TYPES, handle: (r) => Promise.resolve(ui.signOut(r)) },
    // The queue-worker's answer to an async stage call: its HMAC token is its authentication, and
    // its body is whatever the function answered (JSON, or the text of an exception). One comes
    // per async call, so a stored one is routine (the route logs its duplicates itself).
    { method: 'POST', path: CALLBACK_PATH, access: 'public', accepts: 'any', routine: true, handle: (r, { id }) => callback(r, id!) },
  ];
  const compiled = routes.map((spec) => ({ spec, pattern: compilePath(spec.path) }));

  /** A stage's async answer from the queue-worker; authenticated by its HMAC token, not a bearer token. */
  async function callback(request: HttpRequestLike, id: string): Promise<HttpResponseLike> {
    const answer = await receiveCallback(request, id, {
      callback: config.callback,
      inbox: orchestrator.callbackInbox,
      store: orchestrator.store,
      bucket: config.bucket,
      runsHere: (requestId) => orchestrator.get(requestId) !== undefined,
      logger,
    });
    return answer.ok ? json(answer.status, answer.body) : errorResponse(answer.error);
  }

  async function artifact(request: HttpRequestLike, id: string, name: string): Promise<HttpResponseLike> {
    const view = await inspect(id);
    if (!view) return notFound(id);
    return serveArtifact({ store: orchestrator.store, context: view.context, name, range: request.headers.range, head: request.method.toUpperCase() === 'HEAD' });
  }

  /** The sign-in form's token counts as a guess like a bearer token: throttled alike. */
  function signIn(request: HttpRequestLike): HttpResponseLike {
    const client = clientOf(request);
    const wait = throttled(client, 'html');
    if (wait) return wait;
    const answer = ui.signIn(request);
    if (answer.status === 401) throttle.failed(client, request.body === undefined ? '' : request.body.toString());
    else throttle.succeeded(client);
    return answer;
  }

  function throttled(client: string, format: AnswerFormat): HttpResponseLike | null {
    const seconds = throttle.retryAfterSeconds(client);
    if (seconds === null) return null;
    const message = `too many failed sign-ins from this client: try again in ${seconds} s`;
    return errorAnswer(apiError('AUTH_THROTTLED', message), format, { headers: { 'retry-after': String(seconds) } });
  }

  /**
   * 401 (no or bad token; a page answers with the sign-in form), 403 (role too low, foreign
   * origin, a Host not of this service for an anonymous caller), 415 (body type) or 429 (too
   * many failed tokens from this client); null lets the call through.
   */
  function refusal(request: HttpRequestLike, spec: RouteSpec, format: AnswerFormat): HttpResponseLike | null {
    const cookie = cookieValue(request.headers.cookie, SESSION_COOKIE);
    const presents = request.headers.authorization !== undefined || cookie !== null;
    const client = clientOf(request);
    if (spec.access !== 'public' && presents) {
      const wait = throttled(client, format);
      if (wait) return wait;
    }
    // A public route ignores credentials: a stale sign-in cookie must not keep anyone from signing in again.
    const caller = spec.access === 'public' ? ({ ok: true, role: null, anonymous: true } as const) : identify(auth, request.headers);
    if (!caller.ok) throttle.failed(client, request.headers.authorization ?? cookie ?? '');
    if (caller.ok && caller.anonymous && caller.role !== null && hostPolicy !== null) {
      const foreign = foreignHost(request.headers.host, hostPolicy);
      if (foreign !== null) return errorAnswer(apiError('FOREIGN_HOST', foreign, 'Host'), format);
    }
    if (!caller.ok || (caller.role === null && spec.access !== 'public')) {
      const message = caller.ok ? 'this route needs a token: send "Authorization: Bearer <token>"' : caller.message;
      const unauthorized = apiError('UNAUTHORIZED', message);
      if (format === 'html') return withHeaders(ui.signInForm(request, unauthorized.status, caller.ok ? null : message), CHALLENGE);
      return errorAnswer(unauthorized, format, { headers: CHALLENGE });
    }
    if (!allows(caller.role, spec.access)) {
      return errorAnswer(apiError('FORBIDDEN', `${spec.method} ${spec.path} needs the ${spec.access} role; this caller has the ${caller.role} role`), format);
    }
    if (spec.method === 'GET') return null;
    const origin = foreignOrigin(request.headers, config.allowedOrigins);
    if (origin !== null) {
      return errorAnswer(
        apiError('FOREIGN_ORIGIN', `Origin: ${spec.method} ${spec.path} is not accepted from a page on another origin (${origin.slice(0, 200)})`, 'Origin'),
        format,
      );
    }
    const accepts = spec.accepts ?? JSON_TYPES;
    if (accepts === 'any') return null;
    const type = mediaType(request.headers);
    if (type === null || !accepts.includes(type)) {
      return errorAnswer(apiError('UNSUPPORTED_MEDIA_TYPE', `Content-Type: must be ${accepts.join(' or ')}${type ? `, not ${type.slice(0, 100)}` : ''}`, 'Content-Type'), format);
    }
    return null;
  }

  /** The one 404, 405 and bad request id of every route; then the route's own answer. */
  async function route(request: HttpRequestLike, path: string, format: AnswerFormat): Promise<{ response: HttpResponseLike; spec: RouteSpec | null }> {
    const method = request.method.toUpperCase();
    const onPath = compiled.filter(({ pattern }) => pattern.test(path));
    if (onPath.length === 0) return { response: errorAnswer(apiError('NOT_FOUND', `no route ${path}`), format), spec: null };
    const wanted = method === 'HEAD' ? 'GET' : method;
    const found = onPath.find(({ spec }) => spec.method === wanted);
    if (!found) {
      const methods = new Set(onPath.map(({ spec }) => spec.method));
      const allow = [...methods].flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m])).join(', ');
      const response = errorAnswer(apiError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${path} (allowed: ${allow})`), format, { headers: { allow } });
      return { response, spec: null };
    }
    const { spec } = found;
    const refused = refusal(request, spec, format);
    if (refused) return { response: refused, spec };
    const params = { ...found.pattern.exec(path)?.groups };
    if (params.id !== undefined && !REQUEST_ID_PATTERN.test(params.id)) {
      return { response: errorAnswer(apiError('BAD_REQUEST', `request_id: ${REQUEST_ID_MESSAGE}`, 'request_id'), format), spec };
    }
    const response = await spec.handle({ ...request, path }, params);
    return { response: method === 'HEAD' ? { ...response, body: '' } : response, spec };
  }

  return async (request) => {
    const started = performance.now();
    const path = normalizePath(request.path);
    const format = answerFormatOf(path);
    let response: HttpResponseLike;
    let spec: RouteSpec | null = null;
    try {
      const bad = request.path === '' ? null : badPath(request.path);
      if (bad !== null) response = errorAnswer(apiError('BAD_REQUEST', `path: ${bad}`, 'path'), format);
      else ({ response, spec } = await route(request, path, format));
    } catch (err) {
      const { error, fault } = thrownError(err);
      if (fault) logger.error({ event: 'http_error', method: request.method, path: request.path, error: fault });
      response = errorAnswer(error, format);
    }
    // Polls, scrapes and the routes that say so would drown the log at info.
    const routine = request.method.toUpperCase() === 'GET' || spec?.routine === true;
    const level = routine && response.status < 400 ? 'debug' : 'info';
    logger[level]({ event: 'http', method: request.method, path: request.path, status: response.status, ms: Math.round(performance.now() - started) });
    return response;
  };
}

/**
 * Whom failed sign-ins are counted against: the peer address. Behind a proxy on the same host
 * (of-watchdog in the image) every peer is loopback, so there it is the last `X-Forwarded-For`
 * entry, the address the proxy in front saw. Where the host gives no address, one shared count.
 */
export function clientOf(request: HttpRequestLike): string {
  const peer = request.client ?? 'unknown';
  const forwarded = request.headers['x-forwarded-for'];
  if (forwarded === undefined || !(peer === 'unknown' || /^(?:::1|127\.\d+\.\d+\.\d+|::ffff:127\.\d+\.\d+\.\d+)$/.test(peer))) return peer;
  const last = forwarded.split(',').at(-1)?.trim() ?? '';
  return last === '' ? peer : `forwarded:${last.slice(0, 100)}`;
}

interface RouteSpec {
  method: 'GET' | 'POST';
  path: string;
  access: Access;
  /** Media types accepted for the body of a state-changing route (default: JSON); `any`: every type, or none. */
  accepts?: readonly string[] | 'any';
  /** Answered often and in the ordinary course (as a GET is): a success is logged at debug, not info. */
  routine?: boolean;
  /** `params` holds the path's `{id}` and `{name}` parts. */
  handle: (request: HttpRequestLike, params: { id?: string; name?: string }) => Promise<HttpResponseLike>;
}

const JSON_TYPES = ['application/json'] as const;
const FORM_TYPES = ['application/x-www-form-urlencoded', 'application/json'] as const;
const UPLOAD_TYPES = ['application/octet-stream', 'video/mp4', 'video/quicktime', 'video/x-matroska', 'video/webm', 'video/x-msvideo', 'video/x-m4v'] as const;
const CHALLENGE = { 'www-authenticate': 'Bearer realm="fave"' } as const;

function compilePath(path: string): RegExp {
  const source = path
    .split('/')
    .map((part) => (part === '{id}' ? '(?<id>[^/]*)' : part === '{name}' ? '(?<name>[^/]+)' : part.replace(/[.*+?^$()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}$`);
}

/** `''` (the OpenFaaS gateway's path for `/function/name`) is `/`; a trailing slash is dropped. */
function normalizePath(path: string): string {
  if (path === '' || path === '/') return '/';
  return path.length > 1 ? path.replace(/\/+$/, '') || '/' : path;
}
