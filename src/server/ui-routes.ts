import { FaveFailure, toFaveError } from '../domain/errors.ts';
import { REQUEST_ID_PATTERN } from '../domain/request.ts';
import type { Orchestrator } from '../orchestrator/orchestrator.ts';
import type { HttpRequestLike, HttpResponseLike } from './types.ts';
import { contentSecurityPolicy } from '../ui/html.ts';
import { liveFeedOf } from '../ui/live-feed.ts';
import { renderListPage, renderMessagePage, renderRequestPage, renderSignInPage } from '../ui/page.ts';
import { listRequestSummaries, loadRequestView } from '../ui/view.ts';

/**
 * The UI under `/ui`:
 * - `GET /ui`: every request, newest first;
 * - `GET /ui/requests/{id}`: the request page (statechart, progress, invocation timeline);
 * - `GET /ui/api/requests/{id}`: the view JSON that page polls; `GET /ui/api/requests`: the list.
 */

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

function html(status: number, body: string, live = true): HttpResponseLike {
  return {
    status,
    headers: { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': contentSecurityPolicy(live), ...SECURITY_HEADERS },
    body,
  };
}

/** The sign-in page (`GET /ui/login`, and the 401 answer of every UI page without a valid token). */
export function renderSignIn(status: number, action: string, message: string | null): HttpResponseLike {
  return {
    status,
    headers: { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': contentSecurityPolicy(false, null, true), ...SECURITY_HEADERS },
    body: renderSignInPage(action, message),
  };
}

function json(status: number, value: unknown): HttpResponseLike {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8', ...SECURITY_HEADERS }, body: JSON.stringify(value) };
}

function failure(err: unknown, asJson: boolean): HttpResponseLike {
  const error = toFaveError(err);
  const status = error.code === 'BAD_REQUEST' ? 400 : error.code === 'INPUT_NOT_FOUND' ? 404 : 500;
  const message = status === 500 && !(err instanceof FaveFailure) ? 'the UI failed to answer' : error.message;
  if (asJson) return json(status, { error: { code: error.code, message } });
  return html(status, renderMessagePage(status === 500 ? 'Error' : 'Not available', `${error.code}: ${message}`), false);
}

function notFound(what: string, asJson: boolean): HttpResponseLike {
  if (asJson) return json(404, { error: { code: 'NOT_FOUND', message: `no ${what}` } });
  return html(404, renderMessagePage('Not found', `no ${what}`), false);
}

const BAD_ID = 'request_id: must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$';

/** Serves `/ui` and its JSON; null when the path is not the UI's. */
export interface UiOptions {
  /** The cap of `POST /uploads` (0: no upload field). */
  maxUploadBytes?: number;
}

export async function handleUi(request: HttpRequestLike, orchestrator: Orchestrator, options: UiOptions = {}): Promise<HttpResponseLike | null> {
  const path = request.path.length > 1 ? request.path.replace(/\/+$/, '') : request.path;
  if (path !== '/ui' && !path.startsWith('/ui/')) return null;
  const asJson = path.startsWith('/ui/api/');
  const method = request.method.toUpperCase();
  if (method !== 'GET' && method !== 'HEAD') {
    const response = asJson ? json(405, { error: { code: 'METHOD_NOT_ALLOWED', message: `${method} is not allowed on ${path}` } }) : html(405, renderMessagePage('Method not allowed', `${method} ${path}`), false);
    return { ...response, headers: { ...response.headers, allow: 'GET, HEAD' } };
  }
  // From here on, live views of running requests see every invocation as it ends.
  liveFeedOf(orchestrator);
  const response = await answer(path, asJson, orchestrator, options);
  return method === 'HEAD' ? { ...response, body: '' } : response;
}

async function answer(path: string, asJson: boolean, orchestrator: Orchestrator, options: UiOptions): Promise<HttpResponseLike> {
  try {
    if (path === '/ui') {
      const maxUploadBytes = options.maxUploadBytes ?? 0;
      const form = {
        profiles: orchestrator.profileNames,
        // The upload field is for the embedded default; elsewhere videos are already in a bucket.
        uploads: maxUploadBytes > 0 && orchestrator.embedded && orchestrator.store.kind === 'fs',
        maxUploadBytes,
      };
      return html(200, renderListPage(await listRequestSummaries(orchestrator), form));
    }
    if (path === '/ui/api/requests') return json(200, { requests: await listRequestSummaries(orchestrator) });
    const match = /^\/ui\/(api\/)?requests\/([^/]+)$/.exec(path);
    if (!match) return notFound(`page ${path}`, asJson);
    let id: string;
    try {
      id = decodeURIComponent(match[2]!);
    } catch {
      id = match[2]!;
    }
    if (!REQUEST_ID_PATTERN.test(id)) return asJson ? json(400, { error: { code: 'BAD_REQUEST', message: BAD_ID } }) : html(400, renderMessagePage('Bad request', BAD_ID), false);
    const view = await loadRequestView(orchestrator, id);
    if (!view) return notFound(`request ${id}`, asJson);
    return asJson ? json(200, view) : html(200, renderRequestPage(view, { mode: 'live' }));
  } catch (err) {
    return failure(err, asJson);
  }
}
